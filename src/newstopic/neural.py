"""Neural text models: a `SequenceVectorizer` and a Keras model, trained with early stopping on
validation loss (best weights restored), checkpointed after every epoch and resumable.

Keras is imported on first use, not with this module, so that registering and listing the
neural models costs nothing.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import threading
import time
import zipfile
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from newstopic.backend import device_count, keras_module
from newstopic.data import stratified_split
from newstopic.errors import ArtifactError, NewstopicError
from newstopic.files import atomic_directory, sha256, write_atomic
from newstopic.lazy import callbacks, custom_layers
from newstopic.predictor import ATTENTION, CLASSIFY, EXPLAIN
from newstopic.registry import registered
from newstopic.text import OOV, SequenceVectorizer
from newstopic.word2vec import train_in_a_process

MODEL_FILE = "model.keras"
VECTORIZER_FILE = "vectorizer.json"
HISTORY_FILE = "history.json"
STATE_FILE = "state.json"
BEST_WEIGHTS_FILE = "best_weights.npz"
PREDICT_BATCH = 256
BATCH_SIZES = (128, 64, 32)  # the automatic choices, largest first
MIN_BATCHES_PER_EPOCH = 30
NAIVE_BAYES_BATCH = 1024  # texts whose dense TF-IDF vectors are summed at a time
NAIVE_BAYES_ALPHA = 0.3
INITIAL_LOGIT_STD = 2.0


class TrainedKerasModel:
    """Figures of a model that holds a trained `keras.Model` and its training history."""

    model = None
    history: dict = {}

    @property
    def n_parameters(self) -> int:
        return int(self.model.count_params())

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))


class NeuralTextModel(TrainedKerasModel):
    """A registered architecture (`newstopic.architectures`) with its vectorizer and training
    recipe; `architecture_params` go to the architecture's builder. `batch_size` None chooses
    it from the number of training texts (`auto_batch_size`)."""

    def __init__(self, architecture: str, *, seed: int = 0, max_words: int = 50000,
                 max_len: int = 256, truncate: str = "head", epochs: int = 10,
                 batch_size: int | None = None, learning_rate: float = 3e-3,
                 class_weight: str | None = None, patience: int | None = 2,
                 validation_size: float = 0.1, bucket: bool = True, word2vec: bool = True,
                 **architecture_params):
        self.architecture, self.seed = architecture, seed
        self.training = {"max_words": max_words, "max_len": max_len, "truncate": truncate,
                         "epochs": epochs, "batch_size": batch_size,
                         "learning_rate": learning_rate, "class_weight": class_weight,
                         "patience": patience, "validation_size": validation_size,
                         "bucket": bucket, "word2vec": word2vec}
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
            resume: bool = False) -> "NeuralTextModel":
        """Train; `checkpoint` is a directory written after every epoch, `resume` continues from
        it, and `progress` is a rich Progress to show epochs and batches on."""
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
        check_devices(self.architecture, self.training["bucket"], self.batch_size_)
        store = Checkpoint(checkpoint, self._fingerprint(len(y))) if checkpoint else None
        state = store.load() if store is not None and resume else None
        if state is None:
            keras.utils.set_random_seed(self.seed)
            self.vectorizer = self._fit_vectorizer(texts)
            x = self.vectorizer.transform(texts)
            model = self.build(len(self.classes_))
            if has_layer(model, "tfidf"):
                model.get_layer("tfidf").set_idf(x)
            if has_layer(model, "wide_logits"):
                self._start_wide_from_naive_bayes(model, x, y)
            if self.training["word2vec"]:
                task = progress.add_task(f"{self.architecture}: word2vec on the training texts",
                                         total=None) if progress is not None else None
                self._start_from_word2vec(model, texts)
                if task is not None:
                    progress.remove_task(task)
            model.compile(optimizer=keras.optimizers.Adam(self.training["learning_rate"]),
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
        val_x = self.vectorizer.transform(val_texts)
        if state["epochs_done"] < self.training["epochs"] and not _stopped(
                state, self.training["patience"]):
            self._run_epochs(model, x, y, val_x, val_y, state["epochs_done"], run)
        if state["best_weights"] is not None:
            model.set_weights(state["best_weights"])
        if has_layer(model, "branches"):
            self._weigh_branches(model, val_x, val_y)
        self.model, self.history, self._attention_model = model, state["history"], None
        self.best_epoch = state["best_epoch"]
        if store is not None:
            store.remove()
        return self

    def _fit_vectorizer(self, texts) -> SequenceVectorizer:
        """The vectorizer of these training texts. Vocabularies are kept for the process: the
        neural models of a benchmark share their training texts, and fitting one on 20
        Newsgroups takes 5 s."""
        key = _digest([self.training["max_words"], list(texts)])
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

    def _start_from_word2vec(self, model, texts) -> None:
        """Replace the random embedding rows by word2vec vectors trained on the training texts
        (and nothing else), so that words seen in few labelled documents start near related
        words."""
        try:
            layer = model.get_layer("word_embedding")
        except ValueError:
            raise NewstopicError(f"model '{self.architecture}' has no embedding layer to start "
                                 "from word2vec: drop word2vec") from None
        layer = getattr(layer, "tokens", layer)  # the Transformer's token part
        table = np.array(layer.get_weights()[0])
        vectors = word2vec(self.vectorizer, texts, self.seed)
        found = [i for i, word in enumerate(self.vectorizer.vocabulary)
                 if i > 1 and word in vectors.key_to_index]
        rows = project(vectors[[self.vectorizer.vocabulary[i] for i in found]], table.shape[1])
        # Match the scale of Keras' initial embedding so the first updates stay balanced.
        table[found] = rows / rows.std() * table.std()
        layer.set_weights([table])

    @staticmethod
    def _start_wide_from_naive_bayes(model, x, y) -> None:
        """Start the linear layer named "wide_logits" (bigru-tfidf's bag of words) as
        Complement Naive Bayes on its inputs over the training texts, instead of at random.
        With headers, footers and quotes removed, 20 Newsgroups' later-dated test split
        favours Naive Bayes over discriminative linear models, and so did bigru-tfidf started
        this way (docs/models.md, design notes)."""
        keras = keras_module()
        dense = model.get_layer("wide_logits")
        features = keras.Model(model.input, dense.input)  # the bag's scaled TF-IDF vectors
        n_classes = dense.units
        sums, length, sample = np.zeros((n_classes, dense.input.shape[-1])), 0.0, None
        for start in range(0, len(x), NAIVE_BAYES_BATCH):
            rows = callbacks.predict_batch(features, x[start:start + NAIVE_BAYES_BATCH])
            sums += np.eye(n_classes)[y[start:start + NAIVE_BAYES_BATCH]].T @ rows
            length += np.linalg.norm(rows, axis=1).sum()
            if start == 0:
                sample = rows  # enough texts to set the scores' scale below
        # alpha 0.3 per unit of document length, as tfidf-nb smooths its unit-length vectors
        kernel = custom_layers.complement_naive_bayes(sums, NAIVE_BAYES_ALPHA * length / len(x))
        # Scores spread as the trained bag's did (std 2.2 per text): neither branch
        # drowns the other when training starts.
        kernel *= INITIAL_LOGIT_STD / (sample @ kernel).std(axis=1).mean()
        dense.set_weights([kernel.astype("float32"), np.zeros(n_classes, "float32")])

    @staticmethod
    def _weigh_branches(model, val_x, val_y) -> None:
        """Weigh the branches of an ensemble model (a `BranchEnsemble` named "branches") for
        the least log-loss on the validation texts. Trained side by side, the branches' logits
        differ in scale: bigru-tfidf's reader gave logits twice as large as its bag of words,
        which classified better on its own."""
        keras = keras_module()
        layer = model.get_layer("branches")
        branches = keras.Model(model.input, layer.input)
        logits = np.stack(callbacks.predict_in_batches(branches, val_x, PREDICT_BATCH), axis=1)
        layer.set_branch_weights(custom_layers.fit_branch_weights(logits, val_y))

    def _run_epochs(self, model, x, y, val_x, val_y, initial_epoch: int, run: list) -> None:
        epochs, batch_size = self.training["epochs"], self.batch_size_
        weights = self._class_weight(y)
        if not self.training["bucket"]:
            model.fit(x, y, validation_data=(val_x, val_y), epochs=epochs,
                      initial_epoch=initial_epoch, batch_size=batch_size, shuffle=True,
                      class_weight=weights, callbacks=run, verbose=0)
            return
        sample_weight = None if weights is None else np.array([weights[c] for c in y],
                                                               dtype=np.float32)
        train = callbacks.LengthBuckets(x, y, batch_size, self.seed, epoch=initial_epoch,
                              sample_weight=sample_weight, devices=device_count())
        # Validated by a callback, not by Keras: Keras remakes its validation iterator every
        # epoch, and dropping one over an endless stream stalled each epoch by up to 10 s.
        model.fit(train.dataset(), steps_per_epoch=len(train),
                  epochs=epochs, initial_epoch=initial_epoch, shuffle=False,
                  callbacks=[callbacks.BucketedValidation(val_x, val_y, PREDICT_BATCH), *run],
                  verbose=0)

    def _encode(self, labels) -> np.ndarray:
        labels = np.asarray(labels)
        unknown = sorted(set(labels.tolist()) - set(self.classes_.tolist()))
        if unknown:
            raise NewstopicError(f"validation label '{unknown[0]}' does not occur in the "
                                 "training labels: give every class training examples")
        return np.searchsorted(self.classes_, labels).astype(np.int32)

    def _class_weight(self, y: np.ndarray):
        if self.training["class_weight"] != "balanced":
            return None
        counts = np.bincount(y, minlength=len(self.classes_))
        return {i: len(y) / (len(counts) * c) for i, c in enumerate(counts) if c}

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

    prediction_files = None  # all of them

    @property
    def has_attention(self) -> bool:
        return has_layer(self.model, "attention")

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({CLASSIFY, EXPLAIN} | ({ATTENTION} if self.has_attention else set()))

    def attention_weights(self, texts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(word ids, class probabilities, attention weights) of each text, from one pass; the
        weights have one column per position of the ids."""
        if self._attention_model is None:
            keras = keras_module()

            if not self.has_attention:
                raise NewstopicError(f"model '{self.architecture}' has no attention layer: use "
                                     "lstm-attention or bigru-attention")
            # Built once: a model built per call would be traced anew on every call.
            weights = self.model.get_layer("attention").output[1]
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
        save_keras_model(self.model, directory / MODEL_FILE)
        _write_json(directory / VECTORIZER_FILE, self.vectorizer.to_dict())
        _write_json(directory / HISTORY_FILE, self.history)
        settings = {"architecture": self.architecture, "training": self.training,
                    "architecture_params": self.architecture_params,
                    "batch_size": self.batch_size_, "epochs_run": self.epochs_run,
                    "best_epoch": self.best_epoch,
                    "seconds_per_epoch": self.seconds_per_epoch}
        return settings

    @classmethod
    def load(cls, directory: Path, manifest: dict) -> "NeuralTextModel":
        """The `.keras` file is loaded with safe_mode: no code from it runs."""
        settings = manifest["predictor"]
        engine = cls(settings["architecture"], seed=manifest["params"].get("seed", 0),
                     **settings["training"], **settings["architecture_params"])
        engine.model = load_keras_model(directory / MODEL_FILE)
        engine.vectorizer = SequenceVectorizer.from_dict(read_json(directory / VECTORIZER_FILE))
        engine.history = read_json(directory / HISTORY_FILE)
        engine.best_epoch = settings.get("best_epoch", 0)
        # for saving it again; artifacts from before the automatic size hold it in "training"
        engine.batch_size_ = settings.get("batch_size", settings["training"]["batch_size"])
        engine.classes_ = np.asarray(manifest["labels"])
        return engine


def auto_batch_size(n_texts: int) -> int:
    """The largest of BATCH_SIZES that still cuts `n_texts` into MIN_BATCHES_PER_EPOCH batches
    (else the smallest). 128 took a quarter less time per epoch than 64 on 20 Newsgroups at the
    same accuracy, since a recurrent layer steps through the words one at a time whatever the
    batch; but on the 1,060 texts of --preset seed, 128 leaves 9 updates an epoch, and early
    stopping then ends lstm at 0.87 test accuracy over seeds 0-2 (0.95 with batches of 32)."""
    return next((size for size in BATCH_SIZES if n_texts / size >= MIN_BATCHES_PER_EPOCH),
                BATCH_SIZES[-1])


def check_devices(name: str, bucket: bool, batch_size: int | None = None) -> None:
    """Refuse, before training, what a data-parallel run cannot share out over its devices."""
    devices = device_count()
    if devices > 1 and not bucket:
        raise NewstopicError(f"model '{name}' trains on Keras' own batches, which --devices "
                             "cannot share out: leave it out of --models, or drop --devices")
    if batch_size is not None and batch_size % devices:
        raise NewstopicError(f"batch size {batch_size} does not share out evenly over {devices} "
                             f"devices: give --batch-size a multiple of {devices}")


def save_keras_model(model, path: Path) -> None:
    """Save `model` without its optimizer state: a copy rebuilt from its config is uncompiled
    (clone_model would keep the state, tripling the file)."""
    keras = keras_module()

    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    copy.save(path)


def load_keras_model(path: Path):
    """A `.keras` file written by newstopic, loaded with safe_mode: no code from the file runs."""
    keras = keras_module()
    custom_layers.imported()  # registers the custom layers for deserialisation
    if not zipfile.is_zipfile(path):  # else Keras says "File not found"
        raise ArtifactError(f"{path} is truncated or not a Keras model file: restore it or "
                            "retrain the model")
    return keras.saving.load_model(path, compile=False, safe_mode=True)


class Checkpoint:
    """A training run's state after its last finished epoch, in a directory of its own: the
    model with its optimizer, the best weights, the vectorizer and the counters, written as
    one set (the directory is swapped in whole) and checked as one when read."""

    def __init__(self, directory, fingerprint: dict):
        self.directory, self.fingerprint = Path(directory), fingerprint

    def save(self, vectorizer: SequenceVectorizer):
        def write(model, state: dict) -> None:
            with atomic_directory(self.directory) as tmp:
                model.save(tmp / MODEL_FILE)  # with the optimizer's state, to continue exactly
                files = [MODEL_FILE, VECTORIZER_FILE]
                if state["best_weights"] is not None:
                    with open(tmp / BEST_WEIGHTS_FILE, "wb") as f:
                        np.savez(f, *state["best_weights"])
                    files.append(BEST_WEIGHTS_FILE)
                _write_json(tmp / VECTORIZER_FILE, vectorizer.to_dict())
                kept = {k: v for k, v in state.items() if k != "best_weights"}
                _write_json(tmp / STATE_FILE, {
                    "fingerprint": self.fingerprint, **kept,
                    "files": {name: sha256(tmp / name) for name in files}})

        return write

    def load(self) -> dict | None:
        """The saved state, or None when there is no checkpoint to resume from."""
        keras = keras_module()
        custom_layers.imported()  # registers the custom layers for deserialisation
        if not (self.directory / STATE_FILE).is_file():
            return None
        try:
            state = {**callbacks.EarlyStoppingCheckpoint.initial_state(),
                     **read_json(self.directory / STATE_FILE)}
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"the checkpoint in {self.directory} cannot be read ({exc}): "
                                "drop --resume to start over") from None
        saved = state.pop("fingerprint", None)
        if saved != json.loads(json.dumps(self.fingerprint)):
            raise ArtifactError(f"the checkpoint in {self.directory} is from a run with other "
                                "settings or data: drop --resume to start over")
        files = state.pop("files", None)
        if not isinstance(files, dict) or any(
                not (self.directory / name).is_file()
                or sha256(self.directory / name) != digest for name, digest in files.items()):
            raise ArtifactError(f"the checkpoint in {self.directory} is inconsistent (its files "
                                f"are not the set saved after epoch {state['epochs_done']}): "
                                "drop --resume to start over")
        try:
            state["model"] = keras.saving.load_model(self.directory / MODEL_FILE, safe_mode=True)
            state["vectorizer"] = SequenceVectorizer.from_dict(
                read_json(self.directory / VECTORIZER_FILE))
            if BEST_WEIGHTS_FILE in files:
                with np.load(self.directory / BEST_WEIGHTS_FILE, allow_pickle=False) as arrays:
                    state["best_weights"] = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        except Exception as exc:
            raise ArtifactError(f"the checkpoint in {self.directory} cannot be read "
                                f"({type(exc).__name__}): drop --resume to start over") from None
        return state

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


# seed-lstm's 5,000 words and the others' 50,000 alternate in a benchmark
KEPT_VOCABULARIES = 2
_VOCABULARIES: dict = {}  # (max_words, training texts) key -> vocabulary, oldest first
_WORD2VEC: dict = {}  # the last vectors' key -> their Future, and how long they took


def word2vec(vectorizer: SequenceVectorizer, texts, seed: int):
    """Skip-gram word vectors of the vectorizer's words, trained on `texts`; kept for the
    process, so that the models of one benchmark, which share texts and vocabulary, train them
    once. (Skip-gram, not the faster CBOW: CBOW cost the LSTM much accuracy on small training
    sets; docs/models.md, design notes.)"""
    return start_word2vec(vectorizer, texts, seed).result()


def start_word2vec(vectorizer: SequenceVectorizer, texts, seed: int) -> Future:
    """The Future of `word2vec(vectorizer, texts, seed)`, trained in a background process if
    not started yet: gensim trains on one core, and the benchmark fits the classical models
    on the other meanwhile. A process of its own, because in a thread of this one word2vec and
    scikit-learn's tokenizing took turns at the GIL (154 s and 114 s side by side, against
    92 s and 83 s alone); a daemon thread waits for it, so that an interrupted run does not."""
    key = _digest([vectorizer.vocabulary, list(texts), seed])
    if key not in _WORD2VEC:
        _WORD2VEC.clear()
        job = _WORD2VEC[key] = Future()
        job.seconds = None  # how long the training took, once done
        words = vectorizer.vocabulary
        sentences = [[words[i] for i in ids] for ids in vectorizer.ids(list(texts))]

        def run():
            try:
                started = time.perf_counter()
                vectors = train_in_a_process(sentences, seed)
                job.seconds = time.perf_counter() - started
                job.set_result(vectors)
            except BaseException as exc:  # handed to whoever waits for the vectors
                _WORD2VEC.pop(key, None)  # the next call tries again
                job.set_exception(exc)

        threading.Thread(target=run, name="word2vec", daemon=True).start()
    return _WORD2VEC[key]


def project(rows: np.ndarray, dim: int) -> np.ndarray:
    """`rows` on their `dim` principal directions: one word2vec run serves every embedding
    size up to the word2vec dimensions."""
    if dim > rows.shape[1]:
        raise NewstopicError(f"word2vec vectors have {rows.shape[1]} dimensions, the embedding "
                             f"{dim}: use embed_dim <= {rows.shape[1]} or drop word2vec")
    if dim == rows.shape[1]:
        return rows
    centred = rows - rows.mean(axis=0)
    projected = centred @ np.linalg.svd(centred, full_matrices=False)[2][:dim].T
    # A vocabulary smaller than `dim` has fewer directions; the rest stay zero.
    return np.pad(projected, ((0, 0), (0, dim - projected.shape[1])))


def _digest(data) -> str:
    """A key for a cache of what was computed from `data` (JSON-serialisable)."""
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


def has_layer(model, name: str) -> bool:
    """Whether `model` has a layer of this name (the hooks of bigru-tfidf and attention)."""
    return any(layer.name == name for layer in model.layers)


def _stopped(state: dict, patience: int | None) -> bool:
    return patience is not None and state["wait"] >= patience


def _write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data))


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))
