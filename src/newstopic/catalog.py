"""Every registered model: imports each builder module, which registers its models in
`newstopic.registry` (the ensemble last: its members are the models above). Lookups by name go
through `newstopic.registry`, which imports this module first."""

from __future__ import annotations

import newstopic.architectures  # noqa: F401
import newstopic.classical  # noqa: F401
import newstopic.seq2seq  # noqa: F401
import newstopic.ensemble  # noqa: F401
from newstopic.registry import MODELS, TASKS, model_names, registered

get_model = registered

__all__ = ["MODELS", "TASKS", "get_model", "model_names"]
