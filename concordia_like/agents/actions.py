"""The action an agent may take, as a schema built per agent and step from the world.

A union of typed actions, each with enums of its valid targets: the places reachable
from here, the people present, the items held. Decoding under this schema can only
yield actions that are well formed and name real things; a small model left free puts
sentences where names belong. A kind with no valid target (nobody to talk to, nothing
to give) is left out of the union. The action classes are written once, and an agent's
schema narrows them (`concordia_like.llm.narrowed`): agents in the same situation share
one, and a new situation costs tens of microseconds, not a new pydantic class."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field

from concordia_like.llm.narrowed import Narrowed, union_of

TEXT_MAX = 100
WORDS_MAX = 140

ACTION_KINDS = ("move", "say", "give", "use", "wait", "continue", "other")

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


@lru_cache(maxsize=4096)
def action_schema(
    reachable: tuple[str, ...],
    listeners: tuple[str, ...],
    held: tuple[str, ...],
    usable: tuple[str, ...],
    givees: tuple[str, ...] = (),
) -> Narrowed:
    """The actions open to an agent, discriminated by `kind`: `move` to any of
    `reachable`, `say` to any of `listeners`, `give` one of `held` to any of `givees`,
    `use` any of `usable`; a kind with no target is left out."""
    exclude = [
        kind
        for kind, open_ in (
            ("Move", reachable),
            ("Say", listeners),
            ("Give", held and givees),
            ("Use", usable),
        )
        if not open_
    ]
    names = {
        ("Move", "to"): reachable,
        ("Say", "to"): listeners,
        ("Give", "item"): held if givees else (),
        ("Give", "to"): givees if held else (),
        ("Use", "item"): usable,
    }
    return Narrowed.of(ACTION, names, exclude)


def schema_for(
    reachable: list[str],
    present: list[str],
    held: list[str],
    usable: list[str],
    actor: str | None = None,
) -> Narrowed:
    """The schema of an agent with `present` others around. With `actor`, the people it
    may speak to are everyone at the place, itself included (speaking to oneself is
    thinking aloud), so that agents at one place holding nothing share one schema, and
    a backend compiles one grammar for them all."""
    listeners = set(present) | ({actor} if actor is not None and present else set())
    return action_schema(
        tuple(sorted(reachable)),
        tuple(sorted(listeners)),
        tuple(sorted(held)),
        tuple(sorted(usable)),
        tuple(sorted(present)) if held else (),
    )
