"""`TextClassifier`: any registered model behind one scikit-learn style estimator."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from newstopic.data import check_classes
from newstopic.errors import NewstopicError
from newstopic.registry import SUBJECT_FAMILY, get_model


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
        labels = np.asarray(y)
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
            self.model_.fit(texts, labels)
        self.classes_ = np.asarray(self.model_.classes_)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of `classes_`."""
        return self._fitted().predict_proba(as_texts(X))

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

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
            raise NewstopicError("this TextClassifier is not fitted yet: call fit(texts, labels) "
                                 "or TextClassifier.load(path) first")
        return self.model_


def as_texts(X) -> list[str]:
    if isinstance(X, str):
        raise NewstopicError("expected a list of texts, got one string: wrap it in a list")
    texts = list(X)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise NewstopicError(f"expected texts (str), got {type(bad).__name__}: convert the "
                             "input to strings")
    return texts
