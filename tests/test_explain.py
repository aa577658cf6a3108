"""Explanations: every kind of model scores the words of a text, and the scores mean it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import TOPICS, assert_one_line_error, make_corpus, run_cli
from newstopic import TextClassifier
from newstopic.errors import NewstopicError
from newstopic.explain import MAX_OCCLUDED, explain, marked_text

SPACE = "The rocket reached orbit, an astronaut waved from a lunar satellite."  # no word twice
NEURAL = {"max_words": 300, "max_len": 32, "epochs": 8, "patience": None, "batch_size": 16,
          "learning_rate": 0.01, "embed_dim": 16, "units": 16}


def check_tokens(explanation, text):
    assert explanation.text == text
    assert all(text[t.start:t.end] == t.text for t in explanation.tokens)
    assert [t.start for t in explanation.tokens] == sorted(t.start for t in explanation.tokens)


@pytest.mark.parametrize("model", ["tfidf-nb", "tfidf-svm", "tfidf-lr"])
def test_linear_models_score_words_by_tfidf_times_coefficient(model, corpus):
    clf = TextClassifier(model=model).fit(*corpus)
    explanation = clf.explain(SPACE, top_k=3)
    check_tokens(explanation, SPACE)
    assert (explanation.label, explanation.method) == ("space", "linear")
    assert explanation.probability == pytest.approx(clf.predict_proba([SPACE])[0].max())
    assert len(explanation.top) == 3 and {w for w, _ in explanation.top} <= set(TOPICS["space"])
    assert explanation.known_words and not explain(clf.model_, "zzz qqq").known_words
    predictor = clf.model_.linear
    if predictor.link == "softmax":  # the shares add up to the class's score against the mean
        scores = predictor.decision_function([SPACE])[0] - predictor.bias
        column = list(clf.classes_).index("space")
        total = sum(t.score for t in explanation.tokens)
        assert total == pytest.approx(scores[column] - scores.mean())


@pytest.mark.parametrize("model", ["tfidf-svm", "tfidf-lr"])
def test_two_class_linear_models_point_each_class_its_own_way(model):
    topics = {k: TOPICS[k] for k in ("cars", "space")}
    clf = TextClassifier(model=model).fit(*make_corpus(seed=3, topics=topics))
    for text, label in (("the engine and the brake of the sedan", "cars"),
                        ("the rocket and the comet in orbit", "space")):
        explanation = clf.explain(text, top_k=2)
        assert explanation.label == label
        assert {w for w, _ in explanation.top} <= set(TOPICS[label]) and explanation.top


def test_attention_models_use_their_attention_weights(corpus):
    clf = TextClassifier(model="lstm-attention", seed=0, **NEURAL).fit(*corpus)
    explanation = clf.explain(SPACE, top_k=4)
    check_tokens(explanation, SPACE)
    assert explanation.method == "attention" and explanation.label == "space"
    assert [t.text for t in explanation.tokens][:4] == ["The", "rocket", "reached", "orbit"]
    assert sum(t.score for t in explanation.tokens) == pytest.approx(1, abs=1e-4)
    assert explanation.top[0][0] in TOPICS["space"]
    long_text = " ".join(["oven flour garlic"] * 20)  # 60 words, the model reads 32
    tokens = clf.explain(long_text).tokens
    assert len(tokens) == 60 and all(t.score == 0 for t in tokens[32:])
    assert sum(t.score for t in tokens[:32]) == pytest.approx(1, abs=1e-4)
    assert explanation.known_words and not explain(clf.model_, "zzz qqq").known_words


def test_other_models_are_explained_by_occlusion(corpus):
    clf = TextClassifier(model="gru", seed=0, **NEURAL).fit(*corpus)
    explanation = clf.explain(SPACE, top_k=3)
    check_tokens(explanation, SPACE)
    assert explanation.method == "occlusion" and explanation.label == "space"
    column = list(clf.classes_).index("space")
    orbit = next(t for t in explanation.tokens if t.text == "orbit")
    without = SPACE[:orbit.start] + SPACE[orbit.end:]
    drop = clf.predict_proba([SPACE])[0, column] - clf.predict_proba([without])[0, column]
    assert orbit.score == pytest.approx(drop, abs=1e-5)
    assert explanation.top[0][0] in TOPICS["space"]
    tokens = clf.explain(" ".join(["rocket orbit"] * 20)).tokens  # words past max_len: no effect
    assert all(t.score == 0 for t in tokens[32:])
    assert explanation.known_words and not explain(clf.model_, "zzz qqq").known_words


class Keyword:
    """Any model with `classes_` and `predict_proba`: here, "space" when a text says rocket."""

    classes_ = np.array(["other", "space"])

    def predict_proba(self, texts):
        space = np.array([0.9 if "rocket" in t else 0.2 for t in texts])
        return np.column_stack([1 - space, space])


def test_any_other_model_is_explained_by_occlusion_of_its_words():
    explanation = explain(Keyword(), "a rocket, at dawn", top_k=2)
    assert (explanation.label, explanation.method) == ("space", "occlusion")
    assert [(t.text, t.start) for t in explanation.tokens] == [("a", 0), ("rocket", 2), ("at", 10),
                                                               ("dawn", 13)]
    assert [round(t.score, 6) for t in explanation.tokens] == [0, 0.7, 0, 0]
    assert explanation.top == [("rocket", pytest.approx(0.7))]


def test_occlusion_of_a_long_text_predicts_a_bounded_batch():
    predicted = []

    class Counting(Keyword):
        def predict_proba(self, texts):
            predicted.append(len(texts))
            return super().predict_proba(texts)

    text = " ".join(["dawn"] * 1000 + ["rocket"])  # the rocket past the words removed
    explanation = explain(Counting(), text)
    assert predicted == [MAX_OCCLUDED + 1] and len(explanation.tokens) == 1001
    assert all(t.score == 0 for t in explanation.tokens[MAX_OCCLUDED:])
    assert explanation.label == "space"


def test_explain_refuses_what_it_cannot_explain(corpus):
    with pytest.raises(NewstopicError, match="not fitted yet"):
        TextClassifier(model="tfidf-nb").explain("x")
    clf = TextClassifier(model="tfidf-nb").fit(*corpus)
    with pytest.raises(NewstopicError, match="top_k 0 must be at least 1"):
        clf.explain("rocket", top_k=0)
    with pytest.raises(NewstopicError, match="one text"):
        clf.explain(["rocket"])
    empty = clf.explain("")
    assert empty.tokens == [] and empty.top == [] and empty.label in clf.classes_


def test_marked_text_marks_every_occurrence_of_the_top_words(corpus):
    clf = TextClassifier(model="tfidf-lr").fit(*corpus)
    explanation = explain(clf.model_, "Rocket, rocket and oven", top_k=1)
    assert explanation.top[0][0] == "rocket"
    marked = marked_text(explanation, lambda word, strength: f"<{word}:{strength:.0f}>")
    assert marked == "<Rocket:1>, <rocket:1> and oven"


def test_explain_command_prints_highlights_and_writes_a_page(tmp_path, corpus):
    TextClassifier(model="tfidf-svm").fit(*corpus).save(tmp_path / "m")
    page = tmp_path / "out" / "why.html"
    result = run_cli("explain", "-m", tmp_path / "m", "--top-k", "2", "--html", page,
                     "the rocket in orbit", "garlic & butter <sauce>")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split("\n\n")
    lines = first.splitlines()
    assert lines[0].split("\t")[0] == "space" and lines[0].endswith("\tlinear")
    assert lines[1] == "the **rocket** in **orbit**"
    assert {line.split("\t")[0] for line in lines[2:]} == {"rocket", "orbit"}
    assert float(lines[2].split("\t")[1]) >= float(lines[3].split("\t")[1]) > 0
    assert second.splitlines()[0].startswith("cooking\t")
    html = page.read_text()
    assert html.count("<section>") == 2 and "<mark" in html and "&lt;" in html
    assert "http" not in html  # nothing loaded from elsewhere
    assert_one_line_error(run_cli("explain", "-m", tmp_path / "m", "-k", "0", "x"), "--top-k 0")
