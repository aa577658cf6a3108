"""`ensemble`: the weighted mean of the class probabilities of several classifiers (sequence
models and a TF-IDF linear model), each trained as it is on its own (same seed, same validation
split, its own early stopping).

On small training sets one model's test accuracy moves with the seed, and the models err on
different documents, so their mean is steadier and better (docs/models.md). In a benchmark the
members trained for their own rows are reused, so the ensemble adds its prediction time only.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np

import newstopic.architectures  # noqa: F401  (the members register on import)
import newstopic.seq2seq  # noqa: F401
from newstopic.artifacts import MANIFEST, load_model, save_model
from newstopic.classical import SelfTrainedTextModel, tfidf, tfidf_transductive
from newstopic.errors import ArtifactError, NewstopicError
from newstopic.files import write_atomic
from newstopic.params import CONSTRAINTS, optional
from newstopic.predictor import CLASSIFY, EXPLAIN, held_out_proba
from newstopic.registry import register, registered
from newstopic.text import OOV

# Every neural classifier but `rnn` (the plain SimpleRNN, far behind the others: docs/results.md)
# and `seed-lstm` (the seed notebook's recipe, kept only for comparison), and the linear SVM,
# which errs on other documents than the readers (docs/models.md).
MEMBERS = ("lstm", "gru", "bilstm", "bigru", "lstm-attention", "bigru-attention", "bigru-tfidf",
           "transformer", "seq2seq-label", "tfidf-svm")
# The share of the mean that the classical members hold together, the other members sharing
# the rest: at one vote in ten the SVM was outvoted by readers that err alike, and a quarter
# did better on the tuning settings (docs/models.md).
CLASSICAL_WEIGHT = 0.25
FINGERPRINT_FILE = "ensemble.json"


def held_out_file(member_directory: Path) -> Path:
    """Where a checkpointed member's out-of-fold validation probabilities are kept: beside its
    model directory, which holds only what prediction needs."""
    return member_directory.with_name(f"{member_directory.name}.validation.npz")


class EnsembleTextModel:
    """The weighted mean class probabilities of `members` (a tuple or a comma-separated string
    of classifier names, neural or classical): the classical members hold `classical_weight` of
    it together and the others the rest, each group in equal parts (None: every member alike).
    `epochs` caps each neural member's epochs; `batch_size`, `learning_rate`, `class_weight`
    and `truncate`, when set, apply to every member that has them."""

    def __init__(self, name: str, *, seed: int = 0, members=",".join(MEMBERS),
                 classical_weight: float | None = CLASSICAL_WEIGHT, epochs: int | None = None,
                 batch_size: int | None = None, learning_rate: float | None = None,
                 class_weight: str | None = None, truncate: str | None = None):
        names = members.split(",") if isinstance(members, str) else list(members)
        names = [n.strip() for n in names if n.strip()]
        if not names or len(set(names)) != len(names):
            raise NewstopicError(f"ensemble members {members!r} must name distinct classifiers, "
                                 f"for example {','.join(MEMBERS[:3])}")
        for member in names:
            spec = registered(member)
            if member == name or spec.task != "classify" or spec.predictor is EnsembleTextModel:
                raise NewstopicError(f"'{member}' cannot be an ensemble member: choose "
                                     "classifiers other than an ensemble (see `newstopic "
                                     "models`)")
        self.seed, self.members, self.epochs = seed, tuple(names), epochs
        self.classical_weight = classical_weight
        self.shared = {k: v for k, v in (("batch_size", batch_size),
                                         ("learning_rate", learning_rate),
                                         ("class_weight", class_weight),
                                         ("truncate", truncate)) if v is not None}
        self.member_models: list = []  # fitted, in the order of `members`
        self.history: dict = {}

    capabilities = frozenset({CLASSIFY, EXPLAIN})
    prediction_files = None  # all of them

    def member_params(self, member: str) -> dict:
        """The hyperparameters member `member` trains with: the shared ones it has."""
        spec = registered(member)
        params = {k: v for k, v in self.shared.items() if k in spec.parameters()}
        if self.epochs is not None and "epochs" in spec.parameters():
            params["epochs"] = spec.capped_epochs(self.epochs)
        return params

    def fit(self, texts, labels, validation_data=None, progress=None, checkpoint=None,
            resume: bool = False, trained: dict | None = None,
            unlabelled=None) -> "EnsembleTextModel":
        """Train each member in turn (see `NeuralTextModel.fit`); `trained` maps member names to
        fitted models to take as they are; a transductive member also fits on `unlabelled`.
        With a `checkpoint` directory each finished member is saved there, so that `resume`
        continues with the next one."""
        store = Path(checkpoint) if checkpoint else None
        if store is not None:
            fingerprint = {"members": self.members, "seed": self.seed, "epochs": self.epochs,
                           "shared": self.shared, "n_train": len(texts),
                           "classes": sorted(map(str, set(labels)))}
            self._open_checkpoint(store, json.loads(json.dumps(fingerprint)), resume)
        self.member_models, self.validation_proba_ = [], None
        for member in self.members:
            saved = store / member if store is not None else None
            if trained and member in trained:
                model = trained[member]
            elif saved is not None and (saved / MANIFEST).is_file():
                model = load_model(saved)[1]
                if held_out_file(saved).is_file():
                    with np.load(held_out_file(saved), allow_pickle=False) as arrays:
                        model.validation_proba_ = arrays["proba"]
            else:
                spec = registered(member)
                model = spec.make(self.seed, self.member_params(member))
                model.fit(texts, labels, validation_data=validation_data, progress=progress,
                          checkpoint=None if store is None else store / f"{member}.run",
                          resume=resume, **({"unlabelled": unlabelled} if spec.transductive
                                            else {}))
                if saved is not None:
                    self._checkpoint_member(member, model, saved)
            self.member_models.append(model)
        self._check_classes()
        if validation_data is not None:
            self.validation_proba_ = self._held_out_proba(list(validation_data[0]))
        if store is not None:
            shutil.rmtree(store, ignore_errors=True)
        return self

    def _held_out_proba(self, val_texts: list) -> np.ndarray | None:
        """The mean of the members' validation probabilities, each member's scored out of fold
        where it fitted weights on those texts (`held_out_proba`); None where none did."""
        held = [held_out_proba(model) for model in self.member_models]
        if all(proba is None for proba in held):
            return None
        predicted = self._member_proba(val_texts)[0]
        return self._weighted_mean([p if h is None else h for p, h in zip(predicted, held)])

    def member_weights(self) -> np.ndarray:
        """Each member's weight in the mean (summing to 1)."""
        classical = np.array([registered(m).family == "classical" for m in self.members])
        if self.classical_weight is None or classical.all() or not classical.any():
            return np.full(len(self.members), 1 / len(self.members))
        return np.where(classical, self.classical_weight / classical.sum(),
                        (1 - self.classical_weight) / (~classical).sum())

    def _weighted_mean(self, probas: list[np.ndarray]) -> np.ndarray:
        return np.tensordot(self.member_weights(), np.asarray(probas), axes=1)

    @staticmethod
    def _open_checkpoint(store: Path, fingerprint: dict, resume: bool) -> None:
        """Start the checkpoint directory afresh, or check that it is this run's to resume."""
        file = store / FINGERPRINT_FILE
        if resume and file.is_file():
            if json.loads(file.read_text(encoding="utf-8")) != fingerprint:
                raise ArtifactError(f"the checkpoint in {store} is from a run with other "
                                    "settings or data: drop --resume to start over")
            return
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir(parents=True)
        file.write_text(json.dumps(fingerprint), encoding="utf-8")

    def _check_classes(self) -> None:
        self.classes_ = np.asarray(self.member_models[0].classes_)
        for member, model in zip(self.members[1:], self.member_models[1:]):
            if not np.array_equal(np.asarray(model.classes_), self.classes_):
                raise ArtifactError(f"ensemble member '{member}' has other labels than "
                                    f"'{self.members[0]}': retrain the ensemble")

    def predict_proba(self, texts) -> np.ndarray:
        return self.predict_known(texts)[0]

    def predict_known(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """(weighted mean class probabilities, whether any member knows a word of the text)."""
        probas, known = self._member_proba(texts)
        return self._weighted_mean(probas), known

    def _member_proba(self, texts) -> tuple[list[np.ndarray], np.ndarray]:
        """(each member's class probabilities, whether any member knows a word of the text),
        with the word ids made once per distinct vectorizer of the neural members."""
        texts = list(texts)
        inputs: list[tuple[dict, np.ndarray]] = []  # each distinct vectorizer's word ids
        probas, known = [], []
        for engine in self.member_models:
            if getattr(engine, "vectorizer", None) is None:  # a classical member
                proba, knows = engine.predict_known(texts)
                probas.append(proba)
                known.append(knows)
                continue
            settings = engine.vectorizer.to_dict()
            ids = next((x for s, x in inputs if s == settings), None)
            if ids is None:
                ids = engine.vectorizer.transform(texts)
                inputs.append((settings, ids))
            probas.append(engine.predict_ids(ids))
        known += [(ids > OOV).any(axis=1) for _, ids in inputs]
        return probas, np.any(known, axis=0)

    @property
    def n_parameters(self) -> int:
        return sum(m.n_parameters for m in self.member_models)

    @property
    def epochs_run(self) -> int:
        return sum(getattr(m, "epochs_run", 0) for m in self.member_models)

    @property
    def seconds_per_epoch(self) -> float:
        seconds = sum(sum(getattr(m, "history", {}).get("seconds", []))
                      for m in self.member_models)
        return seconds / max(1, self.epochs_run)

    # --- files ------------------------------------------------------------------------------

    def _checkpoint_member(self, member: str, model, path: Path) -> None:
        """Keep a finished member for `resume`, with its out-of-fold validation probabilities,
        which a model directory does not hold: written first, so that a member found on resume
        has them."""
        held = held_out_proba(model)
        if held is not None:
            buffer = io.BytesIO()
            np.savez(buffer, proba=held)
            write_atomic(held_out_file(path), buffer.getvalue())
        self._save_member(member, model, path)

    def _save_member(self, member: str, model, path: Path) -> None:
        save_model(model, registered(member), path,
                   params={"seed": self.seed, **self.member_params(member)})

    def save(self, directory: Path) -> dict:
        """Each member as a model directory of its own inside `directory`."""
        for member, model in zip(self.members, self.member_models):
            self._save_member(member, model, directory / member)
        return {"members": list(self.members), "classical_weight": self.classical_weight,
                "epochs": self.epochs, "shared": self.shared}

    @classmethod
    def load(cls, directory: Path, manifest: dict) -> "EnsembleTextModel":
        settings = manifest["predictor"]
        # saved before the classical members were weighed apart: every member alike
        engine = cls(manifest["model"], seed=manifest["params"].get("seed", 0),
                     members=settings["members"],
                     classical_weight=settings.get("classical_weight"),
                     epochs=settings["epochs"], **settings["shared"])
        engine.member_models = [load_model(directory / member, task="classify")[1]
                                for member in engine.members]
        engine._check_classes()
        if list(map(str, engine.classes_)) != list(manifest["labels"]):
            raise ArtifactError(f"{directory}'s members have other labels than its manifest: "
                                "retrain the model")
        return engine


# unset: each member keeps its own
SHARED_CONSTRAINTS = {name: optional(CONSTRAINTS[name])
                      for name in ("epochs", "learning_rate", "truncate")}
register("ensemble", "neural", "The class probabilities of nine sequence models (lstm, gru, "
         "bilstm, bigru, both attention models, bigru-tfidf, transformer, seq2seq-label), three "
         "quarters, and tfidf-svm, a quarter",
         EnsembleTextModel, shared=EnsembleTextModel,
         constraints=SHARED_CONSTRAINTS)(EnsembleTextModel)


class TaughtTextModel(SelfTrainedTextModel):
    """Transductive: `tfidf-transductive` whose every round's labels also follow, at half
    weight, the mean probabilities of `teachers` (inductive classifiers, trained first as an
    ensemble of them is, or taken as they are from `trained`). The teachers only label the
    unlabelled texts: the self-trained SVM alone predicts and is saved."""

    def __init__(self, name: str, recipe: tuple | None = None, linear=None):
        *own, self.teachers = recipe or (None, None, None, None)
        super().__init__(name, tuple(own) if recipe else None, linear)

    @property
    def members(self) -> tuple[str, ...]:
        """The teachers, which a benchmark gives trained (as to an ensemble) when it ran them."""
        return self.teachers.members if self.teachers is not None else ()

    def _fixed_teacher(self, texts, labels, unlabelled, classes, validation_data=None,
                       **options) -> np.ndarray:
        self.teachers.fit(texts, labels, validation_data=validation_data, **options)
        columns = [list(self.teachers.classes_).index(label) for label in classes]
        return self.teachers.predict_proba(unlabelled)[:, columns]


@register("ensemble-transductive", "classical", "tfidf-transductive taught by the ensemble's "
          "nine sequence models as well (transductive: never run by default)",
          TaughtTextModel, shared=tfidf, transductive=True)
def ensemble_transductive(C=0.5, alpha=0.3, rounds=5,
                          teachers=",".join(m for m in MEMBERS if m != "tfidf-svm"), seed=0,
                          **tfidf_params):
    return (*tfidf_transductive(C=C, alpha=alpha, rounds=rounds, seed=seed, **tfidf_params),
            EnsembleTextModel("ensemble-transductive", seed=seed, members=teachers))
