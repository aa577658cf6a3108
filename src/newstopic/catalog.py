"""Every registered model, looked up by name: imports each builder module, which registers its
models in `newstopic.registry` (the ensemble last: its members are the models above)."""

from __future__ import annotations

import newstopic.architectures  # noqa: F401
import newstopic.classical  # noqa: F401
import newstopic.seq2seq  # noqa: F401
import newstopic.ensemble  # noqa: F401
from newstopic.registry import MODELS, SUBJECT_FAMILY, TASKS, ModelSpec, registered

__all__ = ["MODELS", "TASKS", "get_model", "model_names"]


def get_model(name: str) -> ModelSpec:
    """The spec of model `name`, or a one-line error listing the models."""
    return registered(name)


def model_names(task: str | None = None) -> list[str]:
    """Every registered model, or those of one task: classify (a label per text) or subject
    (generate a message's subject line)."""
    if task is None:
        return list(MODELS)
    subject = task == "subject"
    return [name for name, spec in MODELS.items() if (spec.family == SUBJECT_FAMILY) == subject]
