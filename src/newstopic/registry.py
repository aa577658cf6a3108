"""Every model newstopic can train, by name: classical pipelines and neural architectures alike."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from newstopic.errors import NewstopicError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # "classical" or "neural"
    description: str
    build: Callable
    shared: Callable | None = None  # a helper whose parameters the builder passes through

    def parameters(self) -> dict:
        """The hyperparameters a user may set, with their defaults (`seed` is set apart)."""
        found = {}
        for function in filter(None, (self.build, self.shared)):
            found.update((p.name, p.default)
                         for p in inspect.signature(function).parameters.values()
                         if p.default is not inspect.Parameter.empty and p.name != "seed")
        return found

    def check(self, params: dict) -> None:
        unknown = sorted(set(params) - set(self.parameters()))
        if unknown:
            raise NewstopicError(f"model '{self.name}' has no parameter '{unknown[0]}': its "
                                 f"parameters are {', '.join(self.parameters())}")


MODELS: dict[str, ModelSpec] = {}


def register(name: str, family: str, description: str, shared: Callable | None = None):
    """Decorator: make a builder function available as model `name`."""

    def add(build: Callable) -> Callable:
        MODELS[name] = ModelSpec(name, family, description, build, shared)
        return build

    return add


def _load_builders() -> None:
    import newstopic.classical  # noqa: F401  (registers on import)


def get_model(name: str) -> ModelSpec:
    _load_builders()
    if name not in MODELS:
        raise NewstopicError(f"unknown model '{name}': choose one of {', '.join(MODELS)} "
                             "(see `newstopic models`)")
    return MODELS[name]


def model_names() -> list[str]:
    _load_builders()
    return list(MODELS)
