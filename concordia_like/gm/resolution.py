"""The schema a Game Master's model answers a free-form action under.

Built per action from the relevant slice of the world, like the agents' action schema:
every name in an effect is an enum of the real names involved (the actor and the people
present, the places at hand, the items held here), so the model cannot invent a
holder or a place. What it can still do is propose effects the rules forbid (take what
is not held, walk to a closed shop, mint money): the world's validator refuses those,
whatever the schema let through."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

OUTCOME_MAX = 160
MAX_EFFECTS = 3


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


def _lit(values: tuple[str, ...]) -> Any:
    return Literal[values]  # type: ignore[valid-type]


@lru_cache(maxsize=2048)
def resolution_schema(
    agents: tuple[str, ...],
    places: tuple[str, ...],
    holders: tuple[str, ...],
    items: tuple[str, ...],
    attributes: tuple[str, ...],
) -> type[BaseModel]:
    """{success, outcome, effects[]} with effects restricted to the names given."""
    kinds: list[type[BaseModel]] = []
    if agents and places:
        kinds.append(
            create_model(
                "MoveOut",
                __base__=_Out,
                kind=(Literal["move"], ...),
                agent=(_lit(agents), ...),
                to=(_lit(places), ...),
            )
        )
    if items and holders:
        kinds.append(
            create_model(
                "TransferOut",
                __base__=_Out,
                kind=(Literal["transfer"], ...),
                item=(_lit(items), ...),
                from_=(_lit(holders), Field(alias="from")),
                to=(_lit(holders), ...),
                quantity=(int, Field(1, ge=1, le=10)),
            )
        )
        kinds.append(
            create_model(
                "DestroyOut",
                __base__=_Out,
                kind=(Literal["destroy"], ...),
                item=(_lit(items), ...),
                holder=(_lit(holders), ...),
                quantity=(int, Field(1, ge=1, le=10)),
            )
        )
    if agents and attributes:
        kinds.append(
            create_model(
                "SetOut",
                __base__=_Out,
                kind=(Literal["set"], ...),
                agent=(_lit(agents), ...),
                attribute=(_lit(attributes), ...),
                delta=(int, Field(ge=-50, le=50)),
            )
        )
    if holders:
        kinds.append(
            create_model(
                "CreateOut",
                __base__=_Out,
                kind=(Literal["create"], ...),
                item=(str, Field(min_length=1, max_length=30)),
                holder=(_lit(holders), ...),
                quantity=(int, Field(1, ge=1, le=10)),
            )
        )
    effect: Any = kinds[0]
    for k in kinds[1:]:
        effect = effect | k
    if len(kinds) > 1:
        effect = Annotated[effect, Field(discriminator="kind")]
    return create_model(
        "Resolution",
        __base__=_Out,
        success=(bool, ...),
        outcome=(str, Field(max_length=OUTCOME_MAX, description="what happens, one sentence")),
        effects=(list[effect], Field(default_factory=list, max_length=MAX_EFFECTS)),
    )


def effects_as_dicts(resolution: BaseModel) -> list[dict[str, Any]]:
    """The resolution's effects in the world's effect language (`from`, not `from_`)."""
    return [e.model_dump(by_alias=True) for e in getattr(resolution, "effects", [])]
