"""Errors of the language-model layer; each message says what failed and where."""

from __future__ import annotations

from concordia_like.errors import ConcordiaError


class LLMError(ConcordiaError):
    """Base of language-model failures. Only `OutputError`s are the model's wording;
    every other one is fatal to the step that met it (see `llm.triage`)."""


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


class ModelCallError(LLMError):
    """A model call failed for a reason that is not its output (a server gone, a replay
    miss, a missing model file, a bug): raised by `triage` to abort the step, naming
    the call's purpose and agent, with the original error as its cause."""

    def __init__(self, message: str, *, purpose: str, agent: str | None, cause: BaseException):
        super().__init__(message)
        self.purpose = purpose
        self.agent = agent
        self.cause = cause
