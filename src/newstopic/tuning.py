"""Hyperparameter search with Optuna: a model's declared search space (`ModelSpec.search`),
sampled by TPE, each setting fitted on the training split less a validation part and scored
by its validation accuracy; the test texts are left alone until the best setting is trained.

A study lives in a storage that several processes, on one machine or many, may share: a
journal file (the default, beside --out) or a database URL. `trials` is the study's total,
whichever process runs them. Neural trials report their validation loss after every epoch,
and the median pruner stops those doing worse than the trials before them at the same epoch.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
import warnings
from pathlib import Path

from newstopic import lazy
from newstopic.data import Dataset
from newstopic.environment import machine, source_commit, versions
from newstopic.errors import NewstopicError
from newstopic.evaluation import (
    evaluate,
    plot_optimisation_history,
    plot_parameter_importance,
    write_json,
)
from newstopic.extras import require
from newstopic.files import write_atomic
from newstopic.predictor import held_out_proba
from newstopic.registry import model_names, registered
from newstopic.tasks import TASKS
from newstopic.training import VALIDATION_SIZE, train

JOURNAL_SUFFIX = ".optuna.journal"
# The median pruner: the first trials and epochs only set the bar.
PRUNER_STARTUP_TRIALS = 3
PRUNER_WARMUP_EPOCHS = 1


class SurplusTrial(Exception):
    """A trial begun after the study reached its total (another process began it first)."""


def default_storage(out: Path) -> Path:
    """The journal file beside `out` that a study is kept in when no --storage is given."""
    return out.with_name(out.name + JOURNAL_SUFFIX)


def open_storage(storage: str | None, out: Path):
    """The Optuna storage `storage` names: a database URL (sqlite:///FILE, postgresql://...),
    else a journal file path; by default the journal file beside `out`."""
    optuna = require("optuna", "tune", "newstopic tune")
    location = storage or str(default_storage(out))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            if "://" in location:
                return _database_storage(optuna, location)
            Path(location).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(location))
        except Exception as exc:  # SQLAlchemy's and the file system's errors, many kinds
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise NewstopicError(f"cannot open --storage {location} ({first}): give a "
                                 "writable journal file path or a database URL such as "
                                 "sqlite:///study.db") from None


def _database_storage(optuna, url: str, attempts: int = 5):
    """Optuna's RDBStorage of `url`. Processes that open a new database at the same moment
    race to create its tables and record its schema version; the losers fail ("table ...
    already exists", a unique constraint) and find the schema in place when they try again."""
    options = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=options)
        except Exception as exc:  # SQLAlchemy's errors, not imported for this
            lost_the_race = type(exc).__name__ == "IntegrityError" or "already exists" in str(exc)
            if not lost_the_race or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def check(model: str, trials: int, timeout: float | None = None, params: dict | None = None):
    """The spec of `model`, refused in one line, before any work, unless it is a classifier
    with a search space and the request is sound; and the dimensions to search."""
    spec = registered(model)
    if spec.task != "classify" or not spec.tunable:
        names = [n for n in model_names("classify") if registered(n).tunable]
        raise NewstopicError(f"model '{model}' has no search space to tune: choose one of "
                             f"{', '.join(names)}")
    if trials < 1:
        raise NewstopicError(f"--trials {trials} must be at least 1")
    if timeout is not None and timeout <= 0:
        raise NewstopicError(f"--timeout {timeout} must be positive")
    spec.check(params or {})
    space = [d for d in spec.search_space() if d.name not in (params or {})]
    if not space:
        raise NewstopicError(f"every parameter model '{model}' searches is fixed by --param: "
                             "leave one free")
    return spec, space


def tune(model: str, dataset: Dataset, *, trials: int, out: Path, seed: int = 0,
         validation_size: float = VALIDATION_SIZE, params: dict | None = None,
         storage: str | None = None, study_name: str | None = None,
         timeout: float | None = None, progress=None, command: str | None = None) -> dict:
    """Run trials of study `study_name` (default: the model's name) in `storage` until it holds
    `trials`, or for `timeout` seconds; then train its best setting into `out`/model and
    write the trials table, the plots and tuning.json to `out`. `params` are fixed, not
    searched. Returns the summary written to tuning.json."""
    optuna = require("optuna", "tune", "newstopic tune")
    params = params or {}
    spec, space = check(model, trials, timeout, params)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("optuna").setLevel(logging.ERROR)
    name = study_name or model
    settings = {"model": model, "data": dataset.config, "seed": seed,
                "validation_size": validation_size, "fixed": params}
    settings = json.loads(json.dumps(settings))  # as the storage gives it back
    study, created = _open_study(optuna, open_storage(storage, out), name, seed)
    earlier = study.user_attrs.get("settings")
    if earlier is None:
        study.set_user_attr("settings", settings)
    elif earlier != settings:
        changed = next(k for k in settings if earlier.get(k) != settings[k])
        raise NewstopicError(f"study '{name}' was begun with another {changed}: give the same "
                             "model, data and options, or another --study")
    if created:  # the first trial tries the model's defaults, the bar to beat
        defaults = spec.parameters()
        study.enqueue_trial({d.name: defaults[d.name] for d in space
                             if _within(d, defaults[d.name])}, user_attrs={"defaults": True})

    fit_texts, val_texts, fit_labels, val_labels = TASKS["classify"].split(
        dataset.train_texts, dataset.train_labels, validation_size, seed)

    def objective(trial) -> float:
        if trial.number >= trials:
            trial.set_user_attr("surplus", True)
            trial.study.stop()
            raise SurplusTrial()
        setting = {**params, **{d.name: _suggest(trial, d) for d in space}}
        started = time.perf_counter()
        if spec.family == "neural":
            lazy.keras.utils.clear_session()  # the last trial's layers and graphs

        def epoch_end(epoch: int, logs: dict) -> None:
            trial.report(logs["val_loss"], epoch)
            if trial.should_prune():
                trial.set_user_attr("seconds", time.perf_counter() - started)
                raise optuna.TrialPruned(f"epoch {epoch + 1}: validation loss "
                                         f"{logs['val_loss']:.4f}")

        options = {"epoch_end": epoch_end} if spec.family == "neural" else {}
        try:
            fitted = spec.make(seed, setting)
            fitted.fit(fit_texts, fit_labels, validation_data=(val_texts, val_labels),
                       **options)
        except NewstopicError as exc:
            trial.set_user_attr("error", str(exc))
            raise
        accuracy = evaluate(fitted, val_texts, val_labels, held_out_proba(fitted))["accuracy"]
        trial.set_user_attr("validation_accuracy", accuracy)
        trial.set_user_attr("seconds", time.perf_counter() - started)
        return 1.0 - accuracy

    bar = progress.add_task(f"tuning {model}", total=trials) if progress else None

    def after_trial(study, trial) -> None:
        counted = _counted(study)
        if progress:
            best = _best(study)
            progress.update(bar, completed=min(len(counted), trials), description=(
                f"tuning {model}" + (f": best validation accuracy "
                                     f"{best.user_attrs['validation_accuracy']:.4f}"
                                     if best else "")))
        if len(counted) >= trials:
            study.stop()

    start = time.perf_counter()
    if len(_counted(study)) < trials:
        study.optimize(objective, timeout=timeout, catch=(NewstopicError, SurplusTrial),
                       callbacks=[after_trial])
    tuning_seconds = time.perf_counter() - start
    best = _best(study)
    if best is None:
        errors = [t.user_attrs["error"] for t in study.trials if "error" in t.user_attrs]
        raise NewstopicError(f"no trial of study '{name}' finished" +
                             (f" (the last failed: {errors[-1]})" if errors else "") +
                             ": run more trials, or widen --timeout")
    if progress:
        progress.update(bar, description=f"training {model} with the best setting")
    best_params = {**params, **best.params}
    _, metrics, _ = train(model, dataset, seed=seed, params=best_params,
                          validation_size=validation_size, out=out / "model",
                          progress=progress)
    table = trial_rows(study)
    summary = {
        "model": model, "study": name, "storage": storage or str(default_storage(out)),
        "command": command, "seed": seed, "validation_size": validation_size,
        "data": dataset.config, "trials": trials,
        "trials_in_study": len([r for r in table if r["state"] != "RUNNING"]),
        "pruned": sum(r["state"] == "PRUNED" for r in table),
        "failed": sum(r["state"] == "FAIL" for r in table),
        "this_process_seconds": tuning_seconds, "best_trial": best.number,
        "best_params": best_params,
        "best_validation_accuracy": best.user_attrs["validation_accuracy"],
        "defaults_validation_accuracy": next(
            (r["validation_accuracy"] for r in table if r["defaults"]), None),
        "test": metrics["test"], "retrained_validation": metrics["validation"],
        "train_seconds": metrics["train_seconds"],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": source_commit(), "versions": versions(), "machine": machine(),
    }
    write_results(study, spec, table, summary, out)
    return summary


def _open_study(optuna, storage, name: str, seed: int):
    """(study, whether this process created it). The process that creates a study samples
    from `seed`; one that joins it from `seed` and its process id, so that two processes do
    not draw the same settings."""
    pruner = optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS,
                                         n_warmup_steps=PRUNER_WARMUP_EPOCHS)

    def sampler(salt: int):
        return optuna.samplers.TPESampler(seed=(seed + salt) % 2**32)

    try:
        return optuna.create_study(storage=storage, study_name=name, direction="minimize",
                                   sampler=sampler(0), pruner=pruner), True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(storage=storage, study_name=name,
                                 sampler=sampler(1 + os.getpid()), pruner=pruner), False


def _suggest(trial, dimension):
    if dimension.kind is None:
        return trial.suggest_categorical(dimension.name, list(dimension.choices))
    suggest = trial.suggest_int if dimension.kind is int else trial.suggest_float
    return suggest(dimension.name, dimension.low, dimension.high, log=dimension.log)


def _within(dimension, value) -> bool:
    if dimension.kind is None:
        return value in dimension.choices
    return isinstance(value, (int, float)) and dimension.low <= value <= dimension.high


def _counted(study) -> list:
    """The trials that count towards the study's total: all begun but surplus ones (a trial
    still queued, such as the defaults' first trial, has not begun)."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.state.name != "WAITING" and not t.user_attrs.get("surplus")]


def _best(study):
    """The finished trial with the highest validation accuracy (the earliest among equals)."""
    done = [t for t in study.get_trials(deepcopy=False)
            if t.state.name == "COMPLETE" and "validation_accuracy" in t.user_attrs]
    return max(done, key=lambda t: (t.user_attrs["validation_accuracy"], -t.number),
               default=None)


def trial_rows(study) -> list[dict]:
    """One row per counted trial: its number, state, validation accuracy, seconds, note and
    setting."""
    rows = []
    for t in _counted(study):
        note = t.user_attrs.get("error") or ""
        if t.state.name == "PRUNED":
            last = max(t.intermediate_values, default=None)
            note = f"pruned after epoch {last + 1}" if last is not None else "pruned"
        rows.append({"number": t.number, "state": t.state.name,
                     "validation_accuracy": t.user_attrs.get("validation_accuracy"),
                     "seconds": t.user_attrs.get("seconds"),
                     "defaults": bool(t.user_attrs.get("defaults")), "note": note,
                     "params": t.params})
    return rows


def _shown(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def write_results(study, spec, table: list[dict], summary: dict, out: Path) -> None:
    """trials.csv, the optimisation history and parameter importance plots, report.md and
    tuning.json in `out`."""
    optuna = require("optuna", "tune", "newstopic tune")
    names = [d.name for d in spec.search_space()]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "state", "validation_accuracy", "seconds", "note", *names])
    for row in table:
        accuracy, seconds = row["validation_accuracy"], row["seconds"]
        writer.writerow([row["number"], row["state"],
                         "" if accuracy is None else f"{accuracy:.4f}",
                         "" if seconds is None else f"{seconds:.1f}",
                         "the defaults" if row["defaults"] else row["note"],
                         *(_shown(row["params"].get(n, "")) for n in names)])
    write_atomic(out / "trials.csv", buffer.getvalue())
    title = f"{spec.name}: study '{summary['study']}'"
    plot_optimisation_history(table, out / "optimisation_history.png", title)
    lines = [f"# newstopic tune: {spec.name}", "",
             f"Best validation accuracy {summary['best_validation_accuracy']:.4f} (trial "
             f"{summary['best_trial']}"
             + (f"; the defaults {summary['defaults_validation_accuracy']:.4f}"
                if summary["defaults_validation_accuracy"] is not None else "")
             + f"); retrained, its test accuracy is {summary['test']['accuracy']:.4f}.", "",
             f"Best setting: `{json.dumps(summary['best_params'])}`", "",
             f"Command: `{summary['command']}`; {summary['trials_in_study']} trials in the "
             f"study ({summary['pruned']} pruned, {summary['failed']} failed), seed "
             f"{summary['seed']}, commit {summary['commit']}.", "",
             "![optimisation history](optimisation_history.png)", ""]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fANOVA's notes on few trials
        try:
            importances = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError):  # fewer than two finished trials
            importances = {}
    summary["importances"] = importances
    (out / "parameter_importance.png").unlink(missing_ok=True)
    if importances:
        plot_parameter_importance(importances, out / "parameter_importance.png", title)
        lines += ["![parameter importance](parameter_importance.png)", ""]
    lines += ["Trials: [trials.csv](trials.csv).", ""]
    write_atomic(out / "report.md", "\n".join(lines))
    write_json(summary, out / "tuning.json")
