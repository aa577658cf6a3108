"""The data layer: 20 Newsgroups from every kind of source, users' files, and their errors."""

from __future__ import annotations

import tarfile
from collections import Counter
from pathlib import Path

import pytest

from conftest import write_table
from newstopic.data import (
    GROUPS,
    PRESETS,
    load_20newsgroups,
    load_texts,
)
from newstopic.errors import DataError
from newstopic.records import DataWarning, iter_texts

MESSAGE = ("From: someone@example.com\nSubject: about {group} number {i}\nLines: 4\n\n"
           "{group} body text {i}\nIn article <1@x> someone writes:\n> quoted reply line\n"
           "\n--\nsigned, someone\n")


def fake_bydate(root: Path, groups=("rec.autos", "sci.med"), per_split=3) -> Path:
    """A tiny tree in the canonical layout, with headers, quotes and a signature."""
    for split in ("train", "test"):
        for group in groups:
            folder = root / f"20news-bydate-{split}" / group
            folder.mkdir(parents=True)
            for i in range(per_split):
                (folder / str(1000 + i)).write_bytes(
                    MESSAGE.format(group=group, i=i).encode("latin-1") + b"caf\xe9\n")
    return root


def tar_of(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("20news-bydate-train", "20news-bydate-test"):
            tar.add(folder / split, arcname=split)
    return archive


# --- the real archive ----------------------------------------------------------------------


def test_real_archive_has_the_canonical_counts(archive):
    data = load_20newsgroups(archive)
    assert (len(data.train_texts), len(data.test_texts)) == (11314, 7532)
    assert data.labels == list(GROUPS)
    assert Counter(data.train_labels)["rec.autos"] == 594


def test_presets_select_their_groups(archive):
    data = load_20newsgroups(archive, preset="seed3")
    assert data.labels == sorted(PRESETS["seed3"])
    assert set(data.test_labels) == set(PRESETS["seed3"])
    assert data.config["preset"] == "seed3"


def test_remove_strips_headers_footers_and_quotes(archive):
    raw = load_20newsgroups(archive, preset="seed")
    clean = load_20newsgroups(archive, preset="seed", remove="headers,footers,quotes")
    assert all(t.startswith("From:") for t in raw.train_texts[:20])
    assert not any(t.startswith("From:") for t in clean.train_texts)
    assert sum(map(len, clean.train_texts)) < 0.7 * sum(map(len, raw.train_texts))


def test_random_split_is_stratified_and_seeded(archive):
    a = load_20newsgroups(archive, preset="seed", split="random", test_size=0.2, seed=1)
    b = load_20newsgroups(archive, preset="seed", split="random", test_size=0.2, seed=1)
    c = load_20newsgroups(archive, preset="seed", split="random", test_size=0.2, seed=2)
    total = len(a.train_texts) + len(a.test_texts)
    assert abs(len(a.test_texts) - 0.2 * total) <= 1
    assert a.test_texts == b.test_texts and a.test_texts != c.test_texts
    share = Counter(a.test_labels)["sci.med"] / len(a.test_labels)
    overall = Counter(a.train_labels + a.test_labels)["sci.med"] / total
    assert abs(share - overall) < 0.01


def test_environment_variable_is_used_and_explicit_path_wins(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSTOPIC_DATA", str(archive))
    assert len(load_20newsgroups(preset="seed").train_texts) == 1178
    small = fake_bydate(tmp_path / "small")
    assert len(load_20newsgroups(small).train_texts) == 6


# --- sources, on a tree the test writes --------------------------------------------------


def test_folder_archive_and_data_home_give_the_same_messages(tmp_path):
    folder = fake_bydate(tmp_path / "extracted")
    archive = tar_of(folder, tmp_path / "20news-bydate.tar.gz")
    home = tmp_path / "home" / "20news_home"
    fake_bydate(home)
    loaded = [load_20newsgroups(p) for p in (folder, archive, tmp_path, tmp_path / "home")]
    for data in loaded:
        assert data.train_texts == loaded[0].train_texts
        assert data.test_labels == loaded[0].test_labels
    assert loaded[0].labels == ["rec.autos", "sci.med"]
    assert "café" in loaded[0].train_texts[0]  # latin-1, as the archive is encoded


def test_cache_is_keyed_on_the_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSTOPIC_CACHE", str(tmp_path / "cache"))
    folder = fake_bydate(tmp_path / "extracted")
    archive = tar_of(folder, tmp_path / "a.tar.gz")
    first = load_20newsgroups(archive, remove="quotes")
    assert len(list((tmp_path / "cache").glob("20news-*.json"))) == 1
    assert load_20newsgroups(archive, remove="quotes").train_texts == first.train_texts
    assert not any("> quoted" in t for t in first.train_texts)
    # a changed archive is read again, not served from the stale cache
    (folder / "20news-bydate-train" / "rec.autos" / "1000").write_text("changed message")
    tar_of(folder, archive)
    assert "changed message" in load_20newsgroups(archive, remove="quotes").train_texts


@pytest.mark.parametrize("kwargs, message", [
    ({"preset": "nope"}, "unknown preset 'nope': choose one of seed, seed3, all"),
    ({"categories": ["sci.med", "sci.cooking"]}, "unknown newsgroup 'sci.cooking': choose from"),
    ({"categories": ["sci.med"]}, "choose at least 2 newsgroups"),
    ({"preset": "seed", "categories": ["sci.med", "rec.autos"]}, "either --preset or"),
    ({"remove": "headers,signatures"}, "cannot remove 'signatures'"),
    ({"split": "weird"}, "unknown split 'weird'"),
    ({"split": "random", "test_size": 1.5}, "split size 1.5 is not allowed"),
])
def test_bad_newsgroups_options_name_the_fix(tmp_path, kwargs, message):
    folder = fake_bydate(tmp_path)
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        load_20newsgroups(folder, **kwargs)


def test_missing_and_unusable_data_paths(tmp_path):
    with pytest.raises(DataError, match="not found at .*pass --data PATH or set NEWSTOPIC_DATA"):
        load_20newsgroups(tmp_path / "nowhere.tar.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no 20 Newsgroups data"):
        load_20newsgroups(tmp_path / "empty")
    (tmp_path / "broken.tar.gz").write_bytes(b"not a tar file at all")
    with pytest.raises(DataError, match="cannot read .* as a 20news-bydate archive"):
        load_20newsgroups(tmp_path / "broken.tar.gz")


# --- users' own files ----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_tables_load_with_a_seeded_stratified_split(tmp_path, corpus, suffix):
    path = write_table(tmp_path / f"train{suffix}", *corpus)
    data = load_texts(path, test_size=0.25, seed=3)
    assert len(data.test_texts) == 30 and Counter(data.test_labels) == {
        "cars": 10, "space": 10, "cooking": 10}
    assert load_texts(path, test_size=0.25, seed=3).test_texts == data.test_texts
    assert set(data.train_texts).isdisjoint(data.test_texts)


def test_other_column_names_and_a_test_file(tmp_path, corpus):
    texts, labels = corpus
    train = write_table(tmp_path / "a.csv", texts[:90], labels[:90], "body", "topic")
    test = write_table(tmp_path / "b.jsonl", texts[90:], labels[90:], "body", "topic")
    data = load_texts(train, test, text_column="body", label_column="topic")
    assert data.test_texts == texts[90:] and data.config["split"] == "files"


def test_folder_per_class(tmp_path):
    for label in ("ham", "spam"):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{i}.txt").write_text(f"{label} message {i}")
    data = load_texts(tmp_path, test_size=0.34, seed=0)
    assert sorted(data.labels) == ["ham", "spam"]
    assert len(data.train_texts) + len(data.test_texts) == 6


def test_embedded_newlines_and_quotes_in_csv(tmp_path):
    rows = [('line one\nline "two"', "a"), ("plain", "b")] * 3
    path = write_table(tmp_path / "t.csv", [r[0] for r in rows], [r[1] for r in rows])
    data = load_texts(path, test_size=0.34)
    assert 'line one\nline "two"' in data.train_texts + data.test_texts


def test_undecodable_bytes_fall_back_to_windows_1252_with_a_warning(tmp_path):
    path = tmp_path / "t.csv"
    # 0x85 is "…" in Windows-1252, and U+0085 (a line break to str.splitlines) in Latin-1
    path.write_bytes(b"text,label\ncaf\xe9 au lait\x85,drink\ntea,drink\nbread,food\n"
                     b"cake,food\n")
    with pytest.warns(DataWarning, match="not valid UTF-8 .*read it as Windows-1252"):
        data = load_texts(path, test_size=0.5)
    assert "café au lait…" in data.train_texts + data.test_texts


@pytest.mark.parametrize("content, name, message", [
    (None, "missing.csv", "file not found: .*missing.csv: check the path"),
    ("text,label\n", "t.xlsx", "unknown format '.xlsx'.*use .csv, .tsv, .jsonl"),
    ("body,topic\nx,y\n", "t.csv", "no column 'text'; columns found: body, topic; choose one "
                                    "with --text-column"),
    ("text,topic\nx,y\n", "t.csv", "no column 'label'; columns found: text, topic"),
    ("text,label\nfine,a\n  ,a\nok,b\n,b\n", "t.csv", "2 empty or whitespace-only texts "
                                                      r"\(rows 2, 4\)"),
    ("text,label\nx,a\ny,a\nz,a\n", "t.csv", r"only 1 class \('a'\): a classifier needs at "
                                             "least 2"),
    ("text,label\nx,a\ny,a\nz,b\n", "t.csv", "class 'b' has only 1 example and a stratified "
                                             "split needs 2"),
    ('{"text": "x", "label": "a"}\nnot json\n', "t.jsonl", "line 2 is not valid JSON"),
    ("text,label\nx,\ny,b\n", "t.csv", r"1 rows with an empty label \(rows 1\)"),
])
def test_bad_files_name_the_problem(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_texts(path)


def test_empty_class_folder_root_and_unseen_test_labels(tmp_path, corpus):
    (tmp_path / "root").mkdir()
    with pytest.raises(DataError, match="has no class folders"):
        load_texts(tmp_path / "root")
    texts, labels = corpus
    train = write_table(tmp_path / "a.csv", texts[:10], ["x"] * 5 + ["y"] * 5)
    test = write_table(tmp_path / "b.csv", texts[:2], ["x", "z"])
    with pytest.raises(DataError, match="label 'z' does not occur in"):
        load_texts(train, test)


def test_read_texts_for_prediction(tmp_path):
    (tmp_path / "docs.txt").write_text("first document\n\nsecond document\n")
    assert list(iter_texts(tmp_path / "docs.txt")) == ["first document", "second document"]
    write_table(tmp_path / "docs.jsonl", ["a text", "b text"], ["?", "?"])
    assert list(iter_texts(tmp_path / "docs.jsonl")) == ["a text", "b text"]
    with pytest.raises(DataError, match="no column 'body'"):
        list(iter_texts(tmp_path / "docs.jsonl", text_column="body"))


def test_without_a_path_scikit_learn_downloads_it(tmp_path, monkeypatch):
    import sklearn.datasets
    from sklearn.utils import Bunch

    monkeypatch.delenv("NEWSTOPIC_DATA", raising=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))
    calls = []

    def fake_fetch(data_home, subset, shuffle, download_if_missing):
        calls.append((subset, shuffle, download_if_missing))
        return Bunch(data=[f"{subset} about cars", f"{subset} about medicine"], target=[0, 1],
                     target_names=["rec.autos", "sci.med"],
                     filenames=[f"/x/{subset}/rec.autos/1", f"/x/{subset}/sci.med/2"])

    monkeypatch.setattr(sklearn.datasets, "fetch_20newsgroups", fake_fetch)
    data = load_20newsgroups(categories=["rec.autos", "sci.med"])
    assert calls == [("train", False, True), ("test", False, True)]
    assert data.train_texts == ["train about cars", "train about medicine"]
    assert data.test_labels == ["rec.autos", "sci.med"]

    def offline(**kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(sklearn.datasets, "fetch_20newsgroups", offline)
    with pytest.raises(DataError, match="network is unreachable.*set NEWSTOPIC_DATA"):
        load_20newsgroups()
