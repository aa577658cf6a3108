"""Training runs and the benchmark: one split, validation carved from the training part only."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from newstopic.artifacts import save_subject_model
from newstopic.data import Dataset, SubjectDataset, stratified_split
from newstopic.environment import keras_devices, machine, versions
from newstopic.errors import NewstopicError
from newstopic.estimator import TextClassifier
from newstopic.evaluation import (
    evaluate,
    evaluate_subjects,
    headline,
    plot_accuracy_vs_time,
    plot_attention_alignment,
    plot_confusion_matrix,
    plot_training_curves,
    subject_headline,
    write_json,
    write_report,
    write_subject_report,
)
from newstopic.neural import check_devices
from newstopic.catalog import get_model, model_names
from newstopic.registry import SUBJECT_FAMILY

VALIDATION_SIZE = 0.1


def checkpoint_path(out: Path) -> Path:
    """Where a neural model being trained into `out` keeps its last epoch."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoint"


def train(model: str, dataset: Dataset, *, seed: int = 0, params: dict | None = None,
          validation_size: float = VALIDATION_SIZE, out: Path | None = None, progress=None,
          resume: bool = False, trained: dict | None = None):
    """Fit `model` on the training split less a stratified validation part, evaluate it on
    validation and test, and save it to `out` if given. Neural models checkpoint every epoch
    beside `out` and, with `resume`, continue from there. An ensemble takes the members in
    `trained` (name -> (fitted classifier, its training seconds)) as they are, their seconds
    counted in its own. Returns (classifier, metrics, test)."""
    fit_texts, val_texts, fit_labels, val_labels = stratified_split(
        dataset.train_texts, dataset.train_labels, validation_size, seed, "the training split")
    classifier = TextClassifier(model, seed=seed, **(params or {}))
    fit_params = {}
    if classifier.spec.family == "neural":
        fit_params = {"progress": progress, "resume": resume,
                      "checkpoint": None if out is None else checkpoint_path(out)}
    if trained:
        fit_params["trained"] = {name: member for name, (member, _) in trained.items()}
    start = time.perf_counter()
    classifier.fit(fit_texts, fit_labels, validation_data=(val_texts, val_labels), **fit_params)
    train_seconds = time.perf_counter() - start + sum(s for _, s in (trained or {}).values())
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
    for spec in specs:
        check_devices(spec.name, spec.parameters().get("bucket", True))
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
    fitted = {}  # this run's neural classifiers and their training seconds, for an ensemble
    word2vec = _start_word2vec([s for s in specs if s.name not in done], dataset, seed,
                               validation_size)
    # Classical models first: they fit on one core while word2vec trains on the other.
    for spec in sorted(specs, key=lambda s: s.family == "neural"):
        artifact = out / "models" / spec.name
        if spec.name in done:
            classifier = TextClassifier.load(artifact)
            row = done[spec.name]
        else:
            if progress:
                progress.update(task, description=f"training {spec.name}")
            params = ({"epochs": spec.capped_epochs(epochs)}
                      if epochs and spec.family == "neural" else {})
            members = getattr(spec.make(seed, params), "members", ())
            classifier, metrics, test = train(spec.name, dataset, seed=seed, params=params,
                                              out=artifact, validation_size=validation_size,
                                              progress=progress, resume=resume,
                                              trained={m: fitted[m] for m in members
                                                       if m in fitted})
            row = {
                "model": spec.name, "family": spec.family, "accuracy": test["accuracy"],
                "macro_f1": test["macro_f1"],
                "validation_accuracy": metrics["validation"]["accuracy"],
                "train_seconds": metrics["train_seconds"],
                "predict_docs_per_second": test["predict_docs_per_second"],
                "parameters": classifier.n_parameters_,
                "artifact_bytes": sum(f.stat().st_size for f in artifact.rglob("*")
                                      if f.is_file()),
                "epochs_run": None, "seconds_per_epoch": None,
                "confusion_matrix": test["confusion_matrix"], "labels": test["labels"],
            }
            if spec.family == "neural":
                row.update(epochs_run=classifier.model_.epochs_run,
                           seconds_per_epoch=classifier.model_.seconds_per_epoch,
                           word2vec=getattr(classifier.model_, "training", {}).get("word2vec"))
        if spec.family == "neural":
            fitted[spec.name] = (classifier, row["train_seconds"])
            if classifier.model_.history:  # an ensemble has none of its own
                curves[spec.name] = classifier.model_.history
        summary["results"].append(row)
        summary["results"].sort(key=lambda r: models.index(r["model"]))
        if word2vec is not None and word2vec.done():
            summary["word2vec_seconds"] = word2vec.seconds
        summary["best_model"] = max(summary["results"], key=lambda r: r["accuracy"])["model"]
        summary["total_seconds"] = elapsed_before + time.perf_counter() - start
        summary["machine"].update(keras_devices())  # known once a neural model ran
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


def _start_word2vec(specs, dataset: Dataset, seed: int, validation_size: float):
    """Start training the word vectors the first of these neural models that uses them (and
    the others with the same vocabulary) will start from; their Future, or None."""
    neural = [spec for spec in specs if spec.family == "neural"]
    if not neural:
        return None
    texts = stratified_split(dataset.train_texts, dataset.train_labels, validation_size, seed,
                             "the training split")[0]  # what `train` fits on
    for spec in neural:
        job = spec.make(seed, {}).start_word2vec(texts)
        if job is not None:
            return job
    return None


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


# --- the subject task -------------------------------------------------------------------------

N_EXAMPLES = 10


def check_subject_model(model: str, out: Path | None = None):
    """The spec of subject model `model`, refused if it is a classifier, or a baseline to be
    saved to `out`."""
    spec = get_model(model)
    if spec.family != SUBJECT_FAMILY:
        raise NewstopicError(f"model '{model}' is a classifier: for --task subject choose one "
                             f"of {', '.join(model_names('subject'))}")
    if out is not None and spec.shared is None:
        raise NewstopicError(f"'{model}' is a baseline with nothing to save: compare it with "
                             "`newstopic benchmark --task subject`, or train seq2seq-attention")
    return spec


def train_subject(model: str, dataset: SubjectDataset, *, seed: int = 0,
                  params: dict | None = None, validation_size: float = VALIDATION_SIZE,
                  out: Path | None = None, progress=None, beam: int = 1):
    """Fit subject model `model` on the training messages less a seeded validation part,
    evaluate it (ROUGE, exact match) on validation and test, and save it to `out` if given.
    Returns (model, metrics, test)."""
    spec = check_subject_model(model, out)
    if not 0 < validation_size < 1:
        raise NewstopicError(f"validation size {validation_size} must be between 0 and 1 "
                             "(for example 0.1)")
    from sklearn.model_selection import train_test_split

    fit_bodies, val_bodies, fit_subjects, val_subjects = train_test_split(
        dataset.train_bodies, dataset.train_subjects, test_size=validation_size,
        random_state=seed, shuffle=True)
    params = params or {}
    generator = spec.make(seed, params)
    start = time.perf_counter()
    generator.fit(fit_bodies, fit_subjects, validation_data=(val_bodies, val_subjects),
                  progress=progress)
    train_seconds = time.perf_counter() - start
    test = evaluate_subjects(generator, dataset.test_bodies, dataset.test_subjects, beam)
    metrics = {"train_seconds": train_seconds, "beam": beam,
               "validation": subject_headline(evaluate_subjects(generator, val_bodies,
                                                                val_subjects, beam)),
               "test": subject_headline(test)}
    if out is not None:
        config = {**dataset.config, "validation_size": validation_size,
                  "skipped": dataset.skipped}
        save_subject_model(generator, spec, out, seed=seed, params=params, config=config,
                           metrics=metrics)
    return generator, metrics, test


def plot_example_alignment(generator, examples: list[dict], path: Path) -> None:
    """The attention matrix of the example whose body is nearest 40 words: long enough to
    show where the model looks, short enough to read."""
    example = min(examples, key=lambda e: abs(len(e["body"].split()) - 40))
    generated, source, weights = generator.alignment(example["body"])
    plot_attention_alignment(generated, source, weights, path,
                             f"seq2seq-attention; true subject: {example['subject']}")


def benchmark_subjects(dataset: SubjectDataset, models: list[str], out: Path, *, seed: int = 0,
                       validation_size: float = VALIDATION_SIZE, epochs: int | None = None,
                       beam: int = 1, progress=None) -> dict:
    """Train and evaluate each subject model and baseline on the same messages; write
    results.json, report.md (with ten test examples) and attention_alignment.png to `out`."""
    specs = [get_model(name) for name in models]
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "task": "subject", "dataset": dataset.config["source"],
        "preset": dataset.config.get("preset"), "categories": dataset.config["categories"],
        "remove": dataset.config["remove"], "split": dataset.config["split"], "seed": seed,
        "validation_size": validation_size,
        "n_train": len(dataset.train_bodies),
        "n_validation": round(validation_size * len(dataset.train_bodies)),
        "n_test": len(dataset.test_bodies), "skipped": dataset.skipped, "beam": beam,
        "versions": versions(), "machine": machine(), "epochs_cap": epochs, "results": [],
        "total_seconds": 0.0,
    }
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(dataset.test_bodies), min(N_EXAMPLES, len(
        dataset.test_bodies)), replace=False).tolist())
    examples = [{"body": dataset.test_bodies[i], "subject": dataset.test_subjects[i],
                 "outputs": {}} for i in chosen]
    task = progress.add_task("models", total=len(specs)) if progress else None
    start = time.perf_counter()
    (out / "attention_alignment.png").unlink(missing_ok=True)
    for spec in specs:
        if progress:
            progress.update(task, description=f"training {spec.name}")
        trained = spec.shared is not None
        params = ({"epochs": min(epochs, spec.parameters()["epochs"])}
                  if epochs and trained else {})
        generator, metrics, test = train_subject(
            spec.name, dataset, seed=seed, params=params, validation_size=validation_size,
            out=out / "models" / spec.name if trained else None, progress=progress, beam=beam)
        summary["results"].append({
            "model": spec.name, "family": "neural" if trained else "baseline",
            **{k: test[k] for k in ("rouge1", "rouge2", "rougeL", "exact_match")},
            "validation_rougeL": metrics["validation"]["rougeL"],
            "train_seconds": metrics["train_seconds"],
            "predict_docs_per_second": test["predict_docs_per_second"],
            "parameters": generator.n_parameters if trained else None,
            "epochs_run": generator.epochs_run if trained else None,
        })
        for i, example in zip(chosen, examples):
            example["outputs"][spec.name] = test["predictions"][i]
        if spec.name == "seq2seq-attention":
            plot_example_alignment(generator, examples, out / "attention_alignment.png")
        summary["best_model"] = max(summary["results"], key=lambda r: r["rougeL"])["model"]
        summary["total_seconds"] = time.perf_counter() - start
        summary["machine"].update(keras_devices())  # known once a neural model ran
        write_json(summary, out / "results.json")
        if progress:
            progress.advance(task)
    write_subject_report(summary, examples, out)
    return summary
