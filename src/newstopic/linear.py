"""A fitted TF-IDF + linear classifier as plain arrays, predicting with NumPy alone.

Every classical model here is TF-IDF features, a linear score ``X @ W.T + b`` and a fixed link to
probabilities. Extracting those arrays from the scikit-learn pipeline gives an artifact that loads
without scikit-learn or pickle (JSON and ``.npz`` with ``allow_pickle=False``) and a prediction
path that starts in a fraction of a second. Tests check it against the pipeline's own
``predict_proba``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

LINKS = ("softmax", "logistic", "sigmoid-calibrated")
# The token patterns a model file may name: a pattern from a file is never compiled unless it is
# one of these (a planted pattern such as "(?:a+)+b" would hang every prediction).
TOKEN_PATTERNS = (r"(?u)\b\w\w+\b",)
VOCABULARY_FILE = "vocabulary.json"
HEAD_FILE = "head.npz"


def weight_location(pipeline) -> tuple[object, str]:
    """(object, attribute name) of the pipeline's weight matrix, one row per score column."""
    clf = pipeline.steps[-1][1]
    kind = type(clf).__name__
    if kind == "ComplementNB":
        return clf, "feature_log_prob_"
    if kind == "LogisticRegression":
        return clf, "coef_"
    if kind == "CalibratedClassifierCV" and len(clf.calibrated_classifiers_) == 1:
        return clf.calibrated_classifiers_[0].estimator, "coef_"
    raise ValueError(f"cannot export classifier {kind}")


class LinearTextModel:
    """TF-IDF (sklearn's word analyzer, sublinear tf, l2 norm) + linear scores + a link."""

    def __init__(self, vocabulary, idf, weights, bias, link, classes, *, ngram_range=(1, 2),
                 sublinear_tf=True, token_pattern=r"(?u)\b\w\w+\b", lowercase=True,
                 calibration=None):
        if link not in LINKS:
            raise ValueError(f"unknown link {link!r}")
        if token_pattern not in TOKEN_PATTERNS:
            raise ValueError(f"token pattern {token_pattern!r} is not one newstopic writes")
        self.vocabulary = list(vocabulary)
        self.index = {term: i for i, term in enumerate(self.vocabulary)}
        self.idf, self.weights, self.bias = idf, weights, bias
        self.link, self.classes_ = link, np.asarray(classes)
        self.ngram_range, self.sublinear_tf = tuple(ngram_range), sublinear_tf
        self.token_pattern, self.lowercase = token_pattern, lowercase
        self.calibration = calibration  # (a, b): p = expit(-(a * score + b)), one pair per column
        self._pattern = re.compile(token_pattern)

    @property
    def n_parameters(self) -> int:
        calibration = 0 if self.calibration is None else sum(c.size for c in self.calibration)
        return int(self.weights.size + self.bias.size + calibration)

    # --- from a fitted scikit-learn pipeline ---------------------------------------------

    @classmethod
    def from_pipeline(cls, pipeline) -> "LinearTextModel":
        vectorizer, clf = pipeline.steps[0][1], pipeline.steps[-1][1]
        unsupported = {k: v for k, v in (("analyzer", "word"), ("stop_words", None),
                                         ("strip_accents", None), ("preprocessor", None),
                                         ("tokenizer", None), ("norm", "l2"), ("use_idf", True))
                       if getattr(vectorizer, k) != v}
        if unsupported:
            raise ValueError(f"cannot export a TF-IDF vectorizer with {unsupported}")
        vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
        owner, attribute = weight_location(pipeline)
        weights, calibration = getattr(owner, attribute), None
        if type(clf).__name__ == "ComplementNB":
            link, bias = "softmax", np.zeros(weights.shape[0])
        elif type(clf).__name__ == "LogisticRegression":
            link, bias = ("logistic" if weights.shape[0] == 1 else "softmax"), clf.intercept_
        else:
            calibrated = clf.calibrated_classifiers_[0]
            if calibrated.method != "sigmoid":
                raise ValueError(f"cannot export {calibrated.method} calibration")
            link, bias = "sigmoid-calibrated", owner.intercept_
            calibration = (np.array([c.a_ for c in calibrated.calibrators], dtype=np.float64),
                           np.array([c.b_ for c in calibrated.calibrators], dtype=np.float64))
        return cls(vocabulary, np.asarray(vectorizer.idf_, dtype=np.float64),
                   np.asarray(weights), np.asarray(bias),
                   link, clf.classes_, ngram_range=vectorizer.ngram_range,
                   sublinear_tf=vectorizer.sublinear_tf, token_pattern=vectorizer.token_pattern,
                   lowercase=vectorizer.lowercase, calibration=calibration)

    # --- files ------------------------------------------------------------------------------

    def save(self, directory: Path) -> list[str]:
        (directory / VOCABULARY_FILE).write_text(json.dumps(self.vocabulary), encoding="utf-8")
        arrays = {"idf": self.idf, "weights": self.weights, "bias": self.bias}
        if self.calibration is not None:
            arrays["calibration_a"], arrays["calibration_b"] = self.calibration
        with open(directory / HEAD_FILE, "wb") as f:
            np.savez(f, **arrays)
        return [VOCABULARY_FILE, HEAD_FILE]

    def settings(self) -> dict:
        return {"link": self.link, "ngram_range": list(self.ngram_range),
                "sublinear_tf": self.sublinear_tf, "token_pattern": self.token_pattern,
                "lowercase": self.lowercase}

    @classmethod
    def load(cls, directory: Path, settings: dict, classes) -> "LinearTextModel":
        vocabulary = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
        with np.load(directory / HEAD_FILE, allow_pickle=False) as arrays:
            calibration = ((arrays["calibration_a"], arrays["calibration_b"])
                           if "calibration_a" in arrays else None)
            return cls(vocabulary, arrays["idf"], arrays["weights"], arrays["bias"],
                       settings["link"], classes, ngram_range=settings["ngram_range"],
                       sublinear_tf=settings["sublinear_tf"],
                       token_pattern=settings["token_pattern"], lowercase=settings["lowercase"],
                       calibration=calibration)

    # --- prediction -------------------------------------------------------------------------

    def terms(self, text: str) -> list[str]:
        """scikit-learn's word analyzer: lowercase, token pattern, then word n-grams."""
        return [term for _, _, term in self._ngrams(self._pattern.findall(self._case(text)))]

    def _case(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def _ngrams(self, tokens: list[str]):
        """(first token, token count, term) of every n-gram of `tokens`."""
        low, high = self.ngram_range
        return [(i, n, " ".join(tokens[i:i + n])) for n in range(low, high + 1)
                for i in range(len(tokens) - n + 1)]

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The text's non-zero TF-IDF entries: (feature indices, l2-normalised values)."""
        return self._weigh(self.terms(text))

    def _weigh(self, terms: list[str]) -> tuple[np.ndarray, np.ndarray]:
        counts = Counter(i for i in map(self.index.get, terms) if i is not None)
        indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        values = (np.log(tf) + 1.0 if self.sublinear_tf else tf) * self.idf[indices]
        norm = np.sqrt(values @ values)
        return indices, values / norm if norm > 0 else values

    def class_direction(self, column: int) -> np.ndarray:
        """One weight per feature: how far a unit of it moves a text towards class `column`."""
        if self.weights.shape[0] == 1:  # two classes, one score, for classes_[1]
            row, sign = self.weights[0], 1.0 if column == 1 else -1.0
            column = 0
        elif self.link == "softmax":  # softmax ignores what every class's score shares
            row, sign = self.weights[column] - self.weights.mean(axis=0), 1.0
        else:
            row, sign = self.weights[column], 1.0
        if self.link == "sigmoid-calibrated":  # p = expit(-(a * score + b)): a < 0 raises p
            sign *= -np.sign(self.calibration[0][column])
        return sign * row

    def word_scores(self, text: str, column: int) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Each word's (start, end) characters and its share of the text's score for class
        `column`: every n-gram's TF-IDF value times the class direction, split evenly over its
        occurrences and their words, so that the shares sum to the score less the bias."""
        # Matched on the text itself, for offsets into it (lowercasing may change lengths).
        matches = list(self._pattern.finditer(text))
        grams = self._ngrams([self._case(m.group()) for m in matches])
        indices, values = self._weigh([term for _, _, term in grams])
        share = dict(zip(indices.tolist(), values * self.class_direction(column)[indices]))
        occurrences = Counter(self.index.get(term) for _, _, term in grams)
        scores = np.zeros(len(matches))
        for first, n, term in grams:
            feature = self.index.get(term)
            if feature is not None:
                scores[first:first + n] += share[feature] / occurrences[feature] / n
        return [m.span() for m in matches], scores

    def decision_function(self, texts) -> np.ndarray:
        return self._scores(texts)[0]

    def _scores(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """(linear scores, whether the text has a term of the vocabulary) of each text."""
        scores = np.empty((len(texts), self.weights.shape[0]))
        known = np.empty(len(texts), dtype=bool)
        for row, text in enumerate(texts):
            indices, values = self.features(text)
            scores[row] = self.weights[:, indices] @ values
            known[row] = indices.size > 0
        return scores + self.bias, known

    def predict_proba(self, texts) -> np.ndarray:
        return self.predict_known(texts)[0]

    def predict_known(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities, whether the text holds a word the model knows) of each text:
        a text without one gets the class prior."""
        scores, known = self._scores(texts)
        return self._link(scores), known

    def _link(self, scores: np.ndarray) -> np.ndarray:
        if self.link == "softmax":
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            return scores / scores.sum(axis=1, keepdims=True)
        if self.link == "logistic":
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        a, b = self.calibration
        calibrated = 1.0 / (1.0 + np.exp(a * scores + b))
        if len(self.classes_) == 2:
            return np.column_stack([1.0 - calibrated[:, 0], calibrated[:, 0]])
        total = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1.0 / len(self.classes_))
        return np.divide(calibrated, total, out=uniform, where=total != 0)

    def predict(self, texts) -> np.ndarray:
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]
