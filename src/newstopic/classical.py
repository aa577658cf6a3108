"""Classical baselines: TF-IDF features with a linear classifier, each a scikit-learn Pipeline.

A fitted pipeline predicts as its NumPy `LinearTextModel`, as saved models do. The pipeline
itself is kept in ``model.skops``, loaded with an explicit list of trusted types; its vocabulary
and weight matrix are stored once, in the arrays the NumPy predictor reads.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from newstopic.errors import ArtifactError, NewstopicError
from newstopic.files import check_file
from newstopic.linear import HEAD_FILE, VOCABULARY_FILE, LinearTextModel, weight_location
from newstopic.predictor import CLASSIFY, EXPLAIN
from newstopic.registry import register

SKOPS_FILE = "model.skops"
# Every type a classical pipeline holds beyond skops' defaults; anything else in a file is refused.
TRUSTED_TYPES = [
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.naive_bayes.ComplementNB",
    "sklearn.pipeline.Pipeline",
    "sklearn.svm._classes.LinearSVC",
]


class ClassicalTextModel:
    """A TF-IDF + linear classifier: its scikit-learn `pipeline` and, once fitted, the same model
    as NumPy arrays (`linear`), which predicts. A loaded model reads the pipeline from its file
    only when `pipeline` is first used."""

    capabilities = frozenset({CLASSIFY, EXPLAIN})
    prediction_files = (VOCABULARY_FILE, HEAD_FILE)

    def __init__(self, name: str, pipeline=None, linear: LinearTextModel | None = None):
        self.name, self._pipeline, self.linear = name, pipeline, linear
        self._pipeline_file: tuple[Path, str] | None = None  # (directory, SHA-256) to load

    def fit(self, texts, labels, validation_data=None, **options) -> "ClassicalTextModel":
        """Fit the pipeline on all of `texts`; a validation set and the neural training options
        (progress, checkpoint, resume) do not apply."""
        vectorizer = self.pipeline.steps[0][1]
        if isinstance(vectorizer.min_df, int) and vectorizer.min_df > len(texts):
            raise NewstopicError(f"model '{self.name}': min_df={vectorizer.min_df} is above the "
                                 f"{len(texts)} training texts: lower min_df")
        try:
            self._fit_pipeline(texts, labels, validation_data=validation_data, **options)
        except ValueError as exc:
            message = str(exc)
            if "min_df" in message or "max_df" in message or "no terms remain" in message \
                    or "empty vocabulary" in message:
                raise NewstopicError(f"model '{self.name}' finds no words to keep in these "
                                     f"texts ({message.rstrip('.')}): lower min_df or raise "
                                     "max_df") from None
            raise
        self.linear = LinearTextModel.from_pipeline(self.pipeline)
        return self

    def _fit_pipeline(self, texts, labels, **unused) -> None:
        self.pipeline.fit(texts, labels)

    @property
    def pipeline(self):
        if self._pipeline is None and self._pipeline_file is not None:
            self._pipeline = _load_pipeline(*self._pipeline_file, self.linear)
        return self._pipeline

    @property
    def classes_(self) -> np.ndarray:
        return self.linear.classes_

    @property
    def n_parameters(self) -> int:
        return self.linear.n_parameters

    def predict_proba(self, texts) -> np.ndarray:
        return self.linear.predict_proba(texts)

    def predict_known(self, texts) -> tuple[np.ndarray, np.ndarray]:
        return self.linear.predict_known(texts)

    def word_scores(self, text: str, column: int):
        return self.linear.word_scores(text, column)

    def save(self, directory: Path) -> dict:
        self.linear.save(directory)
        _dump_pipeline(self.pipeline, directory / SKOPS_FILE)
        return self.linear.settings()

    @classmethod
    def load(cls, directory: Path, manifest: dict) -> "ClassicalTextModel":
        linear = LinearTextModel.load(directory, manifest["predictor"], manifest["labels"])
        model = cls(manifest["model"], linear=linear)
        model._pipeline_file = (directory, manifest["files"].get(SKOPS_FILE))
        return model


class SelfTrainedTextModel(ClassicalTextModel):
    """Transductive: a TF-IDF linear SVM self-trained on unlabelled texts (in a benchmark, the
    test texts without their labels). The TF-IDF weights are fitted on the training and the
    unlabelled texts; then, for `rounds` rounds, the SVM and a Complement Naive Bayes co-teacher
    label the unlabelled texts by their mean probabilities, and both are refitted on the
    training texts and the most confident share of those labels, 1/rounds of them more each
    round, all of them in the last. The SVM of the last round predicts, as a `tfidf-svm` does.
    A subclass may add fixed teachers (`_fixed_teacher`), whose probabilities then weigh half."""

    def __init__(self, name: str, recipe: tuple | None = None,
                 linear: LinearTextModel | None = None):
        pipeline, self.co_teacher, self.rounds = recipe or (None, None, None)
        super().__init__(name, pipeline, linear)

    def _fit_pipeline(self, texts, labels, unlabelled=None, **options) -> None:
        if not unlabelled:
            raise NewstopicError(f"model '{self.name}' is transductive: it fits on unlabelled "
                                 "texts too; pass them (fit(..., unlabelled=texts)), or choose "
                                 "an inductive model such as tfidf-svm")
        import scipy.sparse

        vectorizer, svm = self.pipeline.steps[0][1], self.pipeline.steps[-1][1]
        vectorizer.fit(list(texts) + list(unlabelled))
        known, unknown = vectorizer.transform(texts), vectorizer.transform(unlabelled)
        labels, teachers = np.asarray(labels), (svm, self.co_teacher)

        def fit_teachers(x, y) -> np.ndarray:
            return np.mean([teacher.fit(x, y).predict_proba(unknown) for teacher in teachers],
                           axis=0)

        proba = fit_teachers(known, labels)
        fixed = self._fixed_teacher(texts, labels, unlabelled, svm.classes_, **options)
        for round_ in range(1, self.rounds + 1):
            if fixed is not None:
                proba = (proba + fixed) / 2
            top_two = np.sort(proba, axis=1)[:, -2:]
            margin = top_two[:, 1] - top_two[:, 0]
            chosen = margin >= np.quantile(margin, 1 - round_ / self.rounds)
            guessed = svm.classes_[proba.argmax(axis=1)]
            proba = fit_teachers(scipy.sparse.vstack([known, unknown[chosen]]),
                                 np.concatenate([labels, guessed[chosen]]))

    def _fixed_teacher(self, texts, labels, unlabelled, classes, **options) -> np.ndarray | None:
        """Class probabilities (columns in the order of `classes`) that every round's labels
        also follow; none here."""
        return None


def _dump_pipeline(pipeline, file: Path) -> None:
    import skops.io

    # The vocabulary and the weight matrix are stored once, beside the pipeline, in the files the
    # NumPy predictor reads (skops would also write each vocabulary entry as a node of its own,
    # slow to write and to read); loading puts them back.
    detached = [(pipeline.steps[0][1], "vocabulary_", {}), (*weight_location(pipeline), None)]
    kept = [getattr(owner, attribute) for owner, attribute, _ in detached]
    try:
        for owner, attribute, placeholder in detached:
            setattr(owner, attribute, placeholder)
        skops.io.dump(pipeline, file, compression=zipfile.ZIP_DEFLATED, compresslevel=1)
    finally:
        for (owner, attribute, _), value in zip(detached, kept):
            setattr(owner, attribute, value)


def _load_pipeline(directory: Path, digest: str | None, linear: LinearTextModel):
    """The pipeline of model directory `directory`, refused unless its checksum is `digest`
    and it holds trusted types only."""
    import skops.io

    check_file(directory, SKOPS_FILE, digest)
    file = directory / SKOPS_FILE
    try:
        untrusted = skops.io.get_untrusted_types(file=file)
    except Exception as exc:
        raise ArtifactError(f"{file} is corrupted ({type(exc).__name__}): retrain the model") from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ArtifactError(f"{file} holds types newstopic does not trust ({', '.join(refused)}): "
                            "it was not written by newstopic; retrain the model")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # version notes: the manifest records versions
            pipeline = skops.io.load(file, trusted=TRUSTED_TYPES)
    except Exception as exc:
        raise ArtifactError(f"{file} cannot be loaded ({type(exc).__name__}: {exc}): it may come "
                            "from another scikit-learn version; retrain the model") from None
    pipeline.steps[0][1].vocabulary_ = dict(linear.index)
    setattr(*weight_location(pipeline), linear.weights)
    return pipeline


# scikit-learn is imported by the builders, so that a saved model predicts without it.


def tfidf(ngram_max=2, min_df=2, max_df=0.5, max_features=None, sublinear_tf=True):
    """Word 1..ngram_max-grams, sublinear tf: the strong, standard text baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, ngram_max), min_df=min_df, max_df=max_df,
                           max_features=max_features, sublinear_tf=sublinear_tf, dtype=np.float32)


# What `newstopic tune` explores of the TF-IDF features, for every classical model.
TFIDF_SEARCH = {"ngram_max": (1, 3), "min_df": (1, 5), "max_df": (0.2, 1.0),
                "sublinear_tf": (True, False)}


@register("tfidf-nb", "classical", "TF-IDF word 1-2-grams + Complement Naive Bayes",
          ClassicalTextModel, shared=tfidf, search={**TFIDF_SEARCH, "alpha": (0.001, 3.0)})
def tfidf_nb(alpha=0.3, seed=0, **tfidf_params):
    from sklearn.naive_bayes import ComplementNB
    from sklearn.pipeline import Pipeline

    return Pipeline([("tfidf", tfidf(**tfidf_params)), ("clf", ComplementNB(alpha=alpha))])


@register("tfidf-svm", "classical", "TF-IDF word 1-2-grams + linear SVM, sigmoid-calibrated",
          ClassicalTextModel, shared=tfidf, search={**TFIDF_SEARCH, "C": (0.01, 10.0)})
def tfidf_svm(C=0.5, seed=0, **tfidf_params):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    # ensemble=False keeps one SVM fitted on all data (calibrated on cross-validated scores),
    # so the artifact holds one weight matrix instead of one per fold.
    svm = CalibratedClassifierCV(LinearSVC(C=C, random_state=seed), cv=3, ensemble=False)
    return Pipeline([("tfidf", tfidf(**tfidf_params)), ("clf", svm)])


@register("tfidf-lr", "classical", "TF-IDF word 1-2-grams + multinomial logistic regression",
          ClassicalTextModel, shared=tfidf, search={**TFIDF_SEARCH, "C": (0.5, 500.0)})
def tfidf_lr(C=20.0, max_iter=300, seed=0, **tfidf_params):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    lr = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    return Pipeline([("tfidf", tfidf(**tfidf_params)), ("clf", lr)])


@register("tfidf-transductive", "classical", "tfidf-svm self-trained on the unlabelled test "
          "texts with a Naive Bayes co-teacher (transductive: never run by default)",
          SelfTrainedTextModel, shared=tfidf, transductive=True)
def tfidf_transductive(C=0.5, alpha=0.3, rounds=5, seed=0, **tfidf_params):
    from sklearn.naive_bayes import ComplementNB

    return tfidf_svm(C=C, seed=seed, **tfidf_params), ComplementNB(alpha=alpha), rounds
