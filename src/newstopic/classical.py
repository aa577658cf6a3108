"""Classical baselines: TF-IDF features with a linear classifier, each a scikit-learn Pipeline."""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from newstopic.registry import register


def tfidf(ngram_max=2, min_df=2, max_df=0.5, max_features=None, sublinear_tf=True):
    """Word 1..ngram_max-grams, sublinear tf: the strong, standard text baseline."""
    return TfidfVectorizer(ngram_range=(1, ngram_max), min_df=min_df, max_df=max_df,
                           max_features=max_features, sublinear_tf=sublinear_tf, dtype=np.float32)


@register("tfidf-nb", "classical", "TF-IDF word 1-2-grams + Complement Naive Bayes",
          shared=tfidf)
def tfidf_nb(alpha=0.3, seed=0, **tfidf_params):
    return Pipeline([("tfidf", tfidf(**tfidf_params)), ("clf", ComplementNB(alpha=alpha))])


@register("tfidf-svm", "classical", "TF-IDF word 1-2-grams + linear SVM, sigmoid-calibrated",
          shared=tfidf)
def tfidf_svm(C=0.5, seed=0, **tfidf_params):
    # ensemble=False keeps one SVM fitted on all data (calibrated on cross-validated scores),
    # so the artifact holds one weight matrix instead of one per fold.
    svm = CalibratedClassifierCV(LinearSVC(C=C, random_state=seed), cv=3, ensemble=False)
    return Pipeline([("tfidf", tfidf(**tfidf_params)), ("clf", svm)])


@register("tfidf-lr", "classical", "TF-IDF word 1-2-grams + multinomial logistic regression",
          shared=tfidf)
def tfidf_lr(C=20.0, max_iter=300, seed=0, **tfidf_params):
    lr = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    return Pipeline([("tfidf", tfidf(**tfidf_params)), ("clf", lr)])
