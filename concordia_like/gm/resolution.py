"""The schema a Game Master's model answers a free-form action under.

Built per action from the relevant slice of the world, like the agents' action schema:
every name in an effect is an enum of the real names involved (the actor and the people
present, the places at hand, the items held here), so the model cannot invent a
holder or a place. What it can still do is propose effects the rules forbid (take what
is not held, walk to a closed shop, mint money): the world's validator refuses those,
whatever the schema let through."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from concordia_like.llm.narrowed import Narrowed, union_of

OUTCOME_MAX = 160
MAX_EFFECTS = 3


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class MoveOut(_Out):
    kind: Literal["move"]
    agent: str
    to: str


class TransferOut(_Out):
    kind: Literal["transfer"]
    item: str
    from_: str = Field(alias="from")
    to: str
    quantity: int = Field(1, ge=1, le=10)


class DestroyOut(_Out):
    kind: Literal["destroy"]
    item: str
    holder: str
    quantity: int = Field(1, ge=1, le=10)


class SetOut(_Out):
    kind: Literal["set"]
    agent: str
    attribute: str
    delta: int = Field(ge=-50, le=50)


class CreateOut(_Out):
    kind: Literal["create"]
    item: str = Field(min_length=1, max_length=30)
    holder: str
    quantity: int = Field(1, ge=1, le=10)


EFFECT = union_of(MoveOut, TransferOut, DestroyOut, SetOut, CreateOut)


class Resolution(_Out):
    success: bool
    outcome: str = Field(max_length=OUTCOME_MAX, description="what happens, one sentence")
    effects: list[EFFECT] = Field(default_factory=list, max_length=MAX_EFFECTS)  # type: ignore[valid-type]


@lru_cache(maxsize=2048)
def resolution_schema(
    agents: tuple[str, ...],
    places: tuple[str, ...],
    holders: tuple[str, ...],
    items: tuple[str, ...],
    attributes: tuple[str, ...],
) -> Narrowed:
    """{success, outcome, effects[]} with effects restricted to the names given; a kind
    of effect with nothing to name is left out."""
    exclude = [
        kind
        for kind, open_ in (
            ("MoveOut", agents and places),
            ("TransferOut", items and holders),
            ("DestroyOut", items and holders),
            ("SetOut", agents and attributes),
            ("CreateOut", holders),
        )
        if not open_
    ]
    names = {
        ("MoveOut", "agent"): agents,
        ("MoveOut", "to"): places,
        ("TransferOut", "item"): items,
        ("TransferOut", "from_"): holders,
        ("TransferOut", "to"): holders,
        ("DestroyOut", "item"): items,
        ("DestroyOut", "holder"): holders,
        ("SetOut", "agent"): agents,
        ("SetOut", "attribute"): attributes,
        ("CreateOut", "holder"): holders,
    }
    return Narrowed.of(Resolution, names, exclude)


def effects_as_dicts(resolution: BaseModel) -> list[dict[str, Any]]:
    """The resolution's effects in the world's effect language (`from`, not `from_`)."""
    return [e.model_dump(by_alias=True) for e in getattr(resolution, "effects", [])]
