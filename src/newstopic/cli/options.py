"""What the verbs share: the app, the options, reading inputs and printing results.

Heavy libraries are imported inside the functions that need them, so that `newstopic --help`
and a refused option answer at once, and `predict` with a classical model starts without
scikit-learn or Keras.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import os
import sys
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Optional

import typer

from newstopic.artifacts import check_destination
from newstopic.backend import use_backend, use_devices
from newstopic.data import (
    SUBJECT_REMOVE,
    Dataset,
    check_seed,
    check_share,
    load_20newsgroups,
    load_subjects,
    load_texts,
    read_labelled,
)
from newstopic.errors import NewstopicError
from newstopic.records import iter_texts, stream_texts
from newstopic.tasks import Task

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="News-topic text classification: classical TF-IDF models and sequence "
                       "neural networks, trained, compared, saved and served.")

QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
FileOption = Annotated[Optional[Path], typer.Option(
    "--file", "-f", help="One document per line (.txt), or CSV/TSV/JSONL/Parquet with a text "
                         "column.")]
TextColumnOption = Annotated[str, typer.Option(help="Text column of a CSV/TSV/JSONL/Parquet "
                                                    "file.")]
TaskOption = Annotated[Optional[str], typer.Option(
    help="classify (a label per text) or subject (generate a 20 Newsgroups message's subject "
         "line from its body) \\[default: the task of the models named, else classify]",
    show_default=False)]
BeamOption = Annotated[int, typer.Option(
    "--beam", help="Subject models: beam width, 1 to 256 (1 = greedy decoding).")]
ModelDirOption = Annotated[Path, typer.Option("--model", "-m", help="A trained model directory.")]
ValidationSizeOption = Annotated[float, typer.Option(
    help="Share of the training split held out for validation.")]


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

    def __post_init__(self):
        # refused before any data is read
        if self.seed is not None:
            check_seed(self.seed, "--seed")
        if self.test_size is not None:
            check_share(self.test_size, "--test-size")

    def given(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def load(self, task: Task | None = None, base: dict | None = None,
             evaluating: bool = False) -> Dataset:
        """The dataset of `task` (default: classify) these options name; unset options come
        from `base` (a model's training config), then from the defaults. `evaluating` a saved
        model, a --test-file alone is its test data."""
        if task is not None and task.generates:
            return self._load_subjects(base)
        given = self.given()
        if evaluating and "test_file" in given and "train_file" not in given:
            texts, labels = read_labelled(given["test_file"], given.get("text_column", "text"),
                                          given.get("label_column", "label"))
            config = {"kind": "files", "source": str(given["test_file"]),
                      "test_file": str(given["test_file"])}
            return Dataset([], [], texts, labels, config)
        opts = self._with(base)
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
                                 categories=as_list(opts.get("categories")),
                                 remove=as_list(opts.get("remove")) or (),
                                 split=opts.get("split", "bydate"), test_size=test_size,
                                 seed=seed)

    def _with(self, base: dict | None) -> dict:
        """The options given, and the data options of `base` that they leave unset (its source
        only if they name none)."""
        given = self.given()
        source_keys = {"data", "preset", "categories", "train_file", "test_file"}
        inherited = {k: v for k, v in (base or {}).items()
                     if k in DATA_OPTION_NAMES and v is not None
                     and not (source_keys & given.keys() and k in source_keys)}
        if base and base.get("preset") and "categories" in inherited:
            del inherited["categories"]  # a preset names its categories itself
        return {**inherited, **given}

    def _load_subjects(self, base: dict | None = None) -> Dataset:
        """The subject task's messages: 20 Newsgroups only, on its bydate split; unset options
        from `base`, as `load`."""
        clash = sorted({"train_file", "test_file", "text_column", "label_column", "split",
                        "test_size"} & self.given().keys())
        if clash:
            raise NewstopicError(f"--{clash[0].replace('_', '-')} does not apply to --task "
                                 "subject: it reads 20 Newsgroups messages with their headers, "
                                 "on the bydate split")
        opts = self._with(base)
        return load_subjects(opts.get("data"), preset=opts.get("preset"),
                             categories=as_list(opts.get("categories")),
                             remove=as_list(opts.get("remove")) or SUBJECT_REMOVE)


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


def check_output(path: Path | None, option: str, kind: str = "dir") -> None:
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


def as_list(value):
    if value is None or isinstance(value, list):
        return value
    return [v.strip() for v in str(value).split(",") if v.strip()]


def console(quiet: bool = False):
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


def progress_bar(quiet: bool, counting: str | None = None):
    """Progress on standard error: bars of known totals, or with `counting` (a stream of
    unknown length), the items done and the `rate` field of each task."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn, TimeRemainingColumn)

    if counting:
        return Progress(SpinnerColumn(), TextColumn("{task.description}"),
                        TextColumn("{task.completed:,} " + counting),
                        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                        console=console(quiet))
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console(quiet))


def print_table(header: list[str], rows: list[list[str]], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*header, title=title)
    for row in rows:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(table)  # no truncation in a pipe


# --- commands ------------------------------------------------------------------------------


def read_inputs(texts, file, text_column):
    """The texts to work on, as an iterator read in bounded memory; its first text is read
    now, so that a missing or empty input is refused before a model is loaded."""
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




def parse_param(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise NewstopicError(f"--param '{text}' is not NAME=VALUE: write it like --param C=1.0")
    try:
        return name.strip(), json.loads(value)
    except ValueError:
        return name.strip(), value


PREDICT_BATCH = 4096  # texts read, worked on and printed at a time


def batches(items, size: int = PREDICT_BATCH):
    """Lists of at most `size` items, read from `items` one list at a time."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
