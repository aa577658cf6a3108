"""Model directories: round trips, atomic replacement, and refusal of bad or foreign files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from newstopic import TextClassifier
from newstopic import artifacts
from newstopic.files import sha256
from newstopic.artifacts import MANIFEST, load_model, read_manifest
from newstopic.classical import SKOPS_FILE, ClassicalTextModel
from newstopic.errors import ArtifactError, NewstopicError, NotFittedError
from newstopic.linear import HEAD_FILE, LinearTextModel


@pytest.fixture(scope="module")
def fitted(corpus):
    return {m: TextClassifier(model=m, seed=1).fit(*corpus)
            for m in ("tfidf-nb", "tfidf-svm", "tfidf-lr")}


@pytest.mark.parametrize("model", ["tfidf-nb", "tfidf-svm", "tfidf-lr"])
def test_round_trip_gives_identical_predictions(tmp_path, fitted, corpus, model):
    clf = fitted[model]
    clf.save(tmp_path / "m", config={"note": "x"}, metrics={"test": {"accuracy": 1.0}})
    loaded = TextClassifier.load(tmp_path / "m")
    texts = corpus[0][:30]
    assert np.array_equal(loaded.predict_proba(texts), clf.predict_proba(texts))
    assert list(loaded.classes_) == list(clf.classes_)
    assert loaded.get_params() == clf.get_params()
    manifest, predictor = load_model(tmp_path / "m", full=False)
    assert isinstance(predictor, ClassicalTextModel)
    assert predictor._pipeline is None  # predicting reads the NumPy arrays alone
    assert np.allclose(predictor.predict_proba(texts), clf.predict_proba(texts), atol=1e-6)
    assert manifest["model"] == model and manifest["config"] == {"note": "x"}
    assert manifest["labels"] == ["cars", "cooking", "space"]
    assert {"scikit-learn", "numpy", "python"} <= set(manifest["versions"])
    # the reloaded pipeline is a working scikit-learn object that can be refitted
    loaded.model_.pipeline.fit(*corpus)
    assert loaded.model_.pipeline.score(*corpus) > 0.9


def test_saving_again_replaces_the_model_and_leaves_no_temporary_files(tmp_path, fitted):
    fitted["tfidf-nb"].save(tmp_path / "m")
    fitted["tfidf-svm"].save(tmp_path / "m")
    assert read_manifest(tmp_path / "m")["model"] == "tfidf-svm"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_crash_while_saving_keeps_the_previous_model(tmp_path, fitted, monkeypatch):
    fitted["tfidf-nb"].save(tmp_path / "m")

    def crash(self, directory):
        (directory / HEAD_FILE).write_bytes(b"half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(LinearTextModel, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        fitted["tfidf-svm"].save(tmp_path / "m")
    assert TextClassifier.load(tmp_path / "m").model == "tfidf-nb"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_refuses_to_replace_a_directory_that_is_not_a_model(tmp_path, fitted):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("precious")
    with pytest.raises(ArtifactError, match="exists and is not a newstopic model"):
        fitted["tfidf-nb"].save(tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "precious"


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet") as raised:
        TextClassifier().save(tmp_path / "m")
    # as scikit-learn's NotFittedError: both, and the CLI's one-line kind
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, AttributeError)
    assert isinstance(raised.value, NewstopicError)


@pytest.fixture()
def saved(tmp_path, fitted):
    return fitted["tfidf-svm"].save(tmp_path / "m")


def _rewrite_manifest(path: Path, sign: bool = True, **changes):
    """Change the manifest; `sign` recomputes its digest, as a deliberate forger would, so that
    the checks behind the digest are tested too."""
    manifest = json.loads((path / MANIFEST).read_text())
    manifest.update(changes)
    if sign:
        manifest[artifacts.DIGEST] = artifacts.manifest_digest(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))


def test_a_manifest_changed_after_saving_is_refused(saved):
    labels = json.loads((saved / MANIFEST).read_text())["labels"]
    _rewrite_manifest(saved, sign=False, labels=labels[::-1])
    with pytest.raises(ArtifactError, match="manifest.json is corrupted or was modified"):
        load_model(saved, full=False)


def test_a_manifest_from_before_the_digest_loads_with_a_warning(saved, fitted):
    manifest = json.loads((saved / MANIFEST).read_text())
    del manifest[artifacts.DIGEST]
    (saved / MANIFEST).write_text(json.dumps(manifest))
    with pytest.warns(artifacts.ArtifactWarning, match="not protected by a checksum"):
        _, predictor = load_model(saved, full=False)
    texts = ["the engine and the brakes", "a recipe with garlic"]
    assert np.array_equal(predictor.predict_proba(texts), fitted["tfidf-svm"].predict_proba(texts))


def test_a_planted_token_pattern_is_never_compiled(saved):
    settings = json.loads((saved / MANIFEST).read_text())["predictor"]
    _rewrite_manifest(saved, predictor={**settings, "token_pattern": "(?:a+)+b"})
    with pytest.raises(ArtifactError, match="token pattern '\\(\\?:a\\+\\)\\+b' is not one "
                                            "newstopic writes"):
        load_model(saved, full=False)


def test_tampered_or_truncated_files_are_refused(saved):
    head = saved / HEAD_FILE
    head.write_bytes(head.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="head.npz is corrupted or was modified"):
        load_model(saved, full=False)


def test_missing_model_file(saved):
    (saved / SKOPS_FILE).unlink()
    with pytest.raises(ArtifactError, match="incomplete: model.skops is missing"):
        TextClassifier.load(saved)


@pytest.mark.parametrize("change, message", [
    ({"format_version": 99}, "model format 99, newer than this newstopic reads"),
    ({"format_version": "1"}, "invalid format_version .'1', not a whole number"),
    ({"format": "something-else"}, "is not a newstopic model"),
    ({"files": {}}, "lists no model files"),
    ({"files": {"../../etc/passwd": "0"}}, "names a file outside the model directory"),
    ({"files": {"/etc/passwd": "0"}}, "names a file outside the model directory"),
    ({"files": {"model.skops": "0"}}, "incomplete: vocabulary.json is missing"),
])
def test_incompatible_manifests_are_refused(saved, change, message):
    _rewrite_manifest(saved, **change)
    with pytest.raises(ArtifactError, match=message):
        load_model(saved, full=False)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(ArtifactError, match="model directory not found"):
        load_model(tmp_path / "nothing", full=False)
    with pytest.raises(ArtifactError, match="is not a newstopic model .no manifest.json"):
        load_model(tmp_path, full=False)
    (tmp_path / MANIFEST).write_text("{ not json")
    with pytest.raises(ArtifactError, match="manifest.json is corrupted"):
        load_model(tmp_path, full=False)


def test_a_skops_file_with_foreign_types_is_refused_without_running_it(saved, tmp_path):
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    marker = tmp_path / "ran"
    skops.io.dump(FunctionTransformer(func=os.system, kw_args={"command": f"touch {marker}"}),
                  saved / SKOPS_FILE)
    _rewrite_manifest(saved, files={**json.loads((saved / MANIFEST).read_text())["files"],
                                    SKOPS_FILE: sha256(saved / SKOPS_FILE)})
    loaded = TextClassifier.load(saved)  # predicts with the arrays; the pipeline is read when used
    with pytest.raises(ArtifactError, match="holds types newstopic does not trust .*posix.system"):
        loaded.model_.pipeline
    assert not marker.exists()


def test_a_corrupt_file_with_a_matching_checksum_is_reported(saved):
    (saved / HEAD_FILE).write_bytes(b"garbage")
    _rewrite_manifest(saved, files={**json.loads((saved / MANIFEST).read_text())["files"],
                                    HEAD_FILE: sha256(saved / HEAD_FILE)})
    with pytest.raises(ArtifactError, match="cannot be read by this newstopic"):
        load_model(saved, full=False)
