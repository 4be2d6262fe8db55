"""Asking an OpenAI-compatible server for structured output, and the one fallback
between the two forms servers take (used by the `openai` backend and by the `langchain`
backend's OpenAI-family models).

The portable form is OpenAI's
`response_format={"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`,
which vLLM, llama.cpp's C++ server, Ollama and OpenAI itself constrain decoding with.
llama-cpp-python's server (`python -m llama_cpp.server`) rejects that form (its request
model only knows `"text"` and `"json_object"`; it answers HTTP 500 naming
`response_format`) and instead constrains with
`response_format={"type": "json_object", "schema": ...}`, which it turns into a GBNF
grammar. In the mode "auto" a backend sends the portable form first and, once the server
rejects it, the `json_object` + `schema` form for the rest of the session. Choices are
sent as the schema of a string enum. Whatever the server does, the client layer
validates every structured output."""

from __future__ import annotations

import logging
from typing import Any, Literal

from concordia_like.llm.structured import closed
from concordia_like.llm.types import LLMRequest
from concordia_like.text import identifier

log = logging.getLogger(__name__)

StructuredMode = Literal["auto", "json_schema", "json_object", "none"]
STRUCTURED_MODES: tuple[str, ...] = ("auto", "json_schema", "json_object", "none")


def schema_name(schema: dict[str, Any] | None, fallback: str = "output") -> str:
    """A name for `json_schema.name`: letters, digits, `_` and `-`, at most 64."""
    title = schema.get("title") if isinstance(schema, dict) else None
    return identifier(str(title or fallback), fallback)


def response_format_for(
    request: LLMRequest, mode: str, *, strict: bool = True
) -> dict[str, Any] | None:
    """The `response_format` that constrains `request` under `mode`
    ("json_schema": OpenAI's portable form; "json_object": llama-cpp-python's form)."""
    if request.json_schema is None or mode == "none":
        return None
    schema = closed(request.json_schema)
    if mode == "json_object":
        return {"type": "json_object", "schema": schema}
    fallback = "choice" if request.choices is not None else "output"
    return {
        "type": "json_schema",
        "json_schema": {"name": schema_name(schema, fallback), "schema": schema, "strict": strict},
    }


def looks_like_response_format_rejection(status: int | None, body: str) -> bool:
    """Whether an error answer says the server does not take this `response_format`.

    OpenAI-style servers answer 400/422; llama-cpp-python's server wraps its request
    validation error in a 500 whose message names the field."""
    if status not in (400, 422, 500):
        return False
    low = body.lower()
    return "response_format" in low or "json_schema" in low


class ResponseFormats:
    """Which form a backend sends, learnt once per session (see the module's text)."""

    def __init__(self, mode: str, *, strict: bool = True) -> None:
        if mode not in STRUCTURED_MODES:
            raise ValueError(
                f"structured_output must be one of {', '.join(STRUCTURED_MODES)}, not {mode!r}"
            )
        #: the configured mode; "auto" becomes "json_object" once a server rejects
        #: the portable form
        self.mode = mode
        self.strict = strict

    def first(self) -> str:
        """The form to send a request in now."""
        return "json_schema" if self.mode == "auto" else self.mode

    def response_format(self, request: LLMRequest, form: str) -> dict[str, Any] | None:
        return response_format_for(request, form, strict=self.strict)

    def falls_back(
        self, request: LLMRequest, sent: str, status: int | None, body: str, server: str
    ) -> bool:
        """Whether an error answer to `request`, sent in the form `sent`, is to be asked
        again in the `json_object` form; the first such rejection in the mode "auto"
        settles the session on that form (requests already in flight in the portable
        form fall back too)."""
        if not (
            self.mode in ("auto", "json_object")
            and sent == "json_schema"
            and request.json_schema is not None
            and looks_like_response_format_rejection(status, body)
        ):
            return False
        if self.mode == "auto":
            log.info(
                "%s does not take response_format json_schema; using json_object with a "
                "schema (llama-cpp-python's form) from now on",
                server,
            )
            self.mode = "json_object"
        return True
