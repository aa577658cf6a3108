"""The verbs that make models: `models`, `data`, `train`, `benchmark`, `tune`."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from newstopic.cli.options import (
    BeamOption,
    DataOptions,
    QuietOption,
    TaskOption,
    ValidationSizeOption,
    app,
    as_list,
    backend_options,
    check_output,
    data_options,
    parse_param,
    print_table,
    progress_bar,
)
from newstopic.data import check_share
from newstopic.errors import NewstopicError
from newstopic.evaluation import table_rows
from newstopic import suites, training, tuning
from newstopic.registry import default_models, model_names, registered
from newstopic.tasks import get_task


@app.command()
def models(
    name: Annotated[Optional[str], typer.Argument(
        help="A model: list its hyperparameters, defaults and allowed values instead.")] = None,
) -> None:
    """List the registered models, one per line; or one model's hyperparameters."""
    if name is not None:
        spec = registered(name)
        for parameter, default in spec.parameters().items():
            print(f"{parameter}\t{_shown(default)}\t{spec.constraint(parameter).describe()}")
        return
    for name in model_names():
        spec = registered(name)
        family = spec.family  # "subject" for a generator; a classifier's is its report's
        if spec.task == "classify":
            # an ensemble's family follows its members, so it is made (cheap: nothing is built)
            model = spec.make(0, {}) if "members" in spec.parameters() else None
            family = get_task(spec.task).family(spec, model)
        print(f"{name}\t{family}\t{spec.description}")


def _shown(value) -> str:
    return "unset" if value is None else str(value).lower() if isinstance(value, bool) else str(
        value)


@app.command()
@data_options
def data(data_opts: DataOptions) -> None:
    """Per-class document counts and document lengths (in words) of a dataset."""
    import numpy as np

    dataset = data_opts.load()
    counts = {"train": {}, "test": {}}
    for part, labels in (("train", dataset.train_labels), ("test", dataset.test_labels)):
        for label in labels:
            counts[part][label] = counts[part].get(label, 0) + 1
    rows = [[label, str(counts["train"].get(label, 0)), str(counts["test"].get(label, 0))]
            for label in dataset.labels]
    rows.append(["total", str(len(dataset.train_labels)), str(len(dataset.test_labels))])
    print_table(["class", "train", "test"], rows, title=dataset.config["source"])
    length_rows = []
    for part, texts in (("train", dataset.train_texts), ("test", dataset.test_texts)):
        words = np.array([len(t.split()) for t in texts])
        length_rows.append([part, f"{words.mean():.0f}", f"{np.median(words):.0f}",
                            f"{np.percentile(words, 95):.0f}"])
    print_table(["split", "mean words", "median", "p95"], length_rows)


@app.command()
@backend_options(devices=True)
@data_options
def train(
    data_opts: DataOptions,
    model: Annotated[str, typer.Option("--model", "-m", help="A model name (`newstopic models`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the model to.")],
    param: Annotated[Optional[list[str]], typer.Option(
        "--param", "-p", help="A hyperparameter as NAME=VALUE, for example C=1.0; repeatable.")]
    = None,
    epochs: Annotated[Optional[int], typer.Option(help="Neural: maximum epochs.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Neural: batch size; by default "
        "128, or 64 or 32 for a small training set.")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Neural: Adam's rate.")] = None,
    class_weight: Annotated[Optional[str], typer.Option(
        help="Neural: 'balanced' weighs classes by inverse frequency.")] = None,
    truncate: Annotated[Optional[str], typer.Option(
        help="Neural: keep the head, tail or head+tail of long texts.")] = None,
    resume: Annotated[bool, typer.Option(
        help="Neural: continue an interrupted run from its last finished epoch.")] = False,
    validation_size: ValidationSizeOption = 0.1,
    task: TaskOption = None,
    beam: BeamOption = 1,
    quiet: QuietOption = False,
) -> None:
    """Train a model, evaluate it on validation and test, and save it to --out."""
    check_share(validation_size, "--validation-size")
    job = get_task(task or registered(model).task)
    spec = job.spec(model)
    training.check_trainable(model, out)
    check_output(out, "--out", kind="model")
    params = dict(parse_param(p) for p in param or [])
    params.update((k, v) for k, v in (("epochs", epochs), ("batch_size", batch_size),
                                      ("learning_rate", learning_rate),
                                      ("class_weight", class_weight), ("truncate", truncate))
                  if v is not None)
    spec.check(params)
    training.check_run(beam=beam)
    dataset = data_opts.load(job)
    checkpoint = training.checkpoint_path(out)
    if resume and not checkpoint.exists():
        print(f"warning: no checkpoint at {checkpoint}; training from the start",
              file=sys.stderr)
    try:
        with progress_bar(quiet) as progress:
            progress.add_task(f"training {spec.name} on {len(dataset.train_texts)} {job.noun}",
                              total=None)
            _, metrics, _ = training.train(spec.name, dataset, seed=data_opts.seed or 0,
                                           params=params, validation_size=validation_size,
                                           out=out, progress=progress, resume=resume, beam=beam)
    except KeyboardInterrupt:
        hint = ("run the same command with --resume to continue from the last finished epoch"
                if job.resumable and spec.family == "neural" else "run the command again")
        raise NewstopicError(f"interrupted: {hint}") from None
    validation, test = metrics["validation"], metrics["test"]
    titles = dict(job.metrics())
    figures = [f"validation {titles[job.score]} {validation[job.score]:.4f}"]
    figures += [f"{'test ' * (i == 0)}{title} {test[key]:.4f}"
                for i, (key, title) in enumerate(job.metrics())]
    print("\t".join([spec.name, *figures, f"{metrics['train_seconds']:.1f} s", str(out)]))


@app.command()
@backend_options(devices=True)
@data_options
def benchmark(
    data_opts: DataOptions,
    models: Annotated[Optional[str], typer.Option(
        help="Comma-separated model names \\[default: every registered model of --task]")]
    = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the report.")]
    = Path("results/benchmark"),
    validation_size: ValidationSizeOption = 0.1,
    epochs: Annotated[Optional[int], typer.Option(
        help="Cap the epochs of the neural models, for a quick run.")] = None,
    resume: Annotated[bool, typer.Option(
        help="Keep the models an interrupted run finished; continue the one it was on.")]
    = False,
    seeds: Annotated[Optional[str], typer.Option(
        help="Run once with each of these seeds, for example 0,1,2; report each model's mean "
             "and range.")] = None,
    suite: Annotated[Optional[str], typer.Option(
        help="Run every setting of a suite: quick, tuning, reporting, full, or a .toml file "
             "(docs/suites.md).")] = None,
    task: TaskOption = None,
    beam: BeamOption = 1,
    quiet: QuietOption = False,
) -> None:
    """Train and evaluate models on one split; write results.json, report.md and plots."""
    check_share(validation_size, "--validation-size")
    names = as_list(models)
    job = get_task(task or (registered(names[0]).task if names else "classify"))
    training.check_run(epochs, beam)
    if seeds is not None or suite is not None:
        return _repeated(data_opts, names, out, seeds, suite, job, validation_size=validation_size,
                         epochs=epochs, resume=resume, quiet=quiet)
    names = names or default_models(job.name)
    training.check_models(job, names)
    check_output(out, "--out")
    if resume and not job.resumable:
        raise NewstopicError(f"--resume applies to the classification benchmark: run --task "
                             f"{job.name} again without it")
    dataset = data_opts.load(job)
    try:
        with progress_bar(quiet) as progress:
            summary = training.benchmark(dataset, names, out, task=job.name,
                                         seed=data_opts.seed or 0,
                                         validation_size=validation_size, epochs=epochs,
                                         beam=beam, progress=progress, resume=resume,
                                         command=shlex.join(["newstopic", *sys.argv[1:]]))
    except KeyboardInterrupt:
        hint = ("run the same command with --resume to keep the finished models and continue"
                if job.resumable else "run the command again")
        raise NewstopicError(f"interrupted: {hint}") from None
    header, rows = table_rows(summary["results"], job.columns)
    print_table(header, rows, title=f"{dataset.config['source']}: {out / 'report.md'}")


@dataclass(frozen=True)
class GivenData:
    """The data options of the command line as a suite's one setting (`newstopic.suites`),
    loaded with each seed; its runs go to OUT/seed-N."""

    options: DataOptions
    name: str = ""
    role: str = "reporting"

    def load(self, seed: int, data=None):
        return replace(self.options, seed=seed).load()


def _repeated(data_opts: DataOptions, names, out: Path, seeds: str | None, suite: str | None,
              job, *, quiet: bool, **options) -> None:
    """`benchmark --seeds` and `--suite`: checked whole before the first model trains."""
    if job.generates:
        raise NewstopicError("--seeds and --suite apply to the classification benchmark: drop "
                             f"--task {job.name}")
    if seeds is not None and data_opts.seed is not None:
        raise NewstopicError("give --seed or --seeds, not both")
    seed_list = suites.parse_seeds(seeds) if seeds is not None else [data_opts.seed or 0]
    if suite is not None:
        clash = sorted(set(data_opts.given()) - {"data", "seed"})
        if clash:
            raise NewstopicError(f"--{clash[0].replace('_', '-')} sets the data, which the "
                                 "suite's settings name: drop it, or write a suite file")
        settings, suite_models = suites.suite_settings(suite)
    else:
        settings, suite_models = [GivenData(data_opts)], default_models(job.name)
    names = names or list(suite_models)
    training.check_models(job, names)
    check_output(out, "--out")
    try:
        with progress_bar(quiet) as progress:
            combined = suites.run(settings, names, seed_list, out, data=data_opts.data,
                                  progress=progress, task=job.name,
                                  command=shlex.join(["newstopic", *sys.argv[1:]]), **options)
    except KeyboardInterrupt:
        raise NewstopicError("interrupted: run the same command with --resume to keep the "
                             "finished runs and models and continue") from None
    for role, ranks in combined["mean_ranks"].items():
        if ranks:
            print("\t".join([f"mean rank, {role} settings", *(f"{model} {rank:.2f}"
                                                              for model, rank in ranks.items())]))
    print(f"report\t{out / 'report.md'}")


@app.command()
@backend_options(devices=True)
@data_options
def tune(
    data_opts: DataOptions,
    model: Annotated[str, typer.Option("--model", "-m", help="A model name (`newstopic models`).")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Directory for the best model (OUT/model), the trials and the "
                            "plots.")],
    trials: Annotated[int, typer.Option(
        help="Trials in the study, counting those of every process that shares it.")] = 20,
    storage: Annotated[Optional[str], typer.Option(
        help="Where the study lives, shared by every process given it: a journal file, or a "
             "database URL such as sqlite:///study.db \\[default: OUT.optuna.journal]")] = None,
    study: Annotated[Optional[str], typer.Option(
        help="The study's name in --storage \\[default: the model's name]")] = None,
    timeout: Annotated[Optional[float], typer.Option(
        help="Stop starting trials after this many seconds (this process).")] = None,
    param: Annotated[Optional[list[str]], typer.Option(
        "--param", "-p", help="Fix a hyperparameter instead of searching it, as NAME=VALUE; "
                              "repeatable.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Neural: maximum epochs.")] = None,
    validation_size: ValidationSizeOption = 0.1,
    quiet: QuietOption = False,
) -> None:
    """Search a model's hyperparameters with Optuna, then train the best setting into --out."""
    check_share(validation_size, "--validation-size")
    params = dict(parse_param(p) for p in param or [])
    if epochs is not None:
        params["epochs"] = epochs
    tuning.check(model, trials, timeout, params)
    check_output(out, "--out")
    if out.exists() and any(out.iterdir()):
        raise NewstopicError(f"--out {out} is not empty: choose another --out (the study "
                             "itself lives in --storage)")
    dataset = data_opts.load(get_task("classify"))
    try:
        with progress_bar(quiet) as progress:
            summary = tuning.tune(model, dataset, trials=trials, out=out,
                                  seed=data_opts.seed or 0, validation_size=validation_size,
                                  params=params, storage=storage, study_name=study,
                                  timeout=timeout, progress=progress,
                                  command=shlex.join(["newstopic", *sys.argv[1:]]))
    except KeyboardInterrupt:
        raise NewstopicError("interrupted: run the same command again to continue the study "
                             "where it stopped") from None
    print(f"{model}\tbest validation accuracy {summary['best_validation_accuracy']:.4f} "
          f"(trial {summary['best_trial']} of {summary['trials_in_study']})\t"
          f"test accuracy {summary['test']['accuracy']:.4f}\t{out / 'model'}")
