"""The boundary objects of the language-model layer.

Every backend speaks in these, so that the batcher, the cache and the usage accounting
are written once. A request carries everything that determines its answer (messages,
sampling, output constraint, seed), which is what makes the cache key and exact replay
possible; `purpose`, `agent` and `why` only label it for accounting.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from concordia_like.llm.narrowed import Narrowed

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


class Sampling(BaseModel):
    model_config = ConfigDict(frozen=True)

    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(128, ge=1, le=8192)
    stop: tuple[str, ...] = ()
    seed: int = 0
    #: llama.cpp's repeat penalty over the tokens generated so far (1.0: none); an
    #: OpenAI-compatible server gets it as `repetition_penalty` (vLLM, llama.cpp's
    #: server) and `frequency_penalty`
    repeat_penalty: float = Field(1.0, ge=1.0, le=2.0)

    def key_dump(self) -> dict[str, Any]:
        """What the cache key holds of the sampling: everything, except a repeat penalty
        left at 1.0, so that caches recorded before it existed still answer."""
        dump = self.model_dump()
        if dump["repeat_penalty"] == 1.0:
            del dump["repeat_penalty"]
        return dump


class LLMRequest(BaseModel):
    """One model call. `schema` (any pydantic-compatible type: a model, a union, an
    annotated type) or `choices` constrains the output; at most one of them is set."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    messages: tuple[Message, ...]
    sampling: Sampling = Sampling()
    schema_: Any = Field(default=None, alias="schema")
    choices: tuple[str, ...] | None = None
    purpose: str = "other"
    agent: str | None = None
    #: why the call is made, where the caller says (an act call's attention reasons,
    #: `agents.attention`): counted apart in the usage ledger
    why: str | None = None
    #: openings of the last message, each longer than the one before, that other
    #: requests share (an agent's standing at a place, which lasts for steps, then its
    #: whole situation, asked what it does and then what it says): a backend that keeps
    #: prefixes may keep the prompt up to the end of each. A hint about cost, not part
    #: of the question: it is left out of the cache key
    heads: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_constraint(self) -> LLMRequest:
        if self.schema_ is not None and self.choices is not None:
            raise ValueError("a request takes a schema or choices, not both")
        if self.choices is not None and len(self.choices) == 0:
            raise ValueError("choices must not be empty")
        if not self.messages:
            raise ValueError("a request needs at least one message")
        return self

    @classmethod
    def chat(
        cls,
        prompt: str,
        *,
        system: str | None = None,
        schema: Any = None,
        choices: list[str] | tuple[str, ...] | None = None,
        purpose: str = "other",
        agent: str | None = None,
        heads: tuple[str, ...] = (),
        **sampling: Any,
    ) -> LLMRequest:
        msgs = [Message(role="system", content=system)] if system else []
        msgs.append(Message(role="user", content=prompt))
        return cls(
            messages=tuple(msgs),
            sampling=Sampling(**sampling),
            schema=schema,
            choices=tuple(choices) if choices is not None else None,
            purpose=purpose,
            agent=agent,
            heads=heads,
        )

    @cached_property
    def adapter(self) -> Any:
        return _adapter(self.schema_)[0] if self.schema_ is not None else None

    @cached_property
    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema a backend constrains decoding with; choices become a string enum."""
        if self.schema_ is not None:
            return _adapter(self.schema_)[1]
        if self.choices is not None:
            return {"type": "string", "enum": list(self.choices)}
        return None

    def key(self, backend: str, model: str) -> str:
        """Cache key: everything that determines the answer, nothing that only labels it."""
        payload = {
            "backend": backend,
            "model": model,
            "messages": [m.model_dump() for m in self.messages],
            "sampling": self.sampling.key_dump(),
            "schema": self.json_schema if self.schema_ is not None else None,
            "choices": list(self.choices) if self.choices is not None else None,
        }
        raw = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()


_ADAPTERS: dict[int, tuple[Any, TypeAdapter[Any], dict[str, Any]]] = {}


def _adapter(schema: Any) -> tuple[Any, dict[str, Any]]:
    """What validates a schema's output (`validate_json`) and its JSON schema: for a type,
    one TypeAdapter per schema object (building one costs about a millisecond, and a
    simulation sends the same few schemas thousands of times); a `Narrowed` schema is
    its own."""
    if isinstance(schema, Narrowed):
        return schema, schema.json_schema
    hit = _ADAPTERS.get(id(schema))
    if hit is None or hit[0] is not schema:
        if len(_ADAPTERS) > 8192:
            _ADAPTERS.clear()
        adapter = TypeAdapter(schema)
        hit = (schema, adapter, adapter.json_schema())
        _ADAPTERS[id(schema)] = hit  # the entry keeps `schema` alive, so its id stays its own
    return hit[1], hit[2]


@dataclass
class RawCompletion:
    """What a backend returns for one request, before parsing."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"] = "stop"


@dataclass
class Completion:
    """What a caller gets: the text, the validated object where a schema or choices were
    given, token counts, the latency the caller saw, and whether it came from the cache."""

    text: str
    parsed: Any
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: Literal["stop", "length"] = "stop"
    cached: bool = False
    backend: str = ""
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
