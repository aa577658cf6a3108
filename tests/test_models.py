"""The estimator and the classical models: scikit-learn behaviour and the NumPy predictor."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from conftest import TOPICS, make_corpus
from newstopic import TextClassifier
from newstopic.errors import NewstopicError
from newstopic.linear import LinearTextModel
from newstopic.catalog import get_model, model_names

CLASSICAL = ["tfidf-nb", "tfidf-svm", "tfidf-lr"]


def test_registry_lists_the_classical_models_and_rejects_unknown_names():
    assert set(CLASSICAL) <= set(model_names())
    assert get_model("tfidf-svm").family == "classical"
    assert {"C", "ngram_max", "min_df", "max_df"} <= set(get_model("tfidf-svm").parameters())
    with pytest.raises(NewstopicError, match="unknown model 'tfidf-xgb': choose one of .*tfidf-nb"):
        get_model("tfidf-xgb")


def test_every_parameter_of_every_model_is_declared_with_its_range_and_accepts_its_default():
    for name in model_names():
        spec = get_model(name)
        for parameter, default in spec.parameters().items():
            constraint = spec.constraint(parameter)  # KeyError if undeclared
            assert default is None or constraint.accepts(default), (name, parameter, default)


@pytest.mark.parametrize("model", CLASSICAL)
def test_each_classical_model_learns_separable_topics(model, corpus):
    texts, labels = corpus
    held_texts, held_labels = make_corpus(per_class=20, seed=99)
    clf = TextClassifier(model=model).fit(texts, labels)
    assert list(clf.classes_) == ["cars", "cooking", "space"]
    assert clf.score(held_texts, held_labels) > 0.9
    proba = clf.predict_proba(held_texts)
    assert proba.shape == (60, 3) and np.allclose(proba.sum(axis=1), 1)
    assert clf.n_parameters_ > 0


@pytest.mark.parametrize("model", CLASSICAL)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_numpy_predictor_matches_the_pipeline(model, n_classes, corpus):
    texts, labels = corpus
    keep = [i for i, y in enumerate(labels) if y in ("cars", "space", "cooking")[:n_classes]]
    texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    clf = TextClassifier(model=model, min_df=1).fit(texts, labels)
    fast = LinearTextModel.from_pipeline(clf.model_.pipeline)
    probe = make_corpus(per_class=10, seed=5)[0] + ["unseen words only", "Engine, ORBIT & sauce!"]
    assert np.allclose(fast.predict_proba(probe), clf.predict_proba(probe), atol=1e-6)
    assert list(fast.predict(probe)) == list(clf.predict(probe))


def test_the_transductive_model_learns_words_that_only_its_unlabelled_texts_hold(tmp_path):
    seen = {topic: words[:5] for topic, words in TOPICS.items()}
    unseen = {topic: words[5:] for topic, words in TOPICS.items()}
    texts, labels = make_corpus(per_class=6, seed=0, topics=seen)
    unlabelled = make_corpus(per_class=40, seed=1)[0]  # all of each topic's words
    probe, probe_labels = make_corpus(per_class=10, seed=2, topics=unseen)
    inductive = TextClassifier(model="tfidf-svm").fit(texts, labels)
    transductive = TextClassifier(model="tfidf-transductive").fit(texts, labels,
                                                                  unlabelled=unlabelled)
    # the unseen words get their topic from the unlabelled texts they share with seen words
    assert inductive.score(probe, probe_labels) < 0.6
    assert transductive.score(probe, probe_labels) > 0.9
    transductive.save(tmp_path / "model")
    loaded = TextClassifier.load(tmp_path / "model")
    assert np.array_equal(loaded.predict_proba(probe), transductive.predict_proba(probe))


def test_works_inside_scikit_learn_tools(corpus):
    texts, labels = corpus
    clf = TextClassifier(model="tfidf-lr", C=5.0)
    assert clone(clf).get_params() == {"model": "tfidf-lr", "seed": 0, "C": 5.0}
    scores = cross_val_score(clf, texts, labels, cv=3)
    assert scores.min() > 0.85
    search = GridSearchCV(TextClassifier(model="tfidf-nb"), {"alpha": [0.1, 1.0]}, cv=3)
    search.fit(texts, labels)
    assert search.best_params_["alpha"] in (0.1, 1.0)
    pipe = make_pipeline(FunctionTransformer(lambda xs: [x.upper() for x in xs]),
                         TextClassifier(model="tfidf-svm"))
    assert pipe.fit(texts, labels).score(texts, labels) > 0.9


def test_seed_makes_training_reproducible(corpus):
    texts, labels = corpus
    a = TextClassifier(model="tfidf-svm", seed=3).fit(texts, labels).predict_proba(texts[:10])
    b = TextClassifier(model="tfidf-svm", seed=3).fit(texts, labels).predict_proba(texts[:10])
    assert np.array_equal(a, b)


def test_set_params_changes_the_model(corpus):
    texts, labels = corpus
    clf = TextClassifier(model="tfidf-nb").set_params(alpha=5.0, ngram_max=1)
    assert clf.get_params()["alpha"] == 5.0
    assert clf.fit(texts, labels).model_.pipeline.steps[-1][1].alpha == 5.0
    assert clf.model_.pipeline.steps[0][1].ngram_range == (1, 1)


@pytest.mark.parametrize("model, kind", [("tfidf-nb", int), ("tfidf-nb", bool),
                                         ("tfidf-lr", float), ("gru", int)])
def test_labels_keep_their_type_through_save_and_load(corpus, tmp_path, model, kind):
    texts, names = corpus
    order = sorted(set(names))
    # numbers 1, 2, 3 for the topics; booleans: the first topic or not
    labels = [kind(order.index(name) == 0 if kind is bool else order.index(name) + 1)
              for name in names]
    settings = {"epochs": 1, "word2vec": False, "max_words": 300} if model == "gru" else {}
    clf = TextClassifier(model=model, **settings).fit(texts, labels)
    loaded = TextClassifier.load(clf.save(tmp_path / "m"))
    assert loaded.classes_.tolist() == clf.classes_.tolist()
    assert loaded.classes_.dtype == clf.classes_.dtype == np.asarray(labels).dtype
    assert loaded.predict(texts).tolist() == clf.predict(texts).tolist()
    assert loaded.score(texts, labels) == clf.score(texts, labels)


@pytest.mark.parametrize("call, message", [
    (lambda t, y: TextClassifier(model="tfidf-svm", gamma=2).fit(t, y),
     "model 'tfidf-svm' has no parameter 'gamma': its parameters are C, "),
    (lambda t, y: TextClassifier().fit(t, [0.5 + i for i in range(len(y))]),
     r"labels are measurements, not classes \(0.5 is not a whole number\)"),
    (lambda t, y: TextClassifier().predict(t), "not fitted yet: call fit"),
    (lambda t, y: TextClassifier().fit(t[0], y), "got one string: wrap it in a list"),
    (lambda t, y: TextClassifier().fit(t, y[:-1]), "texts but .* labels: give one label per"),
    (lambda t, y: TextClassifier().fit(t, ["one"] * len(y)), "only 1 class"),
    (lambda t, y: TextClassifier().fit([], []), "no training texts"),
    (lambda t, y: TextClassifier().fit([1, 2], ["a", "b"]), r"expected texts \(str\), got int"),
    (lambda t, y: TextClassifier(model="tfidf-transductive").fit(t, y),
     "'tfidf-transductive' is transductive: it fits on unlabelled texts too; pass them"),
    (lambda t, y: TextClassifier(model="tfidf-transductive").fit(t, y, unlabelled="a text"),
     "got one string: wrap it in a list"),
    (lambda t, y: TextClassifier(model="tfidf-svm").fit(t, y, unlabelled=t),
     "model 'tfidf-svm' does not fit on unlabelled texts: leave out unlabelled="),
    (lambda t, y: TextClassifier(model="lstm").fit(t, y, unlabelled=t),
     "model 'lstm' does not fit on unlabelled texts"),
    (lambda t, y: TextClassifier(model="tfidf-transductive", rounds=0).fit(t, y),
     "rounds=0 is not allowed: rounds must be an integer in \\[1, 100\\]"),
])
def test_misuse_raises_a_clear_error(corpus, call, message):
    with pytest.raises(NewstopicError, match=message):
        call(*corpus)


def test_plot_styles_are_distinct_and_a_far_weaker_model_does_not_set_the_axis():
    from newstopic.evaluation import _accuracy_floor, model_styles

    styles = model_styles(model_names())
    assert len(set(styles.values())) == len(styles)  # no two models look alike
    assert model_styles(["gru", "lstm"])["gru"] == styles["gru"]  # the same in every plot
    assert 0.7 < _accuracy_floor([0.8805, 0.8736, 0.7939, 0.0913]) < 0.7939
    assert _accuracy_floor([0.95, 0.75]) < 0.75  # within 0.25 of the best: all shown
