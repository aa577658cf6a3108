"""Model directories: written atomically, checked on load, never running code from the files.

A model directory holds ``manifest.json`` (format version, model name, labels, hyperparameters,
training config, metrics, library versions and a SHA-256 of every other file) and the model's own
files. Classical models keep their scikit-learn pipeline in ``model.skops``, loaded with an
explicit list of trusted types, and their weights as plain arrays (``head.npz`` with
``allow_pickle=False``, ``vocabulary.json``) that predict with NumPy alone.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from newstopic.environment import machine, versions
from newstopic.errors import ArtifactError
from newstopic.files import atomic_directory, sha256
from newstopic.linear import HEAD_FILE, VOCABULARY_FILE, LinearTextModel, weight_location
from newstopic.registry import SUBJECT_FAMILY

FORMAT = "newstopic-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SKOPS_FILE = "model.skops"
# Every type a classical pipeline holds beyond skops' defaults; anything else in a file is refused.
TRUSTED_TYPES = [
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.naive_bayes.ComplementNB",
    "sklearn.pipeline.Pipeline",
    "sklearn.svm._classes.LinearSVC",
]


class ArtifactWarning(UserWarning):
    """A model directory loads, but without a protection newer versions give it."""


# --- writing ------------------------------------------------------------------------------


def save_classifier(classifier, path, *, config=None, metrics=None) -> Path:
    """Write a fitted `TextClassifier` to directory `path`, replacing it only when complete."""
    path = Path(path)
    spec = classifier.spec
    check_destination(path)
    with atomic_directory(path) as tmp:
        if spec.family == "classical":
            predictor = LinearTextModel.from_pipeline(classifier.model_)
            files = predictor.save(tmp) + _dump_pipeline(classifier.model_, tmp)
            settings, parameters = predictor.settings(), predictor.n_parameters
        else:
            files, settings = classifier.model_.save(tmp)
            parameters = classifier.model_.n_parameters
        write_manifest(tmp, spec, files, labels=[str(c) for c in classifier.classes_],
                       params={"seed": classifier.seed, **classifier.params},
                       parameters=parameters, settings=settings, config=config,
                       metrics=metrics)
    return path


def save_subject_model(model, spec, path, *, seed: int, params: dict, config=None,
                       metrics=None) -> Path:
    """Write a fitted `SubjectModel` to directory `path`, replacing it only when complete."""
    path = Path(path)
    check_destination(path)
    with atomic_directory(path) as tmp:
        files, settings = model.save(tmp)
        write_manifest(tmp, spec, files, labels=[], params={"seed": seed, **params},
                       parameters=model.n_parameters, settings=settings, config=config,
                       metrics=metrics)
    return path


def write_manifest(directory: Path, spec, files: list[str], *, labels: list[str], params: dict,
                   parameters: int, settings: dict, config=None, metrics=None) -> None:
    """`manifest.json` of a model directory whose other `files` are written."""
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model": spec.name, "family": spec.family, "description": spec.description,
        "labels": labels, "params": params, "parameters": parameters,
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


def _dump_pipeline(pipeline, directory: Path) -> list[str]:
    import zipfile

    import skops.io

    # The vocabulary and the weight matrix are stored once, beside the pipeline, in the files the
    # NumPy predictor reads (skops would also write each vocabulary entry as a node of its own,
    # slow to write and to read); loading puts them back.
    detached = [(pipeline.steps[0][1], "vocabulary_", {}), (*weight_location(pipeline), None)]
    kept = [getattr(owner, attribute) for owner, attribute, _ in detached]
    try:
        for owner, attribute, placeholder in detached:
            setattr(owner, attribute, placeholder)
        skops.io.dump(pipeline, directory / SKOPS_FILE, compression=zipfile.ZIP_DEFLATED,
                      compresslevel=1)
    finally:
        for (owner, attribute, _), value in zip(detached, kept):
            setattr(owner, attribute, value)
    return [SKOPS_FILE]


def check_destination(path: Path) -> None:
    """Refuse to write a model over anything but an empty directory or a model directory."""
    path = Path(path)
    if path.exists() and not (path / MANIFEST).is_file() and (
            not path.is_dir() or any(path.iterdir())):
        raise ArtifactError(f"{path} exists and is not a newstopic model: choose another --out "
                            "(newstopic only replaces its own model directories)")


# --- reading ------------------------------------------------------------------------------


# The files `newstopic predict` reads, where that is not all of them.
PREDICTOR_FILES = {"classical": (VOCABULARY_FILE, HEAD_FILE)}


def read_manifest(path, predictor_only: bool = False) -> dict:
    """The checked manifest of model directory `path`: right format, intact files (all of them,
    or only those the predictor reads)."""
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
    only = PREDICTOR_FILES.get(manifest.get("family")) if predictor_only else None
    for name in files if only is None else only:
        file = path / name
        if name not in files or not file.is_file():
            raise ArtifactError(f"{path} is incomplete: {name} is missing; retrain the model")
        if sha256(file) != files[name]:
            raise ArtifactError(f"{file} is corrupted or was modified (checksum mismatch): "
                                "restore it or retrain the model")
    return manifest


def load_predictor(path, full: bool = False, subject: bool = False):
    """(manifest, predictor) for prediction only: for classical models, NumPy arrays alone. A
    subject-line model is refused unless `subject`, then it comes back as a `SubjectModel`."""
    path = Path(path)
    manifest = read_manifest(path, predictor_only=not full)
    if manifest.get("family") == SUBJECT_FAMILY and not subject:
        raise ArtifactError(f"{path} is a subject-line model, not a classifier: use "
                            f"`newstopic summarize --model {path}`")
    return manifest, _predictor(path, manifest)


def _predictor(path: Path, manifest: dict):
    """The model directory's predictor, by its family."""
    try:
        if manifest["family"] == "classical":
            return LinearTextModel.load(path, manifest["predictor"], manifest["labels"])
        if manifest["family"] == SUBJECT_FAMILY:
            from newstopic.seq2seq import SubjectModel

            return SubjectModel.load(path, manifest)
        if "members" in manifest["predictor"]:
            from newstopic.ensemble import EnsembleTextModel

            return EnsembleTextModel.load(path, manifest)
        from newstopic.neural import load_neural

        return load_neural(path, manifest)
    except ArtifactError:
        raise
    except Exception as exc:  # a file that passed its checksum yet does not parse
        raise ArtifactError(f"{path} cannot be read by this newstopic ({type(exc).__name__}: "
                            f"{exc}): retrain the model") from None


def load_subject_model(path):
    """A saved subject-line model (`SubjectModel`), with its checked manifest as `manifest_`."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest.get("family") != SUBJECT_FAMILY:
        raise ArtifactError(f"{path} is a classifier, not a subject-line model: use "
                            f"`newstopic predict --model {path}`, or train one with "
                            "`newstopic train --task subject`")
    model = _predictor(path, manifest)
    model.manifest_ = manifest
    return model


def load_classifier(path):
    """The full `TextClassifier`; classical pipelines come back from skops, trusted types only."""
    from newstopic.estimator import TextClassifier

    path = Path(path)
    manifest, predictor = load_predictor(path, full=True)
    params = dict(manifest.get("params", {}))
    classifier = TextClassifier(model=manifest["model"], seed=params.pop("seed", 0), **params)
    if manifest["family"] == "classical":
        classifier.model_ = _load_pipeline(path / SKOPS_FILE, predictor)
    else:
        classifier.model_ = predictor
    classifier.classes_ = predictor.classes_
    classifier.manifest_ = manifest
    return classifier


def _load_pipeline(file: Path, predictor: LinearTextModel):
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=file)
    except Exception as exc:
        raise ArtifactError(f"{file} is corrupted ({type(exc).__name__}): retrain the model") from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ArtifactError(f"{file} holds types newstopic does not trust ({', '.join(refused)}): "
                            "it was not written by newstopic; retrain the model")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # version notes: the manifest records versions
            pipeline = skops.io.load(file, trusted=TRUSTED_TYPES)
    except Exception as exc:
        raise ArtifactError(f"{file} cannot be loaded ({type(exc).__name__}: {exc}): it may come "
                            "from another scikit-learn version; retrain the model") from None
    pipeline.steps[0][1].vocabulary_ = dict(predictor.index)
    setattr(*weight_location(pipeline), predictor.weights)
    return pipeline
