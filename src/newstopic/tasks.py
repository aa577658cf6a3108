"""The two tasks newstopic trains models for: classify (a label per text) and subject (write a
20 Newsgroups message's subject line from its body).

A `Task` holds what differs between them: how validation is carved from the training texts,
the metrics, the columns and sections of the report. One training run, one benchmark
(`newstopic.training`) and one report writer (`write_report`) serve both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from newstopic.data import shuffled_split, stratified_split
from newstopic.errors import NewstopicError
from newstopic.evaluation import (
    REPORT_COLUMNS,
    SUBJECT_COLUMNS,
    evaluate,
    evaluate_subjects,
    headline,
    plot_accuracy_vs_time,
    plot_attention_alignment,
    plot_confusion_matrix,
    plot_training_curves,
    report_table,
    subject_headline,
    subject_verdict,
    verdict,
)
from newstopic.files import write_atomic
from newstopic.registry import ModelSpec, fits_unlabelled, model_names, registered


# --- what the report shows beyond the table, gathered model by model ------------------------


class ClassifyReport:
    """The plots: accuracy against training time, the best model's confusion matrix and the
    neural models' training curves."""

    def __init__(self, dataset, seed: int, out: Path):
        self.out, self.curves = out, {}
        (out / "training_curves.png").unlink(missing_ok=True)

    def add(self, spec: ModelSpec, model, test: dict | None) -> None:
        if getattr(model, "history", None):  # neural models; an ensemble has none of its own
            self.curves[spec.name] = model.history

    def sections(self, summary: dict) -> list[str]:
        out, results = self.out, summary["results"]
        best = next(r for r in results if r["model"] == summary["best_model"])
        plot_accuracy_vs_time(results, out / "accuracy_vs_time.png",
                              f"{len(summary['categories'])} classes, remove: "
                              f"{','.join(summary['remove']) or 'nothing'}")
        plot_confusion_matrix(best, out / "confusion_matrix.png",
                              f"{best['model']}: accuracy {best['accuracy']:.3f}")
        lines = ["![accuracy vs training time](accuracy_vs_time.png)", ""]
        if self.curves:
            plot_training_curves(self.curves, out / "training_curves.png")
            lines += ["Training curves of the neural models:", "",
                      "![training curves](training_curves.png)", ""]
        return lines + [f"Confusion matrix of the best model, `{summary['best_model']}`:", "",
                        "![confusion matrix](confusion_matrix.png)", ""]


N_EXAMPLES = 10
ALIGNED_MODEL = "seq2seq-attention"  # the model whose attention the report draws


class SubjectReport:
    """Ten test messages with every model's subject, and the attention of one of them."""

    def __init__(self, dataset, seed: int, out: Path):
        self.out = out
        rng = np.random.default_rng(seed)
        self.chosen = sorted(rng.choice(len(dataset.test_texts), min(
            N_EXAMPLES, len(dataset.test_texts)), replace=False).tolist())
        self.examples = [{"body": dataset.test_texts[i], "subject": dataset.test_labels[i],
                          "outputs": {}} for i in self.chosen]
        (out / "attention_alignment.png").unlink(missing_ok=True)

    def add(self, spec: ModelSpec, model, test: dict | None) -> None:
        for i, example in zip(self.chosen, self.examples):
            example["outputs"][spec.name] = test["predictions"][i]
        if spec.name == ALIGNED_MODEL:
            # the body nearest 40 words: long enough to show where the model looks, short
            # enough to read
            example = min(self.examples, key=lambda e: abs(len(e["body"].split()) - 40))
            generated, source, weights = model.alignment(example["body"])
            plot_attention_alignment(generated, source, weights,
                                     self.out / "attention_alignment.png",
                                     f"{ALIGNED_MODEL}; true subject: {example['subject']}")

    def sections(self, summary: dict) -> list[str]:
        lines = ["## Ten test examples", ""]
        names = [r["model"] for r in summary["results"]]
        for number, example in enumerate(self.examples, 1):
            excerpt = " ".join(example["body"].split())[:300]
            lines += [f"{number}. {excerpt} ...", f"   - true: **{example['subject']}**"]
            lines += [f"   - {name}: {example['outputs'][name] or '(empty)'}" for name in names]
            lines.append("")
        if (self.out / "attention_alignment.png").exists():
            lines += [f"Attention of `{ALIGNED_MODEL}` on one test message (generated tokens x "
                      "source tokens):", "", "![attention alignment](attention_alignment.png)",
                      ""]
        return lines


# --- the tasks --------------------------------------------------------------------------------


def _classify_setting(summary: dict) -> str:
    setting = (f"Data: {summary['dataset']}; categories: {len(summary['categories'])}; remove: "
               f"{', '.join(summary['remove']) or 'nothing'}; split: {summary['split']}; "
               f"seed: {summary['seed']}; {summary['n_train']} training documents (of which "
               f"{summary['n_validation']} held out for validation), {summary['n_test']} test.")
    started = [r["model"] for r in summary["results"] if r.get("word2vec")]
    if started:
        setting += (" Embeddings of " + ", ".join(started) + " start from skip-gram word2vec "
                    "vectors trained on the training texts only (no outside data)")
        seconds = summary.get("word2vec_seconds")
        setting += (f", once, in {seconds:.0f} s, beside the classical models (the first "
                    "neural model's training time counts only what it waited for them)."
                    if seconds else ".")
    return setting


def _subject_setting(summary: dict) -> str:
    skipped = summary["skipped"]
    return (f"Data: {summary['dataset']}; categories: {len(summary['categories'])}; remove: "
            f"{', '.join(summary['remove'])}; split: {summary['split']}; seed: "
            f"{summary['seed']}; {summary['n_train']} training messages (of which "
            f"{summary['n_validation']} held out for validation), {summary['n_test']} test; "
            f"skipped for an empty subject or body: {skipped['train']} train, "
            f"{skipped['test']} test. Decoding: "
            + ("greedy." if summary["beam"] == 1 else f"beam search, width {summary['beam']}."))


@dataclass(frozen=True)
class Task:
    name: str
    noun: str  # what its texts are, in messages to the user
    title: str  # of the benchmark report
    score: str  # the test metric that ranks models
    split: Callable  # (texts, labels, size, seed) -> fit and validation texts and labels
    evaluate: Callable  # (model, texts, labels, beam, known probabilities or None) -> metrics
    headline: Callable  # metrics -> the figures kept with a model
    columns: tuple  # of the results table: (key, title, format)
    verdict: Callable  # summary -> the report's first paragraph
    setting: Callable  # summary -> the report's data paragraph
    report: type  # gathers the report's sections model by model
    generates: bool  # writes text (decoding takes --beam) rather than choosing a label
    resumable: bool  # a benchmark keeps its finished models and continues

    def family(self, spec: ModelSpec, model=None) -> str:
        """The family the results table shows for a model of this task: one that fitted on
        the unlabelled test texts is "transductive", whatever it is made of; a classifier with
        a TF-IDF linear part, or an ensemble with such a member or a classical one, "hybrid"."""
        if self.generates:
            return "baseline" if spec.predictor is None else "neural"
        if fits_unlabelled(spec, model):
            return "transductive"
        members = [registered(member) for member in getattr(model, "members", ())]
        if spec.hybrid or any(m.hybrid or m.family == "classical" for m in members):
            return "hybrid"
        return spec.family

    def metrics(self) -> list[tuple[str, str]]:
        """(key, title) of each quality metric of the results table."""
        return [(key, title) for key, title, fmt in self.columns if fmt == "{:.4f}"]

    def scores(self, test: dict, validation: dict) -> dict:
        """A results row's figures: the test metrics less the bulky ones, and the validation
        score."""
        kept = {k: v for k, v in test.items()
                if k not in ("n", "predict_seconds", "per_class", "predictions")}
        return {**kept, f"validation_{self.score}": validation[self.score]}

    def spec(self, name: str) -> ModelSpec:
        """Model `name`, refused in one line if it is another task's."""
        spec = registered(name)
        if spec.task != self.name:
            kind = "a classifier" if spec.task == "classify" else "a subject-line generator"
            raise NewstopicError(f"model '{name}' is {kind}: for --task {self.name} choose one "
                                 f"of {', '.join(model_names(self.name))}")
        return spec


CLASSIFY = Task(
    name="classify", noun="documents", title="# newstopic benchmark", score="accuracy",
    split=lambda texts, labels, size, seed: stratified_split(texts, labels, size, seed,
                                                             "the training split"),
    evaluate=lambda model, texts, labels, beam, proba=None: evaluate(model, texts, labels, proba),
    headline=headline, columns=REPORT_COLUMNS, verdict=verdict, setting=_classify_setting,
    report=ClassifyReport, generates=False, resumable=True)

SUBJECT = Task(
    name="subject", noun="messages", title="# newstopic benchmark: subject-line generation",
    score="rougeL", split=shuffled_split, headline=subject_headline,
    evaluate=lambda model, texts, labels, beam, proba=None: evaluate_subjects(model, texts,
                                                                               labels, beam),
    columns=SUBJECT_COLUMNS, verdict=subject_verdict, setting=_subject_setting,
    report=SubjectReport, generates=True, resumable=False)

TASKS = {task.name: task for task in (CLASSIFY, SUBJECT)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise NewstopicError(f"unknown task '{name}': choose one of {', '.join(TASKS)}")
    return TASKS[name]


def write_report(task: Task, summary: dict, sections: list[str], out: Path) -> None:
    """`report.md`: the verdict, the data, the results table with the machine, then the task's
    own sections (plots, examples)."""
    lines = [task.title, "", task.verdict(summary), "", task.setting(summary), ""]
    lines += report_table(summary, task.columns) + sections
    write_atomic(out / "report.md", "\n".join(lines))
