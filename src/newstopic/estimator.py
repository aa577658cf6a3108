"""`TextClassifier`: any registered model behind one scikit-learn style estimator."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from newstopic.artifacts import load_model, save_model, typed_labels
from newstopic.data import check_classes
from newstopic.errors import NewstopicError, NotFittedError
from newstopic.explain import explain, predict_known, warn_unknown
from newstopic.predictor import ATTENTION
from newstopic.registry import fits_unlabelled, registered


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
        return registered(self.model)

    def fit(self, X, y, validation_data=None, **fit_params) -> "TextClassifier":
        """Fit on texts `X` and labels `y`. Neural models use `validation_data=(texts, labels)`
        for early stopping (else they carve a stratified part of `X`) and take `progress`,
        `checkpoint` and `resume` (see `NeuralTextModel.fit`); classical models ignore them.
        A transductive model also fits on `unlabelled=texts`, an ensemble takes members fitted
        already as `trained={name: fitted model}`. Any other argument is refused."""
        spec = self.spec
        if spec.task != "classify":
            raise NewstopicError(f"model '{self.model}' generates subject lines, it does not "
                                 "classify: train it with `newstopic train --task subject`")
        unknown = sorted(set(fit_params) - set(FIT_OPTIONS))
        if unknown:
            raise NewstopicError(f"fit() takes no argument '{unknown[0]}': besides texts and "
                                 f"labels it takes validation_data, {', '.join(FIT_OPTIONS)}")
        if fit_params.get("trained") is not None and "members" not in spec.parameters():
            raise NewstopicError(f"model '{self.model}' has no members: trained= applies to "
                                 "an ensemble")
        texts, labels = labelled(X, y, "no training texts: give at least one document per "
                                       "class")
        check_classes(labels.tolist(), "training data", stratify=False)
        if validation_data is not None:
            if (isinstance(validation_data, str) or not hasattr(validation_data, "__len__")
                    or len(validation_data) != 2):
                raise NewstopicError("validation_data must be a pair (texts, labels)")
            validation_data = labelled(*validation_data, "validation_data holds no texts: "
                                       "give at least one, or leave it out", "validation_data")
        model = spec.make(self.seed, self.params)
        if fit_params.get("unlabelled") is not None:
            if not fits_unlabelled(spec, model):
                raise NewstopicError(f"model '{self.model}' does not fit on unlabelled texts: "
                                     "leave out unlabelled=, or choose a transductive model "
                                     "(tfidf-transductive, ensemble-transductive)")
            fit_params["unlabelled"] = as_texts(fit_params["unlabelled"])
        self.model_ = model
        self.model_.fit(texts, labels, validation_data=validation_data, **fit_params)
        self.classes_ = np.asarray(self.model_.classes_)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of `classes_`. A text with no word the
        model knows gets the class prior, with a `NoKnownWordWarning`."""
        texts = as_texts(X)
        if not texts:
            return np.empty((0, len(self._fitted().classes_)))
        proba, known = predict_known(self._fitted(), texts)
        warn_unknown(known)
        return proba

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy of `predict(X)` against labels `y`."""
        texts, labels = labelled(X, y, "no texts to score: give at least one labelled text")
        return super().score(texts, labels, sample_weight=sample_weight)

    def attention(self, X) -> list[list[tuple[str, float]]]:
        """For attention models: each text's tokens with the weight the model gave them."""
        model = self._fitted()
        if ATTENTION not in model.capabilities:
            raise NewstopicError(f"model '{self.model}' has no attention weights: use "
                                 "lstm-attention or bigru-attention")
        return model.attention(as_texts(X))

    def explain(self, text: str, top_k: int = 10):
        """Why `text` gets its label: an `Explanation` with the label, its probability, every
        word of the text with a score (attention weight, linear share of the class's score, or
        drop in probability when the word is removed) and the `top_k` words."""
        explanation = explain(self._fitted(), text, top_k)
        warn_unknown([explanation.known_words])
        return explanation

    @property
    def n_parameters_(self) -> int:
        """Learned numbers in the model (weights, biases, calibration)."""
        return self._fitted().n_parameters

    def save(self, path, *, config: dict | None = None, metrics: dict | None = None):
        """Write the fitted model to directory `path`, atomically; see `newstopic.artifacts`."""
        return save_model(self._fitted(), self.spec, path,
                          params={"seed": self.seed, **self.params}, config=config,
                          metrics=metrics)

    @classmethod
    def load(cls, path) -> "TextClassifier":
        """A saved classifier, every file of it checked; its manifest is `manifest_`."""
        manifest, predictor = load_model(path, task="classify")
        params = dict(manifest.get("params", {}))
        classifier = cls(model=manifest["model"], seed=params.pop("seed", 0), **params)
        classifier.model_, classifier.classes_ = predictor, typed_labels(path, manifest)
        classifier.manifest_ = manifest
        return classifier

    def _fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError("this TextClassifier is not fitted yet: call fit(texts, labels) "
                                 "or TextClassifier.load(path) first")
        return self.model_


FIT_OPTIONS = ("progress", "checkpoint", "resume", "unlabelled", "trained")


def labelled(X, y, if_empty: str, where: str = "") -> tuple[list[str], np.ndarray]:
    """Texts `X` and one label each from `y`; `if_empty` is the message when there are none,
    `where` names them in the one for unequal lengths."""
    texts, labels = as_texts(X), as_labels(y)
    if len(texts) != len(labels):
        raise NewstopicError(f"{where + ': ' if where else ''}{len(texts)} texts but "
                             f"{len(labels)} labels: give one label per text")
    if not texts:
        raise NewstopicError(if_empty)
    return texts, labels


def as_texts(X) -> list[str]:
    if isinstance(X, str):
        raise NewstopicError("expected a list of texts, got one string: wrap it in a list")
    if X is None or not hasattr(X, "__iter__"):
        raise NewstopicError(f"expected a list of texts, got {type(X).__name__}: pass a list "
                             "of strings")
    # A DataFrame iterates over its column names, which would be classified as texts.
    if getattr(X, "ndim", 1) != 1:
        raise NewstopicError(f"expected a list of texts, got a {type(X).__name__} of shape "
                             f"{X.shape}: pass one column of texts, for example X['text']")
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
    labels = np.asarray(labels.tolist())
    if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
        fraction = labels[labels != np.round(labels)][0]
        raise NewstopicError(f"labels are measurements, not classes ({fraction} is not a whole "
                             "number): give one class name or number per text")
    return labels
