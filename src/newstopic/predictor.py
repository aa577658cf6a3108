"""The predictor contract: what every kind of model newstopic trains, saves and loads provides.

Each registered model names the class that implements it (`ModelSpec.predictor`), so a model
directory is loaded by one lookup of the model name its manifest records.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

# What a predictor can do beyond `predict_proba`; the CLI verbs and the server ask for these.
CLASSIFY = "classify"  # labels texts: predict_proba over `classes_`
EXPLAIN = "explain"  # scores the words of a text (linear shares, attention or occlusion)
ATTENTION = "attention"  # `attention(texts)`: the weight it gave each token
SUMMARIZE = "summarize"  # `summarize(texts, beam)`: generates a subject line


@runtime_checkable
class Predictor(Protocol):
    """A fitted model. `classes_` is empty for a model that does not classify."""

    classes_: np.ndarray
    capabilities: frozenset[str]
    # The files `predict` needs, when a quick load reads fewer than all (None: all of them).
    prediction_files: ClassVar[tuple[str, ...] | None]

    @property
    def n_parameters(self) -> int:
        """Learned numbers: weights, biases, calibration."""

    def predict_proba(self, texts) -> np.ndarray:
        """One row of class probabilities per text, columns in the order of `classes_`."""

    def save(self, directory: Path) -> dict:
        """Write the model's files into the fresh `directory`; return the settings that
        `load` needs back (the manifest keeps them, under a checksum)."""

    @classmethod
    def load(cls, directory: Path, manifest: dict) -> "Predictor":
        """The model saved in `directory`, whose checked `manifest` holds its settings."""


def held_out_proba(predictor) -> np.ndarray | None:
    """The class probabilities of the validation texts given to `fit`, scored out of fold, of a
    predictor that fitted weights on those texts (bigru-tfidf's branch weights); None for the
    others, whose validation texts are scored by predicting them."""
    return getattr(predictor, "validation_proba_", None)
