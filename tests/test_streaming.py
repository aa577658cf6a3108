"""Streaming batch prediction: `predict --file IN --out OUT`, in one process and on Ray."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow
import pyarrow.parquet as parquet
import pytest

from conftest import assert_one_line_error, make_corpus, run_cli, write_table


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("streaming")
    train = write_table(root / "train.csv", *make_corpus(seed=3))
    result = run_cli("train", "--model", "tfidf-svm", "--train-file", train, "--out",
                     root / "model", "--quiet")
    assert result.returncode == 0, result.stderr
    return root / "model"


@pytest.fixture(scope="module")
def documents():
    texts, _ = make_corpus(per_class=15, seed=11)
    return texts


def read_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return parquet.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def predict_out(model, source, out, *options):
    return run_cli("predict", "--model", model, "--file", source, "--out", out, "--quiet",
                   *options)


def test_every_input_format_gives_the_same_rows_in_input_order(model, documents, tmp_path):
    ids = [f"doc-{i}" for i in range(len(documents))]
    inputs = [write_table(tmp_path / f"in{suffix}", documents, ids, label_column="doc")
              for suffix in (".csv", ".tsv", ".jsonl")]
    parquet.write_table(pyarrow.table({"text": documents, "doc": ids}), tmp_path / "in.parquet")
    inputs.append(tmp_path / "in.parquet")
    outputs = []
    for source, out_suffix in zip(inputs, (".jsonl", ".parquet", ".jsonl", ".parquet")):
        out = tmp_path / f"out-{source.suffix[1:]}{out_suffix}"
        result = predict_out(model, source, out, "--id-column", "doc", "--top-k", "2",
                             "--chunk-size", "7")
        assert result.returncode == 0, result.stderr
        path, rows, rate = result.stdout.rstrip("\n").split("\t")
        assert (path, rows) == (str(out), f"{len(documents)} rows") and rate.endswith("docs/s")
        outputs.append(read_rows(out))
        assert not out.with_name(out.name + ".partial").exists()
    assert all(rows == outputs[0] for rows in outputs[1:])
    assert [row["doc"] for row in outputs[0]] == ids
    # The same labels and probabilities as `predict --json`, which labels texts one list.
    listed = run_cli("predict", "--model", model, "--json", "--top-k", "2", "--file", inputs[0])
    expected = [json.loads(line) for line in listed.stdout.splitlines()]
    for row, reference in zip(outputs[0], expected):
        assert row["label"] == row["top_labels"][0] == reference["label"]
        assert row["probability"] == pytest.approx(reference["probability"], abs=1e-6)
        assert row["top_labels"] == [label for label, _ in reference["top"]]
        assert row["top_probabilities"] == pytest.approx([p for _, p in reference["top"]],
                                                         abs=1e-6)


def test_a_text_file_is_one_document_per_line_and_ids_are_row_positions(model, documents,
                                                                        tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(documents[:5]) + "\n", encoding="latin-1")
    out = tmp_path / "out.jsonl"
    assert predict_out(model, source, out).returncode == 0
    rows = read_rows(out)
    assert [row["row"] for row in rows] == [0, 1, 2, 3, 4]
    assert set(rows[0]) == {"row", "label", "probability"}


def test_an_interrupted_run_resumes_after_its_last_chunk_with_no_row_lost_or_twice(
        model, documents, tmp_path):
    source = tmp_path / "big.txt"
    with open(source, "w", encoding="utf-8") as stream:
        for i in range(40_000):
            stream.write(f"{documents[i % len(documents)]} number{i}\n")
    whole = tmp_path / "whole.jsonl"
    assert predict_out(model, source, whole, "--chunk-size", "500").returncode == 0
    out = tmp_path / "out.jsonl"
    state = out.with_name(out.name + ".partial") / "state.json"
    process = subprocess.Popen([sys.executable, "-m", "newstopic", "predict", "--model", model,
                                "--file", source, "--out", out, "--chunk-size", "500",
                                "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if state.exists() and json.loads(state.read_text())["parts"] >= 3:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists() and json.loads(state.read_text())["rows"] >= 1500
    assert_one_line_error(predict_out(model, source, out, "--chunk-size", "500"), "--resume")
    resumed = predict_out(model, source, out, "--chunk-size", "500", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == whole.read_bytes()
    assert not state.parent.exists()


def test_bad_streaming_requests_get_one_line_errors(model, documents, tmp_path):
    source = write_table(tmp_path / "in.csv", documents[:3], ["a", "b", "c"])
    exists = tmp_path / "exists.jsonl"
    exists.write_text("")
    cases = [
        (predict_out(model, source, tmp_path / "out.csv"), "unknown output format"),
        (predict_out(model, source, exists), "exists"),
        (predict_out(model, source, tmp_path / "o.jsonl", "--text-column", "body"), "body"),
        (predict_out(model, source, tmp_path / "o.jsonl", "--id-column", "doc"), "doc"),
        (predict_out(model, source, tmp_path / "o.jsonl", "--workers", "2"), "--engine ray"),
        (predict_out(model, source, tmp_path / "o.jsonl", "--engine", "spark"), "spark"),
        (run_cli("predict", "--model", model, "--id-column", "label", "--file", source),
         "--out"),
    ]
    unknown = tmp_path / "in.xml"
    unknown.write_text("<a/>")
    cases.append((predict_out(model, unknown, tmp_path / "o.jsonl"), ".xml"))
    for result, fragment in cases:
        assert_one_line_error(result, fragment)
    assert not (tmp_path / "o.jsonl").exists()


def test_ray_on_a_local_ray_and_on_a_cluster_joined_by_address_equals_one_process(
        model, documents, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("".join(f"{documents[i % len(documents)]} n{i}\n" for i in range(3000)))
    local = tmp_path / "local.parquet"
    assert predict_out(model, source, local, "--chunk-size", "400", "--top-k",
                       "3").returncode == 0
    embedded = tmp_path / "embedded.parquet"
    result = predict_out(model, source, embedded, "--chunk-size", "400", "--top-k", "3",
                         "--engine", "ray", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""  # Ray's own logs stay out of a quiet run
    expected, rows = read_rows(local), read_rows(embedded)
    assert [r["row"] for r in rows] == list(range(3000))
    assert [r["top_labels"] for r in rows] == [r["top_labels"] for r in expected]
    assert all(abs(a - b) <= 1e-6 for r, e in zip(rows, expected)
               for a, b in zip(r["top_probabilities"], e["top_probabilities"]))
    port = free_port()
    ray = Path(sys.executable).with_name("ray")
    # On this machine, joined as 127.0.0.1 (which Ray reads as the machine's own address),
    # with the token `ray start` makes (~/.ray/auth_token) that a joining driver must show.
    token = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen([ray, "start", "--head", "--block", "--port", str(port),
                             "--num-cpus", "2",
                             "--include-dashboard", "false", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=token)
    try:
        joined = tmp_path / "joined.jsonl"
        wait_for_port(port, head)
        options = ["--chunk-size", "400", "--top-k", "3", "--engine", "ray", "--workers", "2",
                   "--address", f"127.0.0.1:{port}"]
        result = run_cli("predict", "--model", model, "--file", source, "--out", joined,
                         "--quiet", *options, env={"RAY_AUTH_MODE": "token"})
        assert result.returncode == 0, result.stderr
        rows = read_rows(joined)
        assert [r["top_labels"] for r in rows] == [r["top_labels"] for r in expected]
        assert all(abs(a - b) <= 1e-6 for r, e in zip(rows, expected)
                   for a, b in zip(r["top_probabilities"], e["top_probabilities"]))
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops its cluster on exit
        head.wait(timeout=60)


def test_an_unreachable_ray_address_is_one_line(model, documents, tmp_path):
    source = write_table(tmp_path / "in.csv", documents[:3], ["a", "b", "c"])
    result = predict_out(model, source, tmp_path / "o.jsonl", "--engine", "ray", "--address",
                         f"127.0.0.1:{free_port()}")
    assert_one_line_error(result, "cannot reach a Ray cluster")
    assert list(tmp_path.glob("o.jsonl*")) == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, head, seconds: float = 60) -> None:
    """Wait until the cluster `head` is starting listens on `port`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and head.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the Ray head did not listen on port {port}")
