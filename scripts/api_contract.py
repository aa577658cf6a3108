#!/usr/bin/env python3
"""Check `newstopic serve` against its own OpenAPI document with schemathesis.

Trains a small classifier on texts it makes up, serves it on a free port of 127.0.0.1, and runs
`schemathesis run --checks all` with the given number of examples per operation: every answer
must match the documented status codes and schemas, and no request may crash the server.
Needs the `contract` extra (`pip install -e '.[contract]'`).

    python scripts/api_contract.py --max-examples 50
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WORDS = {"cars": "engine brake wheel tire clutch fuel".split(),
         "space": "orbit rocket planet launch comet lunar".split()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=50,
                        help="Examples per operation.")
    args = parser.parse_args()
    if shutil.which("schemathesis", path=str(Path(sys.executable).parent)) is None:
        sys.exit("error: schemathesis is not installed: pip install -e '.[contract]'")
    newstopic = [sys.executable, "-m", "newstopic"]
    with tempfile.TemporaryDirectory() as tmp:
        rng, train = random.Random(0), Path(tmp) / "train.csv"
        with open(train, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            for label, words in WORDS.items():
                writer.writerows([" ".join(rng.choices(words, k=8)), label] for _ in range(30))
        subprocess.run([*newstopic, "train", "-m", "tfidf-lr", "--train-file", train, "--out",
                        Path(tmp) / "model", "-q"], check=True, stdout=subprocess.DEVNULL)
        server = subprocess.Popen([*newstopic, "serve", "-m", Path(tmp) / "model", "--port",
                                   "0", "-q"], stdout=subprocess.PIPE, text=True)
        try:
            address = server.stdout.readline().split(" on ")[-1].strip()
            checked = subprocess.run(
                [str(Path(sys.executable).parent / "schemathesis"), "run",
                 f"{address}openapi.json", "--checks", "all", "--max-examples",
                 str(args.max_examples), "--no-color"])
        finally:
            server.terminate()
            server.wait(30)
    sys.exit(checked.returncode)


if __name__ == "__main__":
    main()
