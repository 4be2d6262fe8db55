"""The effect language: the only ways the world's state can change.

Five kinds, one pydantic model each, discriminated by `kind`. The same models are the
JSON schema of the Game Master's model output (`effects: list[Effect]`), of a scenario's
interventions and of a world's scheduled events, so a model's answer, a script and a
YAML file all speak one language and pass one validator (`world.rules`).

Names in effects are the world's own: an agent is named by its persona name, a place by
its id, an item by its id or by its name (`"bread"`), which picks the holder's one stack
of that name. `from` and `to` of a transfer are each an agent name or a place id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

NAME = Field(min_length=1, max_length=80)
PropertyValue = str | int | float | bool
Number = int | float


class _Effect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: str

    def describe(self) -> str:
        raise NotImplementedError


class MoveEffect(_Effect):
    """`agent` walks to `to`, which must connect to where they are and be open."""

    kind: Literal["move"] = "move"
    agent: str = NAME
    to: str = NAME

    def describe(self) -> str:
        return f"move {self.agent} to {self.to}"


class TransferEffect(_Effect):
    """`quantity` of `item` goes from one holder to another (a give, take, drop, sale)."""

    kind: Literal["transfer"] = "transfer"
    item: str = NAME
    from_: str = Field(alias="from", min_length=1, max_length=80)
    to: str = NAME
    quantity: int = Field(1, ge=1)

    def describe(self) -> str:
        return f"transfer {self.quantity} {self.item} from {self.from_} to {self.to}"


class SetEffect(_Effect):
    """An agent's attribute becomes `value`, or changes by `delta` (exactly one is given).

    `delta` is what a Game Master should usually write ("energy -10"): it composes with
    other actions of the same step, where an absolute value computed from an older view
    would overwrite them."""

    kind: Literal["set"] = "set"
    agent: str = NAME
    attribute: str = NAME
    value: Number | None = None
    delta: Number | None = None

    def describe(self) -> str:
        if self.delta is not None and self.value is None:
            return f"set {self.agent}'s {self.attribute} by {self.delta:+g}"
        return f"set {self.agent}'s {self.attribute} to {self.value}"


class CreateEffect(_Effect):
    """`quantity` new `item` (a name) appear with `holder`: baking, harvest, a letter written."""

    kind: Literal["create"] = "create"
    item: str = NAME
    holder: str = NAME
    quantity: int = Field(1, ge=1)
    properties: dict[str, PropertyValue] = Field(default_factory=dict, max_length=16)

    def describe(self) -> str:
        return f"create {self.quantity} {self.item} held by {self.holder}"


class DestroyEffect(_Effect):
    """`quantity` of `item` held by `holder` cease to exist: eaten, burnt, used up."""

    kind: Literal["destroy"] = "destroy"
    item: str = NAME
    holder: str = NAME
    quantity: int = Field(1, ge=1)

    def describe(self) -> str:
        return f"destroy {self.quantity} {self.item} held by {self.holder}"


Effect = Annotated[
    MoveEffect | TransferEffect | SetEffect | CreateEffect | DestroyEffect,
    Field(discriminator="kind"),
]
EFFECT_KINDS = ("move", "transfer", "set", "create", "destroy")
EFFECT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Effect)
EFFECT_LIST_ADAPTER: TypeAdapter[Any] = TypeAdapter(list[Effect])


def parse_effect(raw: Any) -> Any:
    """A dict (or model) as an Effect; pydantic's ValidationError if it is not one."""
    if isinstance(raw, _Effect):
        return raw
    return EFFECT_ADAPTER.validate_python(raw)


def effect_to_dict(effect: Any) -> dict[str, Any]:
    """JSON-ready dict with the field names of the schema (`from`, not `from_`)."""
    return effect.model_dump(by_alias=True, mode="json", exclude_none=True)
