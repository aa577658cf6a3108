"""The one place where modules are imported on first use instead of at the top of a file.

Two kinds of module are reached this way, and only these:

- Keras and the project modules that import it (`newstopic.layers`, `newstopic.callbacks`):
  Keras reads its backend once, when first imported, so the backend is settled (`--backend`,
  `$KERAS_BACKEND`, or the automatic choice) before any of them loads.
- The model catalog, which `newstopic.registry` imports on the first lookup by name (the one
  import that goes up the layers: the builder modules register their models with the
  registry, and the catalog imports them all); and the modules that import a heavy library
  when imported: the estimator (scikit-learn, whose `BaseEstimator` it subclasses) and the
  server (FastAPI), so that `import newstopic` and the command line start at once; and the Ray
  engine of streaming prediction (Ray, an optional extra).

Every other project import sits at the top of its file, where `lint-imports` checks that it
goes down the layers declared in ``pyproject.toml``; `tests/test_architecture.py` checks that
no project import hides inside a function and that each module reached through here, the
catalog apart, sits below the modules that reach it.
"""

from __future__ import annotations

import importlib

from newstopic.backend import require


class LazyModule:
    """Module `name`, imported when one of its attributes is first used."""

    def __init__(self, name: str, loads_keras: bool = False):
        self.name = name
        self.loads_keras = loads_keras

    def imported(self):
        """The module itself, imported now."""
        if self.loads_keras:
            require()
        return importlib.import_module(self.name)

    def __getattr__(self, attribute):
        return getattr(self.imported(), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self.name}>"


keras = LazyModule("keras", loads_keras=True)
layers = LazyModule("keras.layers", loads_keras=True)
custom_layers = LazyModule("newstopic.layers", loads_keras=True)
callbacks = LazyModule("newstopic.callbacks", loads_keras=True)

catalog = LazyModule("newstopic.catalog")
estimator = LazyModule("newstopic.estimator")
server = LazyModule("newstopic.server")
ray_engine = LazyModule("newstopic.ray_engine")
