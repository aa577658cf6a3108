"""Streaming prediction on Ray Data: read -> `map_batches` with a pool of labelling actors ->
the ordered batches back to the caller, which writes the one output file.

The input is read by newstopic's own reader (`newstopic.records`) inside one Ray read task, so
that Ray splits it where the single-process run does, at record boundaries only, and the two
give the same rows. Each actor loads the model once. Imported only with the `scale` extra.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import numpy as np
import ray
import ray.data
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from newstopic.artifacts import load_model
from newstopic.errors import NewstopicError
from newstopic.explain import predict_known
from newstopic.records import read_chunks

# What the read task and each actor ask of a node: the actors, which do the work, take a core
# each; the reader, which only splits the file into chunks, none (so that N workers fit on
# N cores: with a share of one, they waited for it forever).
READ_CPUS = 0
ACTOR_CPUS = 1


class DocumentSource(Datasource):
    """The documents of one file, as Arrow blocks of (id, text), after the first `skip`."""

    def __init__(self, job, skip: int):
        self.job, self.skip = job, skip

    def estimate_inmemory_data_size(self) -> int | None:
        return os.path.getsize(self.job.source)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context=None) -> list[ReadTask]:
        job, skip = self.job, self.skip

        def read():
            import pyarrow

            for ids, texts in read_chunks(job.source, job.text_column, job.id_column,
                                          job.chunk_size, skip):
                yield pyarrow.table({"id": ids, "text": texts})

        metadata = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None,
                                 input_files=[str(job.source)])
        return [ReadTask(read, metadata)]


class Labeller:
    """A Ray actor's labelling function: the model, loaded once per actor."""

    def __init__(self, model: str):
        self.predictor = load_model(Path(model), task="classify", full=False)[1]

    def __call__(self, batch: dict) -> dict:
        proba, known = predict_known(self.predictor, list(batch["text"]))
        return {"id": batch["id"], "proba": np.asarray(proba, dtype=np.float64),
                "known": np.asarray(known, dtype=bool)}


def start(address: str | None, workers: int) -> None:
    """Join the Ray cluster at `address`, or start a local Ray sized for `workers` actors."""
    if ray.is_initialized():
        return
    quiet = {"include_dashboard": False, "log_to_driver": False,
             "logging_level": logging.ERROR, "configure_logging": True}
    if address is not None:
        _probe(address)
    try:
        if address is None:  # "local": a new Ray, never a cluster `ray start` left running
            ray.init(address="local", num_cpus=workers * ACTOR_CPUS + 1, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if address is None:
            raise NewstopicError(f"cannot start a local Ray ({first}): run `ray stop` if a "
                                 "Ray left running is in the way, or use --engine local") \
                from None
        if _refused_token(exc):
            raise NewstopicError(f"the Ray cluster at --address {address} refused this process's "
                                 "token: set RAY_AUTH_MODE=token, with the cluster's token in "
                                 "~/.ray/auth_token or RAY_AUTH_TOKEN") from None
        raise NewstopicError(f"cannot reach a Ray cluster at --address {address} ({first}): "
                             "start one with `ray start --head`, check the address, or drop "
                             "--address to run on a local Ray") from None
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < workers * ACTOR_CPUS:
        raise NewstopicError(f"the Ray cluster at --address {address} has {cpus} CPU(s), too "
                             f"few for {workers} workers of {ACTOR_CPUS}: give --workers "
                             f"{cpus // ACTOR_CPUS or 1} or add nodes")


def _probe(address: str, seconds: float = 5.0) -> None:
    """Refuse at once an address where nothing listens: Ray itself retries for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return  # Ray finds (or refuses) the address itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as exc:
        raise NewstopicError(f"cannot reach a Ray cluster at --address {address} (nothing "
                             f"answers there: {exc.strerror or exc}): start one with `ray start "
                             "--head`, check the address, or drop --address to run on a local "
                             "Ray") from None


def _refused_token(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception behind it, says the cluster refused this process's
    token (Ray puts the cause's traceback in the message of the error it raises)."""
    while exc is not None:
        if "AuthenticationError" in f"{type(exc).__name__} {exc}":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def predictions(job, skip: int, workers: int, address: str | None):
    """(ids, probabilities, known) of each chunk of `job`'s input after the first `skip`
    documents, labelled by `workers` actors and returned in input order."""
    start(address, workers)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for name in ("ray", "ray.data"):  # Ray Data sets up its own loggers, at INFO
        logging.getLogger(name).setLevel(logging.ERROR)
    dataset = ray.data.read_datasource(DocumentSource(job, skip), num_cpus=READ_CPUS)
    labelled = dataset.map_batches(Labeller, fn_constructor_args=(str(job.model),),
                                   batch_size=job.chunk_size, batch_format="numpy",
                                   compute=ray.data.ActorPoolStrategy(size=workers),
                                   num_cpus=ACTOR_CPUS)
    for batch in labelled.iter_batches(batch_size=job.chunk_size, batch_format="numpy"):
        yield batch["id"].tolist(), batch["proba"], batch["known"]
