"""Which Keras backend runs the neural models, and on which devices.

Keras reads its backend once, when it is first imported, so the choice is settled before that:
`--backend` on the command line, else `$KERAS_BACKEND`, else automatically: JAX where its CUDA
plugin is installed (`newstopic[gpu]`), else TensorFlow, else JAX. Python and notebook users
call `newstopic.use_backend("jax")` (or set `KERAS_BACKEND`) before their first model.

Nothing here imports Keras or a backend until asked to, so the choice costs nothing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib import metadata

from newstopic.errors import NewstopicError

BACKENDS = ("tensorflow", "jax")
EXTRAS = {"tensorflow": "newstopic[tensorflow]", "jax": "newstopic[jax]"}
JAX_GPU_PLUGINS = ("jax-cuda12-plugin", "jax-cuda13-plugin")


def installed(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


def _jax_gpu_installed() -> bool:
    for plugin in JAX_GPU_PLUGINS:
        try:
            metadata.version(plugin)
            return True
        except metadata.PackageNotFoundError:
            pass
    return False


def automatic() -> str:
    """The backend newstopic picks when none is named."""
    if installed("jax") and _jax_gpu_installed():
        return "jax"
    return "tensorflow" if installed("tensorflow") or not installed("jax") else "jax"


def _check(backend: str) -> None:
    if backend not in BACKENDS:
        raise NewstopicError(f"the Keras backend '{backend}' is not supported: choose "
                             f"{' or '.join(BACKENDS)} (--backend or KERAS_BACKEND)")


def imported_backend() -> str | None:
    """The backend of the Keras already imported in this process, if any."""
    keras = sys.modules.get("keras")
    return None if keras is None else keras.backend.backend()


def use_backend(backend: str | None = None) -> str:
    """Settle the backend (None: $KERAS_BACKEND, else the automatic choice) before Keras is
    imported; once Keras is imported, only its own backend can be used."""
    chosen = backend or os.environ.get("KERAS_BACKEND") or automatic()
    _check(chosen)
    current = imported_backend()
    if current is not None:
        if current != chosen:
            raise NewstopicError(f"Keras is already running on {current}: choose {chosen} "
                                 "before Keras is first imported (newstopic.use_backend or "
                                 "KERAS_BACKEND)")
        return chosen
    if not installed(chosen):
        raise NewstopicError(f"the {chosen} backend is not installed: pip install "
                             f"'{EXTRAS[chosen]}', or choose another with --backend")
    os.environ["KERAS_BACKEND"] = chosen
    return chosen


def require() -> str:
    """The backend the neural models run on, settled if it was not yet; called before newstopic
    imports Keras."""
    current = imported_backend()
    if current is not None:
        _check(current)
        return current
    return use_backend()


def devices() -> list[str]:
    """The devices Keras computes on, e.g. ['gpu:0'] or ['cpu:0', 'cpu:1']."""
    import keras

    return [str(d).lower() for d in keras.distribution.list_devices()]


def use_devices(count: str | int | None) -> int:
    """Train data-parallel over `count` devices ('all', or a number; None or 1: one device).
    JAX only: Keras' distribution API shards each batch over the devices and keeps one copy
    of the weights on each. Returns the number of devices used."""
    if count is None or str(count) == "1":
        return 1
    if str(count) != "all" and not (str(count).isdigit() and int(count) > 1):
        raise NewstopicError(f"--devices must be a positive number or 'all', not {count!r}")
    backend = require()
    if backend != "jax":
        raise NewstopicError("--devices needs the jax backend (Keras' data-parallel "
                             "distribution runs on JAX): add --backend jax, or drop --devices")
    import keras

    found = keras.distribution.list_devices()
    wanted = len(found) if str(count) == "all" else int(count)
    if wanted > len(found):
        raise NewstopicError(f"--devices {wanted} asks for more devices than the {len(found)} "
                             "this machine has: give at most that many")
    if wanted > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=found[:wanted]))
    return wanted


def device_count() -> int:
    """How many devices each batch is shared out over (1 without a distribution)."""
    if "keras" not in sys.modules:
        return 1
    distribution = sys.modules["keras"].distribution.distribution()
    return 1 if distribution is None else int(distribution.device_mesh.devices.size)


def keras_module():
    """Keras, imported on the settled backend."""
    require()
    import keras

    return keras
