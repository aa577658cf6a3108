"""Optional capabilities, each an extra of the package: a missing one is named in one line."""

from __future__ import annotations

import importlib

from newstopic.errors import NewstopicError


def require(module: str, extra: str, purpose: str):
    """Module `module`, installed by extra `extra`; else a one-line error saying that `purpose`
    needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise NewstopicError(f"{purpose} needs {module.split('.')[0]}, which is not installed: "
                             f"pip install 'newstopic[{extra}]'") from None
