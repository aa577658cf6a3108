"""Training runs and the benchmark, for either task: one split, validation carved from the
training part only."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from newstopic.artifacts import MANIFEST, load_model, save_model
from newstopic.data import Dataset
from newstopic.environment import keras_devices, machine, source_commit, versions
from newstopic.errors import NewstopicError
from newstopic.evaluation import compare_families, inductive, write_json
from newstopic.files import write_atomic
from newstopic.fitting import check_devices
from newstopic.params import constraint_of
from newstopic.predictor import held_out_proba
from newstopic.registry import registered
from newstopic.seq2seq import check_beam
from newstopic.tasks import TASKS, Task, write_report

VALIDATION_SIZE = 0.1
PREDICTIONS = "predictions.json"  # a classification benchmark's test predictions, by model


def checkpoint_path(out: Path) -> Path:
    """Where a neural model being trained into `out` keeps its last epoch."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoint"


def check_trainable(model: str, out: Path | None = None):
    """The spec of `model`, refused if it is a baseline with nothing to save to `out`."""
    spec = registered(model)
    if out is not None and spec.predictor is None:
        raise NewstopicError(f"'{model}' is a baseline with nothing to save: compare it with "
                             f"`newstopic benchmark --task {spec.task}`, or train a model of "
                             "its own")
    return spec


def train(model: str, dataset: Dataset, *, seed: int = 0, params: dict | None = None,
          validation_size: float = VALIDATION_SIZE, out: Path | None = None, progress=None,
          resume: bool = False, trained: dict | None = None, beam: int = 1):
    """Fit `model` on the training split less a validation part (stratified for classifiers),
    evaluate it on validation and test, and save it to `out` if given. Neural classifiers
    checkpoint every epoch beside `out` and, with `resume`, continue from there. An ensemble
    takes the members in `trained` (name -> (fitted model, its training seconds)) as they are,
    their seconds counted in its own. Subject models decode with beam width `beam`. Returns
    (fitted model, metrics, test metrics)."""
    spec = check_trainable(model, out)
    check_run(beam=beam)
    task = TASKS[spec.task]
    params = params or {}
    fit_texts, val_texts, fit_labels, val_labels = task.split(
        dataset.train_texts, dataset.train_labels, validation_size, seed)
    fitted = spec.make(seed, params)
    options = {"progress": progress}
    if out is not None and task.resumable:
        options.update(checkpoint=checkpoint_path(out), resume=resume)
    if trained:
        options["trained"] = {name: member for name, (member, _) in trained.items()}
    if task.family(spec, fitted) == "transductive":  # the test texts without their labels
        options["unlabelled"] = dataset.test_texts
    start = time.perf_counter()
    fitted.fit(fit_texts, fit_labels, validation_data=(val_texts, val_labels), **options)
    train_seconds = time.perf_counter() - start + sum(s for _, s in (trained or {}).values())
    test = task.evaluate(fitted, dataset.test_texts, dataset.test_labels, beam)
    # a model that fitted weights on the validation texts scores them out of fold
    validation = task.evaluate(fitted, val_texts, val_labels, beam, held_out_proba(fitted))
    metrics = {"train_seconds": train_seconds, "validation": task.headline(validation),
               "test": task.headline(test), **({"beam": beam} if task.generates else {})}
    if out is not None:
        config = {**dataset.config, "validation_size": validation_size}
        save_model(fitted, spec, out, params={"seed": seed, **params}, config=config,
                   metrics=metrics)
    return fitted, metrics, test


def check_models(task: Task, models: list[str]) -> list:
    """The specs of `models`, refused before any work if one is unknown, of another task, or
    named twice."""
    specs = [task.spec(name) for name in models]
    twice = next((name for i, name in enumerate(models) if name in models[:i]), None)
    if twice is not None:
        raise NewstopicError(f"--models names '{twice}' twice: list each model once")
    return specs


def check_run(epochs: int | None = None, beam: int = 1) -> None:
    """Refuse, before any work, a benchmark's cap on the epochs (None: no cap) that no model's
    epochs could be, or a beam width below 1."""
    allowed = constraint_of("epochs")
    if epochs is not None and not allowed.accepts(epochs):
        raise NewstopicError(f"--epochs {epochs} is not allowed: the cap on the neural models' "
                             f"epochs must be {allowed.describe()}")
    check_beam(beam)


def benchmark(dataset: Dataset, models: list[str], out: Path, *, task: str = "classify",
              seed: int = 0, validation_size: float = VALIDATION_SIZE, epochs: int | None = None,
              beam: int = 1, progress=None, resume: bool = False,
              command: str | None = None) -> dict:
    """Train and evaluate each model of `task` on the same split; write results.json,
    report.md and the task's plots to `out`. results.json is rewritten after every model and
    neural classifiers checkpoint every epoch, so that `resume` skips finished models and
    continues the interrupted one. `epochs` caps the epochs of the neural models; `command`,
    the command line that asked for the run, is recorded with it."""
    job = TASKS[task]
    specs = check_models(job, models)
    check_run(epochs, beam)
    if resume and not job.resumable:
        raise NewstopicError(f"--resume applies to the classification benchmark: run --task "
                             f"{task} again without it")
    for spec in specs:
        if spec.family == "neural":
            check_devices(spec.name, spec.parameters().get("bucket", True))
    out.mkdir(parents=True, exist_ok=True)
    summary = {**_summary(job, dataset, seed, validation_size, epochs, beam),
               "command": command}
    earlier = _earlier_run(out / "results.json", summary) if resume else {}
    done = {r["model"]: r for r in earlier.get("results", [])
            if r["model"] in models and (out / "models" / r["model"] / MANIFEST).is_file()}
    # the run that trained each reused model, which this run's date and commit are not
    summary["reused"] = {name: earlier.get("reused", {}).get(name) or {
        key: earlier.get(key) for key in PROVENANCE} for name in done}
    if "word2vec_seconds" in earlier and done:
        summary["word2vec_seconds"] = earlier["word2vec_seconds"]
    # each model's test predictions, which the paired significance tests of the report need
    paired = _earlier_predictions(out / PREDICTIONS, dataset) if resume else {}
    report = job.report(dataset, seed, out)
    bar = progress.add_task("models", total=len(specs)) if progress else None
    # the earlier run's own time, less that of its models this run does not reuse (left out,
    # or trained again)
    earlier_seconds = earlier.get("model_seconds", {})
    summary["model_seconds"] = {name: earlier_seconds[name] for name in done
                                if name in earlier_seconds}
    dropped = [r["model"] for r in earlier.get("results", []) if r["model"] not in done]
    elapsed_before = earlier.get("total_seconds", 0.0) - sum(
        _earlier_seconds(earlier, name, job, seed) for name in dropped) if done else 0.0
    start = time.perf_counter()
    fitted = {}  # this run's models and their training seconds, for an ensemble's members
    word2vec = _start_word2vec([s for s in specs if s.name not in done], dataset, job, seed,
                               validation_size)
    # Classical models first: they fit on one core while word2vec trains on the other. Models
    # that combine others (an ensemble's members, a transductive model's teachers) come last.
    members = {s.name: _members(s, seed) for s in specs}
    for spec in sorted(specs, key=lambda s: (bool(members[s.name]), s.family == "neural")):
        artifact = out / "models" / spec.name if spec.predictor is not None else None
        if spec.name in done:
            model, test = load_model(artifact)[1], None
            row = done[spec.name]
        else:
            model_start = time.perf_counter()
            if progress:
                progress.update(bar, description=f"training {spec.name}")
            params = ({"epochs": spec.capped_epochs(epochs)}
                      if epochs and "epochs" in spec.parameters() else {})
            model, metrics, test = train(spec.name, dataset, seed=seed, params=params,
                                         out=artifact, validation_size=validation_size,
                                         progress=progress, resume=resume, beam=beam,
                                         trained={m: fitted[m] for m in members[spec.name]
                                                  if m in fitted})
            row = _row(job, spec, model, metrics, test, artifact)
            if not job.generates:
                paired[spec.name] = test["predictions"]
            # training, testing and saving: what leaving the model out of a resumed run saves
            summary["model_seconds"][spec.name] = time.perf_counter() - model_start
        fitted[spec.name] = (model, row["train_seconds"])
        report.add(spec, model, test)
        summary["results"].append(row)
        summary["results"].sort(key=lambda r: models.index(r["model"]))
        if word2vec is not None and word2vec.done():
            summary["word2vec_seconds"] = word2vec.seconds
        summary["best_model"] = max(inductive(summary["results"]),
                                    key=lambda r: r[job.score])["model"]
        if not job.generates:
            _write_predictions(paired, dataset, out / PREDICTIONS)
        summary["total_seconds"] = elapsed_before + time.perf_counter() - start
        summary["machine"].update(keras_devices())  # known once a neural model ran
        write_json(summary, out / "results.json")
        if progress:
            progress.advance(bar)
    if not job.generates:  # once all models ran: its bootstrap resamples every test document
        summary["comparison"] = compare_families(summary["results"], paired,
                                                 dataset.test_labels, seed)
        write_json(summary, out / "results.json")
    write_report(job, summary, report.sections(summary), out)
    return summary


def _earlier_seconds(earlier: dict, name: str, task: Task, seed: int) -> float:
    """Model `name`'s own seconds in the `earlier` run: its `model_seconds`, or, in a
    results.json written before those were recorded, its `train_seconds` less those of the
    members counted in them (an ensemble's, a taught model's teachers')."""
    if name in earlier.get("model_seconds", {}):
        return earlier["model_seconds"][name]
    rows = {r["model"]: r["train_seconds"] for r in earlier["results"]}
    try:
        members = _members(task.spec(name), seed)
    except NewstopicError:  # a model this version no longer has
        members = ()
    return rows[name] - sum(rows[m] for m in members if m in rows)


def _members(spec, seed: int) -> tuple[str, ...]:
    """The models that model `spec` combines (an ensemble's members, a taught model's
    teachers), which a benchmark trains first and hands it."""
    return getattr(spec.make(seed, {}), "members", ())


def _summary(task: Task, dataset: Dataset, seed: int, validation_size: float,
             epochs: int | None, beam: int) -> dict:
    """The settings and machine a benchmark's results.json records, before any result."""
    config = dataset.config
    extra = {"skipped": config.get("skipped"), "beam": beam} if task.generates else {}
    return {
        "task": task.name, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": source_commit(), "dataset": config["source"], "preset": config.get("preset"),
        "categories": config.get("categories") if task.generates else dataset.labels,
        "remove": config.get("remove", []), "split": config["split"], "seed": seed,
        "validation_size": validation_size, "n_train": len(dataset.train_texts),
        "n_validation": round(validation_size * len(dataset.train_texts)),
        "n_test": len(dataset.test_texts), **extra, "versions": versions(),
        "machine": machine(), "epochs_cap": epochs, "results": [], "total_seconds": 0.0,
    }


def _row(task: Task, spec, model, metrics: dict, test: dict, artifact: Path | None) -> dict:
    """A model's line of results.json."""
    return {
        "model": spec.name, "family": task.family(spec, model),
        **task.scores(test, metrics["validation"]),
        "train_seconds": metrics["train_seconds"],
        "parameters": getattr(model, "n_parameters", None),
        "artifact_bytes": None if artifact is None else sum(
            f.stat().st_size for f in artifact.rglob("*") if f.is_file()),
        "epochs_run": getattr(model, "epochs_run", None),
        "seconds_per_epoch": getattr(model, "seconds_per_epoch", None),
        **({"word2vec": getattr(model, "training", {}).get("word2vec")}
           if spec.family == "neural" else {}),
    }


def _start_word2vec(specs, dataset: Dataset, task: Task, seed: int, validation_size: float):
    """Start training the word vectors the first of these models that uses them (and the
    others with the same vocabulary) will start from; their Future, or None."""
    starters = [spec for spec in specs if hasattr(spec.predictor, "start_word2vec")]
    if not starters:
        return None
    texts = task.split(dataset.train_texts, dataset.train_labels, validation_size,
                       seed)[0]  # what `train` fits on
    for spec in starters:
        job = spec.make(seed, {}).start_word2vec(texts)
        if job is not None:
            return job
    return None


SETTINGS = ("dataset", "categories", "remove", "split", "seed", "validation_size", "epochs_cap")
PROVENANCE = ("date", "commit", "command")


def _earlier_run(path: Path, summary: dict) -> dict:
    """The results.json of an earlier run of the same benchmark, or {}."""
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return earlier if all(earlier.get(k) == summary[k] for k in SETTINGS) else {}


def _write_predictions(paired: dict[str, list], dataset: Dataset, path: Path) -> None:
    index = {label: i for i, label in enumerate(dataset.labels)}
    write_atomic(path, json.dumps({
        "labels": dataset.labels, "truth": [index[y] for y in dataset.test_labels],
        "models": {name: [index[y] for y in predicted] for name, predicted in paired.items()},
    }, separators=(",", ":")) + "\n")


def _earlier_predictions(path: Path, dataset: Dataset) -> dict[str, list]:
    """The test predictions an earlier run of the same benchmark recorded, by model."""
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    index = {label: i for i, label in enumerate(dataset.labels)}
    if earlier.get("labels") != dataset.labels or earlier.get("truth") != [
            index[y] for y in dataset.test_labels]:
        return {}
    return {name: [dataset.labels[i] for i in predicted]
            for name, predicted in earlier["models"].items()}
