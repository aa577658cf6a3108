"""The verb that serves saved models over HTTP: `serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from newstopic.cli.options import QuietOption, app, backend_options, console
from newstopic.errors import NewstopicError
from newstopic.lazy import server


@app.command()
@backend_options()
def serve(
    model: Annotated[list[Path], typer.Option(
        "--model", "-m", help="A trained model directory; repeat to serve several (the first "
                              "is the default).")],
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for every "
                                           "interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8000,
    max_texts: Annotated[int, typer.Option(help="Most texts per request.")] = 256,
    max_chars: Annotated[int, typer.Option(help="Most characters per text.")] = 100_000,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 5_000_000,
    max_connections: Annotated[int, typer.Option(
        help="Most open connections; past it the oldest idle one is closed.")] = 1000,
    header_timeout: Annotated[float, typer.Option(
        help="Seconds a client has to send a request's headers.")] = 10.0,
    allow_host: Annotated[Optional[list[str]], typer.Option(
        help="A Host name clients use, besides localhost and --host; repeatable, and needed "
             "with --host 0.0.0.0.")] = None,
    quiet: QuietOption = False,
) -> None:
    """Serve models over HTTP: a web page at /, /predict, /explain, /summarize, docs at /docs."""
    limits = server.Limits(max_texts, max_chars, max_body_bytes, max_connections, header_timeout)
    if min(limits.max_texts, limits.max_chars, limits.max_body_bytes,
           limits.max_connections) < 1:
        raise NewstopicError("--max-texts, --max-chars, --max-body-bytes and --max-connections "
                             "must be at least 1")
    if not 0 < header_timeout <= 3600:
        raise NewstopicError(f"--header-timeout {header_timeout:g} must be between 0 and 3600 "
                             "seconds")
    hosts = server.allowed_hosts(host, allow_host)
    sock = server.bind(host, port)
    with console(quiet).status(f"loading {len(model)} model(s)"):
        served = server.load_models(model)
    web_app = server.create_app(served, limits, hosts)
    address = sock.getsockname()
    shown = f"[{address[0]}]" if ":" in address[0] else address[0]
    print(f"serving {', '.join(m.name for m in served)} on http://{shown}:{address[1]}/",
          flush=True)
    server.serve(web_app, sock, limits, quiet)
