"""What an agent may do in a step, as a schema built per agent and step from the world.

The model decodes a *decision* (`decision_schema`): a union of typed kinds, each with
enums of its valid targets (the places reachable from here, the people present, the
items held), so decoding can only yield a decision that is well formed and names real
things; a small model left free puts sentences where names belong. A kind with no
valid target (nobody to talk to, nothing to give) is left out of the union. The kinds
are written once, and an agent's schema narrows them (`concordia_like.llm.narrowed`):
agents in the same situation share one, and a new situation costs dictionary work,
not a new pydantic class.

A decision holds no sentence except for the free-form kinds (`use`, `other`), which the
Game Master needs described: a small model asked for a JSON "text" writes "says", or
the prompt back in a loop. The words of a `say` are written apart, as plain text
(`agents.speech`), and `to_action` makes the full action (`ACTION`) the Game Master
grounds."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from concordia_like.llm.narrowed import Narrowed, union_of
from concordia_like.text import one_line

TEXT_MAX = 100
WORDS_MAX = 140

_TEXT = Field(max_length=TEXT_MAX, description="what you do, in a short sentence")


class ActionBase(BaseModel):
    """What every action carries: the agent's own words for what it does."""

    kind: str
    text: str = _TEXT


class Move(ActionBase):
    kind: Literal["move"]
    to: str


class Say(ActionBase):
    kind: Literal["say"]
    to: str
    text: str = Field(max_length=WORDS_MAX, description="the words you say")


class Give(ActionBase):
    kind: Literal["give"]
    item: str
    to: str
    quantity: int = Field(1, ge=1, le=20)


class Use(ActionBase):
    kind: Literal["use"]
    item: str


class Wait(ActionBase):
    kind: Literal["wait"]


class Continue(ActionBase):
    kind: Literal["continue"]


class Other(ActionBase):
    kind: Literal["other"]


ACTION = union_of(Move, Say, Give, Use, Wait, Continue, Other)
_ACTION_ADAPTER = TypeAdapter(ACTION)

# -- decisions: what the act call decodes ---------------------------------------------

_DOING = Field(max_length=80, description="what you do, in a few words")


class MoveTo(BaseModel):
    kind: Literal["move"]
    to: str


class SayTo(BaseModel):
    kind: Literal["say"]
    to: str


class GiveTo(BaseModel):
    kind: Literal["give"]
    item: str
    to: str
    quantity: int = Field(1, ge=1, le=20)


class UseItem(BaseModel):
    kind: Literal["use"]
    item: str
    text: str = _DOING


class WaitHere(BaseModel):
    kind: Literal["wait"]


class CarryOn(BaseModel):
    kind: Literal["continue"]


class OtherAct(BaseModel):
    kind: Literal["other"]
    text: str = _DOING


DECISION = union_of(MoveTo, SayTo, GiveTo, UseItem, WaitHere, CarryOn, OtherAct)


#: a narrowing holds its JSON schema and validators (kilobytes): 10,000 kept grew a
#: soak by hundreds of MiB, and 1,024 still took thousands of steps to fill (RSS kept
#: rising); a step of 100 agents meets about 50 new situations, and making one again
#: is dictionary work, so a few steps' worth is plenty
@lru_cache(maxsize=256)
def decision_schema(
    reachable: tuple[str, ...],
    listeners: tuple[str, ...],
    held: tuple[str, ...],
    usable: tuple[str, ...],
    givees: tuple[str, ...] = (),
) -> Narrowed:
    """The decisions open to an agent, discriminated by `kind`: `move` to any of
    `reachable`, `say` to any of `listeners`, `give` one of `held` to any of `givees`,
    `use` any of `usable`; a kind with no target is left out."""
    exclude = [
        kind
        for kind, open_ in (
            ("MoveTo", reachable),
            ("SayTo", listeners),
            ("GiveTo", held and givees),
            ("UseItem", usable),
        )
        if not open_
    ]
    names = {
        ("MoveTo", "to"): reachable,
        ("SayTo", "to"): listeners,
        ("GiveTo", "item"): held if givees else (),
        ("GiveTo", "to"): givees if held else (),
        ("UseItem", "item"): usable,
    }
    return Narrowed.of(DECISION, names, exclude)


def decision_for(
    reachable: list[str],
    present: list[str],
    held: list[str],
    usable: list[str],
    actor: str | None = None,
) -> Narrowed:
    """The decision schema of an agent with `present` others around. With `actor`, the
    people it may speak to are everyone at the place, itself included (speaking to
    oneself is thinking aloud), so that agents at one place holding nothing share one
    schema, and a backend compiles one grammar for them all."""
    listeners = set(present) | ({actor} if actor is not None and present else set())
    return decision_schema(
        tuple(sorted(reachable)),
        tuple(sorted(listeners)),
        tuple(sorted(held)),
        tuple(sorted(usable)),
        tuple(sorted(present)) if held else (),
    )


def to_action(decision: Any, text: str) -> Any:
    """The full action of a decision, with `text` (the words said, or what the agent is
    doing) where the decision has none of its own. An action already full (a test's,
    a hook's) is returned as it is."""
    if isinstance(decision, ActionBase):
        return decision
    data = decision.model_dump()
    limit = WORDS_MAX if data["kind"] == "say" else TEXT_MAX
    data["text"] = one_line(str(data.get("text") or text), limit)
    return _ACTION_ADAPTER.validate_python(data)
