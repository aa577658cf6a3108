"""`docs/results.md`, written from the benchmark results committed under `docs/results/`.

Each `newstopic benchmark` writes a `results.json` with its command, date, commit, seed,
machine, backend and versions beside the figures; copied into `docs/results/NAME.json`, it
becomes one section of the page. `make results` (``python -m newstopic.results``) rewrites the
page, so that no figure in it is typed by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from newstopic.errors import NewstopicError
from newstopic.evaluation import report_table
from newstopic.files import write_atomic
from newstopic.tasks import TASKS

HEADER = """# Results

Written by `make results` from the benchmark results in [results/](results/), one section per
file; do not edit by hand. To add one: run `newstopic benchmark ... --out DIR`, copy
`DIR/results.json` to `docs/results/NAME.json` and run `make results`. Measurements that are
not benchmark runs (backends, load tests, experiments tried and not adopted) are in
[history.md](history.md).
"""


def section(summary: dict, name: str) -> list[str]:
    """One benchmark run: how it was made, its verdict and its table."""
    task = TASKS[summary.get("task", "classify")]
    machine = summary["machine"]
    lines = [f"## {name}", "",
             f"`{summary.get('command') or 'newstopic benchmark (command not recorded)'}`", "",
             f"Date {summary.get('date', 'not recorded')}, commit "
             f"{summary.get('commit') or 'not recorded'}, seed {summary['seed']}, Keras backend "
             f"{machine.get('keras_backend') or 'not used'}, {machine['cpu']} "
             f"({machine['cpu_count']} cores). {summary['n_train']} training "
             f"{task.noun} ({summary['n_validation']} of them held out for validation), "
             f"{summary['n_test']} test" + (f"; epochs capped at {summary['epochs_cap']}"
                                            if summary.get("epochs_cap") else "") + "."
             + "".join(f" `{model}` is reused from the run of {run['date']} (commit "
                       f"{run['commit'] or 'not recorded'}, `{run['command']}`)."
                       for model, run in summary.get("reused", {}).items()), "",
             task.verdict(summary), ""]
    return lines + report_table(summary, task.columns)


def render(directory: Path) -> str:
    files = sorted(Path(directory).glob("*.json"))
    if not files:
        raise NewstopicError(f"no results in {directory}: copy a benchmark's results.json "
                             "there first")
    lines = [HEADER]
    for file in files:
        lines += section(json.loads(file.read_text(encoding="utf-8")), file.stem)
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    directory, page = (Path(a) for a in (argv or ["docs/results", "docs/results.md"]))
    write_atomic(page, render(directory))
    print(page)


if __name__ == "__main__":
    main(sys.argv[1:])
