"""The language-model layer: one async interface, cross-agent batching, backends, cache."""

from concordia_like.llm.backend import Backend
from concordia_like.llm.cache import ResponseCache
from concordia_like.llm.client import LanguageModel
from concordia_like.llm.errors import (
    BackendUnavailableError,
    CacheMissError,
    LLMError,
    ModelFileError,
    StructuredOutputError,
    UnknownBackendError,
)
from concordia_like.llm.registry import (
    BACKENDS,
    BackendOptions,
    make_backend,
    open_model,
    run_models,
)
from concordia_like.llm.scripted import Rule, ScriptedBackend
from concordia_like.llm.types import Completion, LLMRequest, Message, RawCompletion, Sampling
from concordia_like.llm.usage import UsageLedger

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendOptions",
    "BackendUnavailableError",
    "CacheMissError",
    "Completion",
    "LLMError",
    "LLMRequest",
    "LanguageModel",
    "Message",
    "ModelFileError",
    "RawCompletion",
    "ResponseCache",
    "Rule",
    "Sampling",
    "ScriptedBackend",
    "StructuredOutputError",
    "UnknownBackendError",
    "UsageLedger",
    "make_backend",
    "open_model",
    "run_models",
]
