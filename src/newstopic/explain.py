"""Why a text got its label: a score for each of its words, for every kind of model.

Attention models give their attention weights; TF-IDF linear models give each word's share of
the predicted class's score (its TF-IDF value times the class's coefficient); any other model is
explained by occlusion, the drop in the predicted class's probability when the word is removed,
all variants of the text predicted in one batch. Words keep their character offsets into the
text, so that a highlight maps back onto it.
"""

from __future__ import annotations

import html
import re
import warnings
from dataclasses import dataclass

import numpy as np

from newstopic.errors import NewstopicError
from newstopic.predictor import ATTENTION
from newstopic.text import OOV

_WORD = re.compile(r"\w+")
# Words a model without a vectorizer (an ensemble) is explained by removing, one at a time: each
# removal is one more text to predict, so a long text would cost its length squared. As a
# sequence model's words past max_len, the rest score 0.
MAX_OCCLUDED = 256


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int
    score: float


@dataclass
class Explanation:
    """The predicted label and every scored word of the text, in order; `known_words` is false
    for a text without a word the model knows (its probabilities are the class prior)."""

    text: str
    label: str
    probability: float
    method: str  # "attention", "linear" or "occlusion"
    tokens: list[Token]
    top_k: int = 10
    known_words: bool = True

    @property
    def top(self) -> list[tuple[str, float]]:
        """The `top_k` words that speak most for the label (a repeated word's scores summed)."""
        totals: dict[str, float] = {}
        for token in self.tokens:
            word = token.text.lower()
            totals[word] = totals.get(word, 0.0) + token.score
        ranked = sorted(totals.items(), key=lambda item: -item[1])
        return [(word, score) for word, score in ranked[:self.top_k] if score > 0]

    def highlighted(self) -> list[Token]:
        """The tokens of the top words, each scored relative to the strongest (0..1]."""
        top = dict(self.top)
        strongest = max(top.values(), default=0.0)
        return [Token(t.text, t.start, t.end, top[t.text.lower()] / strongest)
                for t in self.tokens if t.text.lower() in top]

    def to_dict(self) -> dict:
        return {"label": self.label, "probability": self.probability, "method": self.method,
                "tokens": [{"text": t.text, "start": t.start, "end": t.end, "score": t.score}
                           for t in self.tokens],
                "top": [{"word": word, "score": score} for word, score in self.top],
                "known_words": self.known_words}


def explain(model, text: str, top_k: int = 10) -> Explanation:
    """Explain the prediction of a fitted predictor for one text: by its linear shares where it
    has `word_scores`, by attention where it can, else by occlusion (anything with `classes_`
    and `predict_proba`)."""
    if not isinstance(text, str):
        raise NewstopicError(f"explain takes one text (str), got {type(text).__name__}")
    if top_k < 1:
        raise NewstopicError(f"top_k {top_k} must be at least 1")
    if hasattr(model, "word_scores"):
        proba, known, spans, scores, method = _linear(model, text)
    elif ATTENTION in getattr(model, "capabilities", ()):
        proba, known, spans, scores, method = _attention(model, text)
    else:
        proba, known, spans, scores, method = _occlusion(model, text)
    column = int(proba.argmax())
    tokens = [Token(text[start:end], start, end, float(score))
              for (start, end), score in zip(spans, scores)]
    return Explanation(text, str(model.classes_[column]), float(proba[column]), method, tokens,
                       top_k, bool(known))


def _linear(model, text: str):
    proba, known = predict_known(model, [text])
    spans, scores = model.word_scores(text, int(proba[0].argmax()))
    return proba[0], known[0], spans, scores, "linear"


def _attention(model, text: str):
    ids, proba, weights = model.attention_weights([text])
    spans = model.vectorizer.word_spans(text)
    scores = np.zeros(len(spans))
    if spans:  # the model reads the kept positions only; the rest of a long text scores 0
        kept = model.vectorizer.keep(np.arange(len(spans)))
        scores[kept] = weights[0, :len(kept)]
    return proba[0], (ids[0] > OOV).any(), spans, scores, "attention"


def _occlusion(model, text: str):
    vectorizer = getattr(model, "vectorizer", None)
    if vectorizer is not None:
        spans = vectorizer.word_spans(text)
        read = vectorizer.keep(np.arange(len(spans)))  # removing any other word changes nothing
    else:
        spans = [m.span() for m in _WORD.finditer(text)]
        read = np.arange(min(len(spans), MAX_OCCLUDED))
    variants = [text] + [text[:spans[i][0]] + text[spans[i][1]:] for i in read]
    proba, known = predict_known(model, variants)
    column = int(proba[0].argmax())
    scores = np.zeros(len(spans))
    scores[read] = proba[0, column] - proba[1:, column]
    return proba[0], known[0], spans, scores, "occlusion"


class NoKnownWordWarning(UserWarning):
    """A text holds no word the model knows: its probabilities are the class prior."""


def predict_known(predictor, texts) -> tuple[np.ndarray, np.ndarray]:
    """(class probabilities, whether each text holds a word the model knows)."""
    if hasattr(predictor, "predict_known"):
        return predictor.predict_known(texts)
    return predictor.predict_proba(texts), np.ones(len(texts), dtype=bool)


def warn_unknown(known: np.ndarray, first: int = 0) -> None:
    """A `NoKnownWordWarning` naming the texts (counted from 1 + `first`) with no known word."""
    unknown = np.flatnonzero(~np.asarray(known)) + 1 + first
    if unknown.size:
        shown = ", ".join(map(str, unknown[:5])) + (", ..." if unknown.size > 5 else "")
        warnings.warn(f"{unknown.size} text(s) hold no word the model knows (text {shown}): "
                      "their probabilities are the class prior", NoKnownWordWarning,
                      stacklevel=3)


def ranked_labels(proba: np.ndarray, labels: list[str], top_k: int) -> list[dict]:
    """Per row of probabilities: the label, its probability and the `top_k` labels with theirs,
    as `newstopic predict --json` and POST /predict give them."""
    records = []
    for row in proba:
        top = [[labels[i], round(float(row[i]), 6)] for i in row.argsort()[::-1][:top_k]]
        records.append({"label": top[0][0], "probability": top[0][1], "top": top})
    return records


# --- showing an explanation ---------------------------------------------------------------


def marked_text(explanation: Explanation, mark, escape=str) -> str:
    """The text with each top word replaced by `mark(word, strength)` and the rest `escape`d."""
    text, parts, position = explanation.text, [], 0
    for token in explanation.highlighted():
        parts += [escape(text[position:token.start]), mark(token.text, token.score)]
        position = token.end
    return "".join(parts + [escape(text[position:])])


def html_page(explanations: list[Explanation], title: str) -> str:
    """A self-contained page (no external file) showing each text with its top words marked."""

    def mark(word: str, strength: float) -> str:
        return (f'<mark style="background: rgba(255, 140, 0, {0.25 + 0.75 * strength:.2f})">'
                f"{html.escape(word)}</mark>")

    sections = []
    for explanation in explanations:
        marked = marked_text(explanation, mark, html.escape)
        words = "".join(f"<li>{html.escape(word)} <small>{score:.4f}</small></li>"
                        for word, score in explanation.top)
        sections.append(
            f"<section><h2>{html.escape(explanation.label)} "
            f"<small>{explanation.probability:.4f} ({explanation.method})</small></h2>"
            f"<p class=\"text\">{marked}</p><ol>{words}</ol></section>")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:50rem;margin:1rem auto;"
            "padding:0 1rem;line-height:1.5}.text{white-space:pre-wrap}"
            "mark{border-radius:3px;padding:0 2px}section{border-bottom:1px solid #ddd}"
            f"</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}"
            "</body></html>\n")

