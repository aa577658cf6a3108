"""Training runs and the benchmark: one split, validation carved from the training part only."""

from __future__ import annotations

import json
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
    plot_training_curves,
    write_json,
    write_report,
)
from newstopic.registry import get_model

VALIDATION_SIZE = 0.1


def checkpoint_path(out: Path) -> Path:
    """Where a neural model being trained into `out` keeps its last epoch."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoint"


def train(model: str, dataset: Dataset, *, seed: int = 0, params: dict | None = None,
          validation_size: float = VALIDATION_SIZE, out: Path | None = None, progress=None,
          resume: bool = False):
    """Fit `model` on the training split less a stratified validation part, evaluate it on
    validation and test, and save it to `out` if given. Neural models checkpoint every epoch
    beside `out` and, with `resume`, continue from there. Returns (classifier, metrics, test)."""
    fit_texts, val_texts, fit_labels, val_labels = stratified_split(
        dataset.train_texts, dataset.train_labels, validation_size, seed, "the training split")
    classifier = TextClassifier(model, seed=seed, **(params or {}))
    fit_params = {}
    if classifier.spec.family == "neural":
        fit_params = {"progress": progress, "resume": resume,
                      "checkpoint": None if out is None else checkpoint_path(out)}
    start = time.perf_counter()
    classifier.fit(fit_texts, fit_labels, validation_data=(val_texts, val_labels), **fit_params)
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
              validation_size: float = VALIDATION_SIZE, epochs: int | None = None,
              progress=None, resume: bool = False) -> dict:
    """Train and evaluate each model on the same split; write results.json, report.md and the
    plots to `out`. results.json is rewritten after every model and neural models checkpoint
    every epoch, so that `resume` skips finished models and continues the interrupted one.
    `epochs` caps the epochs of the neural models."""
    specs = [get_model(name) for name in models]  # unknown names fail before any work
    out.mkdir(parents=True, exist_ok=True)
    n_validation = round(validation_size * len(dataset.train_texts))
    summary = {
        "dataset": dataset.config["source"], "preset": dataset.config.get("preset"),
        "categories": dataset.labels, "remove": dataset.config.get("remove", []),
        "split": dataset.config["split"], "seed": seed, "validation_size": validation_size,
        "n_train": len(dataset.train_texts), "n_validation": n_validation,
        "n_test": len(dataset.test_texts), "versions": versions(), "machine": machine(),
        "epochs_cap": epochs, "results": [], "total_seconds": 0.0,
    }
    done = _finished_results(out / "results.json", summary) if resume else {}
    task = progress.add_task("models", total=len(specs)) if progress else None
    start, elapsed_before, curves = time.perf_counter(), sum(
        r["train_seconds"] for r in done.values()), {}
    for spec in specs:
        artifact = out / "models" / spec.name
        if spec.name in done:
            classifier = TextClassifier.load(artifact)
            row = done[spec.name]
        else:
            if progress:
                progress.update(task, description=f"training {spec.name}")
            params = ({"epochs": min(epochs, spec.parameters()["epochs"])}
                      if epochs and spec.family == "neural" else {})
            classifier, metrics, test = train(spec.name, dataset, seed=seed, params=params,
                                              out=artifact, validation_size=validation_size,
                                              progress=progress, resume=resume)
            row = {
                "model": spec.name, "family": spec.family, "accuracy": test["accuracy"],
                "macro_f1": test["macro_f1"],
                "validation_accuracy": metrics["validation"]["accuracy"],
                "train_seconds": metrics["train_seconds"],
                "predict_docs_per_second": test["predict_docs_per_second"],
                "parameters": classifier.n_parameters_,
                "artifact_bytes": sum(f.stat().st_size for f in artifact.iterdir()),
                "epochs_run": None, "seconds_per_epoch": None,
                "confusion_matrix": test["confusion_matrix"], "labels": test["labels"],
            }
            if spec.family == "neural":
                row.update(epochs_run=classifier.model_.epochs_run,
                           seconds_per_epoch=classifier.model_.seconds_per_epoch,
                           word2vec=classifier.model_.training["word2vec"])
        if spec.family == "neural":
            curves[spec.name] = classifier.model_.history
        summary["results"].append(row)
        summary["best_model"] = max(summary["results"], key=lambda r: r["accuracy"])["model"]
        summary["total_seconds"] = elapsed_before + time.perf_counter() - start
        write_json(summary, out / "results.json")
        if progress:
            progress.advance(task)
    best = next(r for r in summary["results"] if r["model"] == summary["best_model"])
    plot_accuracy_vs_time(summary["results"], out / "accuracy_vs_time.png",
                          f"{len(dataset.labels)} classes, remove: "
                          f"{','.join(summary['remove']) or 'nothing'}")
    plot_confusion_matrix(best, out / "confusion_matrix.png",
                          f"{best['model']}: accuracy {best['accuracy']:.3f}")
    (out / "training_curves.png").unlink(missing_ok=True)
    if curves:
        plot_training_curves(curves, out / "training_curves.png")
    write_report(summary, out)
    return summary


SETTINGS = ("dataset", "categories", "remove", "split", "seed", "validation_size", "epochs_cap")


def _finished_results(path: Path, summary: dict) -> dict:
    """Results of an earlier run of the same benchmark, by model, whose models are on disk."""
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if any(earlier.get(k) != summary[k] for k in SETTINGS):
        return {}
    return {r["model"]: r for r in earlier.get("results", [])
            if (path.parent / "models" / r["model"] / "manifest.json").is_file()}
