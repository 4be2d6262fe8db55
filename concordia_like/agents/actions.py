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


@lru_cache(maxsize=4096)
def action_schema(
    reachable: tuple[str, ...],
    present: tuple[str, ...],
    held: tuple[str, ...],
    usable: tuple[str, ...],
) -> Any:
    """The annotated union of the actions open to an agent, discriminated by `kind`."""
    text = (str, Field(max_length=TEXT_MAX, description="what you do, in a short sentence"))
    members: list[type[BaseModel]] = []
    if reachable:
        members.append(
            create_model(
                "Move",
                __base__=ActionBase,
                kind=(Literal["move"], ...),
                to=(_lit(reachable), ...),
                text=text,
            )
        )
    if present:
        members.append(
            create_model(
                "Say",
                __base__=ActionBase,
                kind=(Literal["say"], ...),
                to=(_lit(present), ...),
                text=(str, Field(max_length=WORDS_MAX, description="the words you say")),
            )
        )
        if held:
            members.append(
                create_model(
                    "Give",
                    __base__=ActionBase,
                    kind=(Literal["give"], ...),
                    item=(_lit(held), ...),
                    to=(_lit(present), ...),
                    quantity=(int, Field(1, ge=1, le=20)),
                    text=text,
                )
            )
    if usable:
        members.append(
            create_model(
                "Use",
                __base__=ActionBase,
                kind=(Literal["use"], ...),
                item=(_lit(usable), ...),
                text=text,
            )
        )
    members.append(
        create_model("Wait", __base__=ActionBase, kind=(Literal["wait"], ...), text=text)
    )
    members.append(
        create_model("Continue", __base__=ActionBase, kind=(Literal["continue"], ...), text=text)
    )
    members.append(
        create_model("Other", __base__=ActionBase, kind=(Literal["other"], ...), text=text)
    )
    if len(members) == 1:
        return members[0]
    union = members[0]
    for m in members[1:]:
        union = union | m  # type: ignore[assignment]
    return Annotated[union, Field(discriminator="kind")]


def schema_for(reachable: list[str], present: list[str], held: list[str], usable: list[str]) -> Any:
    return action_schema(
        tuple(sorted(reachable)),
        tuple(sorted(present)),
        tuple(sorted(held)),
        tuple(sorted(usable)),
    )
