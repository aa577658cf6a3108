"""Texts to padded sequences of word ids, with a vocabulary fitted on the training texts only.

Words are what Keras' `TextVectorization` made of a text in earlier versions, so that saved
models keep their word ids: ASCII letters lowercased, ASCII punctuation deleted (also inside a
word: "e-mail" is "email"), then split on ASCII white space. Plain Python and NumPy, so that
every Keras backend runs it and no TensorFlow is needed. Truncation to `max_len` keeps the
head, the tail or both ends of a long document.
"""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np

PAD, OOV = 0, 1
PAD_TOKEN, OOV_TOKEN = "", "[UNK]"
TRUNCATIONS = ("head", "tail", "head+tail")
_PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'"
# Only ASCII: TensorFlow's lower() and white-space split, which made the saved vocabularies,
# leave "É" and U+00A0 alone.
_STANDARDIZE = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, _PUNCTUATION)
_CHUNK = re.compile(r"[^ \t\n\r\f\v]+")


def words(text: str) -> list[str]:
    """The words of `text`, as the vectorizer reads them."""
    return _CHUNK.findall(text.translate(_STANDARDIZE))


class SequenceVectorizer:
    """Word ids, padded after the text with 0; 1 stands for words outside the vocabulary."""

    def __init__(self, max_words: int = 20000, max_len: int = 256, truncate: str = "head",
                 vocabulary: list[str] | None = None):
        if truncate not in TRUNCATIONS:
            raise ValueError(f"truncate must be one of {', '.join(TRUNCATIONS)}, not {truncate!r}")
        self.max_words, self.max_len, self.truncate = max_words, max_len, truncate
        self.vocabulary = vocabulary
        self._index = None

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def fit(self, texts: list[str]) -> "SequenceVectorizer":
        """The `max_words - 2` most frequent words, most frequent first, ties in reverse
        alphabetical order (as TextVectorization ordered them), after padding and unknown."""
        counts = Counter()
        for text in texts:
            counts.update(words(text))
        ranked = sorted(counts.items(), key=lambda item: (item[1], item[0]), reverse=True)
        self.vocabulary = [PAD_TOKEN, OOV_TOKEN] + [w for w, _ in ranked[:self.max_words - 2]]
        self._index = None
        return self

    def ids(self, texts: list[str]) -> list[np.ndarray]:
        """Every word id of each text, untruncated."""
        if self._index is None:
            self._index = {word: i for i, word in enumerate(self.vocabulary) if i > OOV}
        lookup = self._index.get
        return [np.fromiter((lookup(w, OOV) for w in words(text)), dtype=np.int32)
                for text in texts]

    def transform(self, texts: list[str]) -> np.ndarray:
        """An (n, max_len) int32 array; a text with no words gets one out-of-vocabulary id so
        that no row is all padding."""
        out = np.zeros((len(texts), self.max_len), dtype=np.int32)
        for row, ids in enumerate(self.ids(texts)):
            kept = self.keep(ids) if len(ids) else [OOV]
            out[row, :len(kept)] = kept
        return out

    def keep(self, ids: np.ndarray) -> np.ndarray:
        """The ids that fit in `max_len`, chosen by `truncate`."""
        if len(ids) <= self.max_len:
            return ids
        if self.truncate == "head":
            return ids[:self.max_len]
        if self.truncate == "tail":
            return ids[-self.max_len:]
        head = self.max_len // 2
        return np.concatenate([ids[:head], ids[len(ids) - (self.max_len - head):]])

    @staticmethod
    def word_spans(text: str) -> list[tuple[int, int]]:
        """The (start, end) characters of each word the vectorizer reads, in order: one per id
        of `ids([text])[0]`, without the punctuation around the word."""
        spans = []
        for chunk in _CHUNK.finditer(text):
            word = chunk.group().strip(_PUNCTUATION)
            if word:  # a chunk of punctuation alone is no word
                start = chunk.start() + chunk.group().index(word)
                spans.append((start, start + len(word)))
        return spans

    def tokens(self, ids) -> list[str]:
        return [self.vocabulary[i] for i in ids]

    def to_dict(self) -> dict:
        return {"max_words": self.max_words, "max_len": self.max_len, "truncate": self.truncate,
                "vocabulary": self.vocabulary}

    @classmethod
    def from_dict(cls, data: dict) -> "SequenceVectorizer":
        return cls(data["max_words"], data["max_len"], data["truncate"], data["vocabulary"])
