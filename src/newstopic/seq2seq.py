"""Subject-line generation: encoder-decoder models, their decoding and two baselines.

A subject model maps a message body (source word ids) to its subject (target word ids). Training
is teacher-forced: the decoder reads the true subject shifted by one (``<s> w1 w2 ...``) and
learns to emit the next word (``w1 w2 ... </s>``). At inference an encoder model and a one-step
decoder model, both built from the trained layers, run in a NumPy loop, batched across inputs:
greedy decoding or beam search with a length penalty. Keras is imported on first use.
"""

from __future__ import annotations

import inspect
from collections import Counter
from pathlib import Path

import numpy as np

from newstopic.data import SUBJECT_MAX_TOKENS, subject_tokens
from newstopic.errors import NewstopicError
from newstopic.lazy import callbacks, custom_layers, keras, layers
from newstopic.neural import TrainedKerasModel
from newstopic.checkpoint import read_json, write_json
from newstopic.predictor import SUMMARIZE
from newstopic.registry import SUBJECT_FAMILY, register, registered
from newstopic.text import SequenceVectorizer

PAD, OOV, START, END = 0, 1, 2, 3
RESERVED = ["", "[UNK]", "<s>", "</s>"]  # target ids 0-3
SOURCE_FILE = "source_vocabulary.json"
TARGET_FILE = "target_vocabulary.json"
DECODE_BATCH = 256  # hypotheses decoded together: inputs x beam width


def generator(name: str, description: str, **training_defaults):
    """Register an encoder-decoder builder as subject model `name`."""
    return register(name, SUBJECT_FAMILY, description, SubjectModel, shared=SubjectModel,
                    defaults=training_defaults)


def check_beam(beam) -> None:
    """Refuse, in one line, a beam width below 1 or wider than one decoding batch (its scores
    take width x target vocabulary numbers per text and step)."""
    if isinstance(beam, bool) or not isinstance(beam, int) or not 1 <= beam <= DECODE_BATCH:
        raise NewstopicError(f"beam width {beam!r} is not allowed: the beam (--beam) must be a "
                             f"whole number from 1 to {DECODE_BATCH} (1 decodes greedily)")


# --- the model --------------------------------------------------------------------------------


class SubjectModel(TrainedKerasModel):
    """A registered encoder-decoder with its source vocabulary (a `SequenceVectorizer`), its
    target vocabulary and training recipe; `architecture_params` go to the builder."""

    vectorizer_file = SOURCE_FILE

    def __init__(self, architecture: str, *, seed: int = 0, max_words: int = 20000,
                 max_len: int = 100, target_words: int = 6000,
                 max_target: int = SUBJECT_MAX_TOKENS, epochs: int = 5, batch_size: int = 32,
                 learning_rate: float = 3e-3, patience: int | None = 1,
                 length_penalty: float = 0.6, **architecture_params):
        self.architecture, self.seed = architecture, seed
        self.training = {"max_words": max_words, "max_len": max_len,
                         "target_words": target_words, "max_target": max_target,
                         "epochs": epochs, "batch_size": batch_size,
                         "learning_rate": learning_rate, "patience": patience,
                         "length_penalty": length_penalty}
        self.architecture_params = architecture_params
        self.model = self.vectorizer = self.target_vocabulary = None
        self.history: dict = {}
        self.best_epoch = 0
        self._decoders = None

    capabilities = frozenset({SUMMARIZE})
    prediction_files = None  # all of them
    classes_ = np.array([])  # it generates text; it has no classes

    def predict_proba(self, texts) -> np.ndarray:
        raise NewstopicError(f"model '{self.architecture}' generates subject lines, it does "
                             "not classify: use summarize (`newstopic summarize`)")

    # --- training ---------------------------------------------------------------------------

    def fit(self, bodies, subjects, validation_data, progress=None) -> "SubjectModel":
        """Train on bodies and their subjects (space-separated tokens); early stopping watches
        the loss on `validation_data` = (bodies, subjects) and restores the best epoch."""
        keras.utils.set_random_seed(self.seed)
        self.vectorizer = SequenceVectorizer(self.training["max_words"],
                                             self.training["max_len"]).fit(list(bodies))
        counts = Counter(token for s in subjects for token in s.split())
        kept = self.training["target_words"] - len(RESERVED)
        self.target_vocabulary = RESERVED + [w for w, _ in counts.most_common(kept)]
        self.model = self._build()
        if self._layer("copy") is not None:
            self._layer("copy").set_table(self._source_to_target())
        self.model.compile(optimizer=keras.optimizers.Adam(self.training["learning_rate"],
                                                           clipnorm=1.0),
                           loss="sparse_categorical_crossentropy", weighted_metrics=["accuracy"])
        state = callbacks.EarlyStoppingCheckpoint.initial_state()
        # Token accuracy under teacher forcing says little of the generated subjects: loss only.
        run = [callbacks.EarlyStoppingCheckpoint(self.training["patience"], state,
                                                 watch_accuracy=False)]
        if progress is not None:
            steps = -(-len(bodies) // self.training["batch_size"])
            run.append(callbacks.RichProgress(progress, self.training["epochs"], steps,
                                          self.architecture))
        x, y, weights = self._teacher_forcing(bodies, subjects)
        self.model.fit(x, y, sample_weight=weights,
                       validation_data=self._teacher_forcing(*validation_data),
                       epochs=self.training["epochs"], batch_size=self.training["batch_size"],
                       shuffle=True, callbacks=run, verbose=0)
        if state["best_weights"] is not None:
            self.model.set_weights(state["best_weights"])
        self.history, self.best_epoch = state["history"], state["best_epoch"]
        return self

    def _build(self):
        build = registered(self.architecture).build
        context = {"source_vocab": self.vectorizer.vocab_size,
                   "target_vocab": len(self.target_vocabulary)}
        wanted = inspect.signature(build).parameters
        return build(**{k: v for k, v in context.items() if k in wanted},
                     **self.architecture_params)

    def _source_to_target(self) -> np.ndarray:
        """Each source id's target id, 0 where the target vocabulary lacks the word (and for
        padding and unknown words): the table of the `copy` layer."""
        index = {w: i for i, w in enumerate(self.target_vocabulary) if i >= len(RESERVED)}
        return np.array([index.get(w, PAD) for w in self.vectorizer.vocabulary], dtype=np.int32)

    def _teacher_forcing(self, bodies, subjects):
        """({source, target}: decoder input <s> w1 .. wn), decoder output w1 .. wn </s>, and
        weights that leave the padding out of the loss."""
        index = {w: i for i, w in enumerate(self.target_vocabulary)}
        steps = self.training["max_target"] + 1
        target_in = np.zeros((len(subjects), steps), dtype=np.int32)
        target_out = np.zeros_like(target_in)
        for row, subject in enumerate(subjects):
            ids = [index.get(w, OOV) for w in subject.split()[:self.training["max_target"]]]
            target_in[row, :len(ids) + 1] = [START, *ids]
            target_out[row, :len(ids) + 1] = [*ids, END]
        source = self.vectorizer.transform(list(bodies))
        return ({"source": source, "target": target_in}, target_out,
                (target_out != PAD).astype(np.float32))

    # --- generation -------------------------------------------------------------------------

    def summarize(self, texts, beam: int = 1) -> list[str]:
        """One generated subject per text (lowercased tokens joined by spaces)."""
        return [" ".join(tokens) for tokens in self.generate(texts, beam)]

    def generate(self, texts, beam: int = 1) -> list[list[str]]:
        """Each text's generated subject tokens: greedy with `beam` 1, else beam search."""
        check_beam(beam)
        texts = list(texts)
        if not texts:
            return []
        x = self.vectorizer.transform(texts)
        # Padding is masked, so sources of similar length decode together, cut to their longest.
        buckets = callbacks.LengthBuckets(x, None, DECODE_BATCH // beam, self.seed,
                                          shuffle=False)
        result: list = [None] * len(texts)
        for rows in buckets.batches:
            source = buckets.batch(rows)
            ids = self._greedy(source)[0] if beam == 1 else self._beam(source, beam)
            for row, sequence in zip(rows, ids):
                result[row] = [self.target_vocabulary[i] for i in sequence]
        return result

    def alignment(self, text: str) -> tuple[list[str], list[str], np.ndarray]:
        """(generated tokens, source tokens, attention weights shaped generated x source) of
        greedy decoding, the end token included; for models with attention."""
        if self._layer("attention") is None:
            raise NewstopicError(f"model '{self.architecture}' has no attention: use "
                                 "seq2seq-attention")
        source = self.vectorizer.transform([text])
        length = int(np.count_nonzero(source))
        (ids,), weights = self._greedy(source[:, :length], keep_weights=True)
        generated = [self.target_vocabulary[i] for i in ids] + [RESERVED[END]]
        matrix = weights[0, :len(generated), :length]
        return generated, self.vectorizer.tokens(source[0, :length]), matrix

    def _decoding_models(self):
        """(encoder, one-step decoder), built once from the trained layers."""
        if self._decoders is None:
            get = self._layer
            source = keras.Input((None,), dtype="int32")
            memory, state = encode(get, source)
            encoder = keras.Model(source, state if memory is None else [state, memory])
            token = keras.Input((1,), dtype="int32")
            state_in = keras.Input((state.shape[-1],))
            memory_in = None if memory is None else keras.Input((None, memory.shape[-1]))
            probabilities, state_out, weights = decode(get, token, state_in, memory_in, source)
            inputs = [token, state_in] + ([] if memory is None else [memory_in, source])
            outputs = [probabilities, state_out] + ([] if weights is None else [weights])
            self._decoders = encoder, keras.Model(inputs, outputs)
        return self._decoders

    def _layer(self, name: str):
        try:
            return self.model.get_layer(name)
        except ValueError:
            return None

    def _start(self, source):
        """Encode a batch: the decoder's state and the extra inputs of every step."""
        encoder, step = self._decoding_models()
        encoded = encoder.predict_on_batch(source)
        if not isinstance(encoded, (list, tuple)):
            return np.asarray(encoded), [], step
        state, memory = encoded
        return np.asarray(state), [np.asarray(memory), source], step

    def _log_probabilities(self, probabilities, first: bool) -> np.ndarray:
        """Log-probabilities of the next word; padding, unknown and start are never emitted,
        nor the end first (every training subject has a word)."""
        log = np.log(np.maximum(np.asarray(probabilities)[:, 0, :], 1e-30))
        log[:, [PAD, OOV, START, *([END] if first else [])]] = -np.inf
        return log

    def _greedy(self, source, keep_weights: bool = False):
        """(token ids of each source's subject, attention weights per step or None)."""
        state, extra, step = self._start(source)
        tokens = np.full((len(source), 1), START, dtype=np.int32)
        chosen, weights, done = [], [], np.zeros(len(source), dtype=bool)
        for t in range(self.training["max_target"]):
            outputs = step.predict_on_batch([tokens, state, *extra])
            state = np.asarray(outputs[1])
            if keep_weights and len(outputs) > 2:
                weights.append(np.asarray(outputs[2])[:, 0, :])
            log = self._log_probabilities(outputs[0], first=t == 0)
            tokens = log.argmax(axis=1).astype(np.int32)[:, None]
            chosen.append(np.where(done, END, tokens[:, 0]))
            done |= tokens[:, 0] == END
            if done.all():
                break
        ids = [_until_end(row) for row in np.stack(chosen, axis=1)]
        return ids, np.stack(weights, axis=1) if weights else None

    def _beam(self, source, width: int) -> list[list[int]]:
        """Beam search: `width` hypotheses per source, finished ones kept as they are; the best
        by log-probability / ((5 + length) / 6) ** length_penalty (Wu et al., 2016)."""
        n = len(source)
        state, extra, step = self._start(np.repeat(source, width, axis=0))
        scores = np.full((n, width), -np.inf)
        scores[:, 0] = 0.0  # one live hypothesis to start with, the others empty
        sequences = np.zeros((n, width, 0), dtype=np.int64)
        lengths = np.zeros((n, width))
        done = np.zeros((n, width), dtype=bool)
        tokens = np.full((n * width, 1), START, dtype=np.int32)
        vocabulary = len(self.target_vocabulary)
        finished = np.full(vocabulary, -np.inf)
        finished[END] = 0.0  # a finished hypothesis continues with END at no cost
        for t in range(self.training["max_target"]):
            outputs = step.predict_on_batch([tokens, state, *extra])
            log = self._log_probabilities(outputs[0], t == 0).reshape(n, width, vocabulary)
            log = np.where(done[..., None], finished, log)
            total = (scores[..., None] + log).reshape(n, width * vocabulary)
            best = _top(total, width)
            parent, token = best // vocabulary, best % vocabulary
            scores = np.take_along_axis(total, best, axis=1)
            rows = (np.arange(n)[:, None] * width + parent).ravel()
            state = np.asarray(outputs[1])[rows]
            sequences = np.concatenate([np.take_along_axis(sequences, parent[..., None], axis=1),
                                        token[..., None]], axis=2)
            was_done = np.take_along_axis(done, parent, axis=1)
            lengths = np.take_along_axis(lengths, parent, axis=1) + ~was_done
            done = was_done | (token == END)
            tokens = token.reshape(-1, 1).astype(np.int32)
            if done.all():
                break
        penalty = ((5 + lengths) / 6) ** self.training["length_penalty"]
        best = (scores / penalty).argmax(axis=1)
        return [_until_end(sequences[i, b]) for i, b in enumerate(best)]

    # --- files ------------------------------------------------------------------------------

    def save(self, directory: Path) -> dict:
        write_json(directory / TARGET_FILE, self.target_vocabulary)
        return self._save_keras(directory)

    @classmethod
    def load(cls, directory: Path, manifest: dict) -> "SubjectModel":
        model = cls._restore(directory, manifest)
        model.target_vocabulary = read_json(directory / TARGET_FILE)
        return model


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k largest scores, best first; ties go to the lower index,
    as argmax does, so that a beam of 1 is greedy decoding."""
    candidates = np.sort(np.argpartition(-scores, k - 1, axis=1)[:, :k], axis=1)
    order = np.argsort(-np.take_along_axis(scores, candidates, axis=1), axis=1, kind="stable")
    return np.take_along_axis(candidates, order, axis=1)


def _until_end(ids) -> list[int]:
    ids = list(map(int, ids))
    return ids[:ids.index(END)] if END in ids else ids


# --- architectures ----------------------------------------------------------------------------


@generator("seq2seq", "GRU encoder -> GRU decoder started from its final state, no attention")
def seq2seq(source_vocab, target_vocab, embed_dim=96, units=128):
    return encoder_decoder(
        "seq2seq", layers.Embedding(source_vocab, embed_dim, mask_zero=True,
                                    name="source_embedding"),
        layers.GRU(units, return_state=True, name="encoder"),
        layers.Embedding(target_vocab, embed_dim, mask_zero=True, name="target_embedding"),
        layers.GRU(units, return_sequences=True, return_state=True, name="decoder"),
        layers.Dense(target_vocab, activation="softmax", name="output"))


@generator("seq2seq-attention", "Bidirectional GRU encoder -> GRU decoder with additive "
           "attention over the encoder states, copying source words (pointer-generator)")
def seq2seq_attention(source_vocab, target_vocab, embed_dim=96, units=128, attention_units=64,
                      copy=True, dropout=0.0):
    parts = [layers.Embedding(source_vocab, embed_dim, mask_zero=True, name="source_embedding"),
             layers.Bidirectional(layers.GRU(units, return_sequences=True, return_state=True),
                                  name="encoder"),
             layers.Embedding(target_vocab, embed_dim, mask_zero=True, name="target_embedding"),
             layers.GRU(units, return_sequences=True, return_state=True, name="decoder"),
             layers.Dense(target_vocab, activation="softmax", name="output"),
             layers.Dense(units, activation="tanh", name="bridge"),
             custom_layers.AdditiveAttention(attention_units, name="attention")]
    if copy:
        parts += [layers.Dense(1, activation="sigmoid", name="generation"),
                  custom_layers.PointerGenerator(source_vocab, target_vocab, name="copy")]
    if dropout:
        parts.append(layers.Dropout(dropout, name="dropout"))
    return encoder_decoder("seq2seq_attention", *parts)


def encoder_decoder(name, *parts):
    """The teacher-forced training model ((source, target) -> next-word probabilities) of these
    named layers; `encode` and `decode` wire them, here and in the decoding models."""
    get = {layer.name: layer for layer in parts}.get
    source = keras.Input((None,), dtype="int32", name="source")
    target = keras.Input((None,), dtype="int32", name="target")
    memory, state = encode(get, source)
    probabilities, _, _ = decode(get, target, state, memory, source)
    return keras.Model([source, target], probabilities, name=name)


def encode(get, source):
    """(encoder states or None, the decoder's initial state). Without a `bridge` the encoder is
    unidirectional and only its final state reaches the decoder."""
    x = dropped(get, get("source_embedding")(source))
    if get("bridge") is None:
        _, state = get("encoder")(x)
        return None, state
    memory, forward, backward = get("encoder")(x)
    return memory, get("bridge")(layers.Concatenate()([forward, backward]))


def decode(get, target, state, memory, source):
    """(next-word probabilities, final decoder state, attention weights or None). With a `copy`
    layer the probabilities mix generating from the vocabulary and copying a source word."""
    embedded = get("target_embedding")(target)
    decoded, state = get("decoder")(embedded, initial_state=state)
    if memory is None:
        return get("output")(decoded), state, None
    context, weights = get("attention")(decoded, memory, source)
    # The softmax reads [state; context] directly: a tanh layer between them (Luong's attentional
    # hidden layer) saturated on 20 Newsgroups and stalled training at the unigram loss.
    probabilities = get("output")(dropped(get, layers.Concatenate()([decoded, context])))
    if get("copy") is None:
        return probabilities, state, weights
    # p_gen, the probability of generating rather than copying, from [state; context; input].
    p_gen = get("generation")(layers.Concatenate()([decoded, context, embedded]))
    return get("copy")(probabilities, weights, p_gen, source), state, weights


def dropped(get, x):
    """`x` through the model's `dropout` layer, if it has one (active in training only)."""
    return x if get("dropout") is None else get("dropout")(x)


# --- baselines --------------------------------------------------------------------------------


class LeadBaseline:
    """The first N words of the body, N the mean subject length in training."""

    def fit(self, bodies, subjects, validation_data=None, progress=None) -> "LeadBaseline":
        self.n_words = max(1, round(float(np.mean([len(s.split()) for s in subjects]))))
        return self

    def summarize(self, texts, beam: int = 1) -> list[str]:
        return [" ".join(subject_tokens(text, self.n_words)) for text in texts]


class RetrievalBaseline:
    """The subject of the most TF-IDF-similar training message (cosine similarity)."""

    def fit(self, bodies, subjects, validation_data=None, progress=None) -> "RetrievalBaseline":
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, max_df=0.5,
                                          dtype=np.float32)
        self.matrix = self.vectorizer.fit_transform(list(bodies))
        self.subjects = list(subjects)
        return self

    def summarize(self, texts, beam: int = 1) -> list[str]:
        found = []
        queries = self.vectorizer.transform(list(texts))
        for start in range(0, queries.shape[0], 512):  # a block of similarities at a time
            similarity = queries[start:start + 512] @ self.matrix.T
            found.extend(np.asarray(similarity.argmax(axis=1)).ravel().tolist())
        return [self.subjects[i] for i in found]


@register("lead", SUBJECT_FAMILY, "Baseline: the first N words of the body (N = the mean "
          "subject length in training)", None)
def lead(seed=0):
    return LeadBaseline()


@register("retrieval", SUBJECT_FAMILY, "Baseline: the subject of the most TF-IDF-similar "
          "training message", None)
def retrieval(seed=0):
    return RetrievalBaseline()

