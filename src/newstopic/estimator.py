"""`TextClassifier`: any registered model behind one scikit-learn style estimator."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from newstopic.catalog import get_model
from newstopic.data import check_classes
from newstopic.errors import NewstopicError, NotFittedError
from newstopic.registry import SUBJECT_FAMILY


class TextClassifier(ClassifierMixin, BaseEstimator):
    """Classify raw texts with the model registered as `model` (see `newstopic models`).

    Hyperparameters of the chosen model are passed as keyword arguments, for example
    ``TextClassifier(model="tfidf-svm", C=1.0, ngram_max=1)``; `seed` fixes every random choice.
    """

    def __init__(self, model: str = "tfidf-svm", seed: int = 0, **params):
        self.model = model
        self.seed = seed
        self.params = params

    # scikit-learn's clone, grid search and repr see the model's own hyperparameters too.
    def get_params(self, deep: bool = True) -> dict:
        return {"model": self.model, "seed": self.seed, **self.params}

    def set_params(self, **params) -> "TextClassifier":
        for name, value in params.items():
            if name in ("model", "seed"):
                setattr(self, name, value)
            else:
                self.params = {**self.params, name: value}
        return self

    @property
    def spec(self):
        return get_model(self.model)

    def fit(self, X, y, validation_data=None, **fit_params) -> "TextClassifier":
        """Fit on texts `X` and labels `y`. Neural models use `validation_data=(texts, labels)`
        for early stopping (else they carve a stratified part of `X`) and take `progress`,
        `checkpoint` and `resume` (see `NeuralTextModel.fit`); classical models ignore them."""
        spec = self.spec
        if spec.family == SUBJECT_FAMILY:
            raise NewstopicError(f"model '{self.model}' generates subject lines, it does not "
                                 "classify: train it with `newstopic train --task subject`")
        texts = as_texts(X)
        labels = as_labels(y)
        if len(texts) != len(labels):
            raise NewstopicError(f"{len(texts)} texts but {len(labels)} labels: give one label "
                                 "per text")
        if not texts:
            raise NewstopicError("no training texts: give at least one document per class")
        check_classes(labels.tolist(), "training data", stratify=False)
        self.model_ = spec.make(self.seed, self.params)
        if spec.family == "neural":
            self.model_.fit(texts, labels, validation_data=validation_data, **fit_params)
        else:
            fit_pipeline(self.model_, self.model, texts, labels)
        self.classes_ = np.asarray(self.model_.classes_)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of `classes_`. A text with no word the
        model knows gets the class prior, with a `NoKnownWordWarning`."""
        texts = as_texts(X)
        if not texts:
            return np.empty((0, len(self._fitted().classes_)))
        from newstopic.explain import predict_known, warn_unknown

        # classical pipelines predict as their NumPy `LinearTextModel`, as saved models do
        proba, known = predict_known(self._predictor(), texts)
        warn_unknown(known)
        return proba

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy of `predict(X)` against labels `y`."""
        texts, labels = as_texts(X), as_labels(y)
        if len(texts) != len(labels):
            raise NewstopicError(f"{len(texts)} texts but {len(labels)} labels: give one label "
                                 "per text")
        if not texts:
            raise NewstopicError("no texts to score: give at least one labelled text")
        return super().score(texts, labels, sample_weight=sample_weight)

    def attention(self, X) -> list[list[tuple[str, float]]]:
        """For attention models: each text's tokens with the weight the model gave them."""
        model = self._fitted()
        if not hasattr(model, "attention"):
            raise NewstopicError(f"model '{self.model}' has no attention weights: use "
                                 "lstm-attention or bigru-attention")
        return model.attention(as_texts(X))

    def explain(self, text: str, top_k: int = 10):
        """Why `text` gets its label: an `Explanation` with the label, its probability, every
        word of the text with a score (attention weight, linear share of the class's score, or
        drop in probability when the word is removed) and the `top_k` words."""
        from newstopic.explain import explain

        return explain(self._predictor(), text, top_k)

    @property
    def n_parameters_(self) -> int:
        """Learned numbers in the model (weights, biases, calibration)."""
        return self._predictor().n_parameters

    def _predictor(self):
        """The fitted model as a predictor: classical pipelines as their `LinearTextModel`."""
        model = self._fitted()
        if self.spec.family != "classical":
            return model
        from newstopic.linear import LinearTextModel

        cached = getattr(self, "_linear", None)
        if cached is None or cached[0] is not model:  # converted once per fitted pipeline
            self._linear = (model, LinearTextModel.from_pipeline(model))
        return self._linear[1]

    def save(self, path, *, config: dict | None = None, metrics: dict | None = None):
        """Write the fitted model to directory `path`, atomically; see `newstopic.artifacts`."""
        from newstopic.artifacts import save_classifier

        self._fitted()
        return save_classifier(self, path, config=config, metrics=metrics)

    @classmethod
    def load(cls, path) -> "TextClassifier":
        from newstopic.artifacts import load_classifier

        return load_classifier(path)

    def _fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError("this TextClassifier is not fitted yet: call fit(texts, labels) "
                                 "or TextClassifier.load(path) first")
        return self.model_


def as_texts(X) -> list[str]:
    if isinstance(X, str):
        raise NewstopicError("expected a list of texts, got one string: wrap it in a list")
    if X is None or not hasattr(X, "__iter__"):
        raise NewstopicError(f"expected a list of texts, got {type(X).__name__}: pass a list "
                             "of strings")
    texts = list(X)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise NewstopicError(f"expected texts (str), got {type(texts[bad]).__name__} at "
                             f"position {bad}: convert the input to strings")
    return texts


def as_labels(y) -> np.ndarray:
    """One label per text, as a 1-D array; missing labels refused."""
    if y is None or isinstance(y, str) or not hasattr(y, "__len__"):
        raise NewstopicError(f"expected a list of labels, got {type(y).__name__}: pass one "
                             "label per text")
    labels = np.asarray(y, dtype=object)
    if labels.ndim != 1:
        raise NewstopicError(f"expected one label per text, got an array of shape "
                             f"{labels.shape}: pass a flat list of labels")
    missing = next((i for i, label in enumerate(labels) if label is None or (
        isinstance(label, float) and label != label)), None)
    if missing is not None:
        raise NewstopicError(f"label at position {missing} is missing ({labels[missing]}): "
                             "give every text a label")
    kinds = {type(label) for label in labels}
    if len(kinds) > 1 and str in kinds:
        raise NewstopicError("labels mix strings and numbers: give them all as one kind")
    return np.asarray(labels.tolist())


def fit_pipeline(pipeline, name: str, texts: list[str], labels: np.ndarray) -> None:
    """Fit a classical pipeline; TF-IDF settings these texts cannot meet are one-line errors."""
    vectorizer = pipeline.steps[0][1]
    if isinstance(vectorizer.min_df, int) and vectorizer.min_df > len(texts):
        raise NewstopicError(f"model '{name}': min_df={vectorizer.min_df} is above the "
                             f"{len(texts)} training texts: lower min_df")
    try:
        pipeline.fit(texts, labels)
    except ValueError as exc:
        message = str(exc)
        if "min_df" in message or "max_df" in message or "no terms remain" in message \
                or "empty vocabulary" in message:
            raise NewstopicError(f"model '{name}' finds no words to keep in these texts "
                                 f"({message.rstrip('.')}): lower min_df or raise max_df")
        raise
