"""`newstopic tune`: search spaces from the parameter table, shared studies, pruning."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import optuna
import pytest

from conftest import assert_one_line_error, make_corpus, run_cli, write_table
from newstopic.data import Dataset
from newstopic.params import dimension
from newstopic.registry import model_names, registered
from newstopic.tuning import open_storage, tune


def test_search_ranges_are_typed_and_scaled_by_the_parameter_table():
    assert dimension("m", "C", (0.01, 10.0)).log
    assert dimension("m", "min_df", (1, 5)).kind is int
    assert dimension("m", "max_df", (0.2, 1.0)).kind is float
    assert dimension("m", "sublinear_tf", (True, False)).choices == (True, False)
    for bounds, name in (((-1.0, 2.0), "C"), ((0.5, 2.0), "ngram_max"), ((3, 1), "units"),
                         (("max", "sum"), "pooling")):
        with pytest.raises(ValueError, match=name):
            dimension("m", name, bounds)
    tunable = [n for n in model_names("classify") if registered(n).tunable]
    assert {"tfidf-svm", "tfidf-nb", "tfidf-lr", "lstm", "transformer"} <= set(tunable)
    assert "seed-lstm" not in tunable and "ensemble" not in tunable


def study_trials(storage: str, name: str) -> list:
    return [t for t in optuna.load_study(study_name=name, storage=storage).trials
            if not t.user_attrs.get("surplus")]


def test_two_processes_share_one_sqlite_study_and_its_total(tmp_path):
    train = write_table(tmp_path / "train.csv", *make_corpus(per_class=30, seed=5))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = [sys.executable, "-m", "newstopic", "tune", "--model", "tfidf-nb", "--trials",
               "12", "--storage", storage, "--study", "shared", "--train-file", train,
               "--quiet"]
    processes = [subprocess.Popen(command + ["--out", tmp_path / f"out{i}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
    results = [p.communicate(timeout=600) for p in processes]
    for process, (stdout, stderr) in zip(processes, results):
        assert process.returncode == 0, stderr
        assert stdout.startswith("tfidf-nb\tbest validation accuracy ")
    trials = study_trials(storage, "shared")
    assert sorted(t.number for t in trials) == list(range(12))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert trials[0].user_attrs.get("defaults") and trials[0].params["alpha"] == 0.3
    settings = {json.dumps(t.params, sort_keys=True) for t in trials}
    assert len(settings) >= 10  # the two processes did not draw the same settings
    best = max(t.user_attrs["validation_accuracy"] for t in trials)
    for i in range(2):
        out = tmp_path / f"out{i}"
        summary = json.loads((out / "tuning.json").read_text())
        assert summary["best_validation_accuracy"] == best
        assert summary["trials_in_study"] == 12
        assert (out / "model" / "manifest.json").is_file()
        rows = list(csv.DictReader(open(out / "trials.csv", encoding="utf-8")))
        assert len(rows) == 12 and rows[0]["note"] == "the defaults"
        assert (out / "optimisation_history.png").stat().st_size > 1000
        assert (out / "parameter_importance.png").stat().st_size > 1000
    # The study is complete: another process only trains its best setting.
    again = run_cli(*command[3:], "--out", tmp_path / "out2")
    assert again.returncode == 0, again.stderr
    assert len(study_trials(storage, "shared")) == 12


def test_a_tiny_neural_study_prunes_trials_by_validation_loss(tmp_path):
    texts, labels = make_corpus(per_class=30, seed=8)
    held, held_labels = make_corpus(per_class=10, seed=9)
    dataset = Dataset(texts, labels, held, held_labels,
                      {"source": "test corpus", "split": "given"})
    summary = tune("gru", dataset, trials=6, out=tmp_path / "out", seed=1,
                   params={"epochs": 4, "max_words": 200, "max_len": 32, "word2vec": False,
                           "batch_size": 16},
                   storage=str(tmp_path / "study.journal"))
    assert summary["pruned"] >= 1
    assert summary["trials_in_study"] == 6
    rows = list(csv.DictReader(open(tmp_path / "out" / "trials.csv", encoding="utf-8")))
    pruned = [r for r in rows if r["state"] == "PRUNED"]
    assert pruned and all(r["note"].startswith("pruned after epoch") for r in pruned)
    assert (tmp_path / "out" / "model" / "manifest.json").is_file()


def test_a_study_of_one_trial_runs_the_defaults_and_trains_them(tmp_path):
    texts, labels = make_corpus(per_class=20, seed=3)
    held, held_labels = make_corpus(per_class=5, seed=4)
    dataset = Dataset(texts, labels, held, held_labels,
                      {"source": "test corpus", "split": "given"})
    summary = tune("tfidf-nb", dataset, trials=1, out=tmp_path / "out",
                   storage=str(tmp_path / "study.journal"))
    assert summary["trials_in_study"] == 1
    defaults = registered("tfidf-nb").parameters()
    assert summary["best_params"] == {k: defaults[k] for k in summary["best_params"]}
    assert (tmp_path / "out" / "model" / "manifest.json").is_file()


def test_bad_tuning_requests_get_one_line_errors(tmp_path):
    train = write_table(tmp_path / "train.csv", *make_corpus(per_class=10))
    base = ["tune", "--train-file", train, "--quiet"]
    cases = [
        (run_cli(*base, "--model", "seed-lstm", "--out", tmp_path / "a"), "no search space"),
        (run_cli(*base, "--model", "ensemble", "--out", tmp_path / "a"), "no search space"),
        (run_cli(*base, "--model", "nosuch", "--out", tmp_path / "a"), "unknown model"),
        (run_cli(*base, "--model", "tfidf-svm", "--trials", "0", "--out", tmp_path / "a"),
         "--trials"),
        (run_cli(*base, "--model", "tfidf-svm", "--storage", "nosuchdb://x", "--out",
                 tmp_path / "a"), "cannot open --storage"),
        (run_cli(*base, "--model", "tfidf-svm", "--param", "C=-1", "--out", tmp_path / "a"),
         "C=-1"),
    ]
    for result, fragment in cases:
        assert_one_line_error(result, fragment)


def test_processes_opening_a_new_database_at_once_all_get_the_storage(tmp_path):
    # Threads race as processes do: to create the tables and record the schema version.
    for round_ in range(5):
        url = f"sqlite:///{tmp_path / f'study{round_}.db'}"
        start = threading.Barrier(4)

        def open_it(_):
            start.wait()
            return open_storage(url, tmp_path / "out")

        with ThreadPoolExecutor(4) as pool:
            storages = list(pool.map(open_it, range(4)))
        assert len(storages) == 4
        optuna.create_study(storage=storages[0], study_name="s")
        assert optuna.load_study(storage=storages[3], study_name="s").study_name == "s"
