"""Every model newstopic can train, by name: classical pipelines and neural architectures alike.

A leaf: the builder modules import it and register their models; `newstopic.catalog` imports
every builder module. A lookup by name imports the catalog first (through `newstopic.lazy`, the
one way up), so that every model is known whichever module asks."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

from newstopic import lazy
from newstopic.data import check_seed
from newstopic.errors import NewstopicError
from newstopic.params import Dimension, check_value, constraint_of, dimension


SUBJECT_FAMILY = "subject"  # the family of subject-line generators; the others classify


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # "classical" or "neural" (classifiers), or "subject" (subject generators)
    description: str
    build: Callable  # a scikit-learn pipeline builder, or a Keras architecture builder
    predictor: type | None  # its `Predictor` class, which saves and loads it; None: a baseline
    shared: Callable | None = None  # takes the parameters `build` does not: TF-IDF or training
    defaults: dict = field(default_factory=dict)  # this model's own defaults for `shared`
    constraints: dict = field(default_factory=dict)  # this model's own entries of CONSTRAINTS
    search: dict = field(default_factory=dict)  # name -> range to tune (`params.dimension`)
    hybrid: bool = False  # a neural model with a TF-IDF linear part: reported as its own family
    transductive: bool = False  # also fits on the unlabelled test texts: never run by default

    @property
    def task(self) -> str:
        """"subject" for a subject-line generator, else "classify"."""
        return "subject" if self.family == SUBJECT_FAMILY else "classify"

    def parameters(self) -> dict:
        """The hyperparameters a user may set, with their defaults (`seed` is set apart)."""
        found = {}
        for function in filter(None, (self.build, self.shared)):
            found.update((p.name, p.default)
                         for p in inspect.signature(function).parameters.values()
                         if p.default is not inspect.Parameter.empty and p.name != "seed")
        return {**found, **self.defaults}

    def capped_epochs(self, cap: int) -> int:
        """At most `cap` epochs, never more than this model's own default."""
        return min(cap, self.parameters().get("epochs") or cap)

    def constraint(self, name: str):
        """What parameter `name` of this model may be (`newstopic.params`)."""
        return constraint_of(name, self.constraints)

    def check(self, params: dict) -> None:
        """Refuse, in one line, a parameter this model does not have or a value out of its
        range; before any work."""
        unknown = sorted(set(params) - set(self.parameters()))
        if unknown:
            raise NewstopicError(f"model '{self.name}' has no parameter '{unknown[0]}': its "
                                 f"parameters are {', '.join(self.parameters())}")
        for name, value in params.items():
            check_value(self.name, name, value, self.constraints)

    @property
    def tunable(self) -> bool:
        return bool(self.search)

    def search_space(self) -> list[Dimension]:
        """The hyperparameters `newstopic tune` searches, with their ranges."""
        unknown = sorted(set(self.search) - set(self.parameters()))
        if unknown:
            raise ValueError(f"model '{self.name}' searches '{unknown[0]}', which it does not "
                             "have")
        return [dimension(self.name, name, bounds, self.constraints)
                for name, bounds in self.search.items()]

    def make(self, seed: int, params: dict):
        """An unfitted model with these hyperparameters."""
        check_seed(seed)
        self.check(params)
        if self.family == "classical":  # a pipeline, to fit and then predict with NumPy
            return self.predictor(self.name, self.build(seed=seed, **params))
        if self.shared is None:
            return self.build(seed=seed, **params)
        return self.shared(self.name, seed=seed, **{**self.defaults, **params})


MODELS: dict[str, ModelSpec] = {}


def register(name: str, family: str, description: str, predictor: type | None,
             shared: Callable | None = None, defaults: dict | None = None,
             constraints: dict | None = None, search: dict | None = None,
             hybrid: bool = False, transductive: bool = False):
    """Decorator: make a builder function available as model `name`, saved and loaded by its
    `predictor` class; `search` declares the ranges `newstopic tune` explores (none: the model
    is not tuned); `hybrid` marks a neural model that also reads a TF-IDF bag of words;
    `transductive` a model that also fits on the unlabelled test texts."""

    def add(build: Callable) -> Callable:
        spec = ModelSpec(name, family, description, build, predictor, shared, defaults or {},
                         constraints or {}, search or {}, hybrid, transductive)
        spec.search_space()  # a range the parameter table refuses fails at import
        MODELS[name] = spec
        return build

    return add


def registered(name: str) -> ModelSpec:
    """The spec of model `name`, or a one-line error listing the models."""
    if name not in MODELS:
        lazy.catalog.imported()  # every builder module registers its models
    if name not in MODELS:
        raise NewstopicError(f"unknown model '{name}': choose one of {', '.join(model_names())} "
                             "(see `newstopic models`)")
    return MODELS[name]


def fits_unlabelled(spec: ModelSpec, model=None) -> bool:
    """Whether a model of `spec` (with the members of `model`, if it has any) also fits on
    unlabelled texts: it is transductive, or one of its members is."""
    return spec.transductive or any(registered(member).transductive
                                    for member in getattr(model, "members", ()))


def model_names(task: str | None = None) -> list[str]:
    """Every registered model, or those of one task: classify (a label per text) or subject
    (generate a message's subject line)."""
    lazy.catalog.imported()  # every builder module registers its models
    # classifiers first, each task in the order of registering, whichever module loaded first
    ordered = sorted(MODELS.items(), key=lambda item: item[1].task != "classify")
    return [name for name, spec in ordered if task in (None, spec.task)]


def default_models(task: str) -> list[str]:
    """The models a benchmark of `task` runs unless told which: all but the transductive ones,
    which see the test texts."""
    return [name for name in model_names(task) if not MODELS[name].transductive]


TASKS = ("classify", "subject")
