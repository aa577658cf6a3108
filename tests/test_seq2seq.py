"""Seq2Seq: subject-line generation with attention, its decoding and baselines, and the
label-path decoder used as a classifier."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from conftest import assert_one_line_error, make_corpus, run_cli
from newstopic import TextClassifier
from newstopic.artifacts import load_model, save_model
from newstopic.data import clean_subject, load_subjects, message_subject
from newstopic.errors import ArtifactError, NewstopicError
from newstopic.evaluation import evaluate_subjects
from newstopic.results import render as render_results
from newstopic.catalog import get_model, model_names
from newstopic.seq2seq import LeadBaseline, RetrievalBaseline

KEYWORDS = ("orbit", "rocket", "engine", "brake", "recipe", "garlic", "comet", "piston")
FILLER = "the a of and to in is it that for on with as was this by be at from or".split()
SMALL = {"max_words": 200, "max_len": 40, "target_words": 40, "epochs": 12, "patience": None,
         "batch_size": 16, "learning_rate": 0.01, "embed_dim": 16, "units": 24}


def keyword_messages(n: int, seed: int):
    """Bodies of filler words with one keyword said three times (and a decoy once); the
    subject is that keyword: a deterministic function of the body."""
    rng = random.Random(seed)
    bodies, subjects = [], []
    for _ in range(n):
        keyword, decoy = rng.sample(KEYWORDS, 2)
        words = [rng.choice(FILLER) for _ in range(rng.randint(8, 20))]
        for word in (keyword, keyword, keyword, decoy):
            words.insert(rng.randrange(len(words) + 1), word)
        bodies.append(" ".join(words))
        subjects.append(f"{keyword} question")
    return bodies, subjects


def name_messages(n: int, seed: int, names: int = 150):
    """Bodies of filler words with one of many made-up names said twice (and another name
    once); the subject is that name, which each name is the subject of only a few times: a
    pattern to copy rather than to learn word by word."""
    rng = random.Random(seed)
    bodies, subjects = [], []
    for _ in range(n):
        name, decoy = rng.sample([f"zq{i}x" for i in range(names)], 2)
        words = [rng.choice(FILLER) for _ in range(rng.randint(6, 14))]
        for word in (name, name, decoy):
            words.insert(rng.randrange(len(words) + 1), word)
        bodies.append(" ".join(words))
        subjects.append(name)
    return bodies, subjects


@pytest.fixture(scope="module")
def held_out():
    return keyword_messages(40, seed=2)


@pytest.fixture(scope="module")
def attention_model():
    model = get_model("seq2seq-attention").make(0, SMALL)
    return model.fit(*keyword_messages(160, seed=0),
                     validation_data=keyword_messages(20, seed=1))


@pytest.mark.parametrize("raw, cleaned", [
    ("Re: Orbit question", "orbit question"), ("RE: Orbit", "orbit"), ("re:orbit", "orbit"),
    ("Re^2: Orbit", "orbit"), ("Re: Re: RE: Re^3: Orbit", "orbit"), ("Re[2]: Orbit", "orbit"),
    ("Re: Re:", ""), ("Orbit, real estate", "orbit real estate"),
])
def test_subject_cleaning_strips_every_reply_prefix(raw, cleaned):
    assert clean_subject(raw) == cleaned


def test_subject_is_read_from_the_headers_and_cut_to_16_tokens():
    message = ("From: a@b.c\nSubject: Re: " + " ".join(f"w{i}" for i in range(30)) +
               "\n\nSubject: not this one\n")
    assert clean_subject(message_subject(message)).split() == [f"w{i}" for i in range(16)]
    assert message_subject("From: a@b.c\n\nno subject header here") == ""


def test_attention_model_learns_the_keyword_far_above_lead(attention_model, held_out):
    lead = LeadBaseline().fit(*keyword_messages(160, seed=0))
    learned = evaluate_subjects(attention_model, *held_out)
    baseline = evaluate_subjects(lead, *held_out)
    assert lead.n_words == 2
    assert learned["rougeL"] > baseline["rougeL"] + 0.4, (learned["rougeL"], baseline["rougeL"])
    assert learned["exact_match"] > 0.5


def test_copy_distribution_is_a_distribution_that_only_copies_target_words():
    from newstopic.layers import PointerGenerator

    layer = PointerGenerator(source_vocab=6, target_vocab=5)
    source = np.array([[2, 3, 3, 4, 1, 0]], dtype=np.int32)  # 4 has no target id, 1 is unknown
    layer.build((1, 2, 5), (1, 2, 6), (1, 2, 1), source.shape)
    layer.set_table([0, 0, 4, 2, 0, 0])
    weights = np.array([[[0.1, 0.2, 0.3, 0.3, 0.1, 0.0], [1.0, 0, 0, 0, 0, 0]]], np.float32)
    vocabulary = np.full((1, 2, 5), 0.2, np.float32)
    p_gen = np.array([[[0.25], [0.0]]], np.float32)
    mixed = np.asarray(layer(vocabulary, weights, p_gen, source))
    assert np.allclose(mixed.sum(axis=-1), 1, atol=1e-6)
    # step 1: 0.75 copies, of which 0.1 -> target 4, 0.5 -> target 2, 0.4 (ids 4, 1) generates
    copied = 0.75 * np.array([0, 0, 0.5, 0, 0.1])
    assert np.allclose(mixed[0, 0], copied + (1 - copied.sum()) * 0.2, atol=1e-6)
    assert np.allclose(mixed[0, 1], [0, 0, 0, 0, 1], atol=1e-6)  # all copied, target 4


def test_copy_model_copies_names_it_has_rarely_seen_as_subjects():
    train, test = name_messages(400, seed=0), name_messages(60, seed=3)
    params = {**SMALL, "target_words": 160, "epochs": 8}
    copying = get_model("seq2seq-attention").make(0, params)
    copying.fit(*train, validation_data=name_messages(20, seed=1))
    plain = get_model("seq2seq-attention").make(0, {**params, "copy": False})
    plain.fit(*train, validation_data=name_messages(20, seed=1))
    lead = LeadBaseline().fit(*train)
    scores = {name: evaluate_subjects(model, *test)["exact_match"]
              for name, model in (("copy", copying), ("plain", plain), ("lead", lead))}
    assert scores["copy"] > 0.6 and scores["copy"] > scores["plain"] + 0.3, scores
    assert scores["copy"] > scores["lead"] + 0.3, scores


def test_beam_of_one_is_greedy_and_wider_beams_give_subjects(attention_model, held_out):
    source = attention_model.vectorizer.transform(held_out[0])
    greedy, _ = attention_model._greedy(source)
    assert attention_model._beam(source, 1) == greedy
    assert attention_model.summarize(held_out[0], beam=1) == [
        " ".join(attention_model.target_vocabulary[i] for i in ids) for ids in greedy]
    wide = attention_model.summarize(held_out[0], beam=3)
    assert len(wide) == len(held_out[0]) and all(wide)
    with pytest.raises(NewstopicError, match="beam width"):
        attention_model.summarize(held_out[0], beam=0)


def test_attention_alignment_has_one_distribution_per_generated_token(attention_model):
    body = "the orbit of a comet is in the orbit of the orbit"
    generated, source, weights = attention_model.alignment(body)
    assert source == body.split()
    assert weights.shape == (len(generated), len(source))
    assert np.allclose(weights.sum(axis=1), 1, atol=1e-4)
    assert generated[-1] == "</s>"


def test_subject_model_round_trip_gives_identical_outputs(tmp_path, attention_model, held_out):
    spec = get_model("seq2seq-attention")
    save_model(attention_model, spec, tmp_path / "m", params={"seed": 0, **SMALL})
    manifest, loaded = load_model(tmp_path / "m", task="subject")
    assert manifest["labels"] == [] and manifest["model"] == "seq2seq-attention"
    for beam in (1, 3):
        assert loaded.summarize(held_out[0], beam=beam) == attention_model.summarize(
            held_out[0], beam=beam)
    assert loaded.target_vocabulary == attention_model.target_vocabulary
    assert loaded.vectorizer.vocabulary == attention_model.vectorizer.vocabulary
    with pytest.raises(ArtifactError, match="summarize"):
        TextClassifier.load(tmp_path / "m")


def test_seq2seq_without_attention_trains_and_has_no_alignment(held_out):
    model = get_model("seq2seq").make(0, {**SMALL, "epochs": 2})
    model.fit(*keyword_messages(40, seed=0), validation_data=keyword_messages(10, seed=1))
    assert len(model.summarize(held_out[0][:5])) == 5
    with pytest.raises(NewstopicError, match="no attention"):
        model.alignment(held_out[0][0])


def test_retrieval_returns_the_subject_of_the_nearest_training_message():
    bodies = ["rocket launch orbit", "garlic butter sauce", "brake pads and tires"]
    retrieval = RetrievalBaseline().fit(bodies * 2, ["space", "food", "cars"] * 2)
    assert retrieval.summarize(["the sauce needs garlic", "tires and brake"]) == ["food", "cars"]


def test_subject_models_are_registered_apart_from_the_classifiers():
    assert set(model_names("subject")) == {"seq2seq", "seq2seq-attention", "lead", "retrieval"}
    assert "seq2seq-label" in model_names("classify")
    assert not set(model_names("subject")) & set(model_names("classify"))
    with pytest.raises(NewstopicError, match="--task subject"):
        TextClassifier("seq2seq-attention").fit(*make_corpus(per_class=5))


# --- seq2seq-label -----------------------------------------------------------------------------

# Dotted labels of several lengths that share prefixes, and one label of a single segment.
PATH_TOPICS = {
    "rec.autos": "engine wheel brake tire clutch gearbox mechanic".split(),
    "rec.sport.hockey": "puck goalie skate rink stick playoff".split(),
    "sci.space": "orbit rocket planet launch astronaut satellite".split(),
    "sci.med": "doctor pill disease symptom clinic vaccine".split(),
    "cooking": "recipe oven flour butter garlic simmer sauce".split(),
}
LABEL_SMALL = {"max_words": 300, "max_len": 32, "epochs": 6, "patience": None,
               "batch_size": 16, "learning_rate": 0.01, "embed_dim": 16, "units": 16,
               "decoder_units": 16}


def test_label_paths_are_the_dotted_segments_then_the_end():
    from newstopic.layers import LabelPathDecoder

    decoder = LabelPathDecoder.for_labels(["comp.sys.mac", "comp.graphics", "sci"])
    segments = {"comp": 2, "graphics": 3, "mac": 4, "sci": 5, "sys": 6}
    assert decoder.paths == [[2, 6, 4, 1], [2, 3, 1, 0], [5, 1, 0, 0]]
    assert decoder.n_segments == len(segments) + 2


def test_seq2seq_label_classifies_within_the_training_labels(tmp_path):
    train = make_corpus(per_class=20, seed=0, topics=PATH_TOPICS)
    test = make_corpus(per_class=10, seed=5, topics=PATH_TOPICS)
    clf = TextClassifier("seq2seq-label", **LABEL_SMALL).fit(*train)
    assert clf.score(*test) > 0.8
    noise = ["zzz qqq", "the of and", "unheard words only here", test[0][0][::-1]]
    proba = clf.predict_proba(test[0] + noise)
    assert proba.shape == (len(test[0]) + len(noise), len(set(train[1])))
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert set(clf.predict(test[0] + noise)) <= set(train[1])
    clf.save(tmp_path / "m")
    assert np.array_equal(TextClassifier.load(tmp_path / "m").predict_proba(test[0] + noise),
                          proba)


# --- the command line on a tiny 20 Newsgroups folder -----------------------------------------


def write_newsgroups_folder(root, n_train: int = 60, n_test: int = 16):
    """<root>/20news-bydate-{train,test}/<group>/<id>: messages with headers, a subject that is
    the body's keyword, and some to skip (no subject; a body that is only quotes)."""
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 3)):
        bodies, subjects = keyword_messages(n, seed)
        for i, (body, subject) in enumerate(zip(bodies, subjects)):
            group = root / f"20news-bydate-{split}" / ("sci.space" if i % 2 else "rec.autos")
            group.mkdir(parents=True, exist_ok=True)
            prefix = ("Re: ", "RE: ", "Re^2: ", "")[i % 4]
            (group / str(i)).write_text(f"From: x@y.z\nSubject: {prefix}{subject.title()}\n"
                                        f"Lines: 3\n\n{body}\n", encoding="latin-1")
        (group / "9001").write_text("From: x@y.z\nLines: 1\n\nno subject at all\n")
        (group / "9002").write_text("From: x@y.z\nSubject: Re: quoted\n\n> only a quote\n")
    return root


def test_subject_dataset_skips_and_counts_empty_subjects_and_bodies(tmp_path):
    data = load_subjects(write_newsgroups_folder(tmp_path / "news"))
    assert data.config["skipped"] == {"train": 2, "test": 2}
    assert len(data.train_texts) == 60 and len(data.test_labels) == 16
    assert all(s.endswith(" question") and s == s.lower() for s in data.train_labels)
    assert data.config["remove"] == ["headers", "footers", "quotes"]


def test_benchmark_and_summarize_from_the_command_line(tmp_path):
    news = write_newsgroups_folder(tmp_path / "news")
    out = tmp_path / "bench"
    result = run_cli("benchmark", "--task", "subject", "--data", news, "--models",
                     "lead,retrieval,seq2seq-attention", "--epochs", "3", "--out", out,
                     "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # --quiet: no progress and no library log lines
    summary = json.loads((out / "results.json").read_text())
    assert summary["task"] == "subject" and summary["skipped"] == {"train": 2, "test": 2}
    assert summary["command"].startswith("newstopic benchmark --task subject --data ")
    assert [r["model"] for r in summary["results"]] == ["lead", "retrieval", "seq2seq-attention"]
    for row in summary["results"]:
        assert {"rouge1", "rouge2", "rougeL", "exact_match", "train_seconds"} <= set(row)
        assert 0 <= row["rougeL"] <= 1
    assert summary["results"][2]["epochs_run"] == 3
    report = (out / "report.md").read_text()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "subject-run.json").write_text((out / "results.json").read_text())
    page = render_results(tmp_path / "docs")
    assert "## subject-run" in page and summary["command"] in page and "| ROUGE-1 |" in page
    assert report.count("   - true: **") == 10 and "attention_alignment.png" in report
    assert (out / "attention_alignment.png").stat().st_size > 0

    model = out / "models" / "seq2seq-attention"
    result = run_cli("summarize", "--model", model, "--beam", "2", "the orbit orbit orbit",
                     "a brake brake and the brake")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    # evaluate scores it on its own test messages, as the benchmark did
    result = run_cli("evaluate", "--model", model, "--out", tmp_path / "eval", "--quiet")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("seq2seq-attention\tROUGE-1 ") and line.endswith("\t16 messages")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["rougeL"] == summary["results"][2]["rougeL"] and metrics["beam"] == 1
    assert len(metrics["predictions"]) == 16
    assert_one_line_error(run_cli("evaluate", "--model", model, "--beam", "0"), "--beam")
    assert_one_line_error(run_cli("predict", "--model", model, "x"), "newstopic summarize")
    assert_one_line_error(run_cli("train", "--task", "subject", "--model", "tfidf-svm",
                                  "--data", news, "--out", tmp_path / "m"), "classifier")
