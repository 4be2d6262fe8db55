"""The one triage of model errors, used by every call site.

A model call can fail in two ways that look alike from a call site and must not be
treated alike. Output problems (the model's wording did not meet its schema, or the
backend cannot constrain output to it) are the model being a small model: a caller
degrades to its fallback (an agent hesitates, a resolution is asked again, a heuristic
importance is used). Everything else (a replay miss, a server gone after its retries, a
missing model file, a bug) means the step cannot be what it claims to be: degrading
would write a "complete" run that is not one. Those are raised, and the engine aborts
the step, commits nothing and restores its last committed state.

`LanguageModel.complete` names the failed call's purpose and agent in a fatal
`LLMError`'s message; `triage` is what call sites that gather answers with
`return_exceptions=True` run on each answer."""

from __future__ import annotations

from typing import Any

from concordia_like.llm.errors import OutputError


def triage(answer: Any) -> Any:
    """The completion, or the `OutputError` to degrade on; anything else is raised."""
    if isinstance(answer, OutputError):
        return answer
    if isinstance(answer, BaseException):
        raise answer
    return answer


__all__ = ["OutputError", "triage"]
