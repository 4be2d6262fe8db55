"""Sampling per purpose, and seeds that make a run's seed matter.

A simulation asks the model for different things: acting and speech want a role-play
temperature (at 0 every seed of a scenario is a near-copy and cloned residents act in
lockstep), importance and the Game Master's resolutions want to be steady. A policy
names the sampling of each purpose; a `LanguageModel` that has one applies it to every
request it answers, and derives each request's seed from (run seed, step, agent,
purpose, the request's own seed), so the same run seed reproduces a run and another
gives another run on every backend that takes a seed. A policy is recorded with the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from concordia_like.llm.types import LLMRequest

PURPOSES: tuple[str, ...] = ("act", "speech", "resolve", "plan", "reflect", "importance")
Purpose = Literal["act", "speech", "resolve", "plan", "reflect", "importance"]


def derive_seed(*parts: Any) -> int:
    """A 32-bit seed from any parts, stable across processes and platforms."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big")


class PurposeSampling(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)


class PurposeOverride(BaseModel):
    """Some fields of one purpose's sampling, as a world file or a run config sets them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)


#: what a world file's `sampling:` section holds, e.g. {act: {temperature: 0.9}}
SamplingOverrides = dict[Purpose, PurposeOverride]


class SamplingPolicy(BaseModel):
    """Sampling of each purpose of a simulation's calls; other purposes are left as
    their requests say."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    act: PurposeSampling = PurposeSampling(temperature=0.8, top_p=0.95)
    speech: PurposeSampling = PurposeSampling(temperature=0.8, top_p=0.95)
    resolve: PurposeSampling = PurposeSampling(temperature=0.2, top_p=1.0)
    plan: PurposeSampling = PurposeSampling(temperature=0.7, top_p=0.95)
    reflect: PurposeSampling = PurposeSampling(temperature=0.5, top_p=0.95)
    importance: PurposeSampling = PurposeSampling(temperature=0.0, top_p=1.0)

    def for_purpose(self, purpose: str) -> PurposeSampling | None:
        return getattr(self, purpose) if purpose in PURPOSES else None

    def apply(self, request: LLMRequest, run_seed: int, step: int) -> LLMRequest:
        s = request.sampling
        seed = derive_seed(run_seed, step, request.agent, request.purpose, s.seed)
        mine = self.for_purpose(request.purpose)
        update: dict[str, Any] = {"seed": seed}
        if mine is not None:
            update |= {"temperature": mine.temperature, "top_p": mine.top_p}
        return request.model_copy(update={"sampling": s.model_copy(update=update)})

    def with_overrides(
        self, overrides: dict[str, dict[str, float]] | SamplingOverrides
    ) -> SamplingPolicy:
        """This policy with some purposes' fields changed (validated like the rest)."""
        data = self.model_dump()
        for purpose, fields in overrides.items():
            if isinstance(fields, PurposeOverride):
                fields = fields.model_dump(exclude_none=True)
            data.setdefault(purpose, {}).update(fields)
        return SamplingPolicy.model_validate(data)


def parse_overrides(items: list[str]) -> dict[str, dict[str, float]]:
    """`act=0.9` (a temperature) or `act.top_p=0.9`, as the CLI's `--sampling` takes
    them. Raises ValueError naming the item that is wrong."""
    out: dict[str, dict[str, float]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        purpose, _, field = key.strip().partition(".")
        field = field or "temperature"
        if not sep or purpose not in PURPOSES or field not in PurposeSampling.model_fields:
            raise ValueError(
                f"--sampling {item!r}: expected PURPOSE=T or PURPOSE.FIELD=V with PURPOSE one "
                f"of {', '.join(PURPOSES)} and FIELD temperature or top_p"
            )
        try:
            out.setdefault(purpose, {})[field] = float(value)
        except ValueError:
            raise ValueError(f"--sampling {item!r}: {value!r} is not a number") from None
        try:  # the bounds too, so that a mistake is refused before anything is written
            PurposeOverride.model_validate(out[purpose])
        except ValidationError as exc:
            why = exc.errors()[0]["msg"].lower()
            raise ValueError(f"--sampling {item!r}: {field} {why}") from None
    return out


#: (run seed, step) of the step under way; set by the engine around each step
_STEP: ContextVar[tuple[int, int]] = ContextVar("concordia_like_step", default=(0, 0))


@contextmanager
def step_scope(run_seed: int, step: int) -> Iterator[None]:
    """Requests made inside (and in tasks started inside) belong to this step."""
    token = _STEP.set((run_seed, step))
    try:
        yield
    finally:
        _STEP.reset(token)


def current_step() -> tuple[int, int]:
    return _STEP.get()
