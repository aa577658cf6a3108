"""Benchmarks repeated over seeds and settings: `newstopic benchmark --seeds 0,1,2` and
`--suite NAME|FILE.toml`, with one combined report (mean and range per model, mean ranks, the
paired significance tests of every run, a plot).

A suite is a list of settings, each a dataset: 20 Newsgroups groups, stripped parts, split and
a cut training set, or a user's own files. Tuning settings are where recipes are chosen;
reporting settings are never used to choose anything, so that their figures say how a recipe
carries to data it was not tuned on.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from newstopic.data import Dataset, check_seed, cut_training, load_20newsgroups, load_texts
from newstopic.errors import NewstopicError
from newstopic.evaluation import FAMILIES, best_by_validation, inductive, plot_suite, write_json
from newstopic.files import write_atomic
from newstopic.training import benchmark

ROLES = ("tuning", "reporting")


@dataclass(frozen=True)
class Setting:
    """One dataset of a suite: 20 Newsgroups `categories` (none: all 20) with `remove`d parts
    and `split`, or a user's `train_file` (and `test_file`); `train_size` cuts the training
    split to a stratified sample of that many texts, drawn with the run's seed."""

    name: str
    role: str
    categories: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    split: str = "bydate"
    train_size: int | None = None
    train_file: str | None = None
    test_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"

    def load(self, seed: int, data: Path | None = None) -> Dataset:
        """This setting's dataset for `seed` (a random split and a cut depend on it); `data` is
        the 20 Newsgroups archive (default: NEWSTOPIC_DATA, then scikit-learn's cache)."""
        if self.train_file:
            dataset = load_texts(self.train_file, self.test_file, text_column=self.text_column,
                                 label_column=self.label_column, seed=seed)
        else:
            dataset = load_20newsgroups(data, categories=self.categories or None,
                                        remove=self.remove, split=self.split, seed=seed)
        return cut_training(dataset, self.train_size, seed) if self.train_size else dataset


ALL_PARTS = ("headers", "footers", "quotes")
COMP = ("comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware",
        "comp.sys.mac.hardware", "comp.windows.x")
SCI = ("sci.crypt", "sci.electronics", "sci.med", "sci.space")
POLITICS = ("talk.politics.guns", "talk.politics.mideast", "talk.politics.misc")
REC = ("rec.autos", "rec.motorcycles", "rec.sport.baseball", "rec.sport.hockey")
BELIEF = ("alt.atheism", "soc.religion.christian", "talk.religion.misc",
          "talk.politics.mideast")
MIXED_8 = ("comp.graphics", "misc.forsale", "rec.autos", "rec.sport.hockey", "sci.med",
           "sci.space", "soc.religion.christian", "talk.politics.guns")
MIXED_6 = ("comp.windows.x", "rec.motorcycles", "sci.crypt", "sci.med", "talk.politics.guns",
           "talk.religion.misc")
HARDWARE = ("comp.sys.ibm.pc.hardware", "comp.sys.mac.hardware", "misc.forsale")
SETTINGS = {s.name: s for s in (
    # tuning: recipes are chosen on these
    Setting("sci-4", "tuning", SCI),
    Setting("comp-5-n1000", "tuning", COMP, train_size=1000),
    Setting("politics-3-stripped", "tuning", POLITICS, ALL_PARTS),
    Setting("all-n3000", "tuning", train_size=3000),
    # reporting: never used to choose anything
    Setting("rec-4", "reporting", REC),
    Setting("belief-4-n300", "reporting", BELIEF, train_size=300),
    Setting("mixed-8-stripped", "reporting", MIXED_8, ALL_PARTS),
    Setting("hardware-3-random", "reporting", HARDWARE, split="random"),
    Setting("mixed-6-n1000-noheaders", "reporting", MIXED_6, ("headers",), train_size=1000),
    # quick: a few minutes, for iterating on a recipe
    Setting("quick-sci-3-n300", "tuning", SCI[1:], train_size=300),
    Setting("quick-rec-3-stripped-n600", "tuning", REC[1:], ALL_PARTS, train_size=600),
)}
QUICK = ("quick-sci-3-n300", "quick-rec-3-stripped-n600")
TUNING = tuple(n for n, s in SETTINGS.items() if s.role == "tuning" and n not in QUICK)
REPORTING = tuple(n for n, s in SETTINGS.items() if s.role == "reporting")
SUITES = {"quick": QUICK, "tuning": TUNING, "reporting": REPORTING, "full": TUNING + REPORTING}
# The models a suite compares unless --models says otherwise: every family, with one reader
# of each kind (one-way, two-way, Transformer), so that the full suite takes under an hour a
# seed on 2 cores. Left out: `lstm` and `bigru-attention`, which ranked below `gru` and `bigru`
# on the tuning settings, the slowest readers (bilstm, seq2seq-label), the seed's recipe and
# the ensemble (which would train its missing members). docs/suites.md has the figures.
SUITE_MODELS = ("tfidf-nb", "tfidf-svm", "tfidf-lr", "gru", "bigru", "transformer",
                "bigru-tfidf")
QUICK_MODELS = ("tfidf-nb", "tfidf-svm", "gru", "bigru-tfidf")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def suite_settings(suite: str) -> tuple[list[Setting], tuple[str, ...]]:
    """The settings of suite `suite` (a built-in name or a TOML file) and its default models."""
    if suite in SUITES:
        return ([SETTINGS[name] for name in SUITES[suite]],
                QUICK_MODELS if suite == "quick" else SUITE_MODELS)
    path = Path(suite)
    if path.suffix != ".toml":
        raise NewstopicError(f"unknown suite '{suite}': choose one of {', '.join(SUITES)}, or "
                             "give a suite file ending in .toml (docs/suites.md)")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise NewstopicError(f"cannot read suite file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise NewstopicError(f"suite file {path} is not valid TOML ({error}): fix it "
                             "(docs/suites.md)") from None
    unknown = sorted(set(spec) - {"models", "setting"})
    if unknown or not isinstance(spec.get("setting"), list) or not spec["setting"]:
        raise NewstopicError(f"suite file {path} must hold [[setting]] tables and may hold "
                             f"'models'" + (f", not '{unknown[0]}'" if unknown else ""))
    settings = [_setting_from_file(entry, path) for entry in spec["setting"]]
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise NewstopicError(f"suite file {path} names a setting twice: give each its own "
                             "name")
    models = spec.get("models", list(SUITE_MODELS))
    if not (isinstance(models, list) and models and all(isinstance(m, str) for m in models)):
        raise NewstopicError(f"suite file {path}: 'models' must be a list of model names")
    return settings, tuple(models)


def _setting_from_file(entry, path: Path) -> Setting:
    allowed = {f.name for f in fields(Setting)}
    if not isinstance(entry, dict):
        raise NewstopicError(f"suite file {path}: each [[setting]] must be a table")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise NewstopicError(f"suite file {path}: a setting has no key '{unknown[0]}': use "
                             f"{', '.join(sorted(allowed))}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise NewstopicError(f"suite file {path}: each setting needs a name of letters, digits, "
                             f"'.', '_' or '-' (got {name!r})")
    if entry.get("role") not in ROLES:
        raise NewstopicError(f"suite file {path}: setting '{name}' needs role = \"tuning\" or "
                             "\"reporting\"")
    size = entry.get("train_size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 2):
        raise NewstopicError(f"suite file {path}: setting '{name}' train_size must be a whole "
                             "number of at least 2")
    values = dict(entry)
    for key in ("categories", "remove"):
        if key in values:
            if not (isinstance(values[key], list)
                    and all(isinstance(v, str) for v in values[key])):
                raise NewstopicError(f"suite file {path}: setting '{name}' {key} must be a "
                                     "list of names")
            values[key] = tuple(values[key])
    for key in ("train_file", "test_file"):
        if key in values:  # relative to the suite file, wherever the command runs
            values[key] = str(path.parent / values[key])
    if values.get("test_file") and not values.get("train_file"):
        raise NewstopicError(f"suite file {path}: setting '{name}' has a test_file without a "
                             "train_file: give both")
    clash = sorted({"categories", "remove", "split"} & set(values))
    if values.get("train_file") and clash:
        raise NewstopicError(f"suite file {path}: setting '{name}' gives {clash[0]}, which "
                             "applies to 20 Newsgroups, not to a train_file: drop one of them")
    return Setting(**values)


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` -> [0, 1, 2], refused in one line unless distinct whole numbers."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise NewstopicError(f"--seeds {text!r} must list distinct whole numbers, for example "
                             "0,1,2")
    for seed in seeds:
        check_seed(seed, "--seeds: seed")
    return seeds


def run(settings: list[Setting], models: list[str], seeds: list[int], out: Path, *,
        data: Path | None = None, progress=None, command: str | None = None,
        **options) -> dict:
    """Benchmark `models` on every setting with every seed into OUT/SETTING/seed-N (each a
    benchmark of its own, resumable with `resume`), then write OUT/suite.json, OUT/report.md
    and OUT/suite.png. Every setting's data is loaded for the first seed before any training,
    so that a bad setting fails first. `options` go to `newstopic.training.benchmark`."""
    loaded = {(setting.name, seeds[0]): setting.load(seeds[0], data) for setting in settings}
    runs = []
    bar = progress.add_task("runs", total=len(settings) * len(seeds)) if progress else None
    for setting in settings:
        for seed in seeds:
            dataset = loaded.pop((setting.name, seed), None) or setting.load(seed, data)
            if progress:
                progress.update(bar, description=f"{setting.name or 'benchmark'}, seed {seed}")
            summary = benchmark(dataset, models, out / setting.name / f"seed-{seed}",
                                seed=seed, progress=progress, command=command, **options)
            runs.append({"setting": setting.name, "role": setting.role, "summary": summary})
            if progress:
                progress.advance(bar)
    combined = combine(runs, seeds, command)
    write_json(combined, out / "suite.json")
    plot_suite(combined["settings"], out / "suite.png")
    write_atomic(out / "report.md", "\n".join(report(combined)))
    return combined


def _mean_row(rows: list[dict]) -> dict:
    accuracies = [r["accuracy"] for r in rows]
    return {"model": rows[0]["model"], "family": rows[0]["family"], "seeds": len(rows),
            "accuracy": float(np.mean(accuracies)), "accuracy_min": min(accuracies),
            "accuracy_max": max(accuracies),
            **{key: float(np.mean([r[key] for r in rows]))
               for key in ("macro_f1", "validation_accuracy", "train_seconds")}}


def combine(runs: list[dict], seeds: list[int], command: str | None = None) -> dict:
    """Per setting: each model's mean, lowest and highest test accuracy over the seeds (and
    mean macro-F1, validation accuracy and training time), its rank by mean accuracy, and each
    seed's paired comparison of the families; then each model's mean rank over the settings."""
    from scipy.stats import rankdata

    settings = {}
    for entry in runs:
        setting = settings.setdefault(entry["setting"], {"role": entry["role"], "runs": []})
        setting["runs"].append(entry["summary"])
    for setting in settings.values():
        by_model: dict[str, list] = {}
        for summary in setting["runs"]:
            for row in summary["results"]:
                by_model.setdefault(row["model"], []).append(row)
        rows = [_mean_row(rows) for rows in by_model.values()]
        # the models that saw the test texts are left out of the ranks: they would push the
        # others down where they ran
        ranked = inductive(rows)
        for row in rows:
            row["rank"] = None
        for row, rank in zip(ranked, rankdata([-r["accuracy"] for r in ranked])):
            row["rank"] = float(rank)
        first = setting["runs"][0]
        setting.update(
            models=rows, n_train=first["n_train"], n_test=first["n_test"],
            classes=len(first["categories"]), dataset=first["dataset"],
            remove=first["remove"], split=first["split"],
            comparisons=[{"seed": s["seed"], **(s.get("comparison") or {})}
                         for s in setting["runs"]],
            total_seconds=sum(s["total_seconds"] for s in setting["runs"]))
        del setting["runs"]
    return {"command": command, "seeds": seeds, "settings": settings,
            "mean_ranks": {role: mean_ranks(settings, role) for role in ROLES},
            "total_seconds": sum(s["total_seconds"] for s in settings.values())}


def mean_ranks(settings: dict, role: str) -> dict[str, float]:
    """Each model's mean rank over the settings of `role` it ran on, best first."""
    ranks: dict[str, list] = {}
    for setting in settings.values():
        if setting["role"] == role:
            for row in setting["models"]:
                if row["rank"] is not None:
                    ranks.setdefault(row["model"], []).append(row["rank"])
    return dict(sorted(((m, float(np.mean(r))) for m, r in ranks.items()), key=lambda x: x[1]))


def family_standing(settings: dict, role: str) -> dict:
    """On the settings of `role`: per setting, the best sequence, hybrid and classical models
    (chosen by mean validation accuracy) with their mean test accuracy and rank."""
    standing = {}
    for name, setting in settings.items():
        if setting["role"] == role:
            best = best_by_validation(setting["models"])
            standing[name] = {family: {k: row[k] for k in ("model", "accuracy", "rank")}
                              for family, row in best.items()}
    return standing


def _verdict(combined: dict, role: str) -> str:
    standing = family_standing(combined["settings"], role)
    if not standing:
        return f"No {role} settings ran."
    both = {n: s for n, s in standing.items() if "neural" in s and "classical" in s}
    text = [f"**{role.capitalize()} settings** ({len(standing)}; families' best models chosen "
            "by mean validation accuracy):"]
    if both:
        seq = np.mean([s["neural"]["rank"] for s in both.values()])
        cls = np.mean([s["classical"]["rank"] for s in both.values()])
        ahead = sum(s["neural"]["accuracy"] >= s["classical"]["accuracy"] for s in both.values())
        text.append(f"the best sequence model ranks {seq:.1f} on average against {cls:.1f} for "
                    f"the best classical model, and is at or above it on {ahead} of "
                    f"{len(both)} settings.")
    hybrid = {n: s for n, s in standing.items() if "hybrid" in s and "classical" in s}
    if hybrid:
        beats = sum(s["hybrid"]["accuracy"] > s["classical"]["accuracy"] for s in hybrid.values())
        text.append(f"The best hybrid beats the best classical model on {beats} of "
                    f"{len(hybrid)} settings.")
    return " ".join(text)


def _test_cell(comparison: dict, family: str) -> str:
    test = comparison.get(f"{family}_vs_classical")
    if test is None:
        return "-"
    low, high = (100 * x for x in test["interval"])
    return (f"`{comparison['best'][family]}` {100 * test['difference']:+.2f} "
            f"[{low:+.2f}, {high:+.2f}], p={test['p_value']:.2g}")


def report(combined: dict) -> list[str]:
    """The lines of the suite's report.md."""
    seeds = ", ".join(map(str, combined["seeds"]))
    lines = ["# newstopic suite", "", f"`{combined['command'] or 'newstopic benchmark'}`", "",
             f"Seeds {seeds}; {len(combined['settings'])} settings; total time "
             f"{combined['total_seconds']:.0f} s. Each setting's runs are in SETTING/seed-N/ "
             "with their own report.", ""]
    for role in ROLES:
        if any(s["role"] == role for s in combined["settings"].values()):
            lines += [_verdict(combined, role), ""]
    lines += ["![mean test accuracy per setting, lowest to highest seed](suite.png)", "",
              "## Mean rank over the settings", "", "| model | " + " | ".join(ROLES) + " |",
              "|---|" + "---:|" * len(ROLES)]
    models = list(dict.fromkeys(m for role in ROLES for m in combined["mean_ranks"][role]))
    for model in models:
        cells = [combined["mean_ranks"][role].get(model) for role in ROLES]
        lines.append(f"| {model} | " + " | ".join("-" if c is None else f"{c:.2f}"
                                                   for c in cells) + " |")
    for name, setting in combined["settings"].items():
        lines += ["", f"## {name or 'the given data'} ({setting['role']})", "",
                  f"{setting['classes']} classes, remove: {', '.join(setting['remove']) or 'nothing'}"
                  f", split: {setting['split']}; {setting['n_train']} training and "
                  f"{setting['n_test']} test documents; {setting['dataset']}.", "",
                  "| model | family | accuracy (mean) | lowest | highest | macro-F1 | "
                  "val. accuracy | train s | rank |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for row in sorted(setting["models"], key=lambda r: (r["rank"] is None, r["rank"])):
            lines.append(f"| {row['model']} | {FAMILIES.get(row['family'], row['family'])} | "
                         f"{row['accuracy']:.4f} | {row['accuracy_min']:.4f} | "
                         f"{row['accuracy_max']:.4f} | {row['macro_f1']:.4f} | "
                         f"{row['validation_accuracy']:.4f} | {row['train_seconds']:.1f} | "
                         f"{'-' if row['rank'] is None else format(row['rank'], 'g')} |")
        lines += ["", "Each seed's best sequence and hybrid model (by validation accuracy) "
                  "against its best classical model: test accuracy difference in points, "
                  "bootstrap 95% interval, McNemar's exact p.", "",
                  "| seed | classical | sequence | hybrid |", "|---:|---|---|---|"]
        for comparison in setting["comparisons"]:
            classical = comparison.get("best", {}).get("classical", "-")
            lines.append(f"| {comparison['seed']} | `{classical}` | "
                         f"{_test_cell(comparison, 'neural')} | "
                         f"{_test_cell(comparison, 'hybrid')} |")
    return lines + [""]
