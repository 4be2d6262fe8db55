"""Backend names to backends, and the one place a LanguageModel is assembled.

Backends are imported lazily: the scripted model must not pay for llama.cpp, and the
langchain backend is an optional extra."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concordia_like.llm.backend import Backend
from concordia_like.llm.cache import CacheMode, ResponseCache
from concordia_like.llm.client import LanguageModel
from concordia_like.llm.errors import UnknownBackendError


@dataclass(frozen=True)
class BackendInfo:
    name: str
    summary: str
    factory: Callable[..., Backend]


def _embedded(**opts: Any) -> Backend:
    from concordia_like.llm.embedded import EmbeddedBackend

    return EmbeddedBackend(**opts)


def _openai(**opts: Any) -> Backend:
    from concordia_like.llm.openai_compat import OpenAIBackend

    return OpenAIBackend(**opts)


def _vllm(**opts: Any) -> Backend:
    from concordia_like.llm.vllm_backend import VLLMBackend

    return VLLMBackend(**opts)


def _langchain(**opts: Any) -> Backend:
    from concordia_like.llm.langchain_backend import LangChainBackend

    return LangChainBackend.from_options(**opts)


def _scripted(**opts: Any) -> Backend:
    from concordia_like.llm.scripted import ScriptedBackend

    return ScriptedBackend(**opts)


BACKENDS: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo(
            "embedded",
            "SmolLM2-135M-Instruct in process on llama.cpp (default; no key, no network)",
            _embedded,
        ),
        BackendInfo(
            "openai",
            "any OpenAI-compatible server over HTTP (vllm serve, llama.cpp server, Ollama)",
            _openai,
        ),
        BackendInfo(
            "vllm",
            "vLLM in process (extra concordia-like[vllm]; --model: a Hugging Face folder or "
            "a GGUF, default the shipped SmolLM2, converted once)",
            _vllm,
        ),
        BackendInfo("langchain", "any LangChain chat model (optional extra)", _langchain),
        BackendInfo(
            "scripted", "deterministic rule-driven model for tests and dry runs", _scripted
        ),
    )
}

DEFAULT_BACKEND = "embedded"


def make_backend(name: str = DEFAULT_BACKEND, **opts: Any) -> Backend:
    info = BACKENDS.get(name)
    if info is None:
        raise UnknownBackendError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    return info.factory(**{k: v for k, v in opts.items() if v is not None})


def make_language_model(
    name: str = DEFAULT_BACKEND,
    *,
    cache_path: str | Path | None = None,
    cache_mode: CacheMode = "readwrite",
    **opts: Any,
) -> LanguageModel:
    backend = make_backend(name, **opts)
    cache = (
        ResponseCache(cache_path, cache_mode)
        if cache_path is not None and cache_mode != "off"
        else None
    )
    return LanguageModel(backend, cache=cache)
