"""20 Newsgroups and users' own labelled texts, loaded into one `Dataset` shape.

20 Newsgroups is read, in this order, from an explicit path, the ``NEWSTOPIC_DATA`` variable, or
scikit-learn's own downloader and cache. A path may be the ``20news-bydate.tar.gz`` archive (read
without extracting it), its extracted folder, or a scikit-learn data home. Parsed and cleaned
texts are cached (``NEWSTOPIC_CACHE``, default ``~/.cache/newstopic``), keyed on the source's size
and modification time, so that a second load takes a fraction of a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from collections import Counter
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

from newstopic.errors import DataError
from newstopic.records import (
    decoded,
    existing,
    label_value,
    table_records,
    text_value,
)

GROUPS = (
    "alt.atheism", "comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware",
    "comp.sys.mac.hardware", "comp.windows.x", "misc.forsale", "rec.autos", "rec.motorcycles",
    "rec.sport.baseball", "rec.sport.hockey", "sci.crypt", "sci.electronics", "sci.med",
    "sci.space", "soc.religion.christian", "talk.politics.guns", "talk.politics.mideast",
    "talk.politics.misc", "talk.religion.misc",
)
PRESETS = {
    "seed": ("comp.graphics", "sci.med"),
    "seed3": ("rec.autos", "sci.electronics", "soc.religion.christian"),
    "all": GROUPS,
}
REMOVABLE = ("headers", "footers", "quotes")
SPLITS = ("bydate", "random")
ARCHIVE_NAME = "20news-bydate.tar.gz"
SPLIT_DIRS = {"train": "20news-bydate-train", "test": "20news-bydate-test"}
CACHE_VERSION = 1


@dataclass
class Dataset:
    """Train and test texts with string labels (for the subject task, each message's subject
    line), and the settings that produced them."""

    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]
    config: dict

    @property
    def labels(self) -> list[str]:
        return sorted(set(self.train_labels))


# --- 20 Newsgroups -------------------------------------------------------------------------


def load_20newsgroups(
    path: str | os.PathLike | None = None,
    *,
    preset: str | None = None,
    categories: list[str] | tuple[str, ...] | None = None,
    remove: list[str] | tuple[str, ...] = (),
    split: str = "bydate",
    test_size: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load 20 Newsgroups: the preset's or the named groups, cleaned and split."""
    groups = select_groups(preset, categories)
    remove = parse_remove(remove)
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}': choose one of {', '.join(SPLITS)}")
    source = _newsgroups_source(path)
    messages = _cached_messages(source, remove)
    chosen = set(groups)
    parts = {
        name: ([m[2] for m in messages if m[0] == name and m[1] in chosen],
               [m[1] for m in messages if m[0] == name and m[1] in chosen])
        for name in SPLIT_DIRS
    }
    (train_texts, train_labels), (test_texts, test_labels) = parts["train"], parts["test"]
    if split == "random":
        train_texts, test_texts, train_labels, test_labels = stratified_split(
            train_texts + test_texts, train_labels + test_labels, test_size, seed, "20 Newsgroups")
    config = {
        "kind": "20newsgroups", "source": source.describe(),
        "data": None if path is None else str(path),
        "preset": None if categories else (preset or "all"), "categories": list(groups),
        "remove": list(remove), "split": split, "test_size": test_size, "seed": seed,
    }
    return Dataset(train_texts, train_labels, test_texts, test_labels, config)


def cut_training(dataset: Dataset, size: int, seed: int) -> Dataset:
    """The dataset with a stratified, seeded sample of `size` of its training texts (all of
    them if it has no more): a small-data setting on the same test set."""
    if size >= len(dataset.train_texts):
        return dataset
    check_classes(dataset.train_labels, "the training split", stratify=True)
    if size < len(set(dataset.train_labels)):
        raise DataError(f"a training set of {size} cannot hold one text of each of the "
                        f"{len(set(dataset.train_labels))} classes: give a larger size")
    from sklearn.model_selection import train_test_split

    texts, _, labels, _ = train_test_split(dataset.train_texts, dataset.train_labels,
                                           train_size=size, random_state=seed, shuffle=True,
                                           stratify=dataset.train_labels)
    return Dataset(texts, labels, dataset.test_texts, dataset.test_labels,
                   {**dataset.config, "train_size": size})


def select_groups(preset: str | None, categories) -> tuple[str, ...]:
    if preset is not None and categories:
        raise DataError("give either --preset or --categories, not both")
    if categories:
        unknown = [c for c in categories if c not in GROUPS]
        if unknown:
            raise DataError(f"unknown newsgroup '{unknown[0]}': choose from {', '.join(GROUPS)}")
        groups = tuple(sorted(set(categories)))
        if len(groups) < 2:
            raise DataError("choose at least 2 newsgroups: a classifier needs 2 classes")
        return groups
    preset = preset or "all"
    if preset not in PRESETS:
        raise DataError(f"unknown preset '{preset}': choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]


def parse_remove(remove) -> tuple[str, ...]:
    if isinstance(remove, str):
        remove = [r for r in remove.split(",") if r.strip()]
    remove = [r.strip() for r in remove]
    unknown = [r for r in remove if r not in REMOVABLE]
    if unknown:
        raise DataError(f"cannot remove '{unknown[0]}': choose any of {', '.join(REMOVABLE)}")
    return tuple(r for r in REMOVABLE if r in remove)


class _Archive:
    """The canonical tar.gz, read member by member without extracting it."""

    def __init__(self, path: Path):
        self.path = path

    def describe(self) -> str:
        return str(self.path)

    def identity(self) -> str:
        st = self.path.stat()
        return f"archive:{self.path.resolve()}:{st.st_size}:{st.st_mtime_ns}"

    def read(self):
        messages = []
        try:
            with tarfile.open(self.path, "r:gz") as archive:
                for member in archive:
                    parts = member.name.split("/")
                    if member.isfile() and len(parts) == 3 and parts[0] in _SPLIT_OF_DIR:
                        text = archive.extractfile(member).read().decode("latin-1")
                        messages.append((_SPLIT_OF_DIR[parts[0]], parts[1], parts[2], text))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"cannot read {self.path} as a 20news-bydate archive ({exc}): "
                            "download it again or point --data at the extracted folder") from None
        return messages


class _Folder:
    """The extracted archive: <root>/20news-bydate-{train,test}/<group>/<id>."""

    def __init__(self, root: Path):
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def identity(self) -> str:
        dirs = [self.root / d for d in SPLIT_DIRS.values()]
        dirs += [g for d in dirs for g in d.iterdir() if g.is_dir()]
        return f"folder:{self.root.resolve()}:{max(d.stat().st_mtime_ns for d in dirs)}"

    def read(self):
        messages = []
        for split, dirname in SPLIT_DIRS.items():
            for group_dir in sorted((self.root / dirname).iterdir()):
                if group_dir.is_dir():
                    messages.extend((split, group_dir.name, f.name, f.read_bytes().decode("latin-1"))
                                    for f in group_dir.iterdir() if f.is_file())
        return messages


class _SklearnHome:
    """scikit-learn's own download and cache (``fetch_20newsgroups``), for users with internet."""

    def __init__(self, data_home: Path | None):
        self.data_home = data_home

    def describe(self) -> str:
        return f"scikit-learn data home {self.data_home or '(default)'}"

    def identity(self) -> str:
        from sklearn.datasets import get_data_home

        cache = Path(get_data_home(self.data_home)) / "20news-bydate_py3.pkz"
        if not cache.exists():
            return ""  # not downloaded yet: nothing to key a cache on
        st = cache.stat()
        return f"sklearn:{cache.resolve()}:{st.st_size}:{st.st_mtime_ns}"

    def read(self):
        from sklearn.datasets import fetch_20newsgroups

        messages = []
        for split in SPLIT_DIRS:
            try:
                bunch = fetch_20newsgroups(data_home=self.data_home, subset=split, shuffle=False,
                                           download_if_missing=self.data_home is None)
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot load 20 Newsgroups through scikit-learn ({exc}): pass "
                                f"--data PATH or set NEWSTOPIC_DATA to {ARCHIVE_NAME}") from None
            for text, target, filename in zip(bunch.data, bunch.target, bunch.filenames):
                messages.append((split, bunch.target_names[target], Path(filename).name, text))
        return messages


_SPLIT_OF_DIR = {dirname: split for split, dirname in SPLIT_DIRS.items()}


def _newsgroups_source(path):
    path = path or os.environ.get("NEWSTOPIC_DATA") or None
    if path is None:
        return _SklearnHome(None)
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"20 Newsgroups not found at {path}: pass --data PATH or set NEWSTOPIC_DATA "
                        f"to {ARCHIVE_NAME} or its extracted folder")
    if path.is_file():
        return _Archive(path)
    for root in (path, path / "20news_home"):
        if all((root / d).is_dir() for d in SPLIT_DIRS.values()):
            return _Folder(root)
    if (path / ARCHIVE_NAME).is_file():
        return _Archive(path / ARCHIVE_NAME)
    if (path / "20news-bydate_py3.pkz").is_file():
        return _SklearnHome(path)
    raise DataError(f"{path} holds no 20 Newsgroups data: expected {ARCHIVE_NAME}, "
                    f"{SPLIT_DIRS['train']}/ and {SPLIT_DIRS['test']}/, or a scikit-learn data home")


def cache_dir() -> Path:
    return Path(os.environ.get("NEWSTOPIC_CACHE") or Path.home() / ".cache" / "newstopic")


def _cached_messages(source, remove: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(split, group, text) for every message, in (split, group, file name) order."""
    identity = source.identity()
    key = hashlib.sha256(f"{CACHE_VERSION}|{identity}|{','.join(remove)}".encode()).hexdigest()[:20]
    cache = cache_dir() / f"20news-{key}.json"
    if identity and cache.exists():
        try:
            return [tuple(m) for m in json.loads(cache.read_text(encoding="utf-8"))]
        except (OSError, ValueError):
            pass  # a damaged cache is rebuilt below
    raw = sorted(source.read(), key=lambda m: (m[0] != "train", m[1], m[2]))
    texts = clean([m[3] for m in raw], remove)
    messages = [(m[0], m[1], text) for m, text in zip(raw, texts)]
    if identity:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(messages), encoding="utf-8")
            os.replace(tmp, cache)
        except OSError:
            pass  # a read-only home still loads, only slower
    return messages


def clean(texts: list[str], remove: tuple[str, ...]) -> list[str]:
    """scikit-learn's own header, footer and quote stripping, in its order."""
    if not remove:
        return texts
    from sklearn.datasets._twenty_newsgroups import (
        strip_newsgroup_footer,
        strip_newsgroup_header,
        strip_newsgroup_quoting,
    )

    steps = {"headers": strip_newsgroup_header, "footers": strip_newsgroup_footer,
             "quotes": strip_newsgroup_quoting}
    for name in remove:
        texts = [steps[name](t) for t in texts]
    return texts


# --- users' own data -----------------------------------------------------------------------


def load_texts(
    train_file: str | os.PathLike,
    test_file: str | os.PathLike | None = None,
    *,
    text_column: str = "text",
    label_column: str = "label",
    test_size: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load labelled texts from CSV, TSV, JSONL or a folder per class; split if no test file."""
    train_texts, train_labels = read_labelled(train_file, text_column, label_column)
    check_classes(train_labels, str(train_file), stratify=test_file is None)
    if test_file is None:
        train_texts, test_texts, train_labels, test_labels = stratified_split(
            train_texts, train_labels, test_size, seed, str(train_file))
        split = "random"
    else:
        test_texts, test_labels = read_labelled(test_file, text_column, label_column)
        unseen = sorted(set(test_labels) - set(train_labels))
        if unseen:
            raise DataError(f"{test_file}: label '{unseen[0]}' does not occur in {train_file}: "
                            "every test label needs training examples")
        split = "files"
    config = {
        "kind": "files", "source": str(train_file), "train_file": str(train_file),
        "test_file": None if test_file is None else str(test_file), "text_column": text_column,
        "label_column": label_column, "split": split, "test_size": test_size, "seed": seed,
    }
    return Dataset(train_texts, train_labels, test_texts, test_labels, config)


def read_labelled(path, text_column: str = "text", label_column: str = "label"):
    """(texts, labels) from a CSV, TSV or JSONL file, or a folder with one subfolder per class."""
    path = existing(path)
    if path.is_dir():
        texts, labels = _read_class_folders(path)
    else:
        texts, labels = [], []
        for where, record in table_records(path, (text_column, label_column)):
            texts.append(text_value(record.get(text_column), where, text_column))
            labels.append(label_value(record.get(label_column), where, label_column))
        blank = [i for i, label in enumerate(labels, 1) if not label]
        if blank:
            raise DataError(f"{path}: {len(blank)} rows with an empty label (rows "
                            f"{_first(blank)}): fill them in or remove those rows")
    check_texts(texts, str(path))
    return texts, labels


def check_texts(texts: list[str], where: str) -> None:
    if not texts:
        raise DataError(f"{where} holds no texts: give at least one document per class")
    empty = [i for i, text in enumerate(texts, 1) if not text.strip()]
    if empty:
        raise DataError(f"{where}: {len(empty)} empty or whitespace-only texts (rows "
                        f"{_first(empty)}): fill them in or remove those rows")


def check_classes(labels: list[str], where: str, stratify: bool) -> None:
    counts = Counter(labels)
    if len(counts) < 2:
        only = next(iter(counts), "")
        raise DataError(f"{where} has only {len(counts)} class ('{only}'): "
                        "a classifier needs at least 2 different labels")
    if stratify:
        rare = sorted(label for label, n in counts.items() if n < 2)
        if rare:
            raise DataError(f"{where}: class '{rare[0]}' has only 1 example and a stratified split "
                            "needs 2 per class: add examples or give a separate test file")


SEED_LIMIT = 2**32  # NumPy's and scikit-learn's generators take seeds below it


def check_seed(seed, name: str = "seed") -> None:
    """Refuse, in one line naming `name`, a seed that the random generators would refuse."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed < SEED_LIMIT:
        raise DataError(f"{name} {seed!r} is not allowed: a seed must be a whole number from 0 "
                        f"to {SEED_LIMIT - 1:,}")


def check_share(size, name: str = "split size") -> None:
    """Refuse, in one line naming `name`, a share of the texts to split off that is not
    strictly between 0 and 1."""
    if isinstance(size, bool) or not isinstance(size, Real) or not 0 < size < 1:
        raise DataError(f"{name} {size!r} is not allowed: the share of the texts it splits off "
                        "must be a number between 0 and 1 (for example 0.2)")


def stratified_split(texts, labels, size: float, seed: int, where: str):
    """Shuffled, stratified (a_texts, b_texts, a_labels, b_labels) with `size` in b."""
    check_seed(seed)
    check_share(size)
    check_classes(labels, where, stratify=True)
    n_classes = len(set(labels))
    if round(size * len(labels)) < n_classes or round((1 - size) * len(labels)) < n_classes:
        raise DataError(f"{where}: {len(labels)} examples are too few to split {size:g} of them "
                        f"over {n_classes} classes: add examples or change the split size")
    from sklearn.model_selection import train_test_split

    return train_test_split(texts, labels, test_size=size, random_state=seed, shuffle=True,
                            stratify=labels)


def shuffled_split(texts, labels, size: float, seed: int):
    """Shuffled (a_texts, b_texts, a_labels, b_labels) with `size` in b, not stratified: for
    labels that are free text, such as subject lines."""
    check_seed(seed)
    check_share(size, "validation size")
    from sklearn.model_selection import train_test_split

    return train_test_split(texts, labels, test_size=size, random_state=seed, shuffle=True)


def _read_class_folders(root: Path):
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class folders: put each class's documents "
                        f"in {root}/<class>/, one file per document")
    texts, labels = [], []
    for folder in classes:
        for file in sorted(folder.iterdir()):
            if file.is_file() and not file.name.startswith("."):
                texts.append(_decode(file.read_bytes(), file))
                labels.append(folder.name)
    return texts, labels


def _decode(data: bytes, path: Path) -> str:
    """A whole file as one text, decoded as `decoded` decodes a line."""
    return next(decoded(iter([data]), str(path)), "")


def _first(rows: list[int], n: int = 5) -> str:
    return ", ".join(map(str, rows[:n])) + (", ..." if len(rows) > n else "")


# --- the subject task: a message's Subject line from its body ------------------------------

SUBJECT_MAX_TOKENS = 16
SUBJECT_REMOVE = ("footers", "quotes")  # the headers always go: they hold the subject itself
_REPLY_PREFIX = re.compile(r"^(?:\s*re\s*(?:\^\s*\d+|\[\d+\]|\(\d+\))?\s*:)+", re.IGNORECASE)
_SUBJECT_LINE = re.compile(r"^Subject:(.*)$", re.MULTILINE | re.IGNORECASE)
_TOKEN = re.compile(r"[a-z0-9]+")


def subject_tokens(text: str, max_tokens: int = SUBJECT_MAX_TOKENS) -> list[str]:
    """Lowercased alphanumeric tokens, as ROUGE tokenizes, at most `max_tokens` of them."""
    return _TOKEN.findall(text.lower())[:max_tokens]


def clean_subject(subject: str, max_tokens: int = SUBJECT_MAX_TOKENS) -> str:
    """The subject without its chain of reply prefixes (Re:, RE:, Re^2:, Re[3]:), tokenized."""
    return " ".join(subject_tokens(_REPLY_PREFIX.sub("", subject), max_tokens))


def message_subject(message: str) -> str:
    """The Subject header of a raw message, or "" when it has none."""
    found = _SUBJECT_LINE.search(message.partition("\n\n")[0])
    return found.group(1).strip() if found else ""


def load_subjects(path: str | os.PathLike | None = None, *, preset: str | None = None,
                  categories=None, remove=SUBJECT_REMOVE) -> Dataset:
    """20 Newsgroups as (body, subject) pairs on the bydate split: the bodies are the texts,
    their cleaned subjects the labels. Messages whose cleaned subject or body is empty are
    skipped and counted in `config["skipped"]`."""
    groups = set(select_groups(preset, categories))
    remove = tuple(sorted({"headers", *parse_remove(remove)}, key=REMOVABLE.index))
    source = _newsgroups_source(path)
    # Both lists come in (split, group, file name) order, so they pair up message by message.
    raw, bodies = _cached_messages(source, ()), _cached_messages(source, remove)
    parts = {split: ([], []) for split in SPLIT_DIRS}
    skipped = dict.fromkeys(SPLIT_DIRS, 0)
    for (split, group, message), (_, _, body) in zip(raw, bodies):
        if group not in groups:
            continue
        subject = clean_subject(message_subject(message))
        if not subject or not body.strip():
            skipped[split] += 1
            continue
        parts[split][0].append(body)
        parts[split][1].append(subject)
    config = {"kind": "20newsgroups-subjects", "source": source.describe(),
              "data": None if path is None else str(path),
              "preset": None if categories else (preset or "all"), "categories": sorted(groups),
              "remove": list(remove), "split": "bydate", "skipped": skipped}
    return Dataset(*parts["train"], *parts["test"], config)
