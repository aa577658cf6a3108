"""What every hyperparameter may be: one table, read by the validation of `ModelSpec.make`, by
`newstopic models NAME` and by the search spaces of `newstopic tune`.

A name means the same in every model that has it (`units` is a layer's width everywhere), so
the table is keyed by name; a model that needs another range registers its own entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

from newstopic.errors import NewstopicError


@dataclass(frozen=True)
class Interval:
    """An int or a float between `low` and `high`; `closed` says which ends are allowed.
    `log` marks a parameter searched on a log scale."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # both, left, right or neither
    log: bool = False
    whole: bool = True  # for a float: whether an int is taken too (not where ints mean counts)

    def accepts(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, Integral if self.kind is int
                                                     else Real):
            return False
        if self.kind is float and not self.whole and isinstance(value, Integral):
            return False
        if not math.isfinite(value):
            return False
        low_ok = self.low is None or (value >= self.low if self.closed in ("both", "left")
                                      else value > self.low)
        high_ok = self.high is None or (value <= self.high if self.closed in ("both", "right")
                                        else value < self.high)
        return low_ok and high_ok

    def describe(self) -> str:
        kind = ("an integer" if self.kind is int else "a number" if self.whole
            else "a fraction")
        if self.low is None and self.high is None:
            return kind
        low, high = _number(self.low), _number(self.high)
        if self.high is None:
            return f"{kind} {'>=' if self.closed in ('both', 'left') else '>'} {low}"
        if self.low is None:
            return f"{kind} {'<=' if self.closed in ('both', 'right') else '<'} {high}"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        return f"{kind} in {left}{low}, {high}{right}"


def _number(value) -> str | None:
    if value is None:
        return None
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple

    def accepts(self, value) -> bool:
        return any(value is v or (type(value) is type(v) and value == v) for v in self.values)

    def describe(self) -> str:
        return "one of " + ", ".join("unset" if v is None else str(v).lower()
                                     if isinstance(v, bool) else str(v) for v in self.values)


@dataclass(frozen=True)
class Text:
    """A non-empty string, checked further by the model that reads it."""

    def accepts(self, value) -> bool:
        return isinstance(value, str) and bool(value.strip())

    def describe(self) -> str:
        return "a non-empty text"


@dataclass(frozen=True)
class AnyOf:
    """Any one of several constraints; `None` among them allows leaving the parameter unset."""

    choices: tuple

    def accepts(self, value) -> bool:
        return any(value is None if c is None else c.accepts(value) for c in self.choices)

    def describe(self) -> str:
        return " or ".join("unset" if c is None else c.describe() for c in self.choices)


def optional(constraint):
    return AnyOf((constraint, None))


PROBABILITY_BELOW_ONE = Interval(float, 0.0, 1.0, closed="left")
WIDTH = Interval(int, 1, 8192, log=True)
FLAG = Options((True, False))

CONSTRAINTS = {
    # TF-IDF features (classical models)
    "ngram_max": Interval(int, 1, 5),
    "min_df": AnyOf((Interval(int, 1), Interval(float, 0.0, 1.0, whole=False))),
    "max_df": AnyOf((Interval(int, 1), Interval(float, 0.0, 1.0, closed="right", whole=False))),
    "max_features": optional(Interval(int, 1)),
    "sublinear_tf": FLAG,
    # linear classifiers
    "alpha": Interval(float, 0.0, None, closed="neither", log=True),
    "C": Interval(float, 0.0, None, closed="neither", log=True),
    "max_iter": Interval(int, 1, 100_000),
    "rounds": Interval(int, 1, 100),  # of self-training on unlabelled texts
    # neural training
    "max_words": Interval(int, 3, 10_000_000),
    "max_len": Interval(int, 1, 100_000),
    "truncate": Options(("head", "tail", "head+tail")),
    "epochs": Interval(int, 1, 10_000),
    "batch_size": optional(Interval(int, 1, 65_536)),
    "learning_rate": Interval(float, 0.0, 1.0, closed="right", log=True),
    "class_weight": Options((None, "balanced")),
    "patience": optional(Interval(int, 0, 10_000)),
    "validation_size": Interval(float, 0.0, 1.0, closed="neither"),
    "bucket": FLAG,
    "word2vec": FLAG,
    "ema_momentum": AnyOf((Options(("auto",)), PROBABILITY_BELOW_ONE, None)),
    # architectures
    "embed_dim": WIDTH,
    "units": WIDTH,
    "decoder_units": WIDTH,
    "attention_units": WIDTH,
    "ff_dim": WIDTH,
    "heads": Interval(int, 1, 64),
    "blocks": Interval(int, 1, 64),
    "dropout": PROBABILITY_BELOW_ONE,
    "embed_dropout": PROBABILITY_BELOW_ONE,
    "bag_dropout": PROBABILITY_BELOW_ONE,
    "branch_dropout": PROBABILITY_BELOW_ONE,
    "bag_scale": Interval(float, 0.0, 1000.0, closed="right", log=True),
    "pooling": Options(("last", "max", "attention")),
    # subject models
    "target_words": Interval(int, 5, 10_000_000),
    "max_target": Interval(int, 1, 1000),
    "length_penalty": Interval(float, 0.0, 10.0),
    "copy": FLAG,
    # ensemble
    "members": Text(),
    "classical_weight": optional(Interval(float, 0.0, 1.0)),
    "teachers": Text(),
}


def constraint_of(name: str, own: dict | None = None):
    """The constraint on parameter `name`: the model's own entry, else the table's."""
    found = (own or {}).get(name) or CONSTRAINTS.get(name)
    if found is None:
        raise KeyError(f"parameter '{name}' has no constraint: declare it in CONSTRAINTS")
    return found


def check_value(model: str, name: str, value, own: dict | None = None) -> None:
    """A one-line error naming the parameter, the value and what is allowed, unless parameter
    `name` of `model` accepts `value`."""
    constraint = constraint_of(name, own)
    if not constraint.accepts(value):
        shown = f"'{value}'" if isinstance(value, str) else repr(value)
        raise NewstopicError(f"model '{model}': {name}={shown} is not allowed: {name} must be "
                             f"{constraint.describe()}")


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter a search explores: a number of `kind` from `low` to `high` (on a log
    scale if `log`), or, with `kind` None, one of `choices`."""

    name: str
    kind: type | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()


def dimension(model: str, name: str, bounds: tuple, own: dict | None = None) -> Dimension:
    """What to search for parameter `name` of `model`: `bounds` is (low, high) for a number,
    typed and scaled by the parameter's constraint, or the values to choose from for a
    parameter with fixed options. A range the constraint does not allow is a bug of the
    model's registration, refused when it registers."""
    constraint = constraint_of(name, own)
    alternatives = constraint.choices if isinstance(constraint, AnyOf) else (constraint,)
    if any(isinstance(c, Options) for c in alternatives):
        if bounds and all(constraint.accepts(v) for v in bounds):
            return Dimension(name, choices=tuple(bounds))
    elif len(bounds) == 2:
        for interval in (c for c in alternatives if isinstance(c, Interval)):
            if all(isinstance(v, interval.kind) and not isinstance(v, bool) and
                   interval.accepts(v) for v in bounds) and bounds[0] < bounds[1]:
                return Dimension(name, interval.kind, bounds[0], bounds[1], interval.log)
    raise ValueError(f"model '{model}': search range {bounds!r} of {name} is not "
                     f"{constraint.describe()}")
