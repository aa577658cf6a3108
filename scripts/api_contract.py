#!/usr/bin/env python3
"""Check `newstopic serve` against its own OpenAPI document with schemathesis.

Trains a small classifier on texts it makes up and, where the 20 Newsgroups archive is found
(NEWSTOPIC_DATA) a one-epoch `seq2seq` subject model, serves them on a free port of 127.0.0.1, and runs
`schemathesis run --checks all` with the given number of examples per operation: every answer
must match the documented status codes and schemas, and no request may crash the server.
Needs the `contract` extra (`pip install -e '.[contract]'`).

    python scripts/api_contract.py --max-examples 50
"""

from __future__ import annotations

import argparse
import csv
import os
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
                        Path(tmp) / "classifier", "-q"], check=True, stdout=subprocess.DEVNULL)
        served = ["-m", Path(tmp) / "classifier"]
        if os.environ.get("NEWSTOPIC_DATA"):
            subprocess.run([*newstopic, "train", "--task", "subject", "-m", "seq2seq", "--preset",
                            "seed", "--epochs", "1", "--out", Path(tmp) / "subjects", "-q"], check=True,
                           stdout=subprocess.DEVNULL)
            served += ["-m", Path(tmp) / "subjects"]
        else:
            print("NEWSTOPIC_DATA is not set: /summarize is checked without a subject model")
        server = subprocess.Popen([*newstopic, "serve", *served, "--port", "0", "-q"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            address = server.stdout.readline().split(" on ")[-1].strip()
            # A body over the size limit is refused with 413 before it is read, whatever it
            # holds: a right answer to schema-violating data too.
            config = Path(tmp) / "schemathesis.toml"
            config.write_text('[checks.negative_data_rejection]\n'
                              'expected-statuses = ["400", "404", "413", "422"]\n')
            checked = subprocess.run(
                [str(Path(sys.executable).parent / "schemathesis"), "--config-file", config, "run",
                 f"{address}openapi.json", "--checks", "all", "--max-examples",
                 str(args.max_examples), "--no-color"])
        finally:
            server.terminate()
            server.wait(30)
    sys.exit(checked.returncode)


if __name__ == "__main__":
    main()
