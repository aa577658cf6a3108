"""Sequence classifiers, one short builder each, registered by name.

Each builder takes the number of classes and the vocabulary size (the Transformer also the
sequence length) plus its own hyperparameters, and returns an uncompiled `keras.Model` mapping
padded token ids (0 = padding, 1 = out of vocabulary) to class probabilities. Keras is imported
on first use, so that listing the models costs nothing.
"""

from __future__ import annotations

import inspect

from newstopic.lazy import custom_layers, keras, layers
from newstopic.neural import NeuralTextModel
from newstopic.registry import register


# What `newstopic tune` explores, for each model below that has the parameter.
SEARCH = {"learning_rate": (3e-4, 1e-2), "embed_dim": (32, 256), "units": (32, 256),
          "decoder_units": (32, 256), "ff_dim": (64, 512), "blocks": (1, 3),
          "dropout": (0.0, 0.6), "embed_dropout": (0.0, 0.6), "bag_dropout": (0.0, 0.7),
          "branch_dropout": (0.0, 0.7), "bag_scale": (1.0, 50.0)}


def architecture(name: str, description: str, tunable: bool = True, hybrid: bool = False,
                 **training_defaults):
    """Register a builder as neural model `name`; `training_defaults` override the training
    settings of `NeuralTextModel` (sequence length, epochs, ...) for this model; `hybrid`: it
    also reads a TF-IDF bag of words."""

    def add(build):
        own = {*inspect.signature(build).parameters, "learning_rate"}
        search = {k: bounds for k, bounds in SEARCH.items() if k in own} if tunable else {}
        return register(name, "neural", description, NeuralTextModel, shared=NeuralTextModel,
                        defaults=training_defaults, search=search, hybrid=hybrid)(build)

    return add


def read_words(inputs, cell, vocab_size, embed_dim, units, dropout, pooling,
               bidirectional=False, embed_dropout=0.0):
    """Embedding (masked) -> recurrent layer -> pooling over time -> dropout. `pooling` is
    "last" (the final state), "max" (the largest value of each unit over the non-padding
    steps) or "attention" (additive attention, whose weights the model can show)."""
    x = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="word_embedding")(inputs)
    # Dropping whole word vectors regularises the large embedding table, the part that overfits.
    x = layers.SpatialDropout1D(embed_dropout)(x)
    rnn = cell(units, return_sequences=pooling != "last")
    x = (layers.Bidirectional(rnn) if bidirectional else rnn)(x)
    if pooling == "max":
        x = custom_layers.MaskedMaxPooling()(x)
    elif pooling == "attention":
        x, _ = custom_layers.AttentionPooling(units, name="attention")(x)
    return layers.Dropout(dropout)(x)


def recurrent(name, cell, n_classes, vocab_size, embed_dim, units, dropout, pooling,
              bidirectional=False, embed_dropout=0.0):
    """A recurrent reader of the words (`read_words`) -> softmax."""
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = read_words(inputs, cell, vocab_size, embed_dim, units, dropout, pooling, bidirectional,
                   embed_dropout)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


@architecture("rnn", "Embedding + SimpleRNN, max-pooled over time", ema_momentum=None)
def rnn(n_classes, vocab_size, embed_dim=128, units=64, dropout=0.3,
        embed_dropout=0.3, pooling="max"):
    return recurrent("rnn", layers.SimpleRNN, n_classes, vocab_size, embed_dim, units, dropout,
                     pooling, embed_dropout=embed_dropout)


@architecture("lstm", "Embedding + LSTM, max-pooled over time")
def lstm(n_classes, vocab_size, embed_dim=128, units=64, dropout=0.3,
         embed_dropout=0.3, pooling="max"):
    return recurrent("lstm", layers.LSTM, n_classes, vocab_size, embed_dim, units, dropout,
                     pooling, embed_dropout=embed_dropout)


@architecture("gru", "Embedding + GRU, max-pooled over time")
def gru(n_classes, vocab_size, embed_dim=128, units=64, dropout=0.3,
        embed_dropout=0.3, pooling="max"):
    return recurrent("gru", layers.GRU, n_classes, vocab_size, embed_dim, units, dropout,
                     pooling, embed_dropout=embed_dropout)


@architecture("bilstm", "Embedding + bidirectional LSTM, max-pooled over time")
def bilstm(n_classes, vocab_size, embed_dim=128, units=64, dropout=0.3,
           embed_dropout=0.3, pooling="max"):
    return recurrent("bilstm", layers.LSTM, n_classes, vocab_size, embed_dim, units, dropout,
                     pooling, bidirectional=True, embed_dropout=embed_dropout)


@architecture("bigru", "Embedding + bidirectional GRU, max-pooled over time")
def bigru(n_classes, vocab_size, embed_dim=128, units=64, dropout=0.3,
          embed_dropout=0.3, pooling="max"):
    return recurrent("bigru", layers.GRU, n_classes, vocab_size, embed_dim, units, dropout,
                     pooling, bidirectional=True, embed_dropout=embed_dropout)


# Attention pooling over one direction overfitted first: more of its word vectors dropped
# (docs/models.md).
@architecture("lstm-attention", "Embedding + LSTM + additive attention pooling")
def lstm_attention(n_classes, vocab_size, embed_dim=128, units=64, dropout=0.3,
                   embed_dropout=0.5):
    return recurrent("lstm_attention", layers.LSTM, n_classes, vocab_size, embed_dim, units,
                     dropout, "attention", embed_dropout=embed_dropout)


@architecture("bigru-attention", "Embedding + bidirectional GRU + additive attention pooling")
def bigru_attention(n_classes, vocab_size, embed_dim=128, units=64, dropout=0.3,
                    embed_dropout=0.3):
    return recurrent("bigru_attention", layers.GRU, n_classes, vocab_size, embed_dim, units,
                     dropout, "attention", bidirectional=True, embed_dropout=embed_dropout)


@architecture("bigru-tfidf", "Bidirectional GRU + a TF-IDF bag-of-words branch and its "
              "Naive Bayes start, logits weighed (wide & deep)", hybrid=True)
def bigru_tfidf(n_classes, vocab_size, embed_dim=128, units=64, dropout=0.3, embed_dropout=0.3,
                bag_dropout=0.5, bag_scale=10.0, branch_dropout=0.5):
    inputs = keras.Input(shape=(None,), dtype="int32")
    # Deep: the word order, read as `bigru` reads it.
    x = read_words(inputs, layers.GRU, vocab_size, embed_dim, units, dropout, "max",
                   bidirectional=True, embed_dropout=embed_dropout)
    deep = layers.Dense(n_classes, name="deep_logits")(x)
    # Wide: which words occur, as a linear model on the text's TF-IDF vector; training starts
    # it as Complement Naive Bayes (`newstopic.initialisers`).
    bag = layers.Dropout(bag_dropout)(custom_layers.TfidfBag(vocab_size, name="tfidf")(inputs))
    # A unit vector's entries are small and Adam moves every weight by about the same step:
    # scaled up, the linear layer fits in the epochs the GRU needs (docs/models.md).
    bag = layers.Rescaling(bag_scale)(bag)
    wide = custom_layers.WideLogits(n_classes, name="wide_logits")(bag)
    # The wide part's Naive Bayes start, kept as it was: on a few hundred or thousand texts
    # training made the bag of words worse than its start (docs/models.md).
    # (Zeros until then: a random start would draw from, and so change, the seeds after it.)
    naive_bayes = custom_layers.WideLogits(n_classes, trainable=False,
                                           kernel_initializer="zeros",
                                           name="naive_bayes_logits")(bag)
    # Their errors differ (together they gain over either alone: docs/models.md), so
    # each trained branch is also trained alone some of the time; the weights of all three
    # are fitted after training.
    x = custom_layers.BranchEnsemble(branch_dropout, fixed=1, name="branches")(
        [deep, wide, naive_bayes])
    outputs = layers.Activation("softmax")(x)
    return keras.Model(inputs, outputs, name="bigru_tfidf")


@architecture("transformer", "Token + position embedding, Transformer encoder, mean pooling",
              learning_rate=1.5e-3, ema_momentum=None)
def transformer(n_classes, vocab_size, max_len, embed_dim=64, heads=4, ff_dim=128, blocks=1,
                dropout=0.1):
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = custom_layers.TokenAndPositionEmbedding(max_len, vocab_size, embed_dim,
                                         name="word_embedding")(inputs)
    for _ in range(blocks):
        x = custom_layers.TransformerBlock(embed_dim, heads, ff_dim, dropout)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="transformer")


@architecture("seed-lstm", "The seed notebook's model and recipe, unchanged, for comparison",
              tunable=False, max_words=5000, max_len=200, epochs=5, batch_size=64,
              learning_rate=1e-3, patience=None, bucket=False, word2vec=False,
              ema_momentum=None)
def seed_lstm(n_classes, vocab_size):
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(5000, 64)(inputs)  # no mask: the seed pads after the text, unmasked
    x = layers.LSTM(64)(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Dense(32, activation="relu")(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="seed_lstm")


@architecture("seq2seq-label", "BiGRU encoder, max-pooled; a GRU decoder of the label's path "
              "(comp, sys, mac, hardware, end), constrained to the training labels", epochs=4,
              patience=1)
def seq2seq_label(classes, vocab_size, embed_dim=128, units=64, dropout=0.3, decoder_units=64):
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="word_embedding")(inputs)
    x = layers.Bidirectional(layers.GRU(units, return_sequences=True))(x)
    x = layers.Dropout(dropout)(custom_layers.MaskedMaxPooling()(x))
    outputs = custom_layers.LabelPathDecoder.for_labels(classes, units=decoder_units)(x)
    return keras.Model(inputs, outputs, name="seq2seq_label")
