"""A hashing stand-in for the sentence embedder, for runs that exercise the loop, the
Game Master and the store rather than the quality of retrieval (the engine and CLI
tests, the soak benchmark), where the real model would cost most of each step.

Words map to fixed random directions (seeded by the word), so equal texts get equal
vectors and texts sharing words are similar, with no model at all. SQL, Chroma and
scoring stay real."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

import concordia_like.memory.embedder as embedder_module
from concordia_like.memory.embedder import DIM

_WORD = re.compile(r"\w+")

#: words whose vectors are kept (a word's vector is the same whenever it is made)
MAX_WORDS = 4096


class HashEmbedder:
    dim = DIM
    name = "hash-test-embedder"

    def __init__(self) -> None:
        self.encoded = 0
        self._words: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        vec = self._words.get(word)
        if vec is None:
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
            vec = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            if len(self._words) >= MAX_WORDS:  # bounded: a long run meets new words
                del self._words[next(iter(self._words))]  # (dates, sums) every day
            self._words[word] = vec
        return vec

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                out[i] += self._word(word)
            norm = float(np.linalg.norm(out[i]))
            out[i] = out[i] / norm if norm > 0 else self._word("")
        self.encoded += len(texts)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def cache_clear(self) -> None:
        self._words.clear()


def install() -> HashEmbedder:
    """Make every MemoryStore opened from now on in this process use a HashEmbedder
    (also a Ray worker's set-up: `worker_setup="concordia_like.memory.hash_embedder:install"`)."""
    embedder = HashEmbedder()
    embedder_module._default = embedder  # type: ignore[assignment]
    return embedder
