"""Neural text classifiers: a `SequenceVectorizer` and a Keras model built by a registered
architecture, trained with early stopping on validation loss (best weights restored),
checkpointed after every epoch and resumable.

The jobs around the model live beside it: `newstopic.fitting` runs the epochs,
`newstopic.initialisers` starts and finishes the layers that need it, `newstopic.checkpoint`
writes and reads the files. Keras is imported on first use, not with this module, so that
registering and listing the neural models costs nothing.
"""

from __future__ import annotations

import inspect
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from newstopic.backend import device_count, keras_module
from newstopic.checkpoint import (
    HISTORY_FILE,
    MODEL_FILE,
    VECTORIZER_FILE,
    Checkpoint,
    load_keras_model,
    read_json,
    save_keras_model,
    write_json,
)
from newstopic.data import stratified_split
from newstopic.errors import NewstopicError
from newstopic.fitting import (
    PREDICT_BATCH,
    auto_batch_size,
    auto_ema_momentum,
    check_devices,
    class_weight,
    run_epochs,
    stopped,
)
from newstopic.initialisers import (
    digest,
    layer_of,
    start_from_word2vec,
    start_tfidf,
    start_wide_from_naive_bayes,
    start_word2vec,
    weigh_branches,
)
from newstopic.lazy import callbacks, custom_layers
from newstopic.predictor import ATTENTION, CLASSIFY, EXPLAIN
from newstopic.registry import registered
from newstopic.text import OOV, SequenceVectorizer

# seed-lstm's 5,000 words and the others' 50,000 alternate in a benchmark
KEPT_VOCABULARIES = 2
_VOCABULARIES: dict = {}  # (max_words, training texts) key -> vocabulary, oldest first


class TrainedKerasModel:
    """A registered architecture's trained `keras.Model`, with the vectorizer of its input
    texts, its training recipe and history: their figures, and their files."""

    model = None
    history: dict = {}
    vectorizer_file = VECTORIZER_FILE  # where `vectorizer` is saved

    def _save_keras(self, directory: Path) -> dict:
        """Write the Keras model, the vectorizer and the history; return the settings that
        `_restore` reads back."""
        save_keras_model(self.model, directory / MODEL_FILE)
        write_json(directory / self.vectorizer_file, self.vectorizer.to_dict())
        write_json(directory / HISTORY_FILE, self.history)
        return {"architecture": self.architecture, "training": self.training,
                "architecture_params": self.architecture_params,
                "epochs_run": self.epochs_run, "best_epoch": self.best_epoch}

    @classmethod
    def _restore(cls, directory: Path, manifest: dict):
        """The model `_save_keras` wrote; the `.keras` file is loaded with safe_mode, so no code
        from it runs."""
        settings = manifest["predictor"]
        restored = cls(settings["architecture"], seed=manifest["params"].get("seed", 0),
                       **settings["training"], **settings["architecture_params"])
        restored.model = load_keras_model(directory / MODEL_FILE)
        restored.vectorizer = SequenceVectorizer.from_dict(
            read_json(directory / cls.vectorizer_file))
        restored.history = read_json(directory / HISTORY_FILE)
        restored.best_epoch = settings.get("best_epoch", 0)
        return restored

    @property
    def n_parameters(self) -> int:
        return int(self.model.count_params())

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))


class NeuralTextModel(TrainedKerasModel):
    """A registered architecture (`newstopic.architectures`) with its vectorizer and training
    recipe; `architecture_params` go to the architecture's builder. `batch_size` None chooses
    it from the number of training texts (`auto_batch_size`), and so does `ema_momentum`
    "auto" (`auto_ema_momentum`; None validates and keeps the weights as trained)."""

    prediction_files = None  # all of them
    # The validation texts' probabilities under cross-fitted branch weights, after `fit`
    # (`weigh_branches`); None for a model without branches.
    validation_proba_ = None

    def __init__(self, architecture: str, *, seed: int = 0, max_words: int = 50000,
                 max_len: int = 256, truncate: str = "head", epochs: int = 10,
                 batch_size: int | None = None, learning_rate: float = 3e-3,
                 class_weight: str | None = None, patience: int | None = 2,
                 validation_size: float = 0.1, bucket: bool = True, word2vec: bool = True,
                 ema_momentum: float | str | None = "auto", **architecture_params):
        self.architecture, self.seed = architecture, seed
        self.training = {"max_words": max_words, "max_len": max_len, "truncate": truncate,
                         "epochs": epochs, "batch_size": batch_size,
                         "learning_rate": learning_rate, "class_weight": class_weight,
                         "patience": patience, "validation_size": validation_size,
                         "bucket": bucket, "word2vec": word2vec, "ema_momentum": ema_momentum}
        self.architecture_params = architecture_params
        self.model = self.vectorizer = self._attention_model = None
        self.history: dict = {}

    # --- training ---------------------------------------------------------------------------

    def build(self, n_classes: int):
        build = registered(self.architecture).build
        context = {"n_classes": n_classes, "classes": [str(c) for c in self.classes_],
                   "vocab_size": self.vectorizer.vocab_size,
                   "max_len": self.training["max_len"]}
        wanted = inspect.signature(build).parameters
        return build(**{k: v for k, v in context.items() if k in wanted},
                     **self.architecture_params)

    def fit(self, texts, labels, validation_data=None, progress=None, checkpoint=None,
            resume: bool = False, epoch_end=None) -> "NeuralTextModel":
        """Train; `checkpoint` is a directory written after every epoch, `resume` continues from
        it, `progress` is a rich Progress to show epochs and batches on, and `epoch_end(epoch,
        logs)` is called after each epoch (a tuner's pruner stops a trial by raising)."""
        keras = keras_module()
        labels = np.asarray(labels)
        self.classes_ = np.unique(labels)
        if validation_data is None:
            texts, val_texts, labels, val_labels = stratified_split(
                list(texts), labels.tolist(), self.training["validation_size"], self.seed,
                "the training texts")
        else:
            val_texts, val_labels = validation_data
        y, val_y = self._encode(labels), self._encode(val_labels)
        self.batch_size_ = self.training["batch_size"] or auto_batch_size(len(y))
        self.ema_momentum_ = (auto_ema_momentum(len(y)) if self.training["ema_momentum"] == "auto"
                              else self.training["ema_momentum"])
        check_devices(self.architecture, self.training["bucket"], self.batch_size_)
        store = Checkpoint(checkpoint, self._fingerprint(len(y))) if checkpoint else None
        state = store.load() if store is not None and resume else None
        if state is None:
            keras.utils.set_random_seed(self.seed)
            self.vectorizer = self._fit_vectorizer(texts)
            x = self.vectorizer.transform(texts)
            model = self.build(len(self.classes_))
            start_tfidf(model, x)
            start_wide_from_naive_bayes(model, x, y)
            if self.training["word2vec"]:
                task = progress.add_task(f"{self.architecture}: word2vec on the training texts",
                                         total=None) if progress is not None else None
                start_from_word2vec(model, self.architecture, self.vectorizer, texts,
                                    self.seed)
                if task is not None:
                    progress.remove_task(task)
            model.compile(optimizer=callbacks.adam(self.training["learning_rate"],
                                                   self.ema_momentum_),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            state = callbacks.EarlyStoppingCheckpoint.initial_state()
        else:
            self.vectorizer, model = state.pop("vectorizer"), state.pop("model")
            x = self.vectorizer.transform(texts)
        steps = -(-len(y) // self.batch_size_)
        run = [callbacks.EpochSeeds(self.seed),
               callbacks.EarlyStoppingCheckpoint(self.training["patience"], state,
                                                 store.save(self.vectorizer) if store else None)]
        if progress is not None:
            run.append(callbacks.RichProgress(progress, self.training["epochs"], steps,
                                              self.architecture))
        if epoch_end is not None:
            run.append(callbacks.EpochEnd(epoch_end))
        val_x = self.vectorizer.transform(val_texts)
        if state["epochs_done"] < self.training["epochs"] and not stopped(
                state, self.training["patience"]):
            run_epochs(model, x, y, val_x, val_y, epochs=self.training["epochs"],
                       initial_epoch=state["epochs_done"], batch_size=self.batch_size_,
                       seed=self.seed, bucket=self.training["bucket"], run=run,
                       weights=class_weight(y, len(self.classes_),
                                            self.training["class_weight"]))
        if state["best_weights"] is not None:
            model.set_weights(state["best_weights"])
        self.validation_proba_ = weigh_branches(model, val_x, val_y, self.seed)
        self.model, self.history, self._attention_model = model, state["history"], None
        self.best_epoch = state["best_epoch"]
        if store is not None:
            store.remove()
        return self

    def _fit_vectorizer(self, texts) -> SequenceVectorizer:
        """The vectorizer of these training texts. Vocabularies are kept for the process: the
        neural models of a benchmark share their training texts, and fitting one takes
        seconds."""
        key = digest([self.training["max_words"], list(texts)])
        if key not in _VOCABULARIES:
            if len(_VOCABULARIES) >= KEPT_VOCABULARIES:
                del _VOCABULARIES[next(iter(_VOCABULARIES))]  # the oldest
            _VOCABULARIES[key] = SequenceVectorizer(self.training["max_words"]).fit(
                texts).vocabulary
        return SequenceVectorizer(self.training["max_words"], self.training["max_len"],
                                  self.training["truncate"], list(_VOCABULARIES[key]))

    def start_word2vec(self, texts) -> Future | None:
        """Start training, in the background, the word vectors that `fit` on these texts will
        start from; None if this model starts from random embeddings."""
        if not self.training["word2vec"]:
            return None
        return start_word2vec(self._fit_vectorizer(texts), texts, self.seed)

    def _encode(self, labels) -> np.ndarray:
        labels = np.asarray(labels)
        unknown = sorted(set(labels.tolist()) - set(self.classes_.tolist()))
        if unknown:
            raise NewstopicError(f"validation label '{unknown[0]}' does not occur in the "
                                 "training labels: give every class training examples")
        return np.searchsorted(self.classes_, labels).astype(np.int32)

    def _fingerprint(self, n_train: int) -> dict:
        return {"architecture": self.architecture, "seed": self.seed, "training": self.training,
                "architecture_params": self.architecture_params,
                "classes": [str(c) for c in self.classes_], "n_train": n_train}

    # --- prediction -------------------------------------------------------------------------

    @property
    def seconds_per_epoch(self) -> float:
        seconds = self.history.get("seconds", [])
        return float(np.mean(seconds)) if seconds else 0.0

    def predict_proba(self, texts) -> np.ndarray:
        return self.predict_known(texts)[0]

    def predict_known(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities, whether the text holds a word the model knows) of each text."""
        x = self.vectorizer.transform(list(texts))
        return self.predict_ids(x), (x > OOV).any(axis=1)

    def predict_ids(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of texts this model's vectorizer turned into word ids `x`."""
        if not self.training["bucket"]:
            return self.model.predict(x, batch_size=PREDICT_BATCH, verbose=0).astype(np.float64)
        # Padding is masked, so cutting it per batch changes nothing but the time taken.
        return callbacks.LengthBuckets(x, None, PREDICT_BATCH, self.seed, shuffle=False,
                                       devices=device_count()).predict(self.model)

    @property
    def has_attention(self) -> bool:
        return layer_of(self.model, custom_layers.AttentionPooling) is not None

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({CLASSIFY, EXPLAIN} | ({ATTENTION} if self.has_attention else set()))

    def attention_weights(self, texts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(word ids, class probabilities, attention weights) of each text, from one pass; the
        weights have one column per position of the ids."""
        if self._attention_model is None:
            keras = keras_module()

            layer = layer_of(self.model, custom_layers.AttentionPooling)
            if layer is None:
                raise NewstopicError(f"model '{self.architecture}' has no attention layer: use "
                                     "lstm-attention or bigru-attention")
            # Built once: a model built per call would be traced anew on every call.
            weights = layer.output[1]
            self._attention_model = keras.Model(self.model.input,
                                                [self.model.outputs[0], weights])
        x = self.vectorizer.transform(list(texts))
        proba, weights = callbacks.predict_in_batches(self._attention_model, x, PREDICT_BATCH)
        return x, proba.astype(np.float64), weights

    def attention(self, texts) -> list[list[tuple[str, float]]]:
        """Each text's tokens (as the model sees them) with their attention weights."""
        x, _, weights = self.attention_weights(texts)
        result = []
        for ids, row in zip(x, weights):
            n = int(np.count_nonzero(ids))
            result.append(list(zip(self.vectorizer.tokens(ids[:n]), map(float, row[:n]))))
        return result

    # --- files ------------------------------------------------------------------------------

    def save(self, directory: Path) -> dict:
        return {**self._save_keras(directory), "batch_size": self.batch_size_,
                "ema_momentum": self.ema_momentum_, "seconds_per_epoch": self.seconds_per_epoch}

    @classmethod
    def load(cls, directory: Path, manifest: dict) -> "NeuralTextModel":
        settings = manifest["predictor"]
        engine = cls._restore(directory, manifest)
        # for saving it again; artifacts from before the automatic size hold it in "training"
        engine.batch_size_ = settings.get("batch_size", settings["training"]["batch_size"])
        engine.ema_momentum_ = settings.get("ema_momentum")  # none before the averaging
        engine.classes_ = np.asarray(manifest["labels"])
        return engine
