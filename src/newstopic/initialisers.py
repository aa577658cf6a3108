"""How a neural classifier starts, before its first epoch, and what is fitted after its last:
word2vec vectors in its embedding, Naive Bayes in the linear part of a wide & deep model, the
TF-IDF weights of its bag of words, and the weights of its branches.

Each finds the layer it works on by its class: `layer_of(model, kind)`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import Future

import numpy as np

from newstopic.backend import keras_module
from newstopic.errors import NewstopicError
from newstopic.lazy import callbacks, custom_layers
from newstopic.text import SequenceVectorizer
from newstopic.word2vec import train_in_a_process

PREDICT_BATCH = 256
NAIVE_BAYES_BATCH = 1024  # texts whose dense TF-IDF vectors are summed at a time
NAIVE_BAYES_ALPHA = 0.3
INITIAL_LOGIT_STD = 2.0
BRANCH_FOLDS = 5  # cross-fitting folds of the validation texts for the branch weights


def layer_of(model, kind):
    """The layer of class `kind` in `model`, or None."""
    return next((layer for layer in model.layers if isinstance(layer, kind)), None)


def start_tfidf(model, x: np.ndarray) -> None:
    """Give a bag of words (`TfidfBag`) the inverse document frequencies of the training word
    ids `x`."""
    bag = layer_of(model, custom_layers.TfidfBag)
    if bag is not None:
        bag.set_idf(x)


def start_from_word2vec(model, name: str, vectorizer: SequenceVectorizer, texts,
                        seed: int) -> None:
    """Replace the random rows of the model's word embedding by word2vec vectors trained on the
    training texts (and nothing else), so that words seen in few labelled documents start near
    related words."""
    keras = keras_module()
    layer = layer_of(model, (keras.layers.Embedding, custom_layers.TokenAndPositionEmbedding))
    if layer is None:
        raise NewstopicError(f"model '{name}' has no embedding layer to start from word2vec: "
                             "drop word2vec")
    layer = getattr(layer, "tokens", layer)  # the Transformer's token part
    table = np.array(layer.get_weights()[0])
    vectors = word2vec(vectorizer, texts, seed)
    found = [i for i, word in enumerate(vectorizer.vocabulary)
             if i > 1 and word in vectors.key_to_index]
    rows = project(vectors[[vectorizer.vocabulary[i] for i in found]], table.shape[1])
    # Match the scale of Keras' initial embedding so the first updates stay balanced.
    table[found] = rows / rows.std() * table.std()
    layer.set_weights([table])


def start_wide_from_naive_bayes(model, x: np.ndarray, y: np.ndarray) -> None:
    """Start the linear scores of a bag of words (every `WideLogits` layer: bigru-tfidf's wide
    part and the copy of its start that it keeps) as Complement Naive Bayes on their inputs
    over the training texts, instead of at random: on 20 Newsgroups' later-dated test split,
    Naive Bayes generalises better than discriminative linear models, and so did bigru-tfidf
    started this way (docs/models.md, design notes)."""
    wide = [layer for layer in model.layers if isinstance(layer, custom_layers.WideLogits)]
    if not wide:
        return
    dense = wide[0]  # all read the same scaled TF-IDF vectors
    keras = keras_module()
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
    # Scores spread as the trained bag's did: neither branch drowns the other when training
    # starts.
    kernel *= INITIAL_LOGIT_STD / (sample @ kernel).std(axis=1).mean()
    for layer in wide:
        layer.set_weights([kernel.astype("float32"), np.zeros(n_classes, "float32")])


def weigh_branches(model, val_x: np.ndarray, val_y: np.ndarray, seed: int):
    """Weigh the branches of a `BranchEnsemble` for the least log-loss on the validation
    texts: trained side by side, the branches' logits differ in scale (bigru-tfidf's reader
    gives larger logits than its bag of words, which classifies better on its own).

    Returns the validation texts' class probabilities under weights fitted on the other
    folds of them (cross-fitting), so that the model's validation accuracy, which picks the
    best model of a family, does not count texts its weights were fitted on; None for a model
    without branches."""
    layer = layer_of(model, custom_layers.BranchEnsemble)
    if layer is None:
        return None
    keras = keras_module()
    branches = keras.Model(model.input, layer.input)
    logits = np.stack(callbacks.predict_in_batches(branches, val_x, PREDICT_BATCH), axis=1)
    layer.set_branch_weights(custom_layers.fit_branch_weights(logits, val_y))
    return custom_layers.cross_fitted_probabilities(logits, val_y, BRANCH_FOLDS, seed)


# --- word2vec ---------------------------------------------------------------------------------

_WORD2VEC: dict = {}  # the last vectors' key -> their Future, and how long they took


def word2vec(vectorizer: SequenceVectorizer, texts, seed: int):
    """Skip-gram word vectors of the vectorizer's words, trained on `texts`; kept for the
    process, so that the models of one benchmark, which share texts and vocabulary, train them
    once. (Skip-gram, not the faster CBOW: docs/models.md, design notes.)"""
    return start_word2vec(vectorizer, texts, seed).result()


def start_word2vec(vectorizer: SequenceVectorizer, texts, seed: int) -> Future:
    """The Future of `word2vec(vectorizer, texts, seed)`, trained in a background process if
    not started yet: gensim trains on one core, and the benchmark fits the classical models
    on the other meanwhile. A process of its own, because in a thread of this one word2vec and
    scikit-learn's tokenizing take turns at the GIL (docs/models.md, design notes); a daemon
    thread waits for it, so that an interrupted run does not."""
    key = digest([vectorizer.vocabulary, list(texts), seed])
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


def digest(data) -> str:
    """A key for a cache of what was computed from `data` (JSON-serialisable)."""
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()
