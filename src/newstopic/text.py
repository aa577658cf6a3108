"""Texts to padded sequences of word ids, with a vocabulary fitted on the training texts only.

Tokenizing is Keras' `TextVectorization` (lowercase, punctuation stripped, split on white
space), run in a `tf.data` pipeline so that it works under every Keras backend. Truncation to
`max_len` keeps the head, the tail or both ends of a long document.
"""

from __future__ import annotations

import re

import numpy as np

PAD, OOV = 0, 1
TRUNCATIONS = ("head", "tail", "head+tail")
BATCH = 4096
# What TextVectorization splits on and strips: ASCII white space, then ASCII punctuation.
_CHUNK = re.compile(r"[^ \t\n\r\f\v]+")
_PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'"


class SequenceVectorizer:
    """Word ids, padded after the text with 0; 1 stands for words outside the vocabulary."""

    def __init__(self, max_words: int = 20000, max_len: int = 256, truncate: str = "head",
                 vocabulary: list[str] | None = None):
        if truncate not in TRUNCATIONS:
            raise ValueError(f"truncate must be one of {', '.join(TRUNCATIONS)}, not {truncate!r}")
        self.max_words, self.max_len, self.truncate = max_words, max_len, truncate
        self.vocabulary = vocabulary
        self._layer = None

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def fit(self, texts: list[str]) -> "SequenceVectorizer":
        import tensorflow as tf
        from keras.layers import TextVectorization

        layer = TextVectorization(max_tokens=self.max_words, output_mode="int", ragged=True)
        layer.adapt(tf.data.Dataset.from_tensor_slices(list(texts)).batch(BATCH))
        self.vocabulary = [str(term) for term in layer.get_vocabulary()]
        self._layer = layer
        return self

    def ids(self, texts: list[str]) -> list[np.ndarray]:
        """Every word id of each text, untruncated."""
        import tensorflow as tf

        if self._layer is None:
            from keras.layers import TextVectorization

            self._layer = TextVectorization(vocabulary=self.vocabulary, output_mode="int",
                                            ragged=True)
        sequences = []
        for batch in tf.data.Dataset.from_tensor_slices(list(texts)).batch(BATCH).map(self._layer):
            flat = batch.flat_values.numpy().astype(np.int32)
            sequences.extend(np.split(flat, np.cumsum(batch.row_lengths().numpy())[:-1]))
        return sequences

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
