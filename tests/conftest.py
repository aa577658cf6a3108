"""Shared fixtures: small corpora the tests write themselves, and the real archive if given."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

# The tests train tiny models for a few steps, where optimising each compiled graph costs more
# than it saves: TensorFlow's Grappler passes and XLA's LLVM optimisation took half the time of
# a tiny fit. Both are off in the test processes (`_no_graph_optimisation`), XLA's also in the
# JAX processes they start. Command-line processes on TensorFlow keep the defaults users get.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(
        [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]).strip()

TOPICS = {
    "cars": "engine wheel brake tire clutch gearbox mechanic fuel piston exhaust sedan".split(),
    "space": "orbit rocket planet launch astronaut satellite telescope comet lunar nasa".split(),
    "cooking": "recipe oven flour butter garlic simmer sauce bake onion pepper salad".split(),
}
FILLER = "the a of and to in is it that for on with as was this by be at from or".split()


def make_corpus(per_class: int = 40, seed: int = 0, topics=TOPICS):
    """Clearly separable topics: each document mixes its topic's words with common filler."""
    rng = random.Random(seed)
    texts, labels = [], []
    for label, words in topics.items():
        for _ in range(per_class):
            n = rng.randint(12, 30)
            tokens = [rng.choice(words) if rng.random() < 0.35 else rng.choice(FILLER)
                      for _ in range(n)]
            texts.append(" ".join(tokens))
            labels.append(label)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]


def write_table(path: Path, texts, labels, text_column="text", label_column="label"):
    """Write texts and labels as CSV, TSV or JSONL, by the file's suffix."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({text_column: t, label_column: y}) + "\n"
                                for t, y in zip(texts, labels)), encoding="utf-8")
        return path
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t" if path.suffix == ".tsv" else ",")
        writer.writerow([text_column, label_column])
        writer.writerows(zip(texts, labels))
    return path


# Module fixtures that train models or run many processes. `make test` runs pytest-xdist with
# --dist loadgroup: the tests that use one of them go to one worker, which makes it once.
SHARED_FIXTURES = ("work", "trained", "attention_model", "model_dirs", "model")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        definitions = item._fixtureinfo.name2fixturedefs
        shared = [name for name in SHARED_FIXTURES
                  if definitions.get(name) and definitions[name][-1].scope == "module"]
        if shared:
            item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}.{shared[0]}"))


@pytest.fixture(scope="session", autouse=True)
def _no_graph_optimisation():
    if os.environ.get("KERAS_BACKEND") == "tensorflow":
        import tensorflow as tf

        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    os.environ["NEWSTOPIC_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def corpus():
    return make_corpus()


@pytest.fixture()
def corpus_csv(tmp_path, corpus):
    return write_table(tmp_path / "train.csv", *corpus)


@pytest.fixture(scope="session")
def archive():
    """The real 20news-bydate archive through NEWSTOPIC_DATA, as CI provides it."""
    path = os.environ.get("NEWSTOPIC_DATA")
    if not path or not Path(path).exists():
        pytest.skip("set NEWSTOPIC_DATA to 20news-bydate.tar.gz to run the tests on real data")
    return Path(path)


def run_cli(*args, stdin: str | None = None, env: dict | None = None, cwd=None):
    """Run `newstopic ARGS` in a fresh process, as a user would."""
    return subprocess.run([sys.executable, "-m", "newstopic", *map(str, args)], input=stdin,
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          cwd=cwd, timeout=600)


def assert_one_line_error(result, *fragments):
    """A failed command: exit 1, one `error:` line on stderr naming the problem, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
