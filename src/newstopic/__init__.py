"""newstopic: news-topic text classification, classical and neural, on one command."""

from __future__ import annotations

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise on a user's terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from newstopic import lazy  # noqa: E402
from newstopic.backend import use_backend  # noqa: E402
from newstopic.data import load_20newsgroups, load_texts  # noqa: E402

__all__ = ["TextClassifier", "load_20newsgroups", "load_texts", "use_backend"]


def __getattr__(name):
    # On first use, so that `import newstopic` (and the command line) does not import
    # scikit-learn, which the estimator subclasses.
    if name == "TextClassifier":
        return lazy.estimator.TextClassifier
    raise AttributeError(f"module 'newstopic' has no attribute {name!r}")
