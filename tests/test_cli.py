"""The command line, run in fresh processes as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import assert_one_line_error, make_corpus, run_cli, write_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus):
    root = tmp_path_factory.mktemp("cli")
    train = write_table(root / "train.csv", *corpus)
    result = run_cli("train", "--model", "tfidf-svm", "--train-file", train, "--seed", "2",
                     "--out", root / "model", "--quiet")
    assert result.returncode == 0, result.stderr
    return root, result


def test_models_lists_one_model_per_line():
    result = run_cli("models")
    lines = result.stdout.splitlines()
    assert result.returncode == 0
    assert any(line.startswith("tfidf-svm\tclassical\t") for line in lines)
    # the family each is reported under: an ensemble's follows its members
    families = {line.split("\t")[0]: line.split("\t")[1] for line in lines}
    assert families["bigru-tfidf"] == families["ensemble"] == "hybrid"
    assert families["tfidf-transductive"] == families["ensemble-transductive"] == "transductive"
    assert families["seq2seq"] == "subject"
    assert all(len(line.split("\t")) == 3 for line in lines)
    # the classifiers, then the subject models (which the command line had imported first)
    tasks = ["subject" if family == "subject" else "classify" for family in families.values()]
    assert tasks == sorted(tasks) and lines[0].startswith("rnn\t")


def test_train_prints_one_result_line_and_writes_the_model(trained):
    root, result = trained
    (line,) = result.stdout.splitlines()
    assert line.startswith("tfidf-svm\tvalidation accuracy ") and "test accuracy" in line
    manifest = json.loads((root / "model" / "manifest.json").read_text())
    assert manifest["config"]["seed"] == 2 and manifest["config"]["validation_size"] == 0.1
    assert manifest["metrics"]["test"]["accuracy"] > 0.9
    assert manifest["metrics"]["validation"]["n"] == 10  # 10% of the 96 training documents


def test_predict_from_arguments_file_and_stdin(trained, tmp_path):
    root, _ = trained
    model = root / "model"
    result = run_cli("predict", "--model", model, "the rocket reached orbit",
                     "garlic butter sauce recipe")
    assert result.returncode == 0, result.stderr
    labels = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[0] for row in labels] == ["space", "cooking"]
    assert all(0.5 < float(row[1]) <= 1 for row in labels)
    docs = write_table(tmp_path / "docs.csv", ["brake and clutch repair"], ["?"])
    assert run_cli("predict", "-m", model, "--file", docs).stdout.startswith("cars\t")
    piped = run_cli("predict", "-m", model, stdin="lunar telescope\n\ntire piston\n")
    assert [line.split("\t")[0] for line in piped.stdout.splitlines()] == ["space", "cars"]


def test_predict_json_and_top_k(trained):
    root, _ = trained
    result = run_cli("predict", "-m", root / "model", "--json", "--top-k", "2", "comet orbit")
    record = json.loads(result.stdout)
    assert record["label"] == "space" and record["top"][0] == ["space", record["probability"]]
    assert len(record["top"]) == 2 and record["top"][1][1] <= record["probability"]
    plain = run_cli("predict", "-m", root / "model", "-k", "3", "comet orbit").stdout.split("\t")
    assert len(plain) == 6 and plain[0] == "space"


def test_classical_predict_imports_neither_keras_nor_tensorflow(trained):
    root, _ = trained
    code = ("import sys\nfrom newstopic.cli import main\n"
            f"sys.argv = ['newstopic', 'predict', '-m', {str(root / 'model')!r}, 'rocket']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'sklearn', 'skops') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.splitlines() == ["space\t" + result.stdout.split("\t")[1].split()[0],
                                          "[]"]


def test_evaluate_uses_the_models_own_data_and_writes_reports(trained, tmp_path):
    root, _ = trained
    result = run_cli("evaluate", "--model", root / "model", "--out", tmp_path / "eval", "-q")
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("tfidf-svm\taccuracy ") and summary.endswith("\t24 documents")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"cars", "cooking", "space"}
    assert (tmp_path / "eval" / "confusion_matrix.png").stat().st_size > 1000


def test_evaluate_on_another_file(trained, tmp_path):
    root, _ = trained
    texts, labels = make_corpus(per_class=5, seed=42)
    test = write_table(tmp_path / "test.jsonl", texts, labels)
    result = run_cli("evaluate", "-m", root / "model", "--train-file", root / "train.csv",
                     "--test-file", test)
    assert result.returncode == 0 and "\t15 documents" in result.stdout


def test_evaluate_on_some_of_the_models_classes_averages_f1_over_those(trained, tmp_path):
    root, _ = trained
    texts, labels = make_corpus(per_class=5, seed=43)
    kept = [i for i, label in enumerate(labels) if label != "cooking"]
    test = write_table(tmp_path / "test.csv", [texts[i] for i in kept], [labels[i] for i in kept])
    result = run_cli("evaluate", "-m", root / "model", "--train-file", root / "train.csv",
                     "--test-file", test, "--out", tmp_path / "eval", "-q")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    per_class = metrics["per_class"]
    counted = [c for c in per_class if per_class[c]["support"] or c in metrics["predictions"]]
    assert "cooking" in per_class and "cooking" not in counted
    assert metrics["macro_f1"] == pytest.approx(
        sum(per_class[c]["f1"] for c in counted) / len(counted))


def test_benchmark_writes_results_report_and_plot(tmp_path, corpus_csv):
    out = tmp_path / "bench"
    result = run_cli("benchmark", "--train-file", corpus_csv, "--models",
                     "tfidf-nb,tfidf-svm,tfidf-transductive", "--out", out, "--quiet",
                     "--seed", "4")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "results.json").read_text())
    assert {"preset", "categories", "remove", "split", "seed", "versions", "machine",
            "results"} <= set(summary)
    assert summary["seed"] == 4 and [r["model"] for r in summary["results"]] == [
        "tfidf-nb", "tfidf-svm", "tfidf-transductive"]
    for row in summary["results"]:
        assert 0.8 < row["accuracy"] <= 1
        assert row["train_seconds"] > 0 and row["predict_docs_per_second"] > 0
        assert row["parameters"] > 0 and row["artifact_bytes"] > 0
    assert [r["family"] for r in summary["results"]] == ["classical"] * 2 + ["transductive"]
    report = (out / "report.md").read_text()
    assert "| tfidf-svm | classical |" in report and "Only classical models ran" in report
    # the model that saw the test texts gets its own row and sentence, and is compared with none
    assert "| tfidf-transductive | transductive |" in report
    assert "`tfidf-transductive`, transductive (it also fitted on the test texts" in report
    predictions = json.loads((out / "predictions.json").read_text())  # for the paired tests
    assert set(predictions["models"]) == {"tfidf-nb", "tfidf-svm", "tfidf-transductive"}
    assert len(predictions["truth"]) == len(predictions["models"]["tfidf-nb"]) > 0
    assert (out / "accuracy_vs_time.png").stat().st_size > 1000
    assert "tfidf-nb" in result.stdout and "tfidf-svm" in result.stdout


def test_predict_without_input_says_how_to_give_it(trained):
    root, _ = trained
    assert_one_line_error(run_cli("predict", "-m", root / "model", stdin=""),
                          "standard input held no text")


def test_seed3_svm_labels_the_seed_sentence(archive, tmp_path):
    model = tmp_path / "svm"
    result = run_cli("train", "--model", "tfidf-svm", "--preset", "seed3", "--data", archive,
                     "--out", model, "-q")
    assert result.returncode == 0, result.stderr
    test_accuracy = float(result.stdout.split("test accuracy ")[1].split("\t")[0])
    assert test_accuracy > 0.9
    predicted = run_cli("predict", "-m", model, "The car engine needs regular maintenance.")
    assert predicted.stdout.split("\t")[0] == "rec.autos"


def test_data_command_on_the_archive(archive):
    result = run_cli("data", "--data", archive, "--preset", "seed3", "--remove", "headers")
    assert result.returncode == 0, result.stderr
    assert "rec.autos" in result.stdout and "1784" in result.stdout and "p95" in result.stdout


def test_neural_train_predict_and_resume_hint(tmp_path, corpus_csv):
    model = tmp_path / "gru"
    result = run_cli("train", "--model", "gru", "--train-file", corpus_csv, "--epochs", "2",
                     "--param", "max_len=32", "--param", "units=8", "--out", model)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("gru\tvalidation accuracy ")
    assert "epoch 2/2" in result.stderr  # per-epoch progress, on stderr
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["family"] == "neural" and manifest["predictor"]["epochs_run"] == 2
    predicted = run_cli("predict", "-m", model, "--json", "orbit rocket comet")
    record = json.loads(predicted.stdout)
    assert record["label"] in {"cars", "cooking", "space"} and 0 < record["probability"] <= 1
    assert_one_line_error(run_cli("train", "--model", "tfidf-svm", "--train-file", corpus_csv,
                                  "--epochs", "3", "--out", tmp_path / "x"),
                          "model 'tfidf-svm' has no parameter 'epochs'")
