"""Writing files and directories so that a reader, or a run killed half-way, never sees half
of one: a file is renamed into place, a directory swapped in whole."""

from __future__ import annotations

import ctypes
import glob
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from newstopic.errors import ArtifactError


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write a text (UTF-8) or binary file so that a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content, encoding="utf-8")
    tmp.replace(path)


@contextmanager
def atomic_directory(path: Path):
    """Yield a temporary sibling directory; on success it takes `path`'s place in one step.
    Temporary siblings that an interrupted save left behind are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-{os.getpid()}-"))
    try:
        yield tmp
        if path.exists():
            if not exchange(tmp, path):  # no renameat2 here: two renames, a brief gap
                old = tmp.with_name(tmp.name + "-old")
                os.rename(path, old)
                os.rename(tmp, path)
                tmp = old
        else:
            os.rename(tmp, path)
            return
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale(path: Path) -> None:
    """Remove the temporary siblings of `path` (`.NAME.tmp-PID-*`) whose process has ended:
    only what `atomic_directory` made, never a directory a live save is writing."""
    prefix = f".{path.name}.tmp-"
    for stale in path.parent.glob(f"{glob.escape(prefix)}*"):
        pid = stale.name[len(prefix):].split("-", 1)[0]
        if stale.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 with RENAME_EXCHANGE)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(directory: Path, name: str, digest: str | None) -> None:
    """Refuse file `name` of model directory `directory` if it is missing, or not listed with
    a `digest`, or its SHA-256 is not that digest."""
    file = directory / name
    if digest is None or not file.is_file():
        raise ArtifactError(f"{directory} is incomplete: {name} is missing; retrain the model")
    if sha256(file) != digest:
        raise ArtifactError(f"{file} is corrupted or was modified (checksum mismatch): "
                            "restore it or retrain the model")
