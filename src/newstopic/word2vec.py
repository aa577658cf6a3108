"""Skip-gram word vectors, trained by gensim in a child process of their own.

The child is `python -m newstopic.word2vec IN OUT SEED`: it reads the sentences from a JSON
file and writes the vectors to an `.npz` file (no pickle either way). A plain command, not
`multiprocessing`, whose spawned children re-import the caller's main module: a user's script
without a main guard, `python -c` or standard input would then run again, or hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

from newstopic.errors import NewstopicError

DIM = 128


class WordVectors:
    """Words and their vectors: `vectors["word"]`, `vectors[["a", "b"]]`, `key_to_index`."""

    def __init__(self, words: list[str], matrix: np.ndarray):
        self.words, self.matrix = list(words), matrix
        self.key_to_index = {word: i for i, word in enumerate(self.words)}

    def __getitem__(self, words):
        if isinstance(words, str):
            return self.matrix[self.key_to_index[words]]
        return self.matrix[[self.key_to_index[word] for word in words]]


def train(sentences: list[list[str]], seed: int) -> WordVectors:
    """Skip-gram vectors of every word of `sentences`, in this process."""
    from gensim.models import Word2Vec

    # Small corpora need more passes: about 3 million word updates, 5 to 50 epochs.
    epochs = int(np.clip(3e6 / max(1, sum(map(len, sentences))), 5, 50))
    # One worker: gensim is only reproducible single-threaded.
    vectors = Word2Vec(sentences, vector_size=DIM, window=5, min_count=1, sg=1, epochs=epochs,
                       workers=1, seed=seed, hashfxn=_stable_hash).wv
    return WordVectors(list(vectors.index_to_key), np.asarray(vectors.vectors))


def train_in_a_process(sentences: list[list[str]], seed: int) -> WordVectors:
    """`train(sentences, seed)` in a child process; its failure is a one-line error."""
    with tempfile.TemporaryDirectory(prefix="newstopic-word2vec-") as directory:
        source, target = Path(directory) / "sentences.json", Path(directory) / "vectors.npz"
        source.write_text(json.dumps(sentences), encoding="utf-8")
        package_root = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
        done = subprocess.run([sys.executable, "-m", "newstopic.word2vec", str(source),
                               str(target), str(seed)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        if done.returncode != 0 or not target.is_file():
            last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])
            raise NewstopicError(f"word2vec ended without vectors (exit code {done.returncode}: "
                                 f"{last[-1]}): rerun, or train with word2vec=False")
        with np.load(target, allow_pickle=False) as arrays:
            return WordVectors(arrays["words"].tolist(), arrays["vectors"])


def _stable_hash(text: str) -> int:
    """gensim seeds each word vector from a hash of the word: Python's own hash changes from
    one process to the next, this one does not."""
    return zlib.crc32(text.encode("utf-8"))


def _main(source: str, target: str, seed: str) -> None:
    sentences = json.loads(Path(source).read_text(encoding="utf-8"))
    vectors = train(sentences, int(seed))
    with open(target, "wb") as f:
        np.savez(f, words=np.array(vectors.words, dtype=str), vectors=vectors.matrix)


if __name__ == "__main__":
    _main(*sys.argv[1:])
