"""Model directories: written atomically, checked on load, never running code from the files.

A model directory holds ``manifest.json`` (format version, model name, labels, hyperparameters,
training config, metrics, library versions and a SHA-256 of every other file) and the files its
predictor (`newstopic.predictor.Predictor`) writes. Loading looks the manifest's model name up
in the registry: that model's predictor class reads the files back.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import numpy as np

from newstopic.environment import machine, versions
from newstopic.errors import ArtifactError, NewstopicError
from newstopic.files import atomic_directory, check_file, sha256
from newstopic.registry import ModelSpec, registered

FORMAT = "newstopic-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class ArtifactWarning(UserWarning):
    """A model directory loads, but without a protection newer versions give it."""


# --- writing ------------------------------------------------------------------------------


def save_model(model, spec: ModelSpec, path, *, params: dict, config=None,
               metrics=None) -> Path:
    """Write fitted predictor `model` of registered model `spec`, trained with `params` (the
    seed among them), to directory `path`, replacing it only when complete."""
    path = Path(path)
    check_destination(path)
    with atomic_directory(path) as tmp:
        settings = model.save(tmp)
        # the fresh directory holds just what the predictor wrote
        files = [f.relative_to(tmp).as_posix() for f in sorted(tmp.rglob("*")) if f.is_file()]
        write_manifest(tmp, spec, files, labels=[str(c) for c in model.classes_],
                       label_type=LABEL_TYPES.get(np.asarray(model.classes_).dtype.kind, "str"),
                       params=params, parameters=model.n_parameters, settings=settings,
                       config=config, metrics=metrics)
    return path


# The labels are written as text; their type brings a Python caller's numbers back on loading.
LABEL_TYPES = {"b": "bool", "i": "int", "u": "int", "f": "float"}  # NumPy kind -> type


def write_manifest(directory: Path, spec, files: list[str], *, labels: list[str], params: dict,
                   parameters: int, settings: dict, config=None, metrics=None,
                   label_type: str) -> None:
    """`manifest.json` of a model directory whose other `files` are written."""
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model": spec.name, "family": spec.family, "description": spec.description,
        "labels": labels, "label_type": label_type, "params": params, "parameters": parameters,
        "predictor": settings, "config": config or {}, "metrics": metrics or {},
        "versions": versions(), "machine": machine(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": {name: sha256(directory / name) for name in files},
    }
    manifest = json.loads(json.dumps(manifest, default=str))  # as it will be read back
    manifest[DIGEST] = manifest_digest(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


DIGEST = "manifest_sha256"


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's canonical JSON, less this digest itself: the labels and
    settings it holds change predictions, so they are checked like the files."""
    content = {k: v for k, v in manifest.items() if k != DIGEST}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode("utf-8")).hexdigest()


def check_destination(path: Path) -> None:
    """Refuse to write a model over anything but an empty directory or a model directory."""
    path = Path(path)
    if path.exists() and not (path / MANIFEST).is_file() and (
            not path.is_dir() or any(path.iterdir())):
        raise ArtifactError(f"{path} exists and is not a newstopic model: choose another --out "
                            "(newstopic only replaces its own model directories)")


# --- reading ------------------------------------------------------------------------------


def read_manifest(path, checked: tuple[str, ...] | None = None) -> dict:
    """The checked manifest of model directory `path`: right format, intact files (all of them,
    or only those named in `checked`)."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"model directory not found: {path}: train one with "
                            "`newstopic train --model NAME --out DIR`")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path} is not a newstopic model (no {MANIFEST}): train one with "
                            "`newstopic train`") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path / MANIFEST} is corrupted ({exc}): retrain the model") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not a newstopic model (unknown manifest format): "
                            "train one with `newstopic train`")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ArtifactError(f"{path / MANIFEST} has an invalid format_version ({version!r}, not "
                            "a whole number): it was not written by newstopic; retrain the model")
    if version > FORMAT_VERSION:
        raise ArtifactError(f"{path} was written in model format {version}, newer than this "
                            f"newstopic reads ({FORMAT_VERSION}): upgrade newstopic")
    if DIGEST not in manifest:
        warnings.warn(f"{path / MANIFEST} is not protected by a checksum (written before "
                      "newstopic checked manifests): save the model again to protect it",
                      ArtifactWarning, stacklevel=3)
    elif manifest[DIGEST] != manifest_digest(manifest):
        raise ArtifactError(f"{path / MANIFEST} is corrupted or was modified (checksum "
                            "mismatch): restore it or retrain the model")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{path / MANIFEST} lists no model files: retrain the model")
    # plain relative names only; an ensemble's member directories hold the others
    unsafe = [name for name in files if not isinstance(name, str) or not name
              or PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts
              or "\\" in name]
    if unsafe:
        raise ArtifactError(f"{path / MANIFEST} names a file outside the model directory "
                            f"({unsafe[0]}): it was not written by newstopic; retrain the model")
    check_files(path, manifest, checked)
    return manifest


def check_files(path: Path, manifest: dict, checked: tuple[str, ...] | None = None) -> None:
    """Refuse a model directory whose files (all, or those named) are missing or altered."""
    listed = manifest["files"]
    for name in listed if checked is None else checked:
        check_file(path, name, listed.get(name))


def model_manifest(path, task: str | None = None) -> tuple[dict, ModelSpec]:
    """(checked manifest, spec) of model directory `path`, refused in one line if its model is
    of another `task`; no model file is read."""
    path = Path(path)
    manifest = read_manifest(path, checked=())
    spec = _spec(path, manifest)
    if task is not None and spec.task != task:
        raise ArtifactError(f"{path} is a subject-line model, not a classifier: use "
                            f"`newstopic summarize --model {path}`" if task == "classify" else
                            f"{path} is a classifier, not a subject-line model: use "
                            f"`newstopic predict --model {path}`, or train one with "
                            "`newstopic train --task subject`")
    return manifest, spec


def load_model(path, task: str | None = None, full: bool = True):
    """(checked manifest, predictor) of model directory `path`, the predictor of the model its
    manifest names. A model of another `task` is refused before it is read. Without `full`,
    only the files prediction reads are checked (for classical models, the NumPy arrays)."""
    path = Path(path)
    manifest, spec = model_manifest(path, task)
    check_files(path, manifest, None if full else spec.predictor.prediction_files)
    try:
        return manifest, spec.predictor.load(path, manifest)
    except ArtifactError:
        raise
    except Exception as exc:  # a file that passed its checksum yet does not parse
        raise ArtifactError(f"{path} cannot be read by this newstopic ({type(exc).__name__}: "
                            f"{exc}): retrain the model") from None


def typed_labels(path, manifest: dict) -> np.ndarray:
    """The manifest's labels as the type they were trained with (text, whole numbers, numbers
    or booleans); a manifest from before label types holds text."""
    labels, kind = manifest["labels"], manifest.get("label_type", "str")
    convert = {"str": str, "int": int, "float": float,
               "bool": {"True": True, "False": False}.__getitem__}.get(kind)
    try:
        return np.asarray([convert(label) for label in labels])
    except (TypeError, ValueError, KeyError):
        raise ArtifactError(f"{Path(path) / MANIFEST} holds labels that are not of its "
                            f"label_type ({kind!r}): it was not written by newstopic; retrain "
                            "the model") from None


def _spec(path: Path, manifest: dict) -> ModelSpec:
    """The registered model the manifest names, which must save and load."""
    try:
        spec = registered(str(manifest.get("model")))
    except NewstopicError:
        spec = None
    if spec is None or spec.predictor is None:
        raise ArtifactError(f"{path} holds model {manifest.get('model')!r}, which this "
                            "newstopic cannot load: upgrade newstopic or retrain the model")
    return spec
