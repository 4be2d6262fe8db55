"""Errors of the language-model layer; each message says what failed and where."""

from __future__ import annotations

from concordia_like.errors import ConcordiaError


class LLMError(ConcordiaError):
    """Base of language-model failures. Only `OutputError`s are the model's wording;
    every other one is fatal to the step that met it (see `llm.triage`).
    `LanguageModel.complete` names the call that failed in the message and in
    `purpose` and `agent`."""

    purpose: str | None = None
    agent: str | None = None


class UnknownBackendError(LLMError):
    pass


class ModelFileError(LLMError):
    pass


class BackendUnavailableError(LLMError):
    """The backend could not be reached or kept failing after its retries."""


class OutputError(LLMError):
    """What the model said (or would be allowed to say) is unusable: the one kind of
    model failure a caller may degrade on, since asking again or falling back cannot
    hide a lost server or a departed replay."""


class SchemaRefusedError(OutputError):
    """The backend cannot constrain output to the request's schema (no grammar could be
    made of it, or the server refused it)."""


class StructuredOutputError(OutputError):
    """The model's output did not satisfy the request's schema or choices.

    Carries the raw text so that callers can log it or retry with the reason."""

    def __init__(self, message: str, raw_text: str) -> None:
        super().__init__(f"{message}; raw output: {raw_text[:300]!r}")
        self.reason = message
        self.raw_text = raw_text


class CacheMissError(LLMError):
    """Replay mode met a request the cache has never seen: the run is not reproducible."""
