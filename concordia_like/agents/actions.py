"""The action an agent may take, as a schema built per agent and step from the world.

A union of typed actions, each with enums of its valid targets: the places reachable
from here, the people present, the items held. Decoding under this schema can only
yield actions that are well formed and name real things; a small model left free puts
sentences where names belong. A kind with no valid target (nobody to talk to, nothing
to give) is left out of the union. Schemas are memoised by their options: agents in the
same situation share one, and building one costs far more than looking it up."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model

TEXT_MAX = 100
WORDS_MAX = 140

ACTION_KINDS = ("move", "say", "give", "use", "wait", "continue", "other")


class ActionBase(BaseModel):
    """What every action carries: the agent's own words for what it does."""

    kind: str
    text: str


def _lit(values: tuple[str, ...]) -> Any:
    return Literal[values]  # type: ignore[valid-type]


_TEXT = (str, Field(max_length=TEXT_MAX, description="what you do, in a short sentence"))


@lru_cache(maxsize=4096)
def _member(kind: str, **targets: tuple[str, ...]) -> type[BaseModel]:
    """One action of the union, for its own targets only: agents who share some options
    (the places reachable, the items held) share those members, and an agent's schema
    is built from members already made, creating at most the one that is its own (whom
    it can talk to: everyone present but itself)."""
    fields: dict[str, Any] = {"kind": (Literal[kind], ...), "text": _TEXT}  # type: ignore[valid-type]
    if kind == "move":
        fields["to"] = (_lit(targets["to"]), ...)
    elif kind == "say":
        fields["to"] = (_lit(targets["to"]), ...)
        fields["text"] = (str, Field(max_length=WORDS_MAX, description="the words you say"))
    elif kind == "give":
        fields["item"] = (_lit(targets["item"]), ...)
        fields["to"] = (_lit(targets["to"]), ...)
        fields["quantity"] = (int, Field(1, ge=1, le=20))
    elif kind == "use":
        fields["item"] = (_lit(targets["item"]), ...)
    return create_model(kind.title(), __base__=ActionBase, **fields)


@lru_cache(maxsize=4096)
def action_schema(
    reachable: tuple[str, ...],
    listeners: tuple[str, ...],
    held: tuple[str, ...],
    usable: tuple[str, ...],
    givees: tuple[str, ...] = (),
) -> Any:
    """The annotated union of the actions open to an agent, discriminated by `kind`:
    `say` to any of `listeners`, `give` one of `held` to any of `givees`."""
    members: list[type[BaseModel]] = []
    if reachable:
        members.append(_member("move", to=reachable))
    if listeners:
        members.append(_member("say", to=listeners))
    if held and givees:
        members.append(_member("give", item=held, to=givees))
    if usable:
        members.append(_member("use", item=usable))
    members += [_member("wait"), _member("continue"), _member("other")]
    if len(members) == 1:
        return members[0]
    union = members[0]
    for m in members[1:]:
        union = union | m  # type: ignore[assignment]
    return Annotated[union, Field(discriminator="kind")]


def schema_for(
    reachable: list[str],
    present: list[str],
    held: list[str],
    usable: list[str],
    actor: str | None = None,
) -> Any:
    """The schema of an agent with `present` others around. With `actor`, the people it
    may speak to are everyone at the place, itself included (speaking to oneself is
    thinking aloud), so that agents at one place holding nothing share one schema:
    building one costs a millisecond or more, and a step asks for hundreds."""
    listeners = set(present) | ({actor} if actor is not None and present else set())
    return action_schema(
        tuple(sorted(reachable)),
        tuple(sorted(listeners)),
        tuple(sorted(held)),
        tuple(sorted(usable)),
        tuple(sorted(present)) if held else (),
    )
