"""Keras model files and training checkpoints, written atomically and checked when read.

A `.keras` file is loaded with Keras' safe_mode, so no code from it runs; a checkpoint is one
directory holding the model with its optimizer state, the best weights, the vectorizer and the
counters, swapped in whole after every epoch and checked as one set when a run resumes.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np

from newstopic.backend import keras_module
from newstopic.errors import ArtifactError
from newstopic.files import atomic_directory, sha256, write_atomic
from newstopic.lazy import callbacks, custom_layers
from newstopic.text import SequenceVectorizer

MODEL_FILE = "model.keras"
VECTORIZER_FILE = "vectorizer.json"
HISTORY_FILE = "history.json"
STATE_FILE = "state.json"
BEST_WEIGHTS_FILE = "best_weights.npz"


def save_keras_model(model, path: Path) -> None:
    """Save `model` without its optimizer state: a copy rebuilt from its config is uncompiled
    (clone_model would keep the state, tripling the file)."""
    keras = keras_module()

    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    copy.save(path)


def load_keras_model(path: Path):
    """A `.keras` file written by newstopic, loaded with safe_mode: no code from the file runs."""
    keras = keras_module()
    custom_layers.imported()  # registers the custom layers for deserialisation
    if not zipfile.is_zipfile(path):  # else Keras says "File not found"
        raise ArtifactError(f"{path} is truncated or not a Keras model file: restore it or "
                            "retrain the model")
    return keras.saving.load_model(path, compile=False, safe_mode=True)


class Checkpoint:
    """A training run's state after its last finished epoch, in a directory of its own: the
    model with its optimizer, the best weights, the vectorizer and the counters, written as
    one set (the directory is swapped in whole) and checked as one when read."""

    def __init__(self, directory, fingerprint: dict):
        self.directory, self.fingerprint = Path(directory), fingerprint

    def save(self, vectorizer: SequenceVectorizer):
        def write(model, state: dict) -> None:
            with atomic_directory(self.directory) as tmp:
                model.save(tmp / MODEL_FILE)  # with the optimizer's state, to continue exactly
                files = [MODEL_FILE, VECTORIZER_FILE]
                if state["best_weights"] is not None:
                    with open(tmp / BEST_WEIGHTS_FILE, "wb") as f:
                        np.savez(f, *state["best_weights"])
                    files.append(BEST_WEIGHTS_FILE)
                write_json(tmp / VECTORIZER_FILE, vectorizer.to_dict())
                kept = {k: v for k, v in state.items() if k != "best_weights"}
                write_json(tmp / STATE_FILE, {
                    "fingerprint": self.fingerprint, **kept,
                    "files": {name: sha256(tmp / name) for name in files}})

        return write

    def load(self) -> dict | None:
        """The saved state, or None when there is no checkpoint to resume from."""
        keras = keras_module()
        custom_layers.imported()  # registers the custom layers for deserialisation
        if not (self.directory / STATE_FILE).is_file():
            return None
        try:
            state = {**callbacks.EarlyStoppingCheckpoint.initial_state(),
                     **read_json(self.directory / STATE_FILE)}
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"the checkpoint in {self.directory} cannot be read ({exc}): "
                                "drop --resume to start over") from None
        saved = state.pop("fingerprint", None)
        if saved != json.loads(json.dumps(self.fingerprint)):
            raise ArtifactError(f"the checkpoint in {self.directory} is from a run with other "
                                "settings or data: drop --resume to start over")
        files = state.pop("files", None)
        if not isinstance(files, dict) or any(
                not (self.directory / name).is_file()
                or sha256(self.directory / name) != digest for name, digest in files.items()):
            raise ArtifactError(f"the checkpoint in {self.directory} is inconsistent (its files "
                                f"are not the set saved after epoch {state['epochs_done']}): "
                                "drop --resume to start over")
        try:
            state["model"] = keras.saving.load_model(self.directory / MODEL_FILE, safe_mode=True)
            state["vectorizer"] = SequenceVectorizer.from_dict(
                read_json(self.directory / VECTORIZER_FILE))
            if BEST_WEIGHTS_FILE in files:
                with np.load(self.directory / BEST_WEIGHTS_FILE, allow_pickle=False) as arrays:
                    state["best_weights"] = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        except Exception as exc:
            raise ArtifactError(f"the checkpoint in {self.directory} cannot be read "
                                f"({type(exc).__name__}): drop --resume to start over") from None
        return state

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data))


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))
