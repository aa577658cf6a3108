"""Training runs and the benchmark: one split, validation carved from the training part only."""

from __future__ import annotations

import time
from pathlib import Path

from newstopic.data import Dataset, stratified_split
from newstopic.environment import machine, versions
from newstopic.estimator import TextClassifier
from newstopic.evaluation import (
    evaluate,
    headline,
    plot_accuracy_vs_time,
    plot_confusion_matrix,
    write_json,
    write_report,
)
from newstopic.registry import get_model

VALIDATION_SIZE = 0.1


def train(model: str, dataset: Dataset, *, seed: int = 0, params: dict | None = None,
          validation_size: float = VALIDATION_SIZE, out: Path | None = None):
    """Fit `model` on the training split less a stratified validation part, evaluate it on
    validation and test, and save it to `out` if given. Returns (classifier, metrics, test)."""
    fit_texts, val_texts, fit_labels, val_labels = stratified_split(
        dataset.train_texts, dataset.train_labels, validation_size, seed, "the training split")
    classifier = TextClassifier(model, seed=seed, **(params or {}))
    start = time.perf_counter()
    classifier.fit(fit_texts, fit_labels, validation_data=(val_texts, val_labels))
    train_seconds = time.perf_counter() - start
    test = evaluate(classifier, dataset.test_texts, dataset.test_labels)
    metrics = {"train_seconds": train_seconds,
               "validation": headline(evaluate(classifier, val_texts, val_labels)),
               "test": headline(test)}
    if out is not None:
        config = {**dataset.config, "validation_size": validation_size}
        classifier.save(out, config=config, metrics=metrics)
    return classifier, metrics, test


def benchmark(dataset: Dataset, models: list[str], out: Path, *, seed: int = 0,
              validation_size: float = VALIDATION_SIZE, progress=None) -> dict:
    """Train and evaluate each model on the same split; write results.json, report.md and the
    plots to `out` (results.json after every model, so an interrupted run keeps what it did)."""
    specs = [get_model(name) for name in models]  # unknown names fail before any work
    out.mkdir(parents=True, exist_ok=True)
    n_validation = round(validation_size * len(dataset.train_texts))
    summary = {
        "dataset": dataset.config["source"], "preset": dataset.config.get("preset"),
        "categories": dataset.labels, "remove": dataset.config.get("remove", []),
        "split": dataset.config["split"], "seed": seed, "validation_size": validation_size,
        "n_train": len(dataset.train_texts), "n_validation": n_validation,
        "n_test": len(dataset.test_texts), "versions": versions(), "machine": machine(),
        "results": [],
    }
    task = progress.add_task("models", total=len(specs)) if progress else None
    start, best_test = time.perf_counter(), None
    for spec in specs:
        if progress:
            progress.update(task, description=f"training {spec.name}")
        artifact = out / "models" / spec.name
        classifier, metrics, test = train(spec.name, dataset, seed=seed, out=artifact,
                                          validation_size=validation_size)
        summary["results"].append({
            "model": spec.name, "family": spec.family, "accuracy": test["accuracy"],
            "macro_f1": test["macro_f1"], "validation_accuracy": metrics["validation"]["accuracy"],
            "train_seconds": metrics["train_seconds"],
            "predict_docs_per_second": test["predict_docs_per_second"],
            "parameters": classifier.n_parameters_,
            "artifact_bytes": sum(f.stat().st_size for f in artifact.iterdir()),
        })
        if best_test is None or test["accuracy"] > best_test[1]["accuracy"]:
            best_test = (spec.name, test)
        summary["best_model"] = best_test[0]
        summary["total_seconds"] = time.perf_counter() - start
        write_json(summary, out / "results.json")
        if progress:
            progress.advance(task)
    plot_accuracy_vs_time(summary["results"], out / "accuracy_vs_time.png",
                          f"{len(dataset.labels)} classes, remove: "
                          f"{','.join(summary['remove']) or 'nothing'}")
    plot_confusion_matrix(best_test[1], out / "confusion_matrix.png",
                          f"{best_test[0]}: accuracy {best_test[1]['accuracy']:.3f}")
    write_report(summary, out)
    return summary
