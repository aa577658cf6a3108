"""The ensemble: the weighted mean of its members' probabilities, saved and loaded as one model,
resumable member by member, and reusing members a benchmark has trained."""

from __future__ import annotations

import json

import numpy as np
import pytest

from newstopic import TextClassifier
from newstopic.artifacts import MANIFEST, read_manifest
from newstopic.errors import ArtifactError, NewstopicError
from newstopic.catalog import get_model

TWO = {"members": "lstm,gru", "epochs": 2}


@pytest.fixture(scope="module")
def trained(corpus):
    return TextClassifier("ensemble", seed=0, **TWO).fit(*corpus)


def test_ensemble_predicts_the_mean_of_its_members(trained, corpus):
    texts, labels = corpus
    members = trained.model_.member_models
    assert list(trained.model_.members) == [m.architecture for m in members] == ["lstm", "gru"]
    assert all(m.epochs_run == 2 for m in members)
    mean = np.mean([m.predict_proba(texts) for m in members], axis=0)
    assert np.allclose(trained.predict_proba(texts), mean, atol=1e-6)
    assert trained.score(texts, labels) > 0.7  # three separable topics; chance is 0.33
    assert trained.n_parameters_ == sum(m.n_parameters for m in members)
    assert trained.model_.epochs_run == 4


def test_ensemble_round_trip_keeps_members_as_model_directories(tmp_path, trained, corpus):
    trained.save(tmp_path / "m")
    manifest = read_manifest(tmp_path / "m")
    assert manifest["predictor"]["members"] == ["lstm", "gru"]
    assert {"lstm/model.keras", "gru/model.keras", "lstm/manifest.json"} <= set(manifest["files"])
    assert read_manifest(tmp_path / "m" / "gru")["model"] == "gru"
    loaded = TextClassifier.load(tmp_path / "m")
    assert np.array_equal(loaded.predict(corpus[0]), trained.predict(corpus[0]))
    assert np.allclose(loaded.predict_proba(corpus[0]), trained.predict_proba(corpus[0]))

    (tmp_path / "m" / "gru" / "model.keras").write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="gru/model.keras is corrupted"):
        TextClassifier.load(tmp_path / "m")


def test_ensemble_resumes_after_its_finished_members(tmp_path, corpus, monkeypatch):
    from newstopic.neural import NeuralTextModel

    original, fitted = NeuralTextModel.fit, []

    def fit_then_fail_on_gru(self, *args, **kwargs):
        fitted.append(self.architecture)
        if self.architecture == "gru" and len(fitted) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(NeuralTextModel, "fit", fit_then_fail_on_gru)
    checkpoint = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        TextClassifier("ensemble", **TWO).fit(*corpus, checkpoint=checkpoint)
    assert (checkpoint / "lstm" / MANIFEST).is_file()  # the finished member is kept
    clf = TextClassifier("ensemble", **TWO).fit(*corpus, checkpoint=checkpoint, resume=True)
    assert fitted == ["lstm", "gru", "gru"]  # lstm was not trained again
    assert [m.architecture for m in clf.model_.member_models] == ["lstm", "gru"]
    assert not checkpoint.exists()

    fitted.clear()
    with pytest.raises(KeyboardInterrupt):
        TextClassifier("ensemble", **TWO).fit(*corpus, checkpoint=checkpoint)
    with pytest.raises(ArtifactError, match="from a run with other settings"):
        TextClassifier("ensemble", members="lstm,gru", epochs=3).fit(
            *corpus, checkpoint=checkpoint, resume=True)


def test_ensemble_takes_trained_members_as_they_are(tmp_path, corpus):
    from newstopic.data import Dataset
    from newstopic.training import train

    texts, labels = corpus
    data = Dataset(texts[:90], labels[:90], texts[90:], labels[90:],
                   {"source": "test corpus", "split": "random"})
    lstm, _, _ = train("lstm", data, params={"epochs": 2})
    ensemble, metrics, _ = train("ensemble", data, params=TWO,
                                 trained={"lstm": (lstm, 1000.0)})
    assert ensemble.member_models[0] is lstm
    assert ensemble.member_models[1].architecture == "gru"
    assert metrics["train_seconds"] > 1000.0  # the member's own time counts in the ensemble's


def test_ensemble_scores_its_validation_texts_with_its_members_held_out_probabilities(
        tmp_path, corpus, monkeypatch):
    from newstopic.neural import NeuralTextModel
    from newstopic.predictor import held_out_proba

    texts, labels = corpus
    val_texts = texts[90:]
    original, held, resuming = NeuralTextModel.fit, {}, []

    def fit_then_fail_on_gru(self, *args, **kwargs):
        if self.architecture == "gru" and not resuming:
            raise KeyboardInterrupt
        fitted = original(self, *args, **kwargs)
        held[self.architecture] = held_out_proba(self)
        return fitted

    monkeypatch.setattr(NeuralTextModel, "fit", fit_then_fail_on_gru)
    make = lambda: get_model("ensemble").make(0, {"members": "bigru-tfidf,gru", "epochs": 1})
    checkpoint, fit = tmp_path / "ckpt", dict(validation_data=(val_texts, labels[90:]))
    with pytest.raises(KeyboardInterrupt):
        make().fit(texts[:90], labels[:90], checkpoint=checkpoint, **fit)
    resuming.append(True)
    engine = make().fit(texts[:90], labels[:90], checkpoint=checkpoint, resume=True, **fit)
    assert list(held) == ["bigru-tfidf", "gru"]  # the hybrid was not trained again
    hybrid, reader = engine.member_models
    # loaded from the checkpoint, the hybrid keeps the out-of-fold probabilities of its fit
    assert np.array_equal(held_out_proba(hybrid), held["bigru-tfidf"])
    assert held_out_proba(reader) is None
    expected = (held_out_proba(hybrid) + reader.predict_proba(val_texts)) / 2
    assert np.allclose(held_out_proba(engine), expected)
    # not the probabilities under branch weights fitted on these very texts
    assert not np.allclose(held_out_proba(engine), engine.predict_proba(val_texts))


def test_ensemble_gives_its_classical_members_their_share_and_is_hybrid(
        tmp_path, trained, corpus):
    from newstopic.artifacts import load_model, save_model
    from newstopic.ensemble import CLASSICAL_WEIGHT, EnsembleTextModel
    from newstopic.registry import registered
    from newstopic.tasks import TASKS

    texts, labels = corpus
    reader = trained.model_.member_models[0]
    engine = get_model("ensemble").make(0, {"members": "lstm,tfidf-svm", "epochs": 2})
    engine.fit(texts, labels, trained={"lstm": reader})
    linear = engine.member_models[1]
    assert engine.member_models[0] is reader and linear.name == "tfidf-svm"
    read, linear_proba = reader.predict_proba(texts), linear.predict_proba(texts)
    assert not np.allclose(read, linear_proba, atol=1e-3)  # else any weights would pass
    assert np.allclose(engine.member_weights(), [1 - CLASSICAL_WEIGHT, CLASSICAL_WEIGHT])
    expected = (1 - CLASSICAL_WEIGHT) * read + CLASSICAL_WEIGHT * linear_proba
    assert np.allclose(engine.predict_proba(texts), expected, atol=1e-6)
    assert engine.epochs_run == reader.epochs_run  # the linear member has no epochs
    assert engine.member_params("tfidf-svm") == {}  # the epochs cap is not one of its settings
    assert TASKS["classify"].family(registered("ensemble"), engine) == "hybrid"
    assert TASKS["classify"].family(registered("ensemble"), trained.model_) == "neural"

    save_model(engine, registered("ensemble"), tmp_path / "m", params={"seed": 0})
    manifest = read_manifest(tmp_path / "m")
    assert "tfidf-svm/head.npz" in manifest["files"]
    loaded = load_model(tmp_path / "m")[1]
    assert np.allclose(loaded.predict_proba(texts), expected, atol=1e-6)
    # an ensemble saved before the classical members had a share of their own: all alike
    del manifest["predictor"]["classical_weight"]
    earlier = EnsembleTextModel.load(tmp_path / "m", manifest)
    assert np.allclose(earlier.predict_proba(texts), (read + linear_proba) / 2, atol=1e-6)


@pytest.mark.parametrize("members, message", [
    ("lstm,seq2seq", "'seq2seq' cannot be an ensemble member"),  # it writes subject lines
    ("lstm,lstm", "must name distinct classifiers"),
    ("lstm,ensemble", "'ensemble' cannot be an ensemble member"),
    ("lstm,nosuch", "unknown model 'nosuch'"),
])
def test_bad_ensemble_members_are_named(members, message):
    with pytest.raises(NewstopicError, match=message):
        get_model("ensemble").make(0, {"members": members})


@pytest.mark.parametrize("weight", [1.5, -0.1, "half"])
def test_a_classical_weight_outside_0_to_1_is_refused(weight):
    with pytest.raises(NewstopicError, match="classical_weight=.* must be a number in \\[0, 1\\]"):
        get_model("ensemble").make(0, {"classical_weight": weight})


def test_ensemble_epochs_cap_never_raises_a_members_own():
    engine = get_model("ensemble").make(0, {"members": "lstm,seq2seq-label", "epochs": 6,
                                            "learning_rate": 0.01})
    assert engine.member_params("lstm") == {"epochs": 6, "learning_rate": 0.01}
    own = get_model("seq2seq-label").parameters()["epochs"]
    assert own < 6 and engine.member_params("seq2seq-label")["epochs"] == own


def test_benchmark_ensemble_reuses_the_members_it_trained(tmp_path, corpus, monkeypatch):
    from newstopic.data import Dataset
    from newstopic.ensemble import EnsembleTextModel
    from newstopic.neural import NeuralTextModel
    from newstopic.training import benchmark

    monkeypatch.setitem(EnsembleTextModel.__init__.__kwdefaults__, "members", "lstm,gru")
    original, fitted = NeuralTextModel.fit, []
    monkeypatch.setattr(NeuralTextModel, "fit", lambda self, *a, **k: (
        fitted.append(self.architecture), original(self, *a, **k))[1])
    texts, labels = corpus
    data = Dataset(texts[:90], labels[:90], texts[90:], labels[90:],
                   {"source": "test corpus", "split": "random"})
    summary = benchmark(data, ["lstm", "gru", "ensemble"], tmp_path, epochs=1)
    assert fitted == ["lstm", "gru"]  # the ensemble trained nothing again
    rows = {r["model"]: r for r in summary["results"]}
    assert rows["ensemble"]["train_seconds"] >= rows["lstm"]["train_seconds"] + rows[
        "gru"]["train_seconds"]
    assert rows["ensemble"]["epochs_run"] == 2
    assert rows["ensemble"]["artifact_bytes"] > rows["lstm"]["artifact_bytes"]


def test_an_ensemble_with_a_transductive_member_is_transductive_and_fits_it_on_the_test_texts(
        corpus):
    from newstopic.data import Dataset
    from newstopic.registry import registered
    from newstopic.tasks import TASKS
    from newstopic.training import train

    texts, labels = corpus
    test_texts = [text + " zyzzyva" for text in texts[90:]]  # a word only the test texts hold
    data = Dataset(texts[:90], labels[:90], test_texts, labels[90:],
                   {"source": "test corpus", "split": "random"})
    model, metrics, _ = train("ensemble", data, params={"members": "tfidf-nb,tfidf-transductive"})
    nb, transductive = model.member_models
    assert "zyzzyva" in transductive.linear.index and "zyzzyva" not in nb.linear.index
    assert TASKS["classify"].family(registered("ensemble"), model) == "transductive"
    assert metrics["test"]["accuracy"] > 0.9


def test_the_taught_transductive_model_learns_from_its_teachers_and_predicts_alone(corpus,
                                                                                  tmp_path):
    from conftest import TOPICS, make_corpus
    from newstopic.data import Dataset
    from newstopic.registry import registered
    from newstopic.tasks import TASKS
    from newstopic.training import train

    spec = registered("ensemble-transductive")
    assert TASKS["classify"].family(spec) == "transductive"
    teachers = spec.parameters()["teachers"].split(",")
    assert "bigru-tfidf" in teachers and "tfidf-svm" not in teachers
    seen = {topic: words[:5] for topic, words in TOPICS.items()}
    texts, labels = make_corpus(per_class=12, seed=0, topics=seen)
    test_texts, test_labels = make_corpus(per_class=40, seed=1)  # every topic word
    data = Dataset(texts, labels, test_texts, test_labels,
                   {"source": "test corpus", "split": "random"})
    teacher = train("tfidf-nb", data)[0]
    model, metrics, _ = train("ensemble-transductive", data, params={"teachers": "tfidf-nb"},
                              trained={"tfidf-nb": (teacher, 1.0)}, out=tmp_path / "m")
    assert model.members == ("tfidf-nb",) and model.teachers.member_models == [teacher]
    assert metrics["train_seconds"] >= 1.0  # the teacher's time counts in its own
    probe, probe_labels = make_corpus(per_class=10, seed=2, topics={
        topic: words[5:] for topic, words in TOPICS.items()})
    predicted = model.classes_[model.predict_proba(probe).argmax(axis=1)]
    assert (predicted == np.asarray(probe_labels)).mean() > 0.9  # words the teacher never saw
    saved = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert set(saved["files"]) == {"model.skops", "vocabulary.json", "head.npz"}  # no teacher
