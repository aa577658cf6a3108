"""The `newstopic` command line (`newstopic.cli.main`)."""

from newstopic.cli.main import app, main

__all__ = ["app", "main"]
