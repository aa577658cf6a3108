"""Streaming prediction at scale: docs/s and peak memory of `newstopic predict --out` on a large
file, in one process and on Ray, with a classical and a neural model.

    python scripts/predict_scale.py --classical results/all/models/tfidf-svm \
        --neural results/all/models/bigru-tfidf --out docs/results/scale.json

The input is the 20 Newsgroups test texts repeated to --documents records of a JSONL file
(id, text); the neural model labels the first --neural-documents of them. Each run is a fresh
`newstopic predict` process; its peak memory is sampled over the process and every process
under it (Ray's workers included), and its docs/s is the wall time of the whole command,
start-up included, next to the rate newstopic prints (labelling only).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from newstopic import load_20newsgroups
from newstopic.environment import machine, source_commit, versions


def write_input(path: Path, documents: int) -> int:
    texts = load_20newsgroups(preset="all").test_texts
    with open(path, "w", encoding="utf-8") as stream:
        for i, text in zip(range(documents), itertools.cycle(texts)):
            stream.write(json.dumps({"id": i, "text": text}) + "\n")
    return path.stat().st_size


def first_lines(source: Path, path: Path, documents: int) -> None:
    with open(source, encoding="utf-8") as lines, open(path, "w", encoding="utf-8") as out:
        out.writelines(itertools.islice(lines, documents))


class PeakMemory:
    """The largest total resident memory of a process and all its descendants, sampled."""

    def __init__(self, pid: int, every: float = 0.2):
        self.root, self.every, self.peak = psutil.Process(pid), every, 0
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.done = threading.Event()
        self.thread.start()

    def _sample(self) -> None:
        while not self.done.is_set():
            try:
                tree = [self.root, *self.root.children(recursive=True)]
                total = 0
                for process in tree:
                    try:
                        total += process.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self.done.wait(self.every)

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.peak


def run(model: Path, source: Path, out: Path, documents: int, *options: str) -> dict:
    command = [str(Path(sys.executable).with_name("newstopic")), "predict", "--model",
               str(model), "--file", str(source), "--out", str(out), "--id-column", "id",
               "--quiet", *options]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    memory = PeakMemory(process.pid)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    tree_peak = memory.stop()
    stdout, stderr = process.stdout.read(), process.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {stderr.strip()}")
    printed = float(stdout.split("\t")[2].split()[0].replace(",", ""))
    out.unlink()
    result = {"model": model.name, "options": " ".join(options) or "--engine local",
              "documents": documents, "wall_seconds": round(seconds, 1),
              "docs_per_second_wall": round(documents / seconds),
              "docs_per_second_labelling": printed,
              "peak_rss_mb_process": round(usage.ru_maxrss / 1024),
              "peak_rss_mb_with_children": round(tree_peak / 2**20)}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classical", type=Path, required=True)
    parser.add_argument("--neural", type=Path, required=True)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--neural-documents", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        source, small = work / "documents.jsonl", work / "neural.jsonl"
        size = write_input(source, args.documents)
        first_lines(source, small, args.neural_documents)
        runs = [run(args.classical, source, work / "out.jsonl", args.documents),
                run(args.classical, source, work / "out.jsonl", args.documents,
                    "--engine", "ray", "--workers", str(args.workers)),
                run(args.neural, small, work / "out.jsonl", args.neural_documents),
                run(args.neural, small, work / "out.jsonl", args.neural_documents,
                    "--engine", "ray", "--workers", str(args.workers))]
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "commit": source_commit(), "command": " ".join(["python", *sys.argv]),
              "input": f"20 Newsgroups test texts repeated, JSONL (id, text), "
                       f"{args.documents:,} documents, {size / 2**20:,.0f} MiB",
              "python": platform.python_version(), "versions": versions(),
              "machine": machine(), "backend": os.environ.get("KERAS_BACKEND"), "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
