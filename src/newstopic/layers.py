"""Custom Keras layers, registered for `.keras` files loaded with ``safe_mode=True``.

Written with `keras.layers`/`keras.ops` only, so every Keras backend runs them.
"""

from __future__ import annotations

from newstopic.backend import require

require()  # before Keras is imported: it reads its backend once

import keras  # noqa: E402
import numpy as np
from keras import layers, ops


@keras.saving.register_keras_serializable(package="newstopic")
class AttentionPooling(layers.Layer):
    """Additive (Bahdanau) attention pooling: a weighted mean of the time steps, with weights
    softmax(v . tanh(W h + b)) over the non-padding steps. Returns (pooled, weights)."""

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True
        self.score_hidden = layers.Dense(units, activation="tanh")
        self.score = layers.Dense(1, use_bias=False)

    def build(self, input_shape):
        self.score_hidden.build(input_shape)
        self.score.build((*input_shape[:-1], self.units))

    def call(self, inputs, mask=None):
        scores = ops.squeeze(self.score(self.score_hidden(inputs)), axis=-1)
        if mask is not None:
            scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)
        pooled = ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)
        return pooled, weights

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1]), (input_shape[0], input_shape[1])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="newstopic")
class MaskedMaxPooling(layers.Layer):
    """The largest value of each feature over the non-padding time steps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            inputs = ops.where(ops.expand_dims(mask, -1), inputs, ops.full_like(inputs, -1e9))
        return ops.max(inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package="newstopic")
class TokenAndPositionEmbedding(layers.Layer):
    """Token embedding plus a learned position embedding; id 0 is padding and is masked."""

    def __init__(self, max_len: int, vocab_size: int, embed_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.max_len, self.vocab_size, self.embed_dim = max_len, vocab_size, embed_dim
        self.tokens = layers.Embedding(vocab_size, embed_dim)
        self.positions = layers.Embedding(max_len, embed_dim)

    def build(self, input_shape):
        self.tokens.build(input_shape)
        self.positions.build((input_shape[-1],))

    def call(self, inputs):
        positions = ops.arange(ops.shape(inputs)[-1])
        return self.tokens(inputs) + self.positions(positions)

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs, 0)

    def get_config(self):
        return {**super().get_config(), "max_len": self.max_len, "vocab_size": self.vocab_size,
                "embed_dim": self.embed_dim}


@keras.saving.register_keras_serializable(package="newstopic")
class TransformerBlock(layers.Layer):
    """Post-norm Transformer encoder block; padding is masked out of the attention."""

    def __init__(self, embed_dim: int, heads: int, ff_dim: int, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.heads, self.ff_dim, self.dropout = embed_dim, heads, ff_dim, dropout
        self.supports_masking = True
        self.attention = layers.MultiHeadAttention(heads, embed_dim // heads)
        self.feed_forward = keras.Sequential([layers.Dense(ff_dim, activation="relu"),
                                              layers.Dense(embed_dim)])
        self.norm1, self.norm2 = layers.LayerNormalization(), layers.LayerNormalization()
        self.drop1, self.drop2 = layers.Dropout(dropout), layers.Dropout(dropout)

    def build(self, input_shape):
        self.attention.build(input_shape, input_shape)
        self.feed_forward.build(input_shape)
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)

    def call(self, inputs, mask=None, training=None):
        attention_mask = None if mask is None else ops.expand_dims(mask, 1)
        attended = self.attention(inputs, inputs, attention_mask=attention_mask)
        x = self.norm1(inputs + self.drop1(attended, training=training))
        return self.norm2(x + self.drop2(self.feed_forward(x), training=training))

    def get_config(self):
        return {**super().get_config(), "embed_dim": self.embed_dim, "heads": self.heads,
                "ff_dim": self.ff_dim, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="newstopic")
class AdditiveAttention(layers.Layer):
    """Additive (Bahdanau) attention of every decoder step over the encoder states:
    weights softmax(v . tanh(W q + U k)) over the source's non-padding tokens (id 0 is padding).
    Called on (queries, keys, source_ids); returns (contexts, weights), the weights shaped
    (batch, target steps, source steps)."""

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.query_projection = layers.Dense(units, use_bias=False)
        self.key_projection = layers.Dense(units)
        self.score = layers.Dense(1, use_bias=False)

    def build(self, queries_shape, keys_shape, source_ids_shape=None):
        self.query_projection.build(queries_shape)
        self.key_projection.build(keys_shape)
        self.score.build((None, None, None, self.units))

    def call(self, queries, keys, source_ids):
        hidden = ops.tanh(ops.expand_dims(self.query_projection(queries), 2)
                          + ops.expand_dims(self.key_projection(keys), 1))
        scores = ops.squeeze(self.score(hidden), axis=-1)
        padding = ops.expand_dims(ops.equal(source_ids, 0), 1)
        weights = ops.softmax(ops.where(padding, ops.full_like(scores, -1e9), scores), axis=-1)
        return ops.matmul(weights, keys), weights

    def compute_mask(self, *args, **kwargs):
        return None

    def compute_output_shape(self, queries_shape, keys_shape, source_ids_shape=None):
        return ((*queries_shape[:-1], keys_shape[-1]),
                (queries_shape[0], queries_shape[1], keys_shape[1]))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="newstopic")
class LabelPathDecoder(layers.Layer):
    """Decodes a label one path segment at a time (`comp`, `sys`, `mac`, `hardware`, end) from
    an encoding of the text, constrained to the given paths: each path's probability is the
    product of its step probabilities (teacher-forced GRU, softmax over the segments), and the
    output normalises them over the paths, i.e. class probabilities in the order of `paths`.

    `paths` holds each label's segment ids followed by the end id 1 (0 pads; 1 also starts)."""

    def __init__(self, paths: list[list[int]], n_segments: int, embed_dim: int = 32,
                 units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.paths, self.n_segments = [list(map(int, p)) for p in paths], n_segments
        self.embed_dim, self.units = embed_dim, units
        self.bridge = layers.Dense(units, activation="tanh")
        self.embedding = layers.Embedding(n_segments, embed_dim)
        self.gru = layers.GRU(units, return_sequences=True)
        self.output_layer = layers.Dense(n_segments)

    def build(self, input_shape):
        steps = len(self.paths[0])
        self.bridge.build(input_shape)
        self.embedding.build((None, steps))
        self.gru.build((None, steps, self.embed_dim))
        self.output_layer.build((None, steps, self.units))

    def call(self, encoded):
        targets = ops.convert_to_tensor(self.paths, dtype="int32")  # (paths, steps)
        n_paths = len(self.paths)
        previous = ops.concatenate([ops.ones((n_paths, 1), "int32"), targets[:, :-1]], axis=1)
        state = ops.repeat(self.bridge(encoded), n_paths, axis=0)  # (batch * paths, units)
        batch = ops.shape(encoded)[0]
        inputs = ops.tile(self.embedding(previous), (batch, 1, 1))
        log_probs = ops.log_softmax(self.output_layer(self.gru(inputs, initial_state=state)))
        chosen = ops.take_along_axis(log_probs, ops.expand_dims(ops.tile(targets, (batch, 1)), -1),
                                     axis=-1)
        mask = ops.cast(ops.tile(ops.not_equal(targets, 0), (batch, 1)), log_probs.dtype)
        path_scores = ops.sum(ops.squeeze(chosen, -1) * mask, axis=-1)
        return ops.softmax(ops.reshape(path_scores, (-1, n_paths)), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.paths))

    @classmethod
    def for_labels(cls, labels, **kwargs) -> "LabelPathDecoder":
        """The decoder of these labels' dot-separated paths (a label without dots is a path of
        one segment), in the order given."""
        paths = [str(label).split(".") for label in labels]
        segments = {s: i for i, s in enumerate(sorted({s for p in paths for s in p}), 2)}
        steps = max(map(len, paths)) + 1
        ids = [[segments[s] for s in p] + [1] + [0] * (steps - len(p) - 1) for p in paths]
        return cls(ids, len(segments) + 2, **kwargs)

    def get_config(self):
        return {**super().get_config(), "paths": self.paths, "n_segments": self.n_segments,
                "embed_dim": self.embed_dim, "units": self.units}


@keras.saving.register_keras_serializable(package="newstopic")
class PointerGenerator(layers.Layer):
    """The pointer-generator's next-word distribution (See et al., 2017):
    p_gen * vocabulary probabilities + (1 - p_gen) * copy probabilities, the copy probabilities
    being the attention weights over the source tokens summed onto each token's target id.

    `source_to_target` (a non-trainable weight, set with `set_table` once both vocabularies are
    known, and saved with the model) maps source ids to target ids, 0 for a word the target
    vocabulary lacks and for padding and unknown words: those are never copied, and the
    attention mass on them goes to the vocabulary probabilities, so the output stays a
    distribution. Called on (vocabulary probabilities, attention weights, p_gen, source ids)."""

    def __init__(self, source_vocab: int, target_vocab: int, **kwargs):
        super().__init__(**kwargs)
        self.source_vocab, self.target_vocab = source_vocab, target_vocab

    def build(self, probabilities_shape, weights_shape, p_gen_shape, source_ids_shape):
        self.source_to_target = self.add_weight(shape=(self.source_vocab,), dtype="int32",
                                                initializer="zeros", trainable=False,
                                                name="source_to_target")

    def set_table(self, target_ids) -> None:
        self.source_to_target.assign(ops.convert_to_tensor(target_ids, dtype="int32"))

    def call(self, probabilities, weights, p_gen, source_ids):
        target_ids = ops.take(self.source_to_target, source_ids, axis=0)  # (batch, source)
        copyable = ops.cast(ops.expand_dims(ops.greater(target_ids, 0), 1), weights.dtype)
        weights = weights * copyable  # (batch, target steps, source)
        copy = ops.matmul(weights, ops.one_hot(target_ids, self.target_vocab,
                                               dtype=weights.dtype))
        copied = (1 - p_gen) * ops.sum(weights, axis=-1, keepdims=True)
        return (1 - copied) * probabilities + (1 - p_gen) * copy

    def compute_mask(self, *args, **kwargs):
        return None

    def compute_output_shape(self, probabilities_shape, weights_shape, p_gen_shape,
                             source_ids_shape):
        return probabilities_shape

    def get_config(self):
        return {**super().get_config(), "source_vocab": self.source_vocab,
                "target_vocab": self.target_vocab}


@keras.saving.register_keras_serializable(package="newstopic")
class TfidfBag(layers.Layer):
    """Word ids -> the text's TF-IDF vector, as scikit-learn computes it with sublinear tf:
    (1 + log count) * idf per vocabulary word, L2-normalised. The idf is a non-trainable
    weight, set from the training texts (`set_idf`) and saved with the model; padding and
    out-of-vocabulary ids have idf 0, so they count for nothing."""

    def __init__(self, vocab_size: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size

    def build(self, input_shape):
        self.idf = self.add_weight(shape=(self.vocab_size,), initializer="ones",
                                   trainable=False, name="idf")

    def set_idf(self, ids) -> None:
        """Smoothed idf, log((1 + n) / (1 + df)) + 1, of the words in `ids` (one row of word
        ids per training text, 0-padded)."""
        seen = np.zeros(self.vocab_size)
        for row in ids:
            seen[np.unique(row)] += 1
        idf = np.log((1 + len(ids)) / (1 + seen)) + 1
        idf[:2] = 0  # padding and out-of-vocabulary words
        self.idf.assign(idf.astype("float32"))

    def call(self, inputs):
        # Counted by a scatter-add: CategoryEncoding counts through a one-hot tensor of
        # (texts, words, vocabulary) on JAX, tens of gigabytes for a batch of long texts.
        batch, steps = ops.shape(inputs)[0], ops.shape(inputs)[1]
        rows = ops.repeat(ops.arange(batch), steps)
        indices = ops.stack([rows, ops.reshape(ops.cast(inputs, "int32"), (-1,))], axis=1)
        counts = ops.scatter(indices, ops.ones((batch * steps,), "float32"),
                             (batch, self.vocab_size))
        sublinear = ops.where(counts > 0, 1 + ops.log(ops.maximum(counts, 1)), 0)
        return ops.normalize(sublinear * self.idf, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.vocab_size)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size}


@keras.saving.register_keras_serializable(package="newstopic")
class WideLogits(layers.Dense):
    """The linear class scores of a bag of words: a Dense layer that training starts as
    Naive Bayes (`newstopic.initialisers.start_wide_from_naive_bayes`)."""


@keras.saving.register_keras_serializable(package="newstopic")
class BranchEnsemble(layers.Layer):
    """A weighted sum of several branches' class logits, an ensemble inside one model.

    In training each branch is left out of a text's mean with probability `rate` (never all
    of them), so that every branch also learns to classify alone, as the members of an
    ensemble do, instead of leaning on the others. The last `fixed` branches, which do not
    train, are left out of training altogether. For prediction the branches are weighed
    by `branch_weights`, a non-trainable weight (the plain mean of the trained branches until
    `set_branch_weights`), chosen on held-out texts after training by `fit_branch_weights`."""

    def __init__(self, rate: float = 0.5, seed: int | None = None, fixed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"BranchEnsemble: rate must be in [0, 1), not {rate!r}")
        if isinstance(fixed, bool) or not isinstance(fixed, int) or fixed < 0:
            raise ValueError(f"BranchEnsemble: fixed must be a whole number >= 0, not {fixed!r}")
        self.rate, self.seed, self.fixed = rate, seed, fixed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shapes):
        trained = len(input_shapes) - self.fixed
        if trained < 1:
            raise ValueError(f"BranchEnsemble: {self.fixed} fixed branches leave none of the "
                             f"{len(input_shapes)} to train: fix fewer")
        start = np.r_[np.full(trained, 1 / trained), np.zeros(self.fixed)]
        self.branch_weights = self.add_weight(shape=(len(start),), trainable=False,
                                              name="branch_weights",
                                              initializer=keras.initializers.Constant(start))

    def set_branch_weights(self, weights) -> None:
        self.branch_weights.assign(np.asarray(weights, dtype="float32"))

    def call(self, branches, training=None):
        if not training:
            stacked = ops.stack(branches, axis=1)  # (batch, branches, classes)
            return ops.einsum("nbc,b->nc", stacked, ops.cast(self.branch_weights, stacked.dtype))
        stacked = ops.stack(branches[:len(branches) - self.fixed], axis=1)
        keep = keras.random.uniform(ops.shape(stacked)[:2], seed=self.seed_generator) >= self.rate
        keep = ops.where(ops.any(keep, axis=1, keepdims=True), keep, True)
        keep = ops.expand_dims(ops.cast(keep, stacked.dtype), -1)
        return ops.sum(stacked * keep, axis=1) / ops.sum(keep, axis=1)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "fixed": self.fixed}


def fit_branch_weights(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Non-negative weights w of the branches' class logits (texts, branches, classes) that
    minimise the log-loss of softmax(sum_b w_b logits_b) on integer `labels`: a convex problem
    (stacking with one weight per branch, which also sets the temperature)."""
    from scipy.optimize import minimize

    rows = np.arange(len(labels))
    onehot = np.eye(logits.shape[2])[labels]

    def log_loss(weights):
        log_p = weighted_log_proba(logits, weights)
        gradient = np.einsum("nc,nbc->b", np.exp(log_p) - onehot, logits) / len(labels)
        return -log_p[rows, labels].mean(), gradient

    n = logits.shape[1]
    return minimize(log_loss, np.full(n, 1 / n), jac=True, method="L-BFGS-B",
                    bounds=[(0, None)] * n).x


def cross_fitted_probabilities(logits: np.ndarray, labels: np.ndarray, folds: int,
                               seed: int) -> np.ndarray:
    """Class probabilities of the texts of `logits` (texts, branches, classes), each under the
    branch weights fitted (`fit_branch_weights`) on the other `folds` - 1 folds: held-out
    figures for texts that the final weights are fitted on."""
    fold = np.random.default_rng(seed).permutation(len(labels)) % folds
    probabilities = np.empty((len(labels), logits.shape[2]))
    for k in range(folds):
        held = fold == k
        weights = fit_branch_weights(logits[~held], labels[~held])
        probabilities[held] = np.exp(weighted_log_proba(logits[held], weights))
    return probabilities


def weighted_log_proba(logits: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """log softmax(sum_b w_b logits_b) of branch logits (texts, branches, classes)."""
    z = np.einsum("nbc,b->nc", logits, weights)
    z -= z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def complement_naive_bayes(class_sums: np.ndarray, alpha: float) -> np.ndarray:
    """The kernel (features, classes) of a linear layer that scores the classes as Complement
    Naive Bayes does (Rennie et al., 2003) from non-negative features such as TF-IDF, given
    each class's sum of feature vectors (classes, features): column c holds -log P(feature |
    a class other than c), centred over the classes (which changes no softmax), with the sums
    smoothed by `alpha`."""
    complement = class_sums.sum(axis=0) - class_sums + alpha
    kernel = -np.log(complement / complement.sum(axis=1, keepdims=True)).T
    return kernel - kernel.mean(axis=1, keepdims=True)
