"""Library versions and machine facts, recorded in every artifact and report."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from importlib import metadata

from newstopic import backend

PACKAGES = ("newstopic", "numpy", "scikit-learn", "skops", "keras", "tensorflow-cpu",
            "tensorflow", "jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "gensim")


def versions() -> dict:
    """Installed versions, read from package metadata (nothing is imported)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def source_commit() -> str | None:
    """The git commit of newstopic's source, when it runs from a checkout (else None)."""
    try:
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5,
                           cwd=Path(__file__).resolve().parent).stdout.strip()
    return (found.stdout.strip() + ("+changes" if dirty else "")) if found.returncode == 0 \
        else None


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"system": platform.system(), "release": platform.release(),
            "machine": platform.machine(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0], **keras_devices()}


def keras_devices() -> dict:
    """The Keras backend and the devices it computes on, once Keras runs in this process
    (a classical model alone never starts it)."""
    keras_backend = backend.imported_backend()
    if keras_backend is None:
        return {"keras_backend": None, "devices": None}
    return {"keras_backend": keras_backend, "devices": backend.devices(),
            "data_parallel_devices": backend.device_count()}
