"""Streaming batch prediction: a file of any size through a saved classifier, chunk by chunk,
into one JSONL or Parquet file in input order, on this process or on Ray Data.

Memory is bounded by the chunk size, whatever the file's size. Each chunk's predictions become a
part file under ``OUT.partial/``, committed by rewriting its ``state.json``, both atomically: a
run killed at any point (SIGKILL included) resumes after its last committed chunk, with no row
lost or written twice. The parts are joined into OUT, in order, at the end.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from newstopic import lazy
from newstopic.artifacts import MANIFEST, load_model, model_manifest
from newstopic.errors import DataError, NewstopicError
from newstopic.explain import NoKnownWordWarning, predict_known
from newstopic.extras import require
from newstopic.files import sha256, write_atomic
from newstopic.records import iter_documents, read_chunks, readable_file

OUTPUT_FORMATS = (".jsonl", ".parquet")
CHUNK_SIZE = 10_000
ENGINES = ("local", "ray")
STATE = "state.json"


@dataclass(frozen=True)
class PredictionJob:
    """Label every document of `source` with model `model` into `out`."""

    model: Path
    source: Path
    out: Path
    text_column: str = "text"
    id_column: str | None = None
    top_k: int = 1
    chunk_size: int = CHUNK_SIZE

    @property
    def id_name(self) -> str:
        """The output's id column: the input's id column, else "row" (0-based position)."""
        return self.id_column or "row"

    @property
    def partial(self) -> Path:
        return self.out.with_name(self.out.name + ".partial")

    def identity(self) -> dict:
        """What a resumed run must share with the interrupted one."""
        stat = self.source.stat()
        return {"model": sha256(self.model / MANIFEST), "input": str(self.source.resolve()),
                "size": stat.st_size, "modified_ns": stat.st_mtime_ns,
                "text_column": self.text_column, "id_column": self.id_column,
                "top_k": self.top_k}

    def check(self, resume: bool) -> None:
        """Refuse, in one line and before any work, what would fail later."""
        if self.top_k < 1:
            raise NewstopicError(f"--top-k {self.top_k} must be at least 1")
        if self.chunk_size < 1:
            raise NewstopicError(f"--chunk-size {self.chunk_size} must be at least 1")
        if self.out.suffix.lower() not in OUTPUT_FORMATS:
            raise NewstopicError(f"--out {self.out}: unknown output format "
                                 f"'{self.out.suffix or self.out.name}': name it .jsonl or "
                                 ".parquet")
        if self.out.suffix.lower() == ".parquet":
            require("pyarrow.parquet", "parquet", "writing .parquet files")
        readable_file(self.source, "--file")
        if next(iter_documents(self.source, self.text_column, self.id_column), None) is None:
            raise DataError(f"{self.source} holds no texts: give one document per line")
        if self.out.exists():
            raise NewstopicError(
                f"--out {self.out} exists" + (" and is complete" if resume else "") +
                ": remove it or choose another --out")
        if self.partial.exists() and not resume:
            raise NewstopicError(f"an interrupted run left {self.partial}: add --resume to "
                                 "continue it, or remove it to start again")


def predict_file(job: PredictionJob, *, engine: str = "local", workers: int | None = None,
                 address: str | None = None, resume: bool = False, progress=None) -> dict:
    """Run `job` on `engine` ("local": this process; "ray": Ray Data with `workers` actors, on
    a local Ray or the cluster at `address`). Returns {"rows", "seconds", "docs_per_second"}
    of this run (a resumed run counts the rows it labelled itself)."""
    if engine not in ENGINES:
        raise NewstopicError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")
    if engine == "local" and (workers is not None or address is not None):
        raise NewstopicError("--workers and --address run on Ray: add --engine ray")
    if workers is not None and workers < 1:
        raise NewstopicError(f"--workers {workers} must be at least 1")
    job.check(resume)
    manifest, _ = model_manifest(job.model, task="classify")
    labels = manifest["labels"]  # the columns of predict_proba, as strings
    if engine == "ray":  # the actors load the model; this process only writes
        require("ray", "scale", "--engine ray")
        lazy.ray_engine.start(address, workers or 1)  # an unreachable cluster: before any file
        parts = Parts(job, resume)
        predictions = lazy.ray_engine.predictions(job, parts.rows, workers or 1, address)
    else:
        predictor = load_model(job.model, task="classify", full=False)[1]
        parts = Parts(job, resume)
        predictions = local_predictions(predictor, job, parts.rows)
    task = progress.add_task("predicting", total=None, rate="") if progress else None
    start, done, unknown = time.perf_counter(), 0, Unknown(job.id_name)
    for ids, proba, known in predictions:
        parts.write(prediction_columns(ids, proba, labels, job.top_k, job.id_name))
        unknown.add(known, ids)
        done += len(ids)
        if task is not None:
            rate = done / max(time.perf_counter() - start, 1e-9)
            progress.update(task, completed=parts.rows, rate=f"{rate:,.0f} docs/s")
    parts.finish()
    unknown.warn()
    seconds = time.perf_counter() - start
    return {"rows": done, "total_rows": parts.rows, "seconds": seconds,
            "docs_per_second": done / seconds if seconds else None}


def local_predictions(predictor, job: PredictionJob, skip: int) -> Iterator[tuple]:
    """(ids, probabilities, known) of each chunk of `job`'s input after the first `skip`
    documents, labelled in this process."""
    for ids, texts in read_chunks(job.source, job.text_column, job.id_column, job.chunk_size,
                                  skip):
        proba, known = predict_known(predictor, texts)
        yield ids, proba, known


def prediction_columns(ids, proba: np.ndarray, labels: list[str], top_k: int,
                       id_name: str) -> dict:
    """The output columns of one chunk: the id, the label and its probability and, with
    `top_k` above 1, the `top_k` labels and their probabilities (rounded to 6 decimals, as
    `predict --json` gives them)."""
    order = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]
    top = np.round(np.take_along_axis(proba, order, axis=1).astype(np.float64), 6)
    names = np.asarray(labels, dtype=object)[order]
    columns = {id_name: list(ids), "label": names[:, 0].tolist(),
               "probability": top[:, 0].tolist()}
    if top_k > 1:
        columns.update(top_labels=names.tolist(), top_probabilities=top.tolist())
    return columns


class Unknown:
    """The documents with no word the model knows, counted over the chunks, warned of once."""

    def __init__(self, id_name: str):
        self.id_name, self.count, self.first = id_name, 0, []

    def add(self, known: np.ndarray, ids) -> None:
        missing = np.flatnonzero(~np.asarray(known, dtype=bool))
        self.count += missing.size
        self.first += [ids[i] for i in missing[:5 - len(self.first)]]

    def warn(self) -> None:
        if self.count:
            shown = ", ".join(map(str, self.first)) + (", ..." if self.count > 5 else "")
            warnings.warn(f"{self.count:,} text(s) hold no word the model knows ({self.id_name} "
                          f"{shown}): their probabilities are the class prior",
                          NoKnownWordWarning, stacklevel=2)


class Parts:
    """The output of a job as committed parts under OUT.partial/, joined into OUT at the end."""

    def __init__(self, job: PredictionJob, resume: bool):
        self.job, self.identity = job, job.identity()
        self.format = job.out.suffix.lower()
        self.dir = job.partial
        state = self._state() if resume else None
        if state is not None and state["job"] != self.identity:
            changed = next(k for k in self.identity if state["job"].get(k) != self.identity[k])
            raise NewstopicError(f"{self.dir} was written by another job (its {changed} "
                                 "differs): remove it to start again, or resume with the same "
                                 "model, input and options")
        self.parts, self.rows = (state["parts"], state["rows"]) if state else (0, 0)
        if state is None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True)
            self._commit()

    def _state(self) -> dict | None:
        try:
            return json.loads((self.dir / STATE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            raise NewstopicError(f"{self.dir / STATE} is damaged: remove {self.dir} to start "
                                 "again") from None

    def _commit(self) -> None:
        write_atomic(self.dir / STATE, json.dumps({"job": self.identity, "parts": self.parts,
                                                   "rows": self.rows}))

    def path(self, number: int) -> Path:
        return self.dir / f"part-{number:06d}{self.format}"

    def write(self, columns: dict) -> None:
        """Write one chunk's columns as the next part, then commit it."""
        part = self.path(self.parts)
        tmp = part.with_name(f".{part.name}.tmp")
        if self.format == ".parquet":
            parquet = require("pyarrow.parquet", "parquet", "writing .parquet files")
            parquet.write_table(_arrow_table(columns), tmp)
        else:
            names = list(columns)
            with open(tmp, "w", encoding="utf-8") as stream:
                for row in zip(*columns.values()):
                    stream.write(json.dumps(dict(zip(names, row)), ensure_ascii=False,
                                            default=str) + "\n")
        tmp.replace(part)
        self.parts, self.rows = self.parts + 1, self.rows + len(columns["label"])
        self._commit()

    def finish(self) -> None:
        """Join the parts, in order, into OUT (renamed into place), and remove OUT.partial/."""
        out = self.job.out
        tmp = out.with_name(f".{out.name}.tmp")
        if self.format == ".parquet":
            parquet = require("pyarrow.parquet", "parquet", "writing .parquet files")
            writer = None
            for number in range(self.parts):
                table = parquet.read_table(self.path(number))
                if writer is None:
                    writer = parquet.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
            writer.close()  # there is a part: an input with no document is refused
        else:
            with open(tmp, "wb") as joined:
                for number in range(self.parts):
                    with open(self.path(number), "rb") as part:
                        shutil.copyfileobj(part, joined, 1 << 20)
        tmp.replace(out)
        shutil.rmtree(self.dir)


def _arrow_table(columns: dict):
    arrow = require("pyarrow", "parquet", "writing .parquet files")
    try:
        return arrow.table(columns)
    except (arrow.ArrowInvalid, arrow.ArrowTypeError) as exc:
        raise NewstopicError(f"the id column cannot be written to Parquet ({exc}): give ids "
                             "of one type, or write .jsonl") from None
