"""Metrics, plots and the benchmark report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from newstopic.errors import NewstopicError
from newstopic.files import write_atomic
from newstopic.registry import model_names


def evaluate(predictor, texts: list[str], labels: list[str], proba=None) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix and throughput
    for any fitted model with `classes_` and `predict_proba`. `proba`: the texts'
    probabilities, when the model gave them already (then without throughput)."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    classes = [str(c) for c in predictor.classes_]
    unknown = sorted(set(map(str, labels)) - set(classes))
    if unknown:
        raise NewstopicError(f"the test data has labels the model was not trained on "
                             f"({', '.join(unknown[:5])}): evaluate on the model's own categories")
    seconds = None
    if proba is None:
        start = time.perf_counter()
        proba = predictor.predict_proba(texts)
        seconds = time.perf_counter() - start
    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    truth = np.asarray(labels, dtype=str)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=classes, zero_division=0)
    # averaged over the classes the data holds or the model chose: a class of neither (test
    # data of some of the model's classes) has no F1 to count
    seen = set(truth) | set(predicted)
    return {
        "n": len(truth),
        "accuracy": float((predicted == truth).mean()),
        "macro_f1": float(f1_score(truth, predicted, labels=[c for c in classes if c in seen],
                                   average="macro", zero_division=0)),
        "per_class": {c: {"precision": float(p), "recall": float(r), "f1": float(f),
                          "support": int(s)}
                      for c, p, r, f, s in zip(classes, precision, recall, f1, support)},
        "labels": classes,
        "confusion_matrix": confusion_matrix(truth, predicted, labels=classes).tolist(),
        "predict_seconds": seconds,
        "predict_docs_per_second": None if seconds is None else (
            len(truth) / seconds if seconds > 0 else float("inf")),
        "predictions": predicted.tolist(),
    }


def headline(metrics: dict) -> dict:
    """The figures worth keeping with a model: no matrices."""
    return {k: metrics[k] for k in ("n", "accuracy", "macro_f1", "predict_docs_per_second")}


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def evaluate_subjects(generator, bodies: list[str], subjects: list[str], beam: int = 1) -> dict:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 (the `rouge-score` package) and the exact-match
    rate of the subjects `generator.summarize` writes for `bodies`, with its throughput."""
    from rouge_score.rouge_scorer import RougeScorer

    start = time.perf_counter()
    predicted = generator.summarize(bodies, beam=beam)
    seconds = time.perf_counter() - start
    scorer = RougeScorer(list(ROUGE_TYPES))
    scores = [scorer.score(truth, guess) for truth, guess in zip(subjects, predicted)]
    return {
        "n": len(subjects),
        **{kind: float(np.mean([s[kind].fmeasure for s in scores])) for kind in ROUGE_TYPES},
        "exact_match": float(np.mean([t == p for t, p in zip(subjects, predicted)])),
        "predict_seconds": seconds,
        "predict_docs_per_second": len(subjects) / seconds if seconds > 0 else float("inf"),
        "predictions": predicted,
    }


def subject_headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("n", *ROUGE_TYPES, "exact_match", "predict_docs_per_second")}


def write_json(data, path: Path) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(metrics: dict, path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix (recall on the diagonal), counts in the cells."""
    plt = _pyplot()
    counts = np.asarray(metrics["confusion_matrix"])
    labels = metrics["labels"]
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 3 + 0.45 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 25:
        for i, j in zip(*np.nonzero(counts)):
            ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=6,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title(title or f"accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


MARKERS = "osD^P*XhH<>pd8"  # not "v": it marks a model below the accuracy axis


def model_styles(names: list[str]) -> dict[str, tuple]:
    """A (colour, marker) pair per model, no two alike among the registered models (tab20's
    colours, each with its own marker), and the same for a model in every plot."""
    plt = _pyplot()
    colours = plt.get_cmap("tab20").colors
    registered = model_names()
    order = registered + [name for name in names if name not in registered]
    styles = {}
    for name in names:
        i = order.index(name)
        styles[name] = (colours[(2 * i) % 20 + (2 * i) // 20 % 2], MARKERS[i % len(MARKERS)])
    return styles


def _accuracy_floor(accuracies: list[float]) -> float:
    """The bottom of the accuracy axis: just below the models within 0.25 of the best, so
    that one far weaker model does not squeeze the rest into a thin band."""
    best = max(accuracies)
    near = [a for a in accuracies if a >= best - 0.25]
    return max(0.0, min(near) - 0.1 * (best - min(near) or 0.05))


def _save_with_legend_beside(plt, fig, ax, path: Path, title: str) -> None:
    """Grid, the models' legend right of the plot (labels at the points collide), saved."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False,
              title=title, title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_accuracy_vs_time(results: list[dict], path: Path, title: str) -> None:
    """Test accuracy against training time, one point per model, named in the legend beside
    the plot (labels at the points collide when many models train alike); models far below
    the rest sit on the bottom edge as a down-pointing triangle, their accuracy in the legend."""
    plt = _pyplot()
    styles = model_styles([r["model"] for r in results])
    floor = _accuracy_floor([r["accuracy"] for r in results])
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for r in sorted(results, key=lambda r: -r["accuracy"]):
        colour, marker = styles[r["model"]]
        below = r["accuracy"] < floor
        ax.scatter(r["train_seconds"], floor if below else r["accuracy"], s=60,
                   color=colour, marker="v" if below else marker,
                   edgecolors="black" if r["family"] == "classical" else "none",
                   clip_on=False, zorder=3,
                   label=f"{r['model']} {r['accuracy']:.3f}" + (" (below)" if below else ""))
    ax.set_xscale("log")
    ax.set_ylim(bottom=floor)
    ax.set_xlabel("training time (s, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    _save_with_legend_beside(plt, fig, ax, path, "best first; outlined: classical")


def plot_training_curves(histories: dict[str, dict], path: Path) -> None:
    """Validation accuracy and loss per epoch of every neural model, each model with a colour
    and marker of its own."""
    plt = _pyplot()
    styles = model_styles(list(histories))
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, history in histories.items():
        colour, marker = styles[name]
        epochs = range(1, len(history.get("val_accuracy", [])) + 1)
        acc_ax.plot(epochs, history.get("val_accuracy", []), marker=marker, color=colour,
                    label=name)
        loss_ax.plot(epochs, history.get("val_loss", []), marker=marker, color=colour)
        loss_ax.plot(epochs, history.get("loss", []), linestyle=":", color=colour)
    accuracies = [a for h in histories.values() for a in h.get("val_accuracy", [])]
    if accuracies:
        acc_ax.set_ylim(bottom=_accuracy_floor(accuracies))
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss (solid: validation, dotted: training)")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
    loss_ax.legend(*acc_ax.get_legend_handles_labels(), fontsize=8, loc="upper left",
                   bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_suite(settings: dict[str, dict], path: Path) -> None:
    """Each model's mean test accuracy on each setting of a suite, a bar from its lowest to its
    highest seed; tuning settings left of the dashed line, reporting settings right of it."""
    plt = _pyplot()
    names = sorted(settings, key=lambda n: settings[n]["role"] != "tuning")
    models = list(dict.fromkeys(r["model"] for n in names for r in settings[n]["models"]))
    styles = model_styles(models)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.1 * len(names) + 3), 4.8))
    shift = np.linspace(-0.3, 0.3, len(models)) if len(models) > 1 else np.zeros(1)
    for offset, model in zip(shift, models):
        colour, marker = styles[model]
        points = [(i + offset, r) for i, n in enumerate(names) for r in settings[n]["models"]
                  if r["model"] == model]
        x = [p[0] for p in points]
        mean = np.array([p[1]["accuracy"] for p in points])
        spread = [mean - [p[1]["accuracy_min"] for p in points],
                  np.array([p[1]["accuracy_max"] for p in points]) - mean]
        ax.errorbar(x, mean, yerr=spread, fmt=marker, color=colour, markersize=6, capsize=2,
                    label=model,
                    markeredgecolor="black" if points[0][1]["family"] == "classical" else colour)
    tuning = sum(settings[n]["role"] == "tuning" for n in names)
    if 0 < tuning < len(names):
        ax.axvline(tuning - 0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(names)), [n or "the given data" for n in names], rotation=30,
                  ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (mean; bar: lowest to highest seed)")
    ax.set_title("tuning settings | reporting settings" if 0 < tuning < len(names) else
                 f"{settings[names[0]]['role']} settings")
    _save_with_legend_beside(plt, fig, ax, path, "outlined: classical")


def plot_optimisation_history(trials: list[dict], path: Path, title: str) -> None:
    """Each finished trial's validation accuracy in the order the trials began, the best so far
    as a line; pruned trials (no final accuracy) as crosses on the bottom edge."""
    plt = _pyplot()
    done = [t for t in trials if t["validation_accuracy"] is not None]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    floor = _accuracy_floor([t["validation_accuracy"] for t in done]) if done else 0.0
    if done:
        numbers = [t["number"] for t in done]
        accuracies = [t["validation_accuracy"] for t in done]
        ax.scatter(numbers, np.maximum(accuracies, floor), s=30, color="tab:blue",
                   label="trial", zorder=3, clip_on=False)
        ax.step(numbers, np.maximum.accumulate(accuracies), where="post", color="tab:red",
                label="best so far")
        for t in done:
            if t.get("defaults"):
                ax.scatter(t["number"], max(t["validation_accuracy"], floor), s=90,
                           facecolors="none", edgecolors="black", label="the defaults",
                           zorder=4, clip_on=False)
    pruned = [t["number"] for t in trials if t["state"] == "PRUNED"]
    if pruned:
        ax.scatter(pruned, [floor] * len(pruned), marker="x", color="grey", label="pruned",
                   clip_on=False, zorder=3)
    ax.set_ylim(bottom=floor)
    ax.set(xlabel="trial", ylabel="validation accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_parameter_importance(importances: dict[str, float], path: Path, title: str) -> None:
    """Each searched hyperparameter's share of the variance of validation accuracy over the
    finished trials (fANOVA), the most important on top."""
    plt = _pyplot()
    ranked = sorted(importances.items(), key=lambda item: item[1])
    fig, ax = plt.subplots(figsize=(7, 1 + 0.45 * len(ranked)))
    ax.barh([name for name, _ in ranked], [value for _, value in ranked], color="tab:blue")
    for i, (_, value) in enumerate(ranked):
        ax.text(value, i, f" {value:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max([value for _, value in ranked] + [0.01]) * 1.15)
    ax.set(xlabel="importance (share of the variance of validation accuracy)", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


REPORT_COLUMNS = (("model", "model", "{}"), ("family", "family", "{}"),
                  ("accuracy", "accuracy", "{:.4f}"), ("macro_f1", "macro-F1", "{:.4f}"),
                  ("train_seconds", "train s", "{:.1f}"), ("epochs_run", "epochs", "{}"),
                  ("seconds_per_epoch", "s/epoch", "{:.1f}"),
                  ("predict_docs_per_second", "predict docs/s", "{:,.0f}"),
                  ("parameters", "parameters", "{:,}"), ("artifact_bytes", "artifact MB", None))


SUBJECT_COLUMNS = (("model", "model", "{}"), ("family", "family", "{}"),
                   ("rouge1", "ROUGE-1", "{:.4f}"), ("rouge2", "ROUGE-2", "{:.4f}"),
                   ("rougeL", "ROUGE-L", "{:.4f}"), ("exact_match", "exact match", "{:.4f}"),
                   ("train_seconds", "train s", "{:.1f}"), ("epochs_run", "epochs", "{}"),
                   ("predict_docs_per_second", "predict docs/s", "{:,.0f}"),
                   ("parameters", "parameters", "{:,}"))


def table_rows(results: list[dict], columns=REPORT_COLUMNS) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of the results table, shared by report.md and the console."""
    header = [title for _, title, _ in columns]
    rows = []
    for r in results:
        cells = []
        for key, _, fmt in columns:
            value = r.get(key)
            if value is None:
                cells.append("-")
            else:
                cells.append(f"{value / 1e6:.1f}" if fmt is None else fmt.format(value))
        rows.append(cells)
    return header, rows


FAMILIES = {"neural": "sequence", "hybrid": "hybrid", "classical": "classical",
            "transductive": "transductive"}
BOOTSTRAP_RESAMPLES = 2000


def paired_test(first_right: np.ndarray, second_right: np.ndarray, seed: int,
                resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """Whether two models' accuracies on the same documents differ: McNemar's exact test (a
    two-sided binomial test on the documents only one of them gets right) and a bootstrap 95%
    interval of the accuracy difference, first minus second."""
    from scipy.stats import binomtest

    first_right, second_right = np.asarray(first_right, bool), np.asarray(second_right, bool)
    only_first = int((first_right & ~second_right).sum())
    only_second = int((~first_right & second_right).sum())
    discordant = only_first + only_second
    p_value = binomtest(only_first, discordant, 0.5).pvalue if discordant else 1.0
    difference = first_right.astype(np.int8) - second_right.astype(np.int8)
    rng, n = np.random.default_rng(seed), len(difference)
    chunk = 200  # resamples drawn at a time: 200 x n indices, not resamples x n
    means = np.concatenate([difference[rng.integers(0, n, (min(chunk, resamples - done), n))]
                            .mean(axis=1) for done in range(0, resamples, chunk)])
    low, high = np.percentile(means, [2.5, 97.5])
    return {"difference": float(difference.mean()), "interval": [float(low), float(high)],
            "p_value": float(p_value), "only_first": only_first, "only_second": only_second}


def inductive(results: list[dict]) -> list[dict]:
    """The rows of the models that did not see the test texts (all, if every one did)."""
    return [row for row in results if row["family"] != "transductive"] or results


def best_by_validation(results: list[dict]) -> dict[str, dict]:
    """Each family's best row, chosen by validation accuracy (never by test accuracy); a tie
    goes to the model listed first."""
    best = {}
    for row in results:
        family = row["family"]
        if family not in best or row["validation_accuracy"] > best[family]["validation_accuracy"]:
            best[family] = row
    return best


def compare_families(results: list[dict], predictions: dict[str, list], truth: list,
                     seed: int) -> dict:
    """The best sequence and the best hybrid model (by validation accuracy), each tested
    against the best classical model on their paired test predictions (`paired_test`)."""
    best = best_by_validation(results)
    comparison = {"best": {family: row["model"] for family, row in best.items()}}
    if best.get("classical", {}).get("model") not in predictions:
        return comparison
    truth = np.asarray(truth)
    baseline = np.asarray(predictions[best["classical"]["model"]]) == truth
    for family in ("neural", "hybrid"):
        if family in best and best[family]["model"] in predictions:
            right = np.asarray(predictions[best[family]["model"]]) == truth
            comparison[f"{family}_vs_classical"] = paired_test(right, baseline, seed)
    return comparison


def _significance(test: dict | None, first: str, second: str) -> str:
    if test is None:
        return " (no paired test predictions were recorded, so the difference is not tested)."
    low, high = (100 * x for x in test["interval"])
    real = ("a real difference" if test["p_value"] < 0.05
            else "not distinguishable from chance at the 5% level")
    return (f"; 95% bootstrap interval [{low:+.2f}, {high:+.2f}] points, McNemar's exact test "
            f"p = {test['p_value']:.2g} ({test['only_first']} test documents only `{first}` "
            f"gets right, {test['only_second']} only `{second}`): {real}.")


def verdict(summary: dict) -> str:
    """One paragraph: the best sequence model against the best classical model, both chosen by
    validation accuracy, with a paired significance test; the best hybrid likewise. Transductive
    models, which saw the test texts, are named apart and compared with none."""
    results, comparison = summary["results"], summary.get("comparison") or {}
    compared = inductive(results)
    best = best_by_validation(compared)
    top = max(compared, key=lambda r: r["accuracy"])
    closing = (f" The highest test accuracy is {top['accuracy']:.4f}, by `{top['model']}` "
               f"(macro-F1 {top['macro_f1']:.4f}), trained in {top['train_seconds']:.1f} s."
               + _transductive(results, top))
    if "classical" not in best or not {"neural", "hybrid"} & set(best):
        names = " and ".join(FAMILIES[f] for f in best)
        return f"Only {names} models ran here, so no families are compared." + closing
    baseline = best["classical"]
    lines = []
    for family in ("neural", "hybrid"):
        if family in best:
            row = best[family]
            gap = 100 * (row["accuracy"] - baseline["accuracy"])
            lines.append(f"the best {FAMILIES[family]} model, `{row['model']}`, reaches test "
                         f"accuracy {row['accuracy']:.4f} against {baseline['accuracy']:.4f} for "
                         f"the best classical model, `{baseline['model']}` ({gap:+.2f} points)"
                         + _significance(comparison.get(f"{family}_vs_classical"),
                                         row["model"], baseline["model"]))
    return ("Chosen by validation accuracy, " + " Likewise, ".join(lines)
            + " Hybrid models combine a sequence reader with a TF-IDF linear part." * (
                "hybrid" in best) + closing)


def _transductive(results: list[dict], top: dict) -> str:
    """A sentence on the best transductive model, if one ran, against the best other one."""
    rows = [r for r in results if r["family"] == "transductive"]
    if not rows or top["family"] == "transductive":
        return ""
    row = max(rows, key=lambda r: r["accuracy"])
    return (f" Apart from these, `{row['model']}`, transductive (it also fitted on the test texts, "
            f"without their labels), reaches {row['accuracy']:.4f} "
            f"({100 * (row['accuracy'] - top['accuracy']):+.2f} points).")


def plot_attention_alignment(generated: list[str], source: list[str], weights, path: Path,
                             title: str = "") -> None:
    """The attention matrix of one example: generated tokens (rows) x source tokens."""
    plt = _pyplot()
    weights = np.asarray(weights)
    fig, ax = plt.subplots(figsize=(min(max(7, 2 + 0.22 * len(source)), 30),
                                    2 + 0.3 * len(generated)))
    image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0)
    ax.set_xticks(range(len(source)), source, rotation=90, fontsize=7)
    ax.set_yticks(range(len(generated)), generated, fontsize=8)
    ax.set_xlabel("source (message body) tokens")
    ax.set_ylabel("generated subject tokens")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.02, label="attention weight")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def subject_verdict(summary: dict) -> str:
    """How the attention model stands against the other models, from the figures."""
    results = summary["results"]
    scores = {r["model"]: r["rougeL"] for r in results}
    best = max(results, key=lambda r: r["rougeL"])
    text = (f"The best ROUGE-L F1 is {best['rougeL']:.4f}, by `{best['model']}`.")
    if "seq2seq-attention" in scores:
        mine = scores["seq2seq-attention"]
        others = [f"{'above' if mine > score else 'below'} `{name}` ({score:.4f})"
                  for name, score in scores.items() if name != "seq2seq-attention"]
        text += f" `seq2seq-attention` scores {mine:.4f}: " + ", ".join(others) + "."
    return text


def report_table(summary: dict, columns=REPORT_COLUMNS) -> list[str]:
    """Report lines: the results table, then the machine, total time and library versions."""
    header, rows = table_rows(summary["results"], columns)
    machine = summary["machine"]
    return (["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"]
            + ["| " + " | ".join(cells) + " |" for cells in rows]
            + ["", f"Machine: {machine['cpu']} ({machine['cpu_count']} cores), "
               f"{machine['system']} {machine['release']}; Keras backend "
               f"{machine.get('keras_backend') or 'not used'}"
               + (f" on {', '.join(machine['devices'])}" if machine.get("devices") else "")
               + f"; total time {summary['total_seconds']:.0f} s.", "",
               "Versions: " + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()),
               ""])
