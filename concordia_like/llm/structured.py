"""Parsing and validating a completion against its request's constraint.

Backends constrain decoding where they can, but model output is never trusted: every
structured completion is validated here, whatever backend produced it."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from concordia_like.llm.errors import StructuredOutputError
from concordia_like.llm.types import LLMRequest, RawCompletion


def parse_output(request: LLMRequest, raw: RawCompletion) -> Any:
    """Return the validated object (or chosen option); raise with the raw text if invalid."""
    text = raw.text
    cut = (
        f" (cut off at max_tokens={request.sampling.max_tokens})"
        if raw.finish_reason == "length"
        else ""
    )
    if request.choices is not None:
        choice = _as_choice(text)
        if choice not in request.choices:
            raise StructuredOutputError(
                f"output is not one of the {len(request.choices)} choices{cut}", text
            )
        return choice
    if request.adapter is not None:
        try:
            return request.adapter.validate_json(_strip_fences(text))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "<root>"
            raise StructuredOutputError(
                f"output does not match the schema at {where}: {first.get('msg')}{cut}", text
            ) from None
    return None


def _as_choice(text: str) -> str:
    t = text.strip()
    if t.startswith('"'):
        try:
            value = json.loads(t)
        except json.JSONDecodeError:
            return t
        return value if isinstance(value, str) else t
    return t


def _strip_fences(text: str) -> str:
    """Servers without constrained decoding sometimes wrap JSON in a markdown fence."""
    t = text.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else t[3:]
        if t.rstrip().endswith("```"):
            t = t.rstrip()[:-3]
    return t


def closed_schema(schema: Any) -> Any:
    """`schema` with every object that lists its properties closed to others
    (`additionalProperties: false` where the schema says nothing): a server's grammar
    (vLLM's) otherwise lets a small model invent keys until max_tokens, where llama.cpp's
    grammar (the embedded backend's) allows only the listed ones; OpenAI's strict mode
    asks for it too."""
    if isinstance(schema, list):
        return [closed_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            # names to schemas: a property may well be called "properties"
            out[key] = {name: closed_schema(sub) for name, sub in value.items()}
        else:
            out[key] = closed_schema(value)
    if isinstance(out.get("properties"), dict) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})


#: closed schemas by the id of the schema they close (kept alive beside it, so that the
#: id is not reused): a request's schema is one object per narrowing, closed once
_CLOSED: dict[int, tuple[Any, Any]] = {}
_CLOSED_MAX = 1024


def closed(schema: Any) -> Any:
    """`closed_schema(schema)`, made once per schema object."""
    hit = _CLOSED.get(id(schema))
    if hit is None or hit[0] is not schema:
        if len(_CLOSED) >= _CLOSED_MAX:
            _CLOSED.clear()
        hit = (schema, closed_schema(schema))
        _CLOSED[id(schema)] = hit
    return hit[1]
