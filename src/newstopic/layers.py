"""Custom Keras layers, registered for `.keras` files loaded with ``safe_mode=True``.

Written with `keras.layers`/`keras.ops` only, so every Keras backend runs them.
"""

from __future__ import annotations

import keras
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
