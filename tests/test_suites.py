"""Benchmarks over seeds and settings, and the paired significance tests of the verdict."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import assert_one_line_error, make_corpus, run_cli, write_table
from newstopic.data import Dataset, cut_training
from newstopic.errors import NewstopicError
from newstopic.evaluation import (best_by_validation, compare_families, inductive, paired_test,
                                  verdict)
from newstopic.registry import registered
from newstopic.results import render as render_results
from newstopic.suites import SETTINGS, SUITES, combine, parse_seeds, report, suite_settings
from newstopic.tasks import TASKS


def test_paired_test_counts_the_discordant_documents_and_brackets_the_difference():
    from scipy.stats import binomtest

    rng = np.random.default_rng(0)
    second = rng.random(2000) < 0.80
    first = second.copy()
    first[np.flatnonzero(~second)[:90]] = True  # first also gets 90 of second's errors right
    first[np.flatnonzero(second)[:30]] = False  # ... and 30 of its successes wrong
    test = paired_test(first, second, seed=1)
    assert (test["only_first"], test["only_second"]) == (90, 30)
    assert test["p_value"] == pytest.approx(binomtest(90, 120, 0.5).pvalue)
    assert test["difference"] == pytest.approx(60 / 2000)
    low, high = test["interval"]
    assert 0 < low < test["difference"] < high
    assert paired_test(first, second, seed=1) == test  # the bootstrap follows the seed
    same = paired_test(second, second, seed=1)
    assert (same["p_value"], same["interval"], same["difference"]) == (1.0, [0.0, 0.0], 0.0)


FAMILY_OF = {"tfidf-nb": "classical", "tfidf-transductive": "transductive"}


def _row(model, family, accuracy, validation):
    return {"model": model, "family": family, "accuracy": accuracy, "macro_f1": accuracy,
            "validation_accuracy": validation, "train_seconds": 1.0}


def test_the_verdict_chooses_each_familys_best_by_validation_and_tests_it():
    truth = ["a", "b"] * 100
    results = [_row("tfidf-svm", "classical", 0.90, 0.95), _row("tfidf-nb", "classical", 0.95,
                                                                0.90),
               _row("gru", "neural", 0.93, 0.96), _row("lstm", "neural", 0.99, 0.80),
               _row("bigru-tfidf", "hybrid", 0.97, 0.97)]
    best = best_by_validation(results)
    assert {f: r["model"] for f, r in best.items()} == {
        "classical": "tfidf-svm", "neural": "gru", "hybrid": "bigru-tfidf"}
    wrong = {"a": "b", "b": "a"}
    predictions = {name: [wrong[y] if i < round(200 * (1 - acc)) else y
                          for i, y in enumerate(truth)]
                   for name, acc in [("tfidf-svm", 0.90), ("gru", 0.93), ("bigru-tfidf", 0.97)]}
    comparison = compare_families(results, predictions, truth, seed=0)
    assert comparison["best"] == {"classical": "tfidf-svm", "neural": "gru",
                                  "hybrid": "bigru-tfidf"}
    assert comparison["neural_vs_classical"]["only_first"] == 6  # gru right where svm is not
    assert comparison["hybrid_vs_classical"]["difference"] == pytest.approx(0.07)
    text = verdict({"results": results, "comparison": comparison})
    assert "`gru`" in text and "`tfidf-svm`" in text and "`bigru-tfidf`" in text
    assert "McNemar" in text and text.count("p = ") == 2
    assert "highest test accuracy is 0.9900, by `lstm`" in text
    untested = verdict({"results": results})
    assert "not tested" in untested and "p = " not in untested


def test_models_with_a_tfidf_part_are_their_own_family():
    from newstopic.ensemble import EnsembleTextModel

    task = TASKS["classify"]
    assert task.family(registered("bigru-tfidf")) == "hybrid"
    assert task.family(registered("bigru")) == "neural"
    assert task.family(registered("tfidf-svm")) == "classical"
    ensemble = registered("ensemble")
    assert task.family(ensemble, EnsembleTextModel("ensemble")) == "hybrid"  # default members
    assert task.family(ensemble, EnsembleTextModel("ensemble", members="gru,lstm")) == "neural"


def test_a_transductive_model_is_its_own_family_and_never_the_default_nor_a_baseline():
    from newstopic.registry import default_models, model_names

    assert TASKS["classify"].family(registered("tfidf-transductive")) == "transductive"
    assert "tfidf-transductive" in model_names("classify")
    assert "tfidf-transductive" not in default_models("classify")
    assert {"tfidf-svm", "gru", "ensemble"} <= set(default_models("classify"))
    results = [_row("tfidf-svm", "classical", 0.90, 0.95), _row("gru", "neural", 0.93, 0.96),
               _row("tfidf-transductive", "transductive", 0.97, 0.99)]
    assert best_by_validation(results)["classical"]["model"] == "tfidf-svm"
    assert inductive(results) == results[:2]  # the best model (confusion matrix) is of these
    assert inductive(results[2:]) == results[2:]
    text = verdict({"results": results})
    assert "best sequence model, `gru`" in text and "best classical model, `tfidf-svm`" in text
    assert "highest test accuracy is 0.9300, by `gru`" in text
    assert "`tfidf-transductive`, transductive (it also fitted on the test texts, without their " \
           "labels), reaches 0.9700 (+4.00 points)" in text


def test_a_cut_training_set_is_a_stratified_seeded_sample():
    texts, labels = make_corpus(per_class=40)
    dataset = Dataset(texts, labels, texts[:5], labels[:5], {"source": "test"})
    cut = cut_training(dataset, 30, seed=0)
    assert len(cut.train_texts) == 30 and cut.config["train_size"] == 30
    assert sorted(set(cut.train_labels)) == dataset.labels
    assert all(cut.train_labels.count(label) == 10 for label in dataset.labels)
    assert cut.test_texts == dataset.test_texts
    assert cut_training(dataset, 30, seed=0).train_texts == cut.train_texts
    assert cut_training(dataset, 30, seed=1).train_texts != cut.train_texts
    assert cut_training(dataset, 500, seed=0) is dataset
    with pytest.raises(NewstopicError, match="one text of each"):
        cut_training(dataset, 2, seed=0)


def test_the_built_in_suites_keep_tuning_and_reporting_apart():
    assert len(SUITES["full"]) >= 8
    assert all(SETTINGS[n].role == "tuning" for n in SUITES["tuning"])
    assert all(SETTINGS[n].role == "reporting" for n in SUITES["reporting"])
    assert set(SUITES["full"]) == set(SUITES["tuning"]) | set(SUITES["reporting"])
    for name in SUITES["full"]:  # none is a preset the defaults were tuned on
        setting = SETTINGS[name]
        assert 3 <= len(setting.categories) <= 8 or setting.train_size
    sizes = {SETTINGS[n].train_size for n in SUITES["full"]}
    assert {300, 1000, 3000} <= sizes
    assert any(SETTINGS[n].remove for n in SUITES["full"])
    assert any(SETTINGS[n].split == "random" for n in SUITES["full"])


def test_combine_averages_the_seeds_and_ranks_the_models():
    def run(setting, role, seed, accuracies):
        return {"setting": setting, "role": role, "summary": {
            "seed": seed, "n_train": 10, "n_test": 5, "categories": ["a", "b"],
            "dataset": "d", "remove": [], "split": "bydate", "total_seconds": 2.0,
            "results": [_row(m, FAMILY_OF.get(m, "neural"), a, a)
                        for m, a in accuracies.items()]}}

    best = {"tfidf-transductive": 0.99}  # seen the test texts: shown, not ranked
    combined = combine([run("x", "reporting", 0, {"tfidf-nb": 0.8, "gru": 0.9, **best}),
                        run("x", "reporting", 1, {"tfidf-nb": 0.8, "gru": 0.6, **best}),
                        run("y", "reporting", 0, {"tfidf-nb": 0.7, "gru": 0.9})], [0, 1])
    x = {r["model"]: r for r in combined["settings"]["x"]["models"]}
    assert x["gru"]["accuracy"] == pytest.approx(0.75)
    assert (x["gru"]["accuracy_min"], x["gru"]["accuracy_max"]) == (0.6, 0.9)
    assert (x["tfidf-nb"]["rank"], x["gru"]["rank"]) == (1.0, 2.0)
    assert x["tfidf-transductive"]["rank"] is None
    assert combined["mean_ranks"]["reporting"] == {"tfidf-nb": 1.5, "gru": 1.5}
    table = [line for line in report(combined) if line.startswith("| tfidf-transductive |")]
    assert len(table) == 1 and table[0].endswith("| - |")
    assert combined["mean_ranks"]["tuning"] == {}
    assert combined["total_seconds"] == 6.0


@pytest.mark.parametrize("content, fragment", [
    ("[[setting]]\nname = 'a'\nrole = 'tuning'\ncolour = 1\n", "no key 'colour'"),
    ("[[setting]]\nname = 'a'\nrole = 'testing'\n", "role"),
    ("[[setting]]\nname = 'a b'\nrole = 'tuning'\n", "name"),
    ("[[setting]]\nname = 'a'\nrole = 'tuning'\n[[setting]]\nname = 'a'\nrole = 'tuning'\n",
     "twice"),
    ("[[setting]]\nname = 'a'\nrole = 'tuning'\ntest_file = 't.csv'\n", "without a train_file"),
    ("[[setting]]\nname = 'a'\nrole = 'tuning'\ntrain_size = 'many'\n", "train_size"),
    ("[[setting]]\nname = 'a'\nrole = 'tuning'\ntrain_file = 't.csv'\nsplit = 'random'\n",
     "applies to 20 Newsgroups"),
    ("models = 'gru'\n[[setting]]\nname = 'a'\nrole = 'tuning'\n", "'models'"),
    ("setting = [", "not valid TOML"),
])
def test_a_bad_suite_file_is_refused_in_one_line(tmp_path, content, fragment):
    path = tmp_path / "suite.toml"
    path.write_text(content)
    with pytest.raises(NewstopicError, match=fragment) as error:
        suite_settings(str(path))
    assert "\n" not in str(error.value)


def test_suite_file_paths_are_read_relative_to_the_file(tmp_path):
    (tmp_path / "suites").mkdir()
    path = tmp_path / "suites" / "mine.toml"
    path.write_text("models = ['tfidf-nb']\n[[setting]]\nname = 'mine'\nrole = 'reporting'\n"
                    "train_file = 'data/train.csv'\ntrain_size = 50\n")
    (settings,), models = suite_settings(str(path))
    assert models == ("tfidf-nb",)
    assert settings.train_file == str(tmp_path / "suites" / "data" / "train.csv")
    assert settings.train_size == 50


@pytest.fixture()
def suite_file(tmp_path):
    """Two settings of a user's own files: one with a test file, one split and cut."""
    texts, labels = make_corpus(per_class=40, seed=5)
    write_table(tmp_path / "train.csv", texts, labels)
    write_table(tmp_path / "test.csv", *make_corpus(per_class=15, seed=6))
    path = tmp_path / "suite.toml"
    path.write_text("[[setting]]\nname = 'own-test'\nrole = 'tuning'\ntrain_file = 'train.csv'\n"
                    "test_file = 'test.csv'\n\n[[setting]]\nname = 'split-cut'\n"
                    "role = 'reporting'\ntrain_file = 'train.csv'\ntrain_size = 60\n")
    return path


def test_a_suite_over_two_seeds_writes_one_report_from_its_runs(suite_file, tmp_path):
    out = tmp_path / "out"
    result = run_cli("benchmark", "--suite", suite_file, "--seeds", "0,1", "--models",
                     "tfidf-nb,tfidf-svm,gru", "--epochs", "1", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"report\t{out / 'report.md'}"
    combined = json.loads((out / "suite.json").read_text())
    assert list(combined["settings"]) == ["own-test", "split-cut"]
    for name, setting in combined["settings"].items():
        runs = [json.loads((out / name / f"seed-{s}" / "results.json").read_text())
                for s in (0, 1)]
        for row in setting["models"]:
            accuracies = [r["accuracy"] for run in runs for r in run["results"]
                          if r["model"] == row["model"]]
            assert row["accuracy"] == pytest.approx(np.mean(accuracies))
            assert (row["accuracy_min"], row["accuracy_max"]) == (min(accuracies),
                                                                  max(accuracies))
        assert [c["seed"] for c in setting["comparisons"]] == [0, 1]
        assert all(0 <= c["neural_vs_classical"]["p_value"] <= 1
                   for c in setting["comparisons"])
    assert combined["settings"]["split-cut"]["n_train"] == 60
    assert combined["settings"]["own-test"]["n_test"] == 45
    report = (out / "report.md").read_text()
    assert "## own-test (tuning)" in report and "## split-cut (reporting)" in report
    assert "Tuning settings" in report and "Reporting settings" in report
    assert (out / "suite.png").stat().st_size > 0
    # each run is a benchmark of its own: its verdict tests the families too
    assert "McNemar" in (out / "split-cut" / "seed-1" / "report.md").read_text()
    # --resume keeps every finished run, and their predictions for the tests
    run_file = out / "split-cut" / "seed-1" / "results.json"
    first = json.loads(run_file.read_text())
    first["command"] = "the first run's command"  # told apart from the resuming command
    first["total_seconds"] = 10_000.0  # the time it took, carried on by the resuming run
    run_file.write_text(json.dumps(first))
    again = run_cli("benchmark", "--suite", suite_file, "--seeds", "0,1", "--models",
                    "tfidf-nb,tfidf-svm,gru", "--epochs", "1", "--out", out, "--quiet",
                    "--resume")
    assert again.returncode == 0, again.stderr
    resumed = json.loads((out / "suite.json").read_text())
    for name, setting in combined["settings"].items():
        assert resumed["settings"][name]["models"] == setting["models"]
        assert resumed["settings"][name]["comparisons"] == setting["comparisons"]
    # each reused model keeps the provenance of the run that trained it
    rerun = json.loads(run_file.read_text())
    assert rerun["reused"] == {model: {"date": first["date"], "commit": first["commit"],
                                       "command": "the first run's command"}
                               for model in ("tfidf-nb", "tfidf-svm", "gru")}
    assert rerun["word2vec_seconds"] == first["word2vec_seconds"]
    assert rerun["total_seconds"] >= 10_000.0
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "run.json").write_text(run_file.read_text())
    assert f"`gru` is reused from the run of {first['date']}" in render_results(tmp_path / "docs")


def test_a_resumed_run_counts_only_the_time_of_the_models_it_keeps(corpus_csv, tmp_path):
    out = tmp_path / "out"
    args = ("benchmark", "--train-file", corpus_csv, "--out", out, "--quiet")
    first = run_cli(*args, "--models", "tfidf-nb,tfidf-svm,tfidf-lr")
    assert first.returncode == 0, first.stderr
    run = json.loads((out / "results.json").read_text())
    assert set(run["model_seconds"]) == {"tfidf-nb", "tfidf-svm", "tfidf-lr"}
    run["total_seconds"], run["model_seconds"]["tfidf-svm"] = 10_000.0, 4_000.0
    (out / "results.json").write_text(json.dumps(run))
    again = run_cli(*args, "--models", "tfidf-nb,tfidf-lr", "--resume")
    assert again.returncode == 0, again.stderr
    resumed = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in resumed["results"]] == ["tfidf-nb", "tfidf-lr"]
    assert resumed["model_seconds"] == {m: run["model_seconds"][m] for m in ("tfidf-nb",
                                                                             "tfidf-lr")}
    assert 6_000.0 <= resumed["total_seconds"] < 7_000.0  # tfidf-svm's 4,000 s left out
    # a model trained again counts this run's time, not the earlier run's too
    resumed["total_seconds"], resumed["model_seconds"]["tfidf-nb"] = 10_000.0, 3_000.0
    (out / "results.json").write_text(json.dumps(resumed))
    shutil.rmtree(out / "models" / "tfidf-nb")
    again = run_cli(*args, "--models", "tfidf-nb,tfidf-lr", "--resume")
    assert again.returncode == 0, again.stderr
    retrained = json.loads((out / "results.json").read_text())
    assert retrained["model_seconds"]["tfidf-nb"] < 3_000.0
    assert 7_000.0 <= retrained["total_seconds"] < 8_000.0
    # a results.json from before model_seconds: a dropped ensemble's train_seconds count its
    # members' too, and only its own are taken off
    retrained.pop("model_seconds")
    retrained["total_seconds"] = 10_000.0
    row = retrained["results"][0]
    retrained["results"] += [{**row, "model": "tfidf-svm", "train_seconds": 2_000.0},
                             {**row, "model": "ensemble", "train_seconds": 3_000.0}]
    (out / "results.json").write_text(json.dumps(retrained))
    again = run_cli(*args, "--models", "tfidf-nb,tfidf-lr", "--resume")
    assert again.returncode == 0, again.stderr
    # 10,000 s less the SVM's 2,000 and the ensemble's own 1,000
    assert 7_000.0 <= json.loads((out / "results.json").read_text())["total_seconds"] < 7_100.0


def test_seeds_alone_repeat_the_given_data(corpus_csv, tmp_path):
    out = tmp_path / "out"
    result = run_cli("benchmark", "--train-file", corpus_csv, "--seeds", "3,4", "--models",
                     "tfidf-nb,tfidf-svm", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    seeds = [json.loads((out / f"seed-{s}" / "results.json").read_text())["seed"]
             for s in (3, 4)]
    assert seeds == [3, 4]
    assert json.loads((out / "suite.json").read_text())["seeds"] == [3, 4]
    assert "## the given data (reporting)" in (out / "report.md").read_text()


@pytest.mark.parametrize("args, fragment", [
    (["--seeds", "0,x"], "--seeds"),
    (["--seeds", "1,1"], "--seeds"),
    (["--seeds", "0,1", "--seed", "2"], "not both"),
    (["--suite", "nonesuch"], "unknown suite 'nonesuch'"),
    (["--suite", "quick", "--preset", "seed"], "--preset"),
    (["--suite", "quick", "--task", "subject"], "classification"),
    (["--suite", "quick", "--models", "nonesuch"], "unknown model"),
])
def test_bad_repeated_benchmarks_are_refused_in_one_line(tmp_path, args, fragment):
    assert_one_line_error(run_cli("benchmark", *args, "--out", tmp_path / "o"), fragment)


def test_seeds_parse():
    assert parse_seeds("0, 1,2") == [0, 1, 2]
