"""The verbs that use a saved model: `evaluate`, `predict`, `explain`, `summarize`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from newstopic.artifacts import load_model
from newstopic.cli.options import (
    BeamOption,
    DataOptions,
    FileOption,
    ModelDirOption,
    QuietOption,
    TextColumnOption,
    app,
    backend_options,
    batches,
    check_output,
    console,
    data_options,
    print_table,
    progress_bar,
    read_inputs,
)
from newstopic.errors import NewstopicError
from newstopic.evaluation import plot_confusion_matrix, write_json
from newstopic.explain import explain as explain_text
from newstopic.explain import html_page, marked_text, predict_known, ranked_labels, warn_unknown
from newstopic.files import write_atomic
from newstopic.registry import registered
from newstopic.seq2seq import check_beam
from newstopic.streaming import CHUNK_SIZE, PredictionJob, predict_file
from newstopic.tasks import get_task


@app.command()
@backend_options()
@data_options
def evaluate(
    data_opts: DataOptions,
    model: ModelDirOption,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Also write metrics.json (and a classifier's "
                            "confusion_matrix.png) here.")] = None,
    beam: BeamOption = 1,
    quiet: QuietOption = False,
) -> None:
    """A classifier's accuracy, macro-F1 and per-class scores, or a subject model's ROUGE, on
    test data \\[default: the model's own]."""
    check_output(out, "--out")
    check_beam(beam)
    manifest, predictor = load_model(model, full=False)
    task = get_task(registered(manifest["model"]).task)
    dataset = data_opts.load(task, base=manifest.get("config"), evaluating=True)
    with console(quiet).status(f"evaluating on {len(dataset.test_texts)} {task.noun}"):
        metrics = task.evaluate(predictor, dataset.test_texts, dataset.test_labels, beam)
    if "per_class" in metrics:
        rows = [[label, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}",
                 str(m["support"])] for label, m in metrics["per_class"].items()]
        print_table(["class", "precision", "recall", "F1", "support"], rows)
    print("\t".join([manifest["model"], *(f"{title} {metrics[key]:.4f}"
                                          for key, title in task.metrics()),
                     f"{metrics['n']} {task.noun}"]))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json({"model": manifest["model"], "data": dataset.config, **metrics,
                    **({"beam": beam} if task.generates else {})}, out / "metrics.json")
        if not task.generates:
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
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Labels to give per text.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Label all of --file into this .jsonl or .parquet file, in input "
                            "order, chunk by chunk, in bounded memory.")] = None,
    id_column: Annotated[Optional[str], typer.Option(
        help="With --out: the input column to copy as each row's id \\[default: the row's "
             "0-based position, as `row`]")] = None,
    resume: Annotated[bool, typer.Option(
        help="With --out: continue an interrupted run after its last complete chunk.")] = False,
    chunk_size: Annotated[int, typer.Option(
        help="With --out: documents per chunk (memory grows with it).")] = CHUNK_SIZE,
    engine: Annotated[str, typer.Option(
        help="With --out: local (this process) or ray (Ray Data; the scale extra).")] = "local",
    workers: Annotated[Optional[int], typer.Option(
        help="With --engine ray: labelling actors \\[default: 1]")] = None,
    address: Annotated[Optional[str], typer.Option(
        help="With --engine ray: the cluster to join (auto, HOST:PORT or ray://HOST:PORT) "
             "\\[default: start a local Ray]")] = None,
    quiet: QuietOption = False,
) -> None:
    """Label texts: one line per input, `label<TAB>probability`; with --out, a whole file into
    a JSONL or Parquet file."""
    if top_k < 1:
        raise NewstopicError(f"--top-k {top_k} must be at least 1")
    if out is not None:
        if file is None or texts:
            raise NewstopicError("--out labels a file: give it with --file (not as arguments "
                                 "or on standard input)")
        check_output(out, "--out", kind="file")
        job = PredictionJob(model, file, out, text_column, id_column, top_k, chunk_size)
        with progress_bar(quiet, counting="documents") as bar:
            done = predict_file(job, engine=engine, workers=workers, address=address,
                                resume=resume, progress=bar)
        print(f"{out}\t{done['total_rows']} rows\t{done['docs_per_second'] or 0:,.0f} docs/s")
        return
    if id_column is not None or resume or engine != "local" or workers or address:
        raise NewstopicError("--id-column, --resume, --engine, --workers and --address apply "
                             "to a file labelled into --out: add --out")
    inputs = read_inputs(texts, file, text_column)
    _, predictor = load_model(model, task="classify", full=False)
    labels = [str(c) for c in predictor.classes_]
    done = 0
    # In batches, so that a file of any size is labelled in bounded memory.
    for batch in batches(inputs):
        proba, known = predict_known(predictor, batch)
        warn_unknown(known, first=done)
        done += len(batch)
        for record in ranked_labels(proba, labels, top_k):
            if as_json:
                print(json.dumps(record))
            else:
                print("\t".join(f"{label}\t{p:.4f}" for label, p in record["top"]))


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

    if top_k < 1:
        raise NewstopicError(f"--top-k {top_k} must be at least 1")
    check_output(html, "--html", kind="file")
    inputs = read_inputs(texts, file, text_column)
    manifest, predictor = load_model(model, task="classify", full=False)
    terminal = Console(highlight=False, soft_wrap=True) if sys.stdout.isatty() else None
    explanations = []
    for number, text in enumerate(inputs):
        explanation = explain_text(predictor, text, top_k)
        warn_unknown([explanation.known_words], first=number)
        explanations.append(explanation)
        if number:
            print()
        print(f"{explanation.label}\t{explanation.probability:.4f}\t{explanation.method}")
        if terminal is None:  # a pipe or a file: plain markers
            print(marked_text(explanation, lambda word, strength: f"**{word}**"))
        else:
            terminal.print(marked_text(explanation, _rich_mark, escape))
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
    check_beam(beam)
    inputs = read_inputs(texts, file, text_column)
    _, subject_model = load_model(model, task="subject")
    for batch in batches(inputs):
        for subject in subject_model.summarize(batch, beam=beam):
            print(subject)
