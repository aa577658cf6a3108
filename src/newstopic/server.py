"""The REST service and its web page: models loaded once, requests checked against limits.

`create_app(models, limits)` builds the FastAPI app over models already loaded (`load_models`);
`serve` runs it on uvicorn. Every answer outside the happy path is JSON ``{"error": "..."}``
naming the problem: 413 for a body over the size limit (refused before it is parsed), 422 for
a body that is not UTF-8 JSON, wrong types, texts over the limits or an unknown model, 404 for a
capability no loaded model has, 400 for a Host header the server does not answer to (DNS
rebinding). A model that can `summarize(texts)` (a subject model) is served at ``/summarize``.

What a client controls is bounded: the body's size, the texts, the time to send a request's
headers (a slow client is disconnected) and the open connections (past the limit, the oldest
connection that has not sent a whole request is dropped for the newcomer, so that a flood of
half-open connections cannot starve real requests or the process's file descriptors).
"""

# No `from __future__ import annotations`: FastAPI reads the request models, defined inside
# create_app, from the endpoints' annotations at run time.
import asyncio
import logging
import queue
import resource
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from newstopic import __version__
from newstopic.artifacts import load_model
from newstopic.errors import NewstopicError
from newstopic.explain import explain, predict_known, ranked_labels
from newstopic.predictor import CLASSIFY, SUMMARIZE

KINDS = {"classify": "classifier", "summarize": "subject model"}  # the models able to


@dataclass(frozen=True)
class Limits:
    max_texts: int = 256  # per request
    max_chars: int = 100_000  # per text
    max_body_bytes: int = 5_000_000
    max_connections: int = 1000  # open at once; fewer if the file descriptors are fewer
    header_timeout: float = 10.0  # seconds to send a request's headers
    keep_alive: float = 5.0  # seconds an idle keep-alive connection stays open


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
RESERVED_DESCRIPTORS = 64  # kept for the models' files, the logs and the listening socket


@dataclass
class ServedModel:
    """A loaded predictor under the name clients use, with what it can do."""

    name: str
    predictor: object
    manifest: dict
    worker: "ModelWorker" = field(init=False, repr=False)

    def __post_init__(self):
        self.worker = ModelWorker(self.predictor)

    @property
    def can_classify(self) -> bool:
        return CLASSIFY in self.predictor.capabilities

    @property
    def can_summarize(self) -> bool:
        return SUMMARIZE in self.predictor.capabilities

    def info(self) -> dict:
        manifest = self.manifest
        # the training data's settings, without this machine's file paths
        config = {k: v for k, v in manifest.get("config", {}).items() if k not in PATH_KEYS}
        return {"name": self.name, "model": manifest.get("model"),
                "family": manifest.get("family"), "labels": manifest.get("labels", []),
                "config": config, "params": manifest.get("params", {}),
                "test_metrics": manifest.get("metrics", {}).get("test", {}),
                "can": [name for name, able in (("predict", self.can_classify),
                                                ("explain", self.can_classify),
                                                ("summarize", self.can_summarize)) if able]}


PATH_KEYS = {"source", "data", "train_file", "test_file"}


class ModelWorker:
    """Calls one model from a thread of its own. Texts to predict that concurrent requests sent
    while the model was busy go through it as one batch (a recurrent network takes about as long
    for 32 texts as for one); other calls run one at a time (Keras models are not safe to call
    from several threads at once)."""

    def __init__(self, predictor, max_batch: int = 256):
        self.predictor, self.max_batch = predictor, max_batch
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, daemon=True, name="model-worker").start()

    async def predict_proba(self, texts: list[str]):
        return await self._submit(None, texts)

    async def call(self, function, *args):
        """`function(*args)`, run in the model's thread."""
        return await self._submit(function, args)

    def _submit(self, function, payload):
        future = Future()
        self.jobs.put((function, payload, future))
        return asyncio.wrap_future(future)

    def _run(self) -> None:
        waiting = None
        while True:
            job, waiting = waiting or self.jobs.get(), None
            function, payload, future = job
            if function is not None:
                _settle([future], lambda: [function(*payload)])
                continue
            batch, size = [job], len(payload)
            while size < self.max_batch:  # whatever else is queued now; no waiting for more
                try:
                    queued = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if queued[0] is not None:
                    waiting = queued
                    break
                batch.append(queued)
                size += len(queued[1])
            _settle([f for _, _, f in batch], lambda: self._split(batch))

    def _split(self, batch) -> list:
        """Each request's (probabilities, whether each text holds a known word)."""
        proba, known = predict_known(self.predictor,
                                     [text for _, texts, _ in batch for text in texts])
        ends = np.cumsum([len(texts) for _, texts, _ in batch])[:-1]
        return list(zip(np.split(proba, ends), np.split(known, ends)))


def _settle(futures: list[Future], compute) -> None:
    """Give each future its result of `compute()` or its error; a request that has gone away
    (its future cancelled) gets nothing, and nothing is computed for none."""
    wanted = [future.set_running_or_notify_cancel() for future in futures]
    if not any(wanted):
        return
    try:
        results, error = compute(), None
    except Exception as exc:  # every request waiting on it answers the error
        results, error = [None] * len(futures), exc
    for future, result, want in zip(futures, results, wanted):
        if want and error is None:
            future.set_result(result)
        elif want:
            future.set_exception(error)


def load_models(paths: list[Path]) -> list[ServedModel]:
    """Load each model directory once (the NumPy predictor for classical models), named by its
    directory, and run it once so that the first request does not pay for tracing."""
    names = [Path(path).resolve().name for path in paths]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated:
        raise NewstopicError(f"two models are named '{repeated}' (their directory name): serve "
                             "models from directories with different names")
    served = []
    for name, path in zip(names, paths):
        manifest, predictor = load_model(path, full=False)
        model = ServedModel(name, predictor, manifest)
        if model.can_classify:
            explain(predictor, "warm up")
        served.append(model)
    return served


class RequestGuard:
    """ASGI middleware, before anything parses a request: a Host header outside `hosts` gets
    400; a body over `limit` bytes gets 413, by its Content-Length or, streamed without one, as
    soon as the count passes the limit; a body that is not UTF-8 gets 422."""

    def __init__(self, app, limit: int, hosts: tuple[str, ...]):
        self.app, self.limit, self.hosts = app, limit, set(hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        host = _host_name(headers.get(b"host", b"").decode("latin-1"))
        if host not in self.hosts:
            return await _refuse(scope, receive, send, 400, f"this server does not answer to "
                                 f"host '{host}': start it with --allow-host {host or 'NAME'}")
        length = headers.get(b"content-length")
        if length is not None and int(length) > self.limit:  # the server checked it is a number
            return await self._too_large(scope, receive, send)
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.limit:
                return await self._too_large(scope, receive, send)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        try:
            b"".join(m.get("body", b"") for m in messages).decode("utf-8")
        except UnicodeDecodeError as exc:
            return await _refuse(scope, receive, send, 422, f"the body is not UTF-8 (byte "
                                 f"{exc.start}): send JSON encoded as UTF-8")

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send):
        await _refuse(scope, receive, send, 413, f"request body over {self.limit:,} bytes: "
                      "send fewer or shorter texts per request")


async def _refuse(scope, receive, send, status: int, message: str) -> None:
    await JSONResponse({"error": message}, status_code=status)(scope, receive, send)


def _host_name(header: str) -> str:
    """The host of a Host header, without its port: "[::1]:8000" is "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _allowed_name(name: str) -> str:
    """An --allow-host value as `_host_name` gives it, refused if it cannot be a Host header's
    name: blank (which would answer requests that name no host) or a URL."""
    host = _host_name(name)
    if not host or any(c.isspace() or c in "/@?#" for c in name.strip()):
        raise NewstopicError(f"--allow-host {name!r} is not a host name: give the name clients "
                             "put in the address, as example.org or 10.0.0.5, without scheme "
                             "or path")
    return host


def allowed_hosts(host: str, allow: list[str] | None = None) -> tuple[str, ...]:
    """The Host names a server listening on `host` answers to: the loopback names, `host`
    itself unless it means every interface, and the `allow`ed names."""
    allow = [_allowed_name(name) for name in allow or []]
    if host in ("0.0.0.0", "::", "") and not allow:
        raise NewstopicError(f"--host {host or ''} listens on every interface: name the host "
                             "names clients use with --allow-host NAME (repeatable), so that "
                             "other sites cannot reach the server through DNS rebinding")
    own = [] if host in ("0.0.0.0", "::", "") else [_host_name(host)]
    return tuple(dict.fromkeys([*LOOPBACK_HOSTS, *own, *allow]))


# JSON Schema's "integer" includes 3.0; strict pydantic would refuse it (and rightly "3").
Count = Annotated[int, BeforeValidator(
    lambda value: int(value) if isinstance(value, float) and value.is_integer() else value)]


def create_app(models: list[ServedModel], limits: Limits = Limits(),
               hosts: tuple[str, ...] = LOOPBACK_HOSTS) -> FastAPI:
    """The service over `models` (the first one able to do a task is the default for it),
    answering to the Host names `hosts`."""
    if not models:
        raise NewstopicError("no model to serve: give --model DIR at least once")
    by_name = {model.name: model for model in models}
    page = resources.files("newstopic").joinpath("static/index.html").read_text(encoding="utf-8")
    Text = Annotated[str, Field(max_length=limits.max_chars)]
    Texts = Annotated[list[Text], Field(min_length=1, max_length=limits.max_texts)]

    def model_name(able: str):
        """The `model` field: the names of the loaded models that are able to, as the schema's
        enum (so that a client sees which are valid), checked with a message of our own by
        `pick`."""
        names = [model.name for model in models if getattr(model, f"can_{able}")]
        return Annotated[Optional[str], Field(
            min_length=1, json_schema_extra={"enum": [*names, None]},
            description=f"A loaded {KINDS[able]}'s name (GET /models) [default: the first]")]

    ClassifierName, SubjectModelName = model_name("classify"), model_name("summarize")

    class Strict(BaseModel):  # no coercion: "3" is not a number, 3 is not a text
        model_config = ConfigDict(extra="forbid", strict=True)

    class PredictRequest(Strict):
        texts: Texts
        top_k: Count = Field(3, ge=1, description="Labels to return per text")
        model: ClassifierName = None

    class ExplainRequest(Strict):
        text: Text
        top_k: Count = Field(10, ge=1, description="Top words to return")
        model: ClassifierName = None

    class SummarizeRequest(Strict):
        texts: Texts
        model: SubjectModelName = None

    app = FastAPI(title="newstopic", summary="News-topic classification with explanations",
                  version=__version__)
    app.add_middleware(RequestGuard, limit=limits.max_body_bytes, hosts=tuple(hosts))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc):
        return JSONResponse({"error": "invalid request: " + _describe(exc.errors())},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(NewstopicError)
    async def model_error(request, exc):
        return JSONResponse({"error": str(exc)}, status_code=422)

    def pick(name: str | None, able: str) -> ServedModel:
        if name is None:
            found = next((m for m in models if getattr(m, f"can_{able}")), None)
            if found is None:
                raise HTTPException(404, f"no {KINDS[able]} loaded: start `newstopic serve` "
                                         f"with --model DIR of a trained {KINDS[able]}")
            return found
        if name not in by_name:
            raise HTTPException(422, f"unknown model '{name}': the loaded models are "
                                     f"{', '.join(by_name)}")
        if not getattr(by_name[name], f"can_{able}"):
            able_ones = [m.name for m in models if getattr(m, f"can_{able}")]
            raise HTTPException(422, f"model '{name}' cannot {able}: " + (
                f"use {', '.join(able_ones)}" if able_ones else f"no {KINDS[able]} is loaded"))
        return by_name[name]

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse,
                   include_in_schema=False)
    def index():
        return page

    @app.get("/health", responses={400: ERRORS[400]})
    def health():
        return {"status": "ok", "models": list(by_name)}

    @app.get("/models", responses={400: ERRORS[400]})
    def list_models():
        return {"models": [model.info() for model in models]}

    @app.post("/predict", responses=ERRORS)
    async def predict(request: PredictRequest):
        """The label, its probability and the `top_k` labels of each text, in one batch.
        `known_words` is false for a text without a word the model knows: its probabilities
        are the class prior."""
        served = pick(request.model, "classify")
        proba, known = await served.worker.predict_proba(request.texts)
        labels = [str(c) for c in served.predictor.classes_]
        results = ranked_labels(proba, labels, request.top_k)
        for result, has_known in zip(results, known):
            result["known_words"] = bool(has_known)
        # JSONResponse directly: FastAPI's generic encoder is slow on large answers.
        return JSONResponse({"model": served.name, "results": results})

    @app.post("/explain", responses=ERRORS)
    async def explain_text(request: ExplainRequest):
        """Every word of the text with its score for the predicted label, and the top words;
        `known_words` as in /predict."""
        served = pick(request.model, "classify")
        explanation = await served.worker.call(explain, served.predictor, request.text,
                                               request.top_k)
        return JSONResponse({"model": served.name, **explanation.to_dict()})

    @app.post("/summarize", responses=ERRORS)
    async def summarize(request: SummarizeRequest):
        """A subject line for each text, from a subject model."""
        served = pick(request.model, "summarize")
        subjects = await served.worker.call(served.predictor.summarize, request.texts)
        return {"model": served.name, "results": [{"subject": s} for s in subjects]}

    return app


class ErrorBody(BaseModel):
    error: str = Field(description="The problem, and how to fix it, in one line")


ERRORS = {
    400: {"model": ErrorBody, "description": "A Host header this server does not answer to"},
    404: {"model": ErrorBody, "description": "No loaded model can do this"},
    413: {"model": ErrorBody, "description": "The body is over the size limit"},
    422: {"model": ErrorBody, "description": "The body is not UTF-8 JSON of the request's "
                                             "schema, a text is over the limits, or the model "
                                             "is unknown"},
}


def _describe(errors) -> str:
    """Pydantic's validation errors as one line: where, and what is wrong there."""
    described = []
    for error in errors[:5]:
        kind, where = error["type"], error["loc"][1:]  # loc starts with "body"
        if kind == "json_invalid":
            message = f"malformed JSON at character {where[0]} ({error['ctx']['error']})"
        elif not where and kind == "missing":
            message = "the body is empty: send a JSON object"
        elif not where:
            message = "the body must be a JSON object, sent as Content-Type: application/json"
        else:
            path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in where)
            message = f"{path.lstrip('.')}: {error['msg']}" if path else error["msg"]
        described.append(message)
    return "; ".join(described)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, so that a port in use is one clear error; port 0 picks a free one."""
    if not 0 <= port <= 65535:
        raise NewstopicError(f"--port {port} is not a port: give one from 0 to 65535 (0 picks a "
                             "free one)")
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it a keep-alive client waits ~40 ms (delayed ACK) for every response.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise NewstopicError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another "
                             "--port or --host") from None
    sock.listen(2048)
    return sock


def uvicorn_server(app: FastAPI, limits: Limits = Limits(), log_level: str = "warning"):
    """A uvicorn server for `app`, logging from `log_level` up (never a line per request), on
    the HTTP protocol of `guarded_protocol`."""
    import uvicorn

    return uvicorn.Server(uvicorn.Config(
        app, log_level=log_level, access_log=False, loop="asyncio",
        http=guarded_protocol(connection_limit(limits.max_connections), limits.header_timeout),
        timeout_keep_alive=limits.keep_alive))


def connection_limit(wanted: int) -> int:
    """`wanted` connections, or fewer where the process may open fewer files."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - RESERVED_DESCRIPTORS))


def guarded_protocol(max_connections: int, header_timeout: float):
    """uvicorn's h11 protocol, bounded: a connection that has not sent a whole request's
    headers within `header_timeout` seconds of opening (or of its last response) is closed,
    and past `max_connections` the oldest connection waiting for headers is closed for the
    newcomer (or the newcomer, if every connection is busy). uvicorn resets its keep-alive
    timer on every byte and has no header timeout of its own."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    open_connections: dict = {}  # oldest first

    class GuardedH11Protocol(H11Protocol):
        _deadline = None

        def connection_made(self, transport):
            super().connection_made(transport)
            if len(open_connections) >= max_connections:
                waiting = next((c for c in open_connections if c._waiting()), None)
                if waiting is None:
                    transport.close()
                    return
                waiting._drop()
            open_connections[self] = None
            self._arm()

        def _waiting(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(header_timeout, self._too_slow)

        def _too_slow(self) -> None:
            if self._waiting():
                self._drop()

        def _drop(self) -> None:
            open_connections.pop(self, None)
            self.transport.close()

        def on_response_complete(self):
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc):
            open_connections.pop(self, None)
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

    return GuardedH11Protocol


def serve(app: FastAPI, sock: socket.socket, limits: Limits = Limits(),
          quiet: bool = False) -> None:
    """Run `app` over `sock` until interrupted; `quiet` logs errors only (not, say, uvicorn's
    warning for each malformed request)."""
    server = uvicorn_server(app, limits, "error" if quiet else "warning")

    async def run():
        # Out of file descriptors, asyncio logs every failed accept() with a traceback;
        # once a second is enough to say so.
        asyncio.get_running_loop().set_exception_handler(_RateLimitedLog(1.0))
        await server.serve(sockets=[sock])

    asyncio.run(run())


class _RateLimitedLog:
    """An event loop exception handler logging at most one message every `seconds`, with the
    number it held back."""

    def __init__(self, seconds: float):
        self.seconds, self.last, self.held = seconds, 0.0, 0

    def __call__(self, loop, context) -> None:
        now = time.monotonic()
        if now - self.last < self.seconds:
            self.held += 1
            return
        held, self.held, self.last = self.held, 0, now
        logging.getLogger("newstopic.server").error(
            "%s%s", context.get("message", "event loop error"),
            f" ({held} similar messages held back)" if held else "")
