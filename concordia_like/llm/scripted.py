"""A deterministic, rule-driven stand-in for a language model.

For fast tests and dry runs only: it is never the default, and the CLI names it when it
is in use. Rules are tried in order (first match wins); a structured request no rule
answers gets a valid instance of its schema, chosen by a hash of the request, so that
any schema the library builds can be exercised with no model at all."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from concordia_like.llm.backend import Backend
from concordia_like.llm.types import LLMRequest, RawCompletion

Responder = str | Callable[[LLMRequest], str]


@dataclass
class Rule:
    """Answer requests whose last message matches `pattern` (and `purpose`, if set)."""

    pattern: str
    response: Responder
    purpose: str | None = None

    def matches(self, request: LLMRequest) -> bool:
        if self.purpose is not None and request.purpose != self.purpose:
            return False
        return re.search(self.pattern, request.messages[-1].content, re.S) is not None


class ScriptedBackend(Backend):
    name = "scripted"
    max_batch = 256

    #: the most recent requests kept in `requests_seen`: tests read the last few, and a
    #: long-lived process (a soak, a sandbox on the scripted model) must not keep them all
    #: (a request holds its prompt and schema, tens of kilobytes)
    keep_requests = 1_000

    def __init__(self, rules: list[Rule] | None = None, default_text: str | None = None) -> None:
        self.rules = list(rules or [])
        self.default_text = default_text
        self.requests_seen: list[LLMRequest] = []

    @property
    def model(self) -> str:
        return "scripted-v1"

    def add_rule(self, pattern: str, response: Responder, purpose: str | None = None) -> None:
        self.rules.append(Rule(pattern, response, purpose))

    async def generate_batch(self, requests: list[LLMRequest]) -> list[RawCompletion | Exception]:
        out: list[RawCompletion | Exception] = []
        for req in requests:
            self.requests_seen.append(req)
            text = self._answer(req)
            prompt_tokens = sum(_count_tokens(m.content) for m in req.messages)
            completion_tokens = _count_tokens(text)
            finish: Literal["stop", "length"] = "stop"
            if completion_tokens > req.sampling.max_tokens and req.json_schema is None:
                text = " ".join(text.split()[: req.sampling.max_tokens])
                completion_tokens, finish = req.sampling.max_tokens, "length"
            out.append(RawCompletion(text, prompt_tokens, completion_tokens, finish))
        if len(self.requests_seen) > self.keep_requests:
            del self.requests_seen[: -self.keep_requests]
        return out

    def _answer(self, req: LLMRequest) -> str:
        for rule in self.rules:
            if rule.matches(req):
                return rule.response(req) if callable(rule.response) else rule.response
        rng = random.Random(_seed_of(req))
        if req.choices is not None:
            return rng.choice(req.choices)
        if req.json_schema is not None:
            schema = req.json_schema
            return json.dumps(example_for_schema(schema, rng, schema.get("$defs", {})))
        if self.default_text is not None:
            return self.default_text
        who = req.agent or "someone"
        return f"{who} considers the situation and carries on."


def _seed_of(req: LLMRequest) -> int:
    h = hashlib.sha256(req.key("scripted", "scripted-v1").encode()).digest()
    return int.from_bytes(h[:8], "big")


def _count_tokens(text: str) -> int:
    """A rough token count (about 4 characters a token), enough for accounting."""
    return max(1, (len(text) + 3) // 4)


def example_for_schema(schema: dict[str, Any], rng: random.Random, defs: dict[str, Any]) -> Any:
    """A value that satisfies `schema` (the subset of JSON schema pydantic emits)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return example_for_schema(defs[name], rng, defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_for_schema(rng.choice(options), rng, defs)
    if "allOf" in schema:
        return example_for_schema(schema["allOf"][0], rng, defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {
            name: example_for_schema(sub, rng, defs)
            for name, sub in props.items()
            if name in schema.get("required", []) or rng.random() < 0.5
        }
    if kind == "array":
        lo = schema.get("minItems", 1)
        hi = max(lo, min(schema.get("maxItems", lo + 2), lo + 2))
        items = schema.get("items", {"type": "string"})
        return [example_for_schema(items, rng, defs) for _ in range(rng.randint(lo, hi))]
    if kind == "string":
        lo, hi = schema.get("minLength", 1), schema.get("maxLength", 40)
        words = ["a", "quiet", "morning", "in", "town", "people", "talk", "bread", "market"]
        chosen = [rng.choice(words) for _ in range(8)]
        pattern = schema.get("pattern")
        for n in range(len(chosen), 0, -1):  # fewer words until a pattern's bounds hold
            text = " ".join(chosen[:n])[:hi]
            text += "x" * max(0, lo - len(text))
            if pattern is None or re.search(pattern, text):
                break
        return text
    if kind in ("integer", "number"):
        lo = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        hi = schema.get("maximum", schema.get("exclusiveMaximum", lo + 10))
        value = rng.randint(int(lo), int(hi))
        return value if kind == "integer" else float(value)
    if kind == "boolean":
        return rng.random() < 0.5
    return None
