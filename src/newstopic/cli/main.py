"""The `newstopic` command: few verbs, sensible defaults, one line of output per result.

The verbs live by group in `newstopic.cli.train` (models, data, train, benchmark),
`newstopic.cli.use` (evaluate, predict, explain, summarize) and `newstopic.cli.serve`; this
module gathers them and runs the command.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import warnings

from newstopic.cli import serve, train, use  # noqa: F401  (each adds its verbs to the app)
from newstopic.cli.options import app
from newstopic.errors import NewstopicError


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


# TensorFlow's C++ logging (absl), which TF_CPP_MIN_LOG_LEVEL no longer silences: lines like
# "I0000 00:00:1796423619.246514     615 port.cc:153] oneDNN custom operations are on", and
# Ray's core worker: "[2026-12-05 13:07:18,963 E 19920 19920] core_worker.cc:2465: Actor ...".
_NATIVE_LOG = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\]|WARNING: All "
                         rb"log messages before absl::InitializeLog\(\) is called|"
                         rb"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [IWEF] \d+ \d+\] [\w.]+:\d+:)")


def _filter_native_logs() -> None:
    """Send what native libraries write to standard error through a filter that drops their
    log lines; Python's own messages go straight to the terminal."""
    terminal = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    sys.stderr = open(terminal, "w", buffering=1, encoding=sys.stderr.encoding,
                      errors="backslashreplace", closefd=False)

    def forward():
        with open(read, "rb", buffering=0) as pipe:
            for line in iter(pipe.readline, b""):
                if not _NATIVE_LOG.match(line):
                    os.write(terminal, line)

    thread = threading.Thread(target=forward, daemon=True, name="native-log-filter")
    thread.start()

    def drain():
        os.dup2(terminal, 2)  # closes the pipe's last writer: the thread reads to its end
        thread.join(2)

    atexit.register(drain)


def main() -> None:
    """Run the CLI; a user's mistake ends in one line on stderr, never a traceback."""
    if not os.environ.get("NEWSTOPIC_DEBUG"):
        _filter_native_logs()
        # TensorFlow's Python logger ("WARNING:tensorflow:... retracing") speaks to developers.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.showwarning = _show_warning
    try:
        app()
    except NewstopicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("NEWSTOPIC_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set NEWSTOPIC_DEBUG=1 to see the "
              "traceback, and please report it)", file=sys.stderr)
        sys.exit(1)
