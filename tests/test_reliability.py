"""Bad input, through the real CLI and the Python API: each case ends in its one-line message and
exit code, never a traceback or "unexpected"; and what a kill or a flood of clients must not
break."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import make_corpus, run_cli, write_table

from newstopic import TextClassifier
from newstopic.artifacts import DIGEST, MANIFEST, manifest_digest
from newstopic.data import stratified_split
from newstopic.errors import NewstopicError
from newstopic.explain import NoKnownWordWarning
from newstopic.files import sha256

TINY_GRU = {"max_words": 300, "max_len": 32, "epochs": 1, "batch_size": 16,
            "word2vec": False}


def _resign(directory: Path, **changes) -> None:
    """Change a manifest and recompute its digest, as a deliberate forger would."""
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest.update(changes)
    manifest[DIGEST] = manifest_digest(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def work(tmp_path_factory, corpus):
    """A folder of models and files, good and bad, that the cases below refer to as {w}."""
    w = tmp_path_factory.mktemp("work")
    texts, labels = corpus
    write_table(w / "train.csv", texts, labels)
    write_table(w / "test.csv", *make_corpus(per_class=5, seed=7))
    write_table(w / "unknown-label.csv", ["engine brake wheel", "orbit rocket"],
                ["cars", "boats"])
    TextClassifier(model="tfidf-svm").fit(texts, labels).save(w / "m")
    TextClassifier(model="gru", **TINY_GRU).fit(texts, labels).save(w / "gru")
    for name in ("reversed", "version", "regex", "old"):
        shutil.copytree(w / "m", w / name)
    manifest = json.loads((w / "m" / MANIFEST).read_text())
    (w / "reversed" / MANIFEST).write_text(json.dumps({**manifest,
                                                       "labels": manifest["labels"][::-1]}))
    _resign(w / "version", format_version="1")
    _resign(w / "regex", predictor={**manifest["predictor"], "token_pattern": "(?:a+)+b"})
    del manifest[DIGEST]
    (w / "old" / MANIFEST).write_text(json.dumps(manifest))
    shutil.copytree(w / "gru", w / "truncated")
    keras_file = w / "truncated" / "model.keras"
    keras_file.write_bytes(keras_file.read_bytes()[:1000])
    _resign(w / "truncated", files={**manifest_of(w / "gru")["files"],
                                    "model.keras": sha256(keras_file)})

    (w / "notmodel").mkdir()
    (w / "notmodel" / "notes.txt").write_text("mine")
    (w / "afile.txt").write_text("a file\n")
    (w / "empty.txt").write_text("\n  \n")
    (w / "formfeed.txt").write_bytes(b"the car engine\x0cneeds oil\nthe church\n")
    (w / "long.txt").write_text("engine " * 500_000 + "\nrocket orbit\n")
    (w / "cp1252.csv").write_bytes(b"text,label\r\nthe engine\x85 and brakes,cars\r\n"
                                   b"an orbit\x85 around,space\r\nthe wheel,cars\r\n"
                                   b"a rocket,space\r\n")
    (w / "quote.csv").write_text('text,label\n"engine brake,cars\nrocket orbit,space\n')
    jsonl = {
        "u2028": [{"text": "engine\u2028brake", "label": "cars"},
                  {"text": "orbit\u2029rocket", "label": "space"}] * 2,
        "numeric": [{"text": "engine", "label": 2}, {"text": "brake", "label": 2.0},
                    {"text": "orbit", "label": 3}, {"text": "rocket", "label": 3.0}],
        "nan": [{"text": "engine", "label": float("nan")}, {"text": "orbit", "label": 3}],
        "listtext": [{"text": ["engine"], "label": "cars"}, {"text": "orbit", "label": "x"}],
        "booltext": [{"text": True, "label": "cars"}, {"text": "orbit", "label": "x"}],
        "boollabel": [{"text": "engine", "label": True}, {"text": "orbit", "label": "x"}],
        "objectlabel": [{"text": "engine", "label": {"a": 1}}, {"text": "orbit", "label": "x"}],
    }
    for name, records in jsonl.items():
        (w / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (w / "array.jsonl").write_text('["engine", "cars"]\n')
    (w / "noclasses").mkdir()
    (w / "cols.csv").write_text("body,label\nx,a\n")
    (w / "blank.csv").write_text("text,label\nx,a\n ,b\n")
    (w / "one.csv").write_text("text,label\nx,a\ny,a\n")
    (w / "broken").mkdir()
    (w / "broken" / MANIFEST).write_text("{")
    return w


def manifest_of(directory: Path) -> dict:
    return json.loads((directory / MANIFEST).read_text())


TRAIN = ["train", "--train-file", "{w}/train.csv", "--out", "{w}/never", "-q"]
GRU = [*TRAIN, "--model", "gru"]
SVM = [*TRAIN, "--model", "tfidf-svm"]
ERROR = 1

# (id, arguments, standard input, exit code, text on stderr, lines on stdout or None)
CASES = [
    # 1. records split at \n only
    ("formfeed-stdin", ["predict", "-m", "{w}/m"], "the car engine\x0cneeds oil\nthe church\n",
     0, "", 2),
    ("formfeed-file", ["predict", "-m", "{w}/m", "--file", "{w}/formfeed.txt"], None, 0, "", 2),
    ("u2028-stdin", ["predict", "-m", "{w}/m"], "engine\u2028brake\x85orbit\n", 0, "", 1),
    ("cp1252-csv-data", ["data", "--train-file", "{w}/cp1252.csv", "--test-size", "0.5"], None,
     0, "read it as Windows-1252", None),
    ("cp1252-csv-predict", ["predict", "-m", "{w}/m", "--file", "{w}/cp1252.csv"], None, 0,
     "Windows-1252", 4),
    ("u2028-jsonl", ["data", "--train-file", "{w}/u2028.jsonl", "--test-size", "0.5"], None, 0,
     "", None),
    ("unterminated-quote", ["data", "--train-file", "{w}/quote.csv"], None, ERROR,
     "quote.csv is not valid CSV at line 3 (a quoted field is not closed): check its quoting", None),
    # 2. one record reader, bounded
    ("long-line", ["predict", "-m", "{w}/m", "--file", "{w}/long.txt"], None, 0,
     "line 1 is over 1,048,576 bytes; only its first part is read", 2),
    ("empty-file", ["predict", "-m", "{w}/m", "--file", "{w}/empty.txt"], None, ERROR,
     "empty.txt holds no texts: give one document per line", None),
    ("empty-stdin", ["predict", "-m", "{w}/m"], "\n \n", ERROR,
     "standard input held no text: give one document per line", None),
    # 3. evaluate on a labelled file alone
    ("evaluate-test-file", ["evaluate", "-m", "{w}/m", "--test-file", "{w}/test.csv"], None, 0,
     "", None),
    ("evaluate-unknown-label", ["evaluate", "-m", "{w}/m", "--test-file",
                                "{w}/unknown-label.csv"], None, ERROR,
     "the test data has labels the model was not trained on (boats)", None),
    ("evaluate-missing-file", ["evaluate", "-m", "{w}/m", "--test-file", "{w}/nothing.csv"],
     None, ERROR, "file not found", None),
    # 4. JSONL values
    ("jsonl-nan-label", ["data", "--train-file", "{w}/nan.jsonl"], None, ERROR,
     "nan.jsonl: line 1: label is nan, not a finite number", None),
    ("jsonl-list-text", ["data", "--train-file", "{w}/listtext.jsonl"], None, ERROR,
     "line 1: text is a list, not a string", None),
    ("jsonl-bool-text", ["data", "--train-file", "{w}/booltext.jsonl"], None, ERROR,
     "line 1: text is a boolean, not a string", None),
    ("jsonl-bool-label", ["data", "--train-file", "{w}/boollabel.jsonl"], None, ERROR,
     "line 1: label is a boolean: give labels as strings or numbers", None),
    ("jsonl-object-label", ["data", "--train-file", "{w}/objectlabel.jsonl"], None, ERROR,
     "line 1: label is an object", None),
    ("jsonl-array", ["data", "--train-file", "{w}/array.jsonl"], None, ERROR,
     "line 1 is not a JSON object", None),
    # 8. settings, checked before any work (and nothing written)
    ("epochs-0", [*GRU, "--epochs", "0"], None, ERROR,
     "model 'gru': epochs=0 is not allowed: epochs must be an integer in [1, 10,000]", None),
    ("epochs-negative", [*GRU, "--epochs", "-1"], None, ERROR, "epochs=-1 is not allowed",
     None),
    ("learning-rate-0", [*GRU, "--learning-rate", "0"], None, ERROR,
     "learning_rate=0.0 is not allowed: learning_rate must be a number in (0, 1]", None),
    ("batch-size-0", [*GRU, "--batch-size", "0"], None, ERROR, "batch_size=0 is not allowed",
     None),
    ("batch-size-negative", [*GRU, "--batch-size", "-5"], None, ERROR,
     "batch_size=-5 is not allowed: batch_size must be an integer in [1, 65,536] or unset", None),
    ("units-text", [*GRU, "--param", "units=abc"], None, ERROR,
     "units='abc' is not allowed: units must be an integer in [1, 8,192]", None),
    ("units-0", [*GRU, "--param", "units=0"], None, ERROR, "units=0 is not allowed", None),
    ("units-float", [*GRU, "--param", "units=1.5"], None, ERROR, "units=1.5 is not allowed",
     None),
    ("dropout-1.5", [*GRU, "--param", "dropout=1.5"], None, ERROR,
     "dropout=1.5 is not allowed: dropout must be a number in [0, 1)", None),
    ("max-len-0", [*GRU, "--param", "max_len=0"], None, ERROR, "max_len=0 is not allowed",
     None),
    ("truncate-middle", [*GRU, "--truncate", "middle"], None, ERROR,
     "truncate='middle' is not allowed: truncate must be one of head, tail, head+tail", None),
    ("class-weight", [*GRU, "--class-weight", "heavy"], None, ERROR,
     "class_weight='heavy' is not allowed", None),
    ("pooling", [*GRU, "--param", "pooling=mean"], None, ERROR,
     "pooling must be one of last, max, attention", None),
    ("bucket-maybe", [*GRU, "--param", "bucket=maybe"], None, ERROR,
     "bucket must be one of true, false", None),
    ("patience-negative", [*GRU, "--param", "patience=-1"], None, ERROR,
     "patience=-1 is not allowed", None),
    ("heads-0", [*TRAIN, "--model", "transformer", "--param", "heads=0"], None, ERROR,
     "heads=0 is not allowed", None),
    ("members-empty", [*TRAIN, "--model", "ensemble", "--param", "members="], None, ERROR,
     "members='' is not allowed: members must be a non-empty text", None),
    ("C-text", [*SVM, "--param", "C=abc"], None, ERROR,
     "model 'tfidf-svm': C='abc' is not allowed: C must be a number > 0", None),
    ("ngram-max-0", [*SVM, "--param", "ngram_max=0"], None, ERROR,
     "ngram_max=0 is not allowed: ngram_max must be an integer in [1, 5]", None),
    ("min-df-0", [*SVM, "--param", "min_df=0"], None, ERROR,
     "min_df must be an integer >= 1 or a fraction in [0, 1]", None),
    ("min-df-above-corpus", [*SVM, "--param", "min_df=5000"], None, ERROR,
     "min_df=5000 is above the", None),
    ("max-df-0", [*SVM, "--param", "max_df=0"], None, ERROR, "max_df=0 is not allowed", None),
    ("alpha-negative", [*TRAIN, "--model", "tfidf-nb", "--param", "alpha=-1"], None, ERROR,
     "alpha=-1 is not allowed: alpha must be a number > 0", None),
    ("max-iter-0", [*TRAIN, "--model", "tfidf-lr", "--param", "max_iter=0"], None, ERROR,
     "max_iter=0 is not allowed", None),
    ("unknown-parameter", [*SVM, "--param", "gamma=1"], None, ERROR,
     "model 'tfidf-svm' has no parameter 'gamma': its parameters are C, ngram_max", None),
    # 9. outputs, checked before data is loaded (the data path here does not exist)
    ("out-is-file", ["train", "-m", "tfidf-svm", "--data", "/nonexistent", "--out",
                     "{w}/afile.txt"], None, ERROR, "--out {w}/afile.txt is a file", None),
    ("out-not-model", ["train", "-m", "tfidf-svm", "--data", "/nonexistent", "--out",
                       "{w}/notmodel"], None, ERROR,
     "{w}/notmodel exists and is not a newstopic model: choose another --out", None),
    ("out-under-file", ["train", "-m", "tfidf-svm", "--data", "/nonexistent", "--out",
                        "{w}/afile.txt/m"], None, ERROR,
     "{w}/afile.txt is a file, not a directory", None),
    ("evaluate-out-file", ["evaluate", "-m", "{w}/m", "--out", "{w}/afile.txt"], None, ERROR,
     "--out {w}/afile.txt is a file: give a directory", None),
    ("benchmark-out-file", ["benchmark", "--data", "/nonexistent", "--out", "{w}/afile.txt"],
     None, ERROR, "--out {w}/afile.txt is a file: give a directory", None),
    # refused before the data is read (there is none here)
    ("benchmark-epochs-0", ["benchmark", "--data", "/nonexistent", "--epochs", "0", "--out",
                            "{w}/never"], None, ERROR,
     "--epochs 0 is not allowed: the cap on the neural models' epochs must be an integer in "
     "[1, 10,000]", None),
    ("benchmark-seeds-epochs-negative", ["benchmark", "--data", "/nonexistent", "--seeds", "0,1",
                                         "--epochs", "-2", "--out", "{w}/never"], None, ERROR,
     "--epochs -2 is not allowed", None),
    ("benchmark-model-twice", ["benchmark", "--data", "/nonexistent", "--models",
                               "tfidf-nb,tfidf-svm,tfidf-nb", "--out", "{w}/never"], None, ERROR,
     "--models names 'tfidf-nb' twice: list each model once", None),
    ("benchmark-beam-0", ["benchmark", "--data", "/nonexistent", "--task", "subject", "--models",
                          "lead", "--beam", "0", "--out", "{w}/never"], None, ERROR,
     "beam width 0 is not allowed: the beam (--beam) must be a whole number from 1 to 256",
     None),
    ("summarize-beam-too-wide", ["summarize", "-m", "{w}/nomodel", "--beam", "100000", "a body"],
     None, ERROR, "beam width 100000 is not allowed", None),
    ("train-beam-0", ["train", "--data", "/nonexistent", "--task", "subject", "--model",
                      "seq2seq", "--beam", "0", "--out", "{w}/never"], None, ERROR,
     "beam width 0 is not allowed", None),
    ("benchmark-validation-size-0", ["benchmark", "--data", "/nonexistent", "--validation-size",
                                     "0", "--out", "{w}/never"], None, ERROR,
     "--validation-size 0.0 is not allowed: the share of the texts it splits off must be a "
     "number between 0 and 1", None),
    ("train-validation-size", ["train", "-m", "tfidf-nb", "--data", "/nonexistent",
                               "--validation-size", "1.5", "--out", "{w}/never"], None, ERROR,
     "--validation-size 1.5 is not allowed", None),
    ("tune-validation-size", ["tune", "-m", "tfidf-nb", "--data", "/nonexistent",
                              "--validation-size", "1", "--out", "{w}/never"], None, ERROR,
     "--validation-size 1.0 is not allowed", None),
    ("test-size-0", ["data", "--data", "/nonexistent", "--split", "random", "--test-size", "0"],
     None, ERROR, "--test-size 0.0 is not allowed", None),
    # before the model is loaded (there is none here)
    ("summarize-beam-0", ["summarize", "-m", "{w}/nomodel", "--beam", "0", "a body"], None,
     ERROR, "beam width 0 is not allowed", None),
    ("seed-negative", [*SVM, "--seed", "-1"], None, ERROR,
     "--seed -1 is not allowed: a seed must be a whole number from 0 to 4,294,967,295", None),
    ("seed-too-large", ["data", "--data", "/nonexistent", "--seed", "4294967296"], None, ERROR,
     "--seed 4294967296 is not allowed", None),
    ("seeds-too-large", ["benchmark", "--data", "/nonexistent", "--seeds", "0,4294967296",
                         "--out", "{w}/never"], None, ERROR,
     "--seeds: seed 4294967296 is not allowed", None),
    ("serve-port-negative", ["serve", "-m", "{w}/m", "--port", "-1"], None, ERROR,
     "--port -1 is not a port: give one from 0 to 65535 (0 picks a free one)", None),
    ("serve-port-too-large", ["serve", "-m", "{w}/m", "--port", "70000"], None, ERROR,
     "--port 70000 is not a port", None),
    ("html-is-dir", ["explain", "-m", "{w}/m", "--html", "{w}/notmodel", "engine"], None,
     ERROR, "--html {w}/notmodel is a directory: give a file name", None),
    ("html-under-file", ["explain", "-m", "{w}/m", "--html", "{w}/afile.txt/x.html", "engine"],
     None, ERROR, "{w}/afile.txt is a file, not a directory", None),
    ("file-is-dir", ["predict", "-m", "{w}/m", "--file", "{w}/notmodel"], None, ERROR,
     "--file {w}/notmodel is a directory: give a file", None),
    ("file-is-device", ["predict", "-m", "{w}/m", "--file", "/dev/zero"], None, ERROR,
     "--file /dev/zero is a device, not a file", None),
    # 10, 14. model directories
    ("manifest-changed", ["predict", "-m", "{w}/reversed", "engine"], None, ERROR,
     "manifest.json is corrupted or was modified (checksum mismatch)", None),
    ("format-version-string", ["predict", "-m", "{w}/version", "engine"], None, ERROR,
     "invalid format_version ('1', not a whole number)", None),
    ("planted-regex", ["predict", "-m", "{w}/regex", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
     None, ERROR, "token pattern '(?:a+)+b' is not one newstopic writes", None),
    ("manifest-unprotected", ["predict", "-m", "{w}/old", "engine"], None, 0,
     "is not protected by a checksum", 1),
    ("keras-truncated", ["predict", "-m", "{w}/truncated", "engine"], None, ERROR,
     "model.keras is truncated or not a Keras model file", None),
    # 6. no known word
    ("no-known-word", ["predict", "-m", "{w}/m", "engine brake", "zzz qqq"], None, 0,
     "1 text(s) hold no word the model knows (text 2)", 2),
    ("no-known-word-neural", ["predict", "-m", "{w}/gru", "zzz qqq"], None, 0,
     "hold no word the model knows (text 1)", 1),
    ("no-known-word-explain", ["explain", "-m", "{w}/m", "engine brake", "zzz qqq"], None, 0,
     "1 text(s) hold no word the model knows (text 2)", None),
    # other one-line refusals
    ("top-k-0", ["predict", "-m", "{w}/m", "-k", "0", "engine"], None, ERROR,
     "--top-k 0 must be at least 1", None),
    ("texts-and-file", ["predict", "-m", "{w}/m", "--file", "{w}/afile.txt", "engine"], None,
     ERROR, "give texts as arguments or --file, not both", None),
    ("serve-every-interface", ["serve", "-m", "{w}/m", "--host", "0.0.0.0", "--port", "0"],
     None, ERROR, "--host 0.0.0.0 listens on every interface: name the host names clients use "
                  "with --allow-host NAME", None),
    ("serve-allow-blank-host", ["serve", "-m", "{w}/m", "--host", "0.0.0.0", "--allow-host", "",
                                "--port", "0"], None, ERROR,
     "--allow-host '' is not a host name: give the name clients put in the address", None),
    ("serve-allow-url", ["serve", "-m", "{w}/m", "--allow-host", "http://example.org/",
                         "--port", "0"], None, ERROR,
     "--allow-host 'http://example.org/' is not a host name", None),
    ("serve-header-timeout", ["serve", "-m", "{w}/m", "--header-timeout", "0"], None, ERROR,
     "--header-timeout 0 must be between 0 and 3600 seconds", None),
    ("serve-connections", ["serve", "-m", "{w}/m", "--max-connections", "0"], None, ERROR,
     "must be at least 1", None),
    ("models-unknown", ["models", "nosuch"], None, ERROR, "unknown model 'nosuch'", None),
    ("no-class-folders", ["data", "--train-file", "{w}/noclasses"], None, ERROR,
     "has no class folders", None),
    ("model-unknown", ["train", "--model", "tfidf-magic", "--out", "x"], None, ERROR,
     "unknown model 'tfidf-magic'", None),
    ("train-file-missing", ["data", "--train-file", "{w}/missing.csv"], None, ERROR,
     "file not found: {w}/missing.csv", None),
    ("train-file-format", ["data", "--train-file", "{w}/afile.txt"], None, ERROR,
     "unknown format '.txt'", None),
    ("no-text-column", ["data", "--train-file", "{w}/cols.csv"], None, ERROR,
     "no column 'text'; columns found: body, label; choose one with --text-column", None),
    ("blank-text", ["data", "--train-file", "{w}/blank.csv"], None, ERROR,
     "1 empty or whitespace-only texts", None),
    ("one-class", ["data", "--train-file", "{w}/one.csv"], None, ERROR, "only 1 class", None),
    ("preset-with-file", ["data", "--preset", "seed", "--train-file", "{w}/cols.csv"], None,
     ERROR, "--preset applies to 20 Newsgroups", None),
    ("model-dir-missing", ["predict", "-m", "{w}/nomodel", "hello"], None, ERROR,
     "model directory not found", None),
    ("model-dir-foreign", ["predict", "-m", "{w}/notmodel", "hello"], None, ERROR,
     "is not a newstopic model", None),
    ("manifest-broken", ["predict", "-m", "{w}/broken", "hello"], None, ERROR,
     "manifest.json is corrupted", None),
    ("param-without-value", [*SVM, "--param", "C"], None, ERROR,
     "--param 'C' is not NAME=VALUE", None),
]


@pytest.fixture(scope="module")
def answers(work):
    """Every case of CASES, run at once in fresh processes (most of a case's time is the
    interpreter starting)."""
    def run(case):
        name, args, stdin = case[:3]
        result = run_cli(*[a.replace("{w}", str(work)) for a in args], stdin=stdin,
                             env={"KERAS_BACKEND": os.environ.get("KERAS_BACKEND",
                                                                  "tensorflow")})
        return name, result

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(run, CASES))


def test_the_table_has_sixty_cases():
    assert len(CASES) >= 60 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("name, args, stdin, code, message, lines", CASES,
                         ids=[case[0] for case in CASES])
def test_bad_input_through_the_cli(work, answers, name, args, stdin, code, message, lines):
    result = answers[name]
    assert result.returncode == code, result.stderr
    message = message.replace("{w}", str(work))
    assert message in result.stderr, result.stderr
    assert "error: unexpected" not in result.stderr and "Traceback" not in result.stderr
    if code:  # one line on stderr, nothing on stdout, and no model written
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
        assert not (work / "never").exists()
    if lines is not None:
        assert len(result.stdout.splitlines()) == lines, result.stdout


def test_numeric_jsonl_labels_are_one_class_each(work):
    from newstopic.data import read_labelled

    texts, labels = read_labelled(work / "numeric.jsonl")
    assert labels == ["2", "2", "3", "3"]


def test_stale_temporary_directories_of_ended_saves_are_removed(work, tmp_path, corpus):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".m.tmp-{dead}-x1y2"
    live = tmp_path / f".m.tmp-{os.getpid()}-busy"  # a save of a process still running
    foreign = tmp_path / ".m.tmp-mine"  # not named as newstopic names them
    for folder in (stale, live, foreign):
        folder.mkdir()
    TextClassifier(model="tfidf-nb").fit(*corpus).save(tmp_path / "m")
    assert not stale.exists() and live.exists() and foreign.exists()


# --- the Python API ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(corpus):
    return TextClassifier(model="tfidf-nb").fit(*corpus)


@pytest.mark.parametrize("call, message", [
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(["a b", None], ["x", "y"]),
     "expected texts .str., got NoneType at position 1"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(c[0], None),
     "expected a list of labels, got NoneType"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(c[0], "cars"),
     "expected a list of labels, got str"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(c[0], [None] + c[1][1:]),
     "label at position 0 is missing"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(c[0], [float("nan")] + c[1][1:]),
     "label at position 0 is missing"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(c[0], [1] + c[1][1:]),
     "labels mix strings and numbers"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(c[0], [[y] for y in c[1]]),
     "expected one label per text, got an array of shape"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(c[0][:5], c[1]),
     "5 texts but 120 labels"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(None, c[1]),
     "expected a list of texts, got NoneType"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(*c, validation_data=(c[0][:3], c[1][:2])),
     "validation_data: 3 texts but 2 labels"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(*c, validation_data=c[0]),
     r"validation_data must be a pair \(texts, labels\)"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(*c, validation_data=([], [])),
     "validation_data holds no texts"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(*c, sample_weight=[1] * len(c[1])),
     "fit.. takes no argument 'sample_weight': besides texts and labels it takes"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(*c, trained={}),
     "model 'tfidf-nb' has no members: trained= applies to an ensemble"),
    (lambda c, f: TextClassifier(model="tfidf-svm", C="abc").fit(*c),
     "C='abc' is not allowed"),
    (lambda c, f: TextClassifier(model="gru", units=0).fit(*c), "units=0 is not allowed"),
    (lambda c, f: TextClassifier(model="tfidf-svm", seed=-1).fit(*c),
     "seed -1 is not allowed: a seed must be a whole number from 0 to 4,294,967,295"),
    (lambda c, f: stratified_split(*c, 0.25, 2**32, "the corpus"),
     "seed 4294967296 is not allowed"),
    (lambda c, f: TextClassifier(model="tfidf-lr", min_df=1000).fit(*c),
     "min_df=1000 is above the 120 training texts"),
    (lambda c, f: f.score(c[0][:3], c[1]), "3 texts but 120 labels"),
    (lambda c, f: f.score([], []), "no texts to score"),
    (lambda c, f: f.predict("one text"), "got one string: wrap it in a list"),
    (lambda c, f: f.predict([b"bytes"]), "got bytes at position 0"),
    # a one-column table: iterating it would give its column names, not its texts
    (lambda c, f: f.predict(np.array([[text] for text in c[0]])),
     r"got a ndarray of shape \(120, 1\): pass one column of texts"),
    (lambda c, f: TextClassifier(model="tfidf-nb").fit(np.array([c[0]]).T, c[1]),
     r"got a ndarray of shape \(120, 1\)"),
    (lambda c, f: TextClassifier().predict(["x"]), "is not fitted yet"),
])
def test_bad_input_through_the_python_api(corpus, fitted, call, message):
    with pytest.raises(NewstopicError, match=message):
        call(corpus, fitted)


def test_predicting_nothing_gives_empty_answers(fitted):
    assert fitted.predict([]).shape == (0,)
    assert fitted.predict_proba([]).shape == (0, 3)


def test_a_text_with_no_known_word_warns_in_python(fitted):
    with pytest.warns(NoKnownWordWarning, match="1 text.s. hold no word .*text 2"):
        proba = fitted.predict_proba(["garlic and butter", "zzz qqq"])
    with pytest.warns(NoKnownWordWarning, match="1 text.s. hold no word .*text 1"):
        assert fitted.explain("zzz qqq").top == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.predict(["garlic and butter"])
        fitted.explain("garlic and butter")
    prior = np.exp(fitted.model_.pipeline.steps[-1][1].class_log_prior_) if hasattr(
        fitted.model_.pipeline.steps[-1][1], "class_log_prior_") else None
    assert proba.shape == (2, 3) and (prior is None or np.allclose(proba[1].sum(), 1))


# --- processes: scripts, kills ---------------------------------------------------------------


def test_a_script_without_a_main_guard_trains_a_neural_model(tmp_path, corpus):
    """word2vec runs in a child process: it must not re-import the user's script."""
    write_table(tmp_path / "train.csv", *corpus)
    script = tmp_path / "train.py"
    script.write_text(
        "from newstopic import TextClassifier, load_texts\n"
        f"data = load_texts({str(tmp_path / 'train.csv')!r})\n"
        "TextClassifier(model='tfidf-lr').fit(data.train_texts, data.train_labels)\n"
        "print('tfidf-lr fitted', flush=True)\n"
        "clf = TextClassifier(model='gru', epochs=1, max_words=300, max_len=32)\n"
        "clf.fit(data.train_texts, data.train_labels)\n"
        "print('gru', clf.score(data.test_texts, data.test_labels) >= 0)\n")
    for how in (["python", str(script)], ["stdin"]):
        command = [sys.executable, str(script)] if how[0] == "python" else [sys.executable, "-"]
        result = subprocess.run(command, input=None if how[0] == "python" else
                                script.read_text(), capture_output=True, text=True,
                                timeout=300, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.splitlines() == ["tfidf-lr fitted", "gru True"], result.stdout


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path, corpus):
    write_table(tmp_path / "train.csv", *make_corpus(per_class=80, seed=3))
    args = ["train", "-m", "gru", "--train-file", tmp_path / "train.csv", "--epochs", "4",
            "--batch-size", "32", "--param", "patience=null", "--param", "max_words=500",
            "--param", "word2vec=false", "-q"]
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    whole = run_cli(*args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    command = [sys.executable, "-m", "newstopic", *map(str, args), "--out", tmp_path / "cut"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    state = tmp_path / ".cut.checkpoint" / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if json.loads(state.read_text())["epochs_done"] >= 2:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(30) == -signal.SIGKILL, "the run ended before it could be killed"
    resumed = run_cli(*args, "--out", tmp_path / "cut", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    texts = make_corpus(per_class=10, seed=11)[0]
    whole, cut = (TextClassifier.load(tmp_path / name) for name in ("whole", "cut"))
    assert np.array_equal(whole.predict_proba(texts), cut.predict_proba(texts))
    assert [w.tolist() for w in whole.model_.model.get_weights()] == [
        c.tolist() for c in cut.model_.model.get_weights()]


# --- the server ------------------------------------------------------------------------------


def _lower_file_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_a_flood_of_half_open_connections_does_not_starve_a_request(work):
    """Slow loris: 600 connections that send part of their headers, against a server that may
    open 256 files (enough to exhaust it without the connection limit)."""
    server = subprocess.Popen([sys.executable, "-m", "newstopic", "serve", "-m", work / "m",
                               "--port", "0", "--header-timeout", "30", "-q"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=_lower_file_limit)
    flood = []
    try:
        line = server.stdout.readline()
        assert line.startswith("serving m on http://127.0.0.1:"), server.stderr.read()
        port = int(line.rsplit(":", 1)[1].strip("/\n"))
        for _ in range(600):
            connection = socket.create_connection(("127.0.0.1", port), timeout=10)
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            flood.append(connection)
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            body = json.dumps({"texts": ["the engine and the brakes"]}).encode()
            client.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Content-Type: application/json\r\nConnection: close\r\n"
                           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        assert time.monotonic() - started < 10
        assert answer.startswith(b"HTTP/1.1 200") and b'"label":"cars"' in answer.replace(
            b" ", b"")
        assert server.poll() is None
    finally:
        for connection in flood:
            connection.close()
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "Traceback" not in errors and len(errors) < 10_000, errors[-2000:]
