"""The `newstopic` command: few verbs, sensible defaults, one line of output per result.

Heavy libraries are imported inside the commands that need them, so that `predict` with a
classical model starts without scikit-learn, Keras or TensorFlow.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import itertools
import json
import logging
import os
import re
import sys
import threading
import typing
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Optional

import typer

from newstopic.errors import NewstopicError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="News-topic text classification: classical TF-IDF models and sequence "
                       "neural networks, trained, compared, saved and served.")

QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
FileOption = Annotated[Optional[Path], typer.Option(
    "--file", "-f", help="One document per line, or CSV/TSV/JSONL with a text column.")]
TextColumnOption = Annotated[str, typer.Option(help="Text column of a CSV/TSV/JSONL file.")]
TaskOption = Annotated[str, typer.Option(
    help="classify (a label per text) or subject (generate a 20 Newsgroups message's subject "
         "line from its body).")]
BeamOption = Annotated[int, typer.Option(
    "--beam", help="Subject models: beam width (1 = greedy decoding).")]
ModelDirOption = Annotated[Path, typer.Option("--model", "-m", help="A trained model directory.")]


# --- data options, shared by every command that reads a dataset ---------------------------


@dataclass
class DataOptions:
    data: Optional[Path] = None
    preset: Optional[str] = None
    categories: Optional[str] = None
    remove: Optional[str] = None
    split: Optional[str] = None
    test_size: Optional[float] = None
    train_file: Optional[Path] = None
    test_file: Optional[Path] = None
    text_column: Optional[str] = None
    label_column: Optional[str] = None
    seed: Optional[int] = None

    def given(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def load(self, base: dict | None = None, evaluating: bool = False):
        """The dataset these options name; unset options come from `base` (a model's
        training config), then from the defaults. `evaluating` a saved model, a --test-file
        alone is its test data."""
        from newstopic.data import Dataset, load_20newsgroups, load_texts, read_labelled

        given = self.given()
        if evaluating and "test_file" in given and "train_file" not in given:
            texts, labels = read_labelled(given["test_file"], given.get("text_column", "text"),
                                          given.get("label_column", "label"))
            config = {"kind": "files", "source": str(given["test_file"]),
                      "test_file": str(given["test_file"])}
            return Dataset([], [], texts, labels, config)
        source_keys = {"data", "preset", "categories", "train_file", "test_file"}
        inherited = {k: v for k, v in (base or {}).items()
                     if k in DATA_OPTION_NAMES and v is not None
                     and not (source_keys & given.keys() and k in source_keys)}
        if base and base.get("preset") and "categories" in inherited:
            del inherited["categories"]  # a preset names its categories itself
        opts = {**inherited, **given}
        seed, test_size = opts.get("seed", 0), opts.get("test_size", 0.2)
        if opts.get("train_file"):
            clash = sorted({"data", "preset", "categories", "remove", "split"} & given.keys())
            if clash:
                raise NewstopicError(f"--{clash[0].replace('_', '-')} applies to 20 Newsgroups, "
                                     "not to --train-file data: drop one of them")
            return load_texts(opts["train_file"], opts.get("test_file"),
                              text_column=opts.get("text_column", "text"),
                              label_column=opts.get("label_column", "label"),
                              test_size=test_size, seed=seed)
        if opts.get("test_file"):
            raise NewstopicError("--test-file needs --train-file: give both")
        return load_20newsgroups(opts.get("data"), preset=opts.get("preset"),
                                 categories=_as_list(opts.get("categories")),
                                 remove=_as_list(opts.get("remove")) or (),
                                 split=opts.get("split", "bydate"), test_size=test_size,
                                 seed=seed)

    def load_subjects(self):
        """The subject task's messages: 20 Newsgroups only, on its bydate split."""
        from newstopic.data import SUBJECT_REMOVE, load_subjects

        given = self.given()
        clash = sorted({"train_file", "test_file", "text_column", "label_column", "split",
                        "test_size"} & given.keys())
        if clash:
            raise NewstopicError(f"--{clash[0].replace('_', '-')} does not apply to --task "
                                 "subject: it reads 20 Newsgroups messages with their headers, "
                                 "on the bydate split")
        return load_subjects(given.get("data"), preset=given.get("preset"),
                             categories=_as_list(given.get("categories")),
                             remove=_as_list(given.get("remove")) or SUBJECT_REMOVE)


DATA_OPTION_NAMES = {f.name for f in fields(DataOptions)}
_DATA_HELP = {
    "data": ("--data", "20 Newsgroups: the 20news-bydate.tar.gz archive, its extracted folder "
                       "or a scikit-learn data home \\[default: $NEWSTOPIC_DATA, else download]"),
    "preset": ("--preset", "seed (comp.graphics, sci.med), seed3 (rec.autos, sci.electronics, "
                           "soc.religion.christian) or all \\[default: all]"),
    "categories": ("--categories", "Comma-separated newsgroups, instead of --preset."),
    "remove": ("--remove", "Strip any of headers,footers,quotes from the messages."),
    "split": ("--split", "bydate (the archive's own train/test) or random \\[default: bydate]"),
    "test_size": ("--test-size", "Test share for a random split \\[default: 0.2]"),
    "train_file": ("--train-file", "Your own labelled texts: CSV, TSV, JSONL or a folder per "
                                   "class."),
    "test_file": ("--test-file", "Your own test texts \\[default: a stratified split of "
                                 "--train-file]"),
    "text_column": ("--text-column", "Column holding the text \\[default: text]"),
    "label_column": ("--label-column", "Column holding the label \\[default: label]"),
    "seed": ("--seed", "Fixes data splits, initialisation and shuffling \\[default: 0]"),
}


def data_options(command):
    """Add the data options to a command; it receives them as one `data_opts` argument."""
    types = typing.get_type_hints(DataOptions)
    extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=Annotated[types[f.name], typer.Option(
                                   _DATA_HELP[f.name][0], help=_DATA_HELP[f.name][1],
                                   rich_help_panel="Data", show_default=False)])
             for f in fields(DataOptions)]

    def take(kwargs: dict) -> dict:
        return {"data_opts": DataOptions(**{name: kwargs.pop(name) for name in DATA_OPTION_NAMES})}

    return _with_options(command, extra, take, hidden={"data_opts"})


BackendOption = Annotated[Optional[str], typer.Option(
    "--backend", help="Keras backend of the neural models: tensorflow or jax \\[default: "
                      "$KERAS_BACKEND, else jax with a CUDA plugin, else tensorflow]",
    rich_help_panel="Runtime", show_default=False)]
DevicesOption = Annotated[Optional[str], typer.Option(
    "--devices", help="Neural training: data-parallel over N devices, or all (jax backend) "
                      "\\[default: 1]", rich_help_panel="Runtime", show_default=False)]


def backend_options(devices: bool = False):
    """Add --backend (and, for training commands, --devices) to a command: the backend is
    settled before the command runs, so before Keras is first imported."""

    def add(command):
        extra = [inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY, default=None,
                                   annotation=BackendOption)]
        if devices:
            extra.append(inspect.Parameter("devices", inspect.Parameter.KEYWORD_ONLY,
                                           default=None, annotation=DevicesOption))

        def take(kwargs: dict) -> dict:
            from newstopic.backend import use_backend, use_devices

            use_backend(kwargs.pop("backend"))
            if devices:
                use_devices(kwargs.pop("devices"))
            return {}

        return _with_options(command, extra, take)

    return add


def _with_options(command, extra: list, take, hidden=frozenset()):
    """`command` with the `extra` options added to its signature; `take` removes them from the
    call's arguments and returns what to pass instead."""
    signature = inspect.signature(command)
    hints = typing.get_type_hints(command, include_extras=True)
    own = [p.replace(annotation=hints[p.name]) if isinstance(p.annotation, str) else p
           for p in signature.parameters.values() if p.name not in hidden]

    @functools.wraps(command)
    def wrapper(**kwargs):
        return command(**take(kwargs), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=own + extra)
    return wrapper


def _check_output(path: Path | None, option: str, kind: str = "dir") -> None:
    """Refuse, before any work, an output path that cannot be written: a `kind` "file" that
    is a directory, a "dir" that is a file, a "model" directory that holds something else, or
    a place under a file or a folder this process cannot write to."""
    if path is None:
        return
    if kind == "file" and path.is_dir():
        raise NewstopicError(f"{option} {path} is a directory: give a file name")
    if kind != "file" and path.exists() and not path.is_dir():
        raise NewstopicError(f"{option} {path} is a file: give a directory")
    if kind == "model":
        from newstopic.artifacts import check_destination

        check_destination(path)
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NewstopicError(f"{option} {path}: {ancestor} is a file, not a directory: choose "
                             "another path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise NewstopicError(f"{option} {path}: {ancestor} is not writable: choose another "
                             "path")


def _as_list(value):
    if value is None or isinstance(value, list):
        return value
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _console(quiet: bool = False):
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


def _progress(quiet: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn, TimeRemainingColumn)

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=_console(quiet))


def _print_table(header: list[str], rows: list[list[str]], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*header, title=title)
    for row in rows:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(table)  # no truncation in a pipe


# --- commands ------------------------------------------------------------------------------


@app.command()
def models(
    name: Annotated[Optional[str], typer.Argument(
        help="A model: list its hyperparameters, defaults and allowed values instead.")] = None,
) -> None:
    """List the registered models, one per line; or one model's hyperparameters."""
    from newstopic.catalog import MODELS, get_model, model_names

    if name is not None:
        spec = get_model(name)
        for parameter, default in spec.parameters().items():
            print(f"{parameter}\t{_shown(default)}\t{spec.constraint(parameter).describe()}")
        return
    for name in model_names():
        spec = MODELS[name]
        print(f"{name}\t{spec.family}\t{spec.description}")


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
    _print_table(["class", "train", "test"], rows, title=dataset.config["source"])
    length_rows = []
    for part, texts in (("train", dataset.train_texts), ("test", dataset.test_texts)):
        words = np.array([len(t.split()) for t in texts])
        length_rows.append([part, f"{words.mean():.0f}", f"{np.median(words):.0f}",
                            f"{np.percentile(words, 95):.0f}"])
    _print_table(["split", "mean words", "median", "p95"], length_rows)


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
    validation_size: Annotated[float, typer.Option(
        help="Share of the training split held out for validation.")] = 0.1,
    task: TaskOption = "classify",
    beam: BeamOption = 1,
    quiet: QuietOption = False,
) -> None:
    """Train a model, evaluate it on validation and test, and save it to --out."""
    from newstopic.catalog import get_model
    from newstopic.training import checkpoint_path
    from newstopic.training import train as train_model

    _check_task(task)
    spec = get_model(model)
    _check_output(out, "--out", kind="model")
    params = dict(_parse_param(p) for p in param or [])
    params.update((k, v) for k, v in (("epochs", epochs), ("batch_size", batch_size),
                                      ("learning_rate", learning_rate),
                                      ("class_weight", class_weight), ("truncate", truncate))
                  if v is not None)
    spec.check(params)
    if task == "subject":
        return _train_subject(data_opts, spec.name, params, validation_size, out, beam, quiet)
    dataset = data_opts.load()
    if resume and not checkpoint_path(out).exists():
        print(f"warning: no checkpoint at {checkpoint_path(out)}; training from the start",
              file=sys.stderr)
    try:
        with _progress(quiet) as progress:
            progress.add_task(f"training {spec.name} on {len(dataset.train_texts)} documents",
                              total=None)
            _, metrics, _ = train_model(spec.name, dataset, seed=data_opts.seed or 0,
                                        params=params, validation_size=validation_size, out=out,
                                        progress=progress, resume=resume)
    except KeyboardInterrupt:
        hint = ("run the same command with --resume to continue from the last finished epoch"
                if spec.family == "neural" else "run the command again")
        raise NewstopicError(f"interrupted: {hint}") from None
    print(f"{spec.name}\tvalidation accuracy {metrics['validation']['accuracy']:.4f}\t"
          f"test accuracy {metrics['test']['accuracy']:.4f}\t"
          f"macro-F1 {metrics['test']['macro_f1']:.4f}\t"
          f"{metrics['train_seconds']:.1f} s\t{out}")


def _check_task(task: str) -> None:
    from newstopic.registry import TASKS

    if task not in TASKS:
        raise NewstopicError(f"unknown task '{task}': choose one of {', '.join(TASKS)}")


def _train_subject(data_opts, model, params, validation_size, out, beam, quiet) -> None:
    from newstopic.training import check_subject_model, train_subject

    check_subject_model(model, out)
    dataset = data_opts.load_subjects()
    with _progress(quiet) as progress:
        progress.add_task(f"training {model} on {len(dataset.train_bodies)} messages",
                          total=None)
        _, metrics, _ = train_subject(model, dataset, seed=data_opts.seed or 0, params=params,
                                      validation_size=validation_size, out=out,
                                      progress=progress, beam=beam)
    test = metrics["test"]
    print(f"{model}\tvalidation ROUGE-L {metrics['validation']['rougeL']:.4f}\t"
          f"test ROUGE-1 {test['rouge1']:.4f}\tROUGE-2 {test['rouge2']:.4f}\t"
          f"ROUGE-L {test['rougeL']:.4f}\texact match {test['exact_match']:.4f}\t"
          f"{metrics['train_seconds']:.1f} s\t{out}")


def _parse_param(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise NewstopicError(f"--param '{text}' is not NAME=VALUE: write it like --param C=1.0")
    try:
        return name.strip(), json.loads(value)
    except ValueError:
        return name.strip(), value


@app.command()
@backend_options()
@data_options
def evaluate(
    data_opts: DataOptions,
    model: ModelDirOption,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Also write metrics.json and confusion_matrix.png here.")] = None,
    quiet: QuietOption = False,
) -> None:
    """Accuracy, macro-F1 and per-class scores on test data \\[default: the model's own]."""
    from newstopic.artifacts import load_predictor
    from newstopic.evaluation import evaluate as evaluate_model
    from newstopic.evaluation import plot_confusion_matrix, write_json

    _check_output(out, "--out")
    manifest, predictor = load_predictor(model)
    dataset = data_opts.load(base=manifest.get("config"), evaluating=True)
    with _console(quiet).status(f"evaluating on {len(dataset.test_texts)} documents"):
        metrics = evaluate_model(predictor, dataset.test_texts, dataset.test_labels)
    rows = [[label, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}",
             str(m["support"])] for label, m in metrics["per_class"].items()]
    _print_table(["class", "precision", "recall", "F1", "support"], rows)
    print(f"{manifest['model']}\taccuracy {metrics['accuracy']:.4f}\t"
          f"macro-F1 {metrics['macro_f1']:.4f}\t{metrics['n']} documents")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json({"model": manifest["model"], "data": dataset.config, **metrics},
                   out / "metrics.json")
        plot_confusion_matrix(metrics, out / "confusion_matrix.png",
                              f"{manifest['model']}: accuracy {metrics['accuracy']:.3f}")


@app.command()
@backend_options()
def predict(
    model: ModelDirOption,
    texts: Annotated[Optional[list[str]], typer.Argument(
        help="Texts to classify \\[default: --file, else standard input, one per line]")] = None,
    file: FileOption = None,
    text_column: TextColumnOption = "text",
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Labels to show per text.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Label texts: one line per input, `label<TAB>probability`."""
    from newstopic.artifacts import load_predictor
    from newstopic.explain import predict_known, ranked_labels, warn_unknown

    if top_k < 1:
        raise NewstopicError(f"--top-k {top_k} must be at least 1")
    inputs = _read_inputs(texts, file, text_column)
    _, predictor = load_predictor(model)
    labels = [str(c) for c in predictor.classes_]
    done = 0
    # In batches, so that a file of any size is labelled in bounded memory.
    for batch in _batches(inputs, PREDICT_BATCH):
        proba, known = predict_known(predictor, batch)
        warn_unknown(known, first=done)
        done += len(batch)
        for record in ranked_labels(proba, labels, top_k):
            if as_json:
                print(json.dumps(record))
            else:
                print("\t".join(f"{label}\t{p:.4f}" for label, p in record["top"]))


PREDICT_BATCH = 4096  # texts read, predicted and printed at a time


def _batches(items, size: int):
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


@app.command()
@backend_options()
def explain(
    model: ModelDirOption,
    texts: Annotated[Optional[list[str]], typer.Argument(
        help="Texts to explain \\[default: --file, else standard input, one per line]")] = None,
    file: FileOption = None,
    text_column: TextColumnOption = "text",
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Top words to show per text.")]
    = 10,
    html: Annotated[Optional[Path], typer.Option(
        help="Also write a self-contained HTML page with the highlighted texts.")] = None,
) -> None:
    """Why each text gets its label: the text with its top words highlighted, and their scores."""
    from rich.console import Console
    from rich.markup import escape

    from newstopic.artifacts import load_predictor
    from newstopic.files import write_atomic
    from newstopic.explain import explain as explain_text
    from newstopic.explain import html_page, marked_text

    if top_k < 1:
        raise NewstopicError(f"--top-k {top_k} must be at least 1")
    _check_output(html, "--html", kind="file")
    inputs = _read_inputs(texts, file, text_column)
    manifest, predictor = load_predictor(model)
    console = Console(highlight=False, soft_wrap=True) if sys.stdout.isatty() else None
    explanations = []
    for number, text in enumerate(inputs):
        explanation = explain_text(predictor, text, top_k)
        explanations.append(explanation)
        if number:
            print()
        print(f"{explanation.label}\t{explanation.probability:.4f}\t{explanation.method}")
        if console is None:  # a pipe or a file: plain markers
            print(marked_text(explanation, lambda word, strength: f"**{word}**"))
        else:
            console.print(marked_text(explanation, _rich_mark, escape))
        for word, score in explanation.top:
            print(f"{word}\t{score:.4f}")
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(html, html_page(explanations, f"{manifest['model']}: why each label"))


def _rich_mark(word: str, strength: float) -> str:
    from rich.markup import escape

    fade = int(191 * (1 - strength))  # strongest: orange; weakest: pale orange
    return f"[bold black on #ff{140 + fade * 115 // 255:02x}{fade:02x}]{escape(word)}[/]"


@app.command()
@backend_options()
def summarize(
    model: ModelDirOption,
    texts: Annotated[Optional[list[str]], typer.Argument(
        help="Message bodies \\[default: --file, else standard input, one per line]")] = None,
    file: FileOption = None,
    text_column: TextColumnOption = "text",
    beam: BeamOption = 1,
) -> None:
    """Write a subject line for each text with a subject model: one line per input."""
    from newstopic.artifacts import load_subject_model

    inputs = _read_inputs(texts, file, text_column)
    subject_model = load_subject_model(model)
    for batch in _batches(inputs, PREDICT_BATCH):
        for subject in subject_model.summarize(batch, beam=beam):
            print(subject)


def _read_inputs(texts, file, text_column):
    """The texts to work on, as an iterator read in bounded memory; its first text is read
    now, so that a missing or empty input is refused before a model is loaded."""
    from newstopic.data import iter_texts, stream_texts

    if texts and file:
        raise NewstopicError("give texts as arguments or --file, not both")
    if file is not None:
        return iter_texts(file, text_column)
    if texts:
        return iter(texts)
    if sys.stdin is None or sys.stdin.isatty():
        raise NewstopicError("no input: give texts as arguments, --file F, or pipe them on "
                             "standard input (one per line)")
    return stream_texts(sys.stdin.buffer)


@app.command()
@backend_options(devices=True)
@data_options
def benchmark(
    data_opts: DataOptions,
    models: Annotated[Optional[str], typer.Option(
        help="Comma-separated model names \\[default: every registered model]")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the report.")]
    = Path("results/benchmark"),
    validation_size: Annotated[float, typer.Option(
        help="Share of the training split held out for validation.")] = 0.1,
    epochs: Annotated[Optional[int], typer.Option(
        help="Cap the epochs of the neural models, for a quick run.")] = None,
    resume: Annotated[bool, typer.Option(
        help="Keep the models an interrupted run finished; continue the one it was on.")]
    = False,
    task: TaskOption = "classify",
    beam: BeamOption = 1,
    quiet: QuietOption = False,
) -> None:
    """Train and evaluate models on one split; write results.json, report.md and plots."""
    from newstopic.evaluation import SUBJECT_COLUMNS, table_rows
    from newstopic.catalog import model_names
    from newstopic.training import benchmark as run_benchmark
    from newstopic.training import benchmark_subjects

    _check_task(task)
    _check_output(out, "--out")
    names = _as_list(models) or model_names(task)
    if task == "subject":
        if resume:
            raise NewstopicError("--resume applies to the classification benchmark: run "
                                 "--task subject again without it")
        dataset = data_opts.load_subjects()
        with _progress(quiet) as progress:
            summary = benchmark_subjects(dataset, names, out, seed=data_opts.seed or 0,
                                         validation_size=validation_size, epochs=epochs,
                                         beam=beam, progress=progress)
        header, rows = table_rows(summary["results"], SUBJECT_COLUMNS)
        _print_table(header, rows, title=f"{dataset.config['source']}: {out / 'report.md'}")
        return
    dataset = data_opts.load()
    try:
        with _progress(quiet) as progress:
            summary = run_benchmark(dataset, names, out, seed=data_opts.seed or 0,
                                    validation_size=validation_size, epochs=epochs,
                                    progress=progress, resume=resume)
    except KeyboardInterrupt:
        raise NewstopicError("interrupted: run the same command with --resume to keep the "
                             "finished models and continue") from None
    header, rows = table_rows(summary["results"])
    _print_table(header, rows, title=f"{dataset.config['source']}: {out / 'report.md'}")


@app.command()
@backend_options()
def serve(
    model: Annotated[list[Path], typer.Option(
        "--model", "-m", help="A trained model directory; repeat to serve several (the first "
                              "is the default).")],
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for every "
                                           "interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8000,
    max_texts: Annotated[int, typer.Option(help="Most texts per request.")] = 256,
    max_chars: Annotated[int, typer.Option(help="Most characters per text.")] = 100_000,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 5_000_000,
    max_connections: Annotated[int, typer.Option(
        help="Most open connections; past it the oldest idle one is closed.")] = 1000,
    header_timeout: Annotated[float, typer.Option(
        help="Seconds a client has to send a request's headers.")] = 10.0,
    allow_host: Annotated[Optional[list[str]], typer.Option(
        help="A Host name clients use, besides localhost and --host; repeatable, and needed "
             "with --host 0.0.0.0.")] = None,
    quiet: QuietOption = False,
) -> None:
    """Serve models over HTTP: a web page at /, /predict, /explain, /summarize, docs at /docs."""
    from newstopic.server import Limits, allowed_hosts, bind, create_app, load_models
    from newstopic.server import serve as run_server

    limits = Limits(max_texts, max_chars, max_body_bytes, max_connections, header_timeout)
    if min(limits.max_texts, limits.max_chars, limits.max_body_bytes,
           limits.max_connections) < 1:
        raise NewstopicError("--max-texts, --max-chars, --max-body-bytes and --max-connections "
                             "must be at least 1")
    if not 0 < header_timeout <= 3600:
        raise NewstopicError(f"--header-timeout {header_timeout:g} must be between 0 and 3600 "
                             "seconds")
    hosts = allowed_hosts(host, allow_host)
    sock = bind(host, port)
    with _console(quiet).status(f"loading {len(model)} model(s)"):
        served = load_models(model)
    app_ = create_app(served, limits, hosts)
    address = sock.getsockname()
    shown = f"[{address[0]}]" if ":" in address[0] else address[0]
    print(f"serving {', '.join(m.name for m in served)} on http://{shown}:{address[1]}/",
          flush=True)
    run_server(app_, sock, limits, quiet)


# --- entry point ---------------------------------------------------------------------------


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


# TensorFlow's C++ logging (absl), which TF_CPP_MIN_LOG_LEVEL no longer silences: lines like
# "I0000 00:00:1796423619.246514     615 port.cc:153] oneDNN custom operations are on".
_NATIVE_LOG = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\]|WARNING: All "
                         rb"log messages before absl::InitializeLog\(\) is called)")


def _filter_native_logs() -> None:
    """Send what native libraries write to standard error through a filter that drops their
    log lines; Python's own messages go straight to the terminal."""
    terminal = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    sys.stderr = open(terminal, "w", buffering=1, encoding=sys.stderr.encoding,
                      errors="backslashreplace", closefd=False)

    def forward():
        with open(read, "rb", buffering=0) as pipe:
            for line in iter(pipe.readline, b""):
                if not _NATIVE_LOG.match(line):
                    os.write(terminal, line)

    thread = threading.Thread(target=forward, daemon=True, name="native-log-filter")
    thread.start()

    def drain():
        os.dup2(terminal, 2)  # closes the pipe's last writer: the thread reads to its end
        thread.join(2)

    atexit.register(drain)


def main() -> None:
    """Run the CLI; a user's mistake ends in one line on stderr, never a traceback."""
    if not os.environ.get("NEWSTOPIC_DEBUG"):
        _filter_native_logs()
        # TensorFlow's Python logger ("WARNING:tensorflow:... retracing") speaks to developers.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.showwarning = _show_warning
    try:
        app()
    except NewstopicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("NEWSTOPIC_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set NEWSTOPIC_DEBUG=1 to see the "
              "traceback, and please report it)", file=sys.stderr)
        sys.exit(1)
