"""Keras backends: TensorFlow and JAX both run every neural model, read each other's files and
those of earlier versions, and JAX runs without TensorFlow; data-parallel training over
several devices equals training on one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, make_corpus, run_cli
from newstopic import TextClassifier
from newstopic.backend import BACKENDS, automatic, use_backend
from newstopic.errors import NewstopicError
from newstopic.text import SequenceVectorizer, words

FIXTURES = Path(__file__).parent / "fixtures"
TWO_DEVICES = {"KERAS_BACKEND": "jax", "XLA_FLAGS": os.environ["XLA_FLAGS"] +
               " --xla_force_host_platform_device_count=2"}
BACKEND = os.environ.get("KERAS_BACKEND") or automatic()
OTHER = next(b for b in BACKENDS if b != BACKEND)
# The word ids of the version that tokenized with TextVectorization (TensorFlow), on the
# archive's test split with a vocabulary of 50,000 fitted on its training split.
TEXTVECTORIZATION_DIGESTS = {
    "vocabulary": "05127746947abbe7a61e5d1259ce2f072d7a3825b9d47912172d28117e7b94da",
    "test_ids": "70885aa51f92ee3c5cc42ab9d70fc834addbe3ac618e5de157d110e864f07b8c"}


def test_words_follow_textvectorization_ascii_rules():
    # lowercase and punctuation only in ASCII, split only on ASCII white space
    assert words("E-mail: Don't\u00a0STOP\x0cÉcole, U.S.A.\u2028x\x85y --") == [
        "email", "dont\u00a0stop", "École", "usa\u2028x\x85y"]
    vectorizer = SequenceVectorizer(max_words=6).fit(["b a c", "a b", "c", "d"])
    # most frequent first, ties in reverse alphabetical order
    assert vectorizer.vocabulary == ["", "[UNK]", "c", "b", "a", "d"][:6]
    assert vectorizer.ids(["a zz d", ""])[0].tolist() == [4, 1, 5]


def test_new_tokenizer_gives_the_word_ids_of_textvectorization_on_20newsgroups(archive):
    from newstopic.data import load_20newsgroups

    dataset = load_20newsgroups(archive)
    vectorizer = SequenceVectorizer(50000, 256).fit(dataset.train_texts)
    digest = hashlib.sha256()
    for ids in vectorizer.ids(dataset.test_texts):
        digest.update(np.asarray(ids, np.int32).tobytes() + b"|")
    assert {"vocabulary": hashlib.sha256(json.dumps(vectorizer.vocabulary).encode()).hexdigest(),
            "test_ids": digest.hexdigest()} == TEXTVECTORIZATION_DIGESTS


@pytest.mark.parametrize("name", ["v0-gru", "v0-bigru-tfidf"])
def test_models_saved_by_the_tensorflow_only_version_predict_as_they_did(name):
    expected = json.loads((FIXTURES / "v0-expected.json").read_text())
    clf = TextClassifier.load(FIXTURES / name)
    texts = expected["texts"]
    assert [str(label) for label in clf.predict(texts)] == expected[name]["labels"]
    assert np.allclose(clf.predict_proba(texts), expected[name]["proba"], atol=1e-4)


CROSS_MODELS = {"gru": {"units": 8}, "lstm-attention": {"units": 8},
                "bigru-tfidf": {"units": 8}, "transformer": {"heads": 2, "ff_dim": 16},
                "seq2seq-label": {"units": 8, "decoder_units": 8}}


def test_a_model_saved_under_one_backend_predicts_the_same_under_the_other(tmp_path):
    texts, labels = make_corpus(per_class=20, seed=4)
    probe = make_corpus(per_class=5, seed=8)[0]
    mine, fitted = {}, {}
    for model, params in CROSS_MODELS.items():
        clf = TextClassifier(model=model, seed=0, max_words=200, max_len=24, epochs=2,
                             batch_size=16, embed_dim=8, word2vec=False, **params)
        clf.fit(texts, labels).save(tmp_path / model)
        mine[model], fitted[model] = clf.predict_proba(probe), clf.model_
    ensemble = TextClassifier(model="ensemble", seed=0, members="gru,lstm-attention").fit(
        texts, labels, trained={m: fitted[m] for m in ("gru", "lstm-attention")})
    ensemble.save(tmp_path / "ensemble")
    mine["ensemble"] = ensemble.predict_proba(probe)
    script = ("import json, sys; from newstopic import TextClassifier; "
              "probe = json.loads(sys.argv[2]); "
              "print(json.dumps({m: TextClassifier.load(sys.argv[1] + '/' + m).predict_proba("
              "probe).tolist() for m in sys.argv[3:]}))")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path), json.dumps(probe),
                             *mine], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "KERAS_BACKEND": OTHER})
    assert result.returncode == 0, result.stderr
    theirs = json.loads(result.stdout.splitlines()[-1])
    for model, proba in mine.items():
        assert np.allclose(proba, theirs[model], atol=1e-4), model


def test_unsupported_backends_are_refused_in_one_line(monkeypatch, corpus_csv):
    with pytest.raises(NewstopicError, match="'torch' is not supported: choose tensorflow or jax"):
        use_backend("torch")
    result = run_cli("train", "-m", "gru", "--train-file", corpus_csv, "--out", "m",
                     "--backend", "torch", cwd=corpus_csv.parent)
    assert_one_line_error(result, "torch", "tensorflow or jax")
    assert not (corpus_csv.parent / "m").exists()
    result = run_cli("train", "-m", "gru", "--train-file", corpus_csv, "--out", "m",
                     env={"KERAS_BACKEND": "numpy"}, cwd=corpus_csv.parent)
    assert_one_line_error(result, "numpy", "not supported")


def test_devices_are_refused_where_they_cannot_work(corpus_csv):
    result = run_cli("train", "-m", "gru", "--train-file", corpus_csv, "--out", "m",
                     "--backend", "tensorflow", "--devices", "2", cwd=corpus_csv.parent)
    assert_one_line_error(result, "--devices needs the jax backend")
    result = run_cli("train", "-m", "gru", "--train-file", corpus_csv, "--out", "m",
                     "--backend", "jax", "--devices", "64", cwd=corpus_csv.parent)
    assert_one_line_error(result, "--devices 64", "at most")
    result = run_cli("train", "-m", "gru", "--train-file", corpus_csv, "--out", "m",
                     "--backend", "jax", "--devices", "two", cwd=corpus_csv.parent)
    assert_one_line_error(result, "--devices must be a positive number or 'all'")
    result = run_cli("train", "-m", "gru", "--train-file", corpus_csv, "--out", "m",
                     "--backend", "jax", "--devices", "2", "--batch-size", "15",
                     cwd=corpus_csv.parent, env=TWO_DEVICES)
    assert_one_line_error(result, "batch size 15 does not share out evenly over 2 devices")
    result = run_cli("benchmark", "--models", "gru,seed-lstm", "--train-file", corpus_csv,
                     "--out", "b", "--backend", "jax", "--devices", "2",
                     cwd=corpus_csv.parent, env=TWO_DEVICES)
    assert_one_line_error(result, "model 'seed-lstm' trains on Keras' own batches")
    assert not (corpus_csv.parent / "m").exists() and not (corpus_csv.parent / "b").exists()


def test_the_automatic_backend_prefers_a_gpu_jax_then_tensorflow(monkeypatch):
    import newstopic.backend as backend

    for have, gpu, chosen in [({"tensorflow", "jax"}, False, "tensorflow"),
                              ({"tensorflow", "jax"}, True, "jax"),
                              ({"jax"}, False, "jax"), ({"tensorflow"}, False, "tensorflow")]:
        monkeypatch.setattr(backend, "installed", lambda name, have=have: name in have)
        monkeypatch.setattr(backend, "_jax_gpu_installed", lambda gpu=gpu: gpu)
        assert backend.automatic() == chosen


def test_the_report_and_manifest_record_backend_and_devices(tmp_path):
    texts, labels = make_corpus(per_class=10)
    clf = TextClassifier(model="gru", seed=0, max_words=100, max_len=16, epochs=1,
                         embed_dim=8, units=8, word2vec=False).fit(texts, labels)
    clf.save(tmp_path / "m")
    machine = json.loads((tmp_path / "m" / "manifest.json").read_text())["machine"]
    assert machine["keras_backend"] == BACKEND
    assert machine["devices"] and all(":" in d for d in machine["devices"])


NO_TENSORFLOW = ("import sys; sys.modules['tensorflow'] = None; sys.argv[0] = 'newstopic'; "
                 "from newstopic.cli import main; main()")


def test_jax_benchmark_runs_with_tensorflow_unimportable(corpus_csv, tmp_path):
    # the whole benchmark: data, word2vec, a reader, a classical model, the report and plots
    result = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, "benchmark", "--train-file", str(corpus_csv),
         "--models", "lstm,tfidf-lr", "--epochs", "2", "--out", str(tmp_path / "b"),
         "--quiet"], capture_output=True, text=True, timeout=900,
        env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "b" / "results.json").read_text())
    assert summary["machine"]["keras_backend"] == "jax"
    assert {r["model"] for r in summary["results"]} == {"lstm", "tfidf-lr"}
    assert min(r["accuracy"] for r in summary["results"]) > 0.5
    assert "tensorflow" not in result.stderr.lower()
    # and TensorFlow, asked for by name, is refused in one line naming its extra
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, "predict", "-m",
                             str(FIXTURES / "v0-gru"), "--backend", "tensorflow", "an orbit"],
                            capture_output=True, text=True, timeout=300)
    assert_one_line_error(result, "tensorflow backend is not installed", "newstopic[tensorflow]")


DATA_PARALLEL = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from conftest import make_corpus
from newstopic import TextClassifier
from newstopic.backend import use_devices
def fit(model, texts, labels, **extra):
    return TextClassifier(model=model, seed=0, max_words=200, max_len=24, batch_size=16,
                          embed_dim=8, units=8, word2vec=False, **extra).fit(texts, labels)
texts, labels = make_corpus(per_class=32, seed=2)
exact = dict(epochs=2, dropout=0.0, embed_dropout=0.0, patience=None)
for count in ("1", "2"):
    devices = use_devices(count)
    clf = fit("bigru-attention", texts, labels, **exact)
    np.savez(f"{sys.argv[1]}/{devices}.npz", *clf.model_.model.get_weights(),
             proba=clf.predict_proba(texts[:7]))
texts, labels = make_corpus(per_class=31, seed=2)  # 83 to train: 5 batches of 16, one of 3
for model in ("bigru-tfidf", "lstm-attention"):
    clf = fit(model, texts, labels, epochs=1)
    print(model, clf.predict_proba(texts[:7]).shape, clf.explain(texts[0]).method)
"""


def test_data_parallel_training_equals_one_device_and_shares_out_uneven_batches(tmp_path):
    result = subprocess.run([sys.executable, "-c", DATA_PARALLEL, str(tmp_path),
                             str(Path(__file__).parent)], capture_output=True, text=True,
                            timeout=600, env={**os.environ, **TWO_DEVICES})
    assert result.returncode == 0, result.stderr
    weights = {}
    for count in ("1", "2"):
        with np.load(tmp_path / f"{count}.npz") as arrays:
            weights[count] = {k: arrays[k] for k in arrays.files}
    assert weights["1"].keys() == weights["2"].keys()
    for key in weights["1"]:
        assert np.allclose(weights["1"][key], weights["2"][key], atol=1e-4), key
    # 96 texts less 10 for validation: batches of 16 and one of 6, which two devices share
    assert not np.allclose(weights["1"]["proba"], 1 / 3)
    # bigru-tfidf predicts in its own passes (Naive Bayes start, branch weights),
    # lstm-attention for its attention weights: each fills its batches up to the devices
    assert result.stdout.splitlines()[-2:] == ["bigru-tfidf (7, 3) occlusion",
                                               "lstm-attention (7, 3) attention"]


def test_serve_on_the_other_backend_answers_as_this_one():
    from test_server import request

    texts = ["the rocket reached orbit", "garlic butter sauce", "brake and clutch"]
    expected = TextClassifier.load(FIXTURES / "v0-gru").predict_proba(texts).max(axis=1)
    process = subprocess.Popen([sys.executable, "-m", "newstopic", "serve", "-m",
                                FIXTURES / "v0-gru", "--port", "0", "--quiet", "--backend", OTHER],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        port = int(line.rsplit(":", 1)[1].strip("/\n"))
        status, answer = request(("127.0.0.1", port), "POST", "/predict", {"texts": texts})
    finally:
        process.terminate()
        process.wait(30)
    assert status == 200, answer
    assert np.allclose([r["probability"] for r in answer["results"]], expected, atol=1e-4)


def test_tfidf_bag_counts_words_without_a_one_hot_tensor():
    # bigru-tfidf's Naive Bayes start reads 1,024 texts of 256 words at a time: through a
    # one-hot tensor of a 50,000-word vocabulary that was 52 GB on JAX
    import keras

    from newstopic.layers import TfidfBag

    ids = np.random.default_rng(0).integers(0, 50000, (1024, 256)).astype("int32")
    ids[:, 200:] = 0
    bag = TfidfBag(50000)
    inputs = keras.Input((None,), dtype="int32")
    model = keras.Model(inputs, bag(inputs))
    bag.set_idf(ids)
    counts = np.stack([np.bincount(row, minlength=50000) for row in ids])
    expected = np.where(counts > 0, 1 + np.log(np.maximum(counts, 1)), 0) * np.asarray(bag.idf)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(model.predict_on_batch(ids), expected, atol=1e-6)
