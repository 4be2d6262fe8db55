"""Backend names to backends, the options a backend is built from, and the one place a
LanguageModel is assembled (`open_model`; runs that share it `borrow` it).

Backends are imported lazily: the scripted model must not pay for llama.cpp, and the
langchain backend is an optional extra."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concordia_like.errors import ConfigError
from concordia_like.llm.backend import Backend
from concordia_like.llm.cache import CacheMode, ResponseCache
from concordia_like.llm.client import LanguageModel
from concordia_like.llm.errors import UnknownBackendError
from concordia_like.llm.faults import FaultInjectingBackend

#: a run's response cache, in its run folder
CACHE_FILE = "cache.sqlite"


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


@dataclass(frozen=True)
class BackendOptions:
    """What a backend is built from: the `--backend`, `--model`, `--base-url`,
    `--api-key` and `--model-path` flags, a scenario's `model:`, or what a run recorded.
    A field left None is unset: `or_recorded` fills it, `make` leaves it to the
    backend's default. `base_url` is one URL or several (requests spread over them)."""

    backend: str | None = None
    model: str | None = None
    base_url: str | list[str] | None = None
    api_key: str | None = None
    model_path: str | Path | None = None
    #: the deadline of one request over HTTP (openai: all its tries together; langchain:
    #: each try); not recorded with a run: it bounds waiting, not what the run is
    request_timeout: float | None = None

    @property
    def name(self) -> str:
        return self.backend or DEFAULT_BACKEND

    def or_recorded(self, recorded: Mapping[str, Any]) -> BackendOptions:
        """These options, with those left unset taken from `recorded` (a run's config as
        `recorded()` wrote it, or a scenario's model): a run goes on with the backend it
        was recorded with unless told otherwise. The key is never recorded."""
        return BackendOptions(
            backend=self.backend or recorded.get("backend"),
            model=self.model or recorded.get("model"),
            base_url=self.base_url or recorded.get("base_url"),
            api_key=self.api_key,
            model_path=self.model_path or recorded.get("model_path"),
            request_timeout=self.request_timeout,
        )

    def recorded(self) -> dict[str, Any]:
        """What a run records of its backend (never the key)."""
        return {
            "backend": self.name,
            "base_url": self.base_url,
            "model": self.model,
            "model_path": str(self.model_path) if self.model_path else None,
        }

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `make_backend`, only those that apply to this backend."""
        urls = [self.base_url] if isinstance(self.base_url, str) else list(self.base_url or [])
        path = Path(self.model_path) if self.model_path else None
        if self.name == "embedded":
            return {"model_path": path}
        if self.name == "vllm":
            return {"model": self.model or (str(path) if path else None)}
        timeout = {"timeout_s": self.request_timeout} if self.request_timeout else {}
        if self.name == "openai":
            return {
                "base_url": urls or None,
                "model": self.model,
                "api_key": self.api_key,
                **timeout,
            }
        if self.name == "langchain":
            if len(urls) > 1:
                raise ConfigError("the langchain backend takes one --base-url, not several")
            url = urls[0] if urls else None
            return {"base_url": url, "model": self.model, "api_key": self.api_key, **timeout}
        return {}

    def make(self) -> Backend:
        return make_backend(self.name, **self.kwargs())


def open_cache(path: str | Path, mode: CacheMode = "readwrite") -> ResponseCache | None:
    """The response cache at `path`, or none when `mode` is off."""
    return None if mode == "off" else ResponseCache(path, mode)


def open_model(
    backend: BackendOptions | Backend | str = DEFAULT_BACKEND,
    *,
    cache: ResponseCache | None = None,
    faults: float = 0.0,
    fault_seed: int = 0,
) -> LanguageModel:
    """A language model that owns its backend: made from options or a backend's name,
    or handed over made. `faults` > 0 puts the fault-injecting wrapper around it (that
    fraction of calls answered as a faulty model would, seeded by `fault_seed`). Close
    it with `aclose` or `async with`; runs that share it take `borrow`ed models
    (`run_models`)."""
    if isinstance(backend, str):
        backend = BackendOptions(backend)
    made = backend.make() if isinstance(backend, BackendOptions) else backend
    if faults > 0:
        made = FaultInjectingBackend(made, faults, seed=fault_seed)
    return LanguageModel(made, cache=cache)


def run_models(
    lender: LanguageModel, cache_mode: CacheMode = "off", cache_path: str | Path | None = None
) -> Callable[[Path], LanguageModel]:
    """The model factory of runs that share `lender`'s backend (what `start_run` and
    `resume_run` take): each run borrows it, with its own usage ledger and, unless
    `cache_mode` is off, its own response cache (in its run folder unless `cache_path`
    names one file for all)."""

    def model_of_run(folder: Path) -> LanguageModel:
        return lender.borrow(cache=open_cache(cache_path or folder / CACHE_FILE, cache_mode))

    return model_of_run
