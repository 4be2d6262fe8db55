"""Errors of the language-model layer; each message says what failed and where."""

from __future__ import annotations

from concordia_like.errors import ConcordiaError


class LLMError(ConcordiaError):
    """Base of language-model failures."""


class UnknownBackendError(LLMError):
    pass


class ModelFileError(LLMError):
    pass


class BackendUnavailableError(LLMError):
    """The backend could not be reached or kept failing after its retries."""


class StructuredOutputError(LLMError):
    """The model's output did not satisfy the request's schema or choices.

    Carries the raw text so that callers can log it or retry with the reason."""

    def __init__(self, message: str, raw_text: str) -> None:
        super().__init__(f"{message}; raw output: {raw_text[:300]!r}")
        self.reason = message
        self.raw_text = raw_text


class CacheMissError(LLMError):
    """Replay mode met a request the cache has never seen: the run is not reproducible."""
