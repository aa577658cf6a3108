"""newstopic: news-topic text classification, classical and neural, on one command."""

from __future__ import annotations

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise on a user's terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
__all__ = ["TextClassifier", "load_20newsgroups", "load_texts", "use_backend"]


def __getattr__(name):
    # Lazy, so that `import newstopic` (and the CLI's fast paths) do not import scikit-learn.
    if name == "TextClassifier":
        from newstopic.estimator import TextClassifier

        return TextClassifier
    if name == "use_backend":
        from newstopic.backend import use_backend

        return use_backend
    if name in ("load_20newsgroups", "load_texts"):
        from newstopic import data

        return getattr(data, name)
    raise AttributeError(f"module 'newstopic' has no attribute {name!r}")
