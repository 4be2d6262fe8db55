"""The effect language: the only ways the world's state can change.

Five kinds, one pydantic model each, discriminated by `kind`. The same models are the
JSON schema of a scenario's interventions and of a world's scheduled events, and what
the Game Master's resolutions are turned into, so a model's answer, a script and a
YAML file all speak one language and pass one validator (`world.rules`). Two more
kinds are the world's own, never a resident's (`world.world_effects`): an experiment's
interventions change a price or a rule of the world through them.

Each kind carries its own rules: `check` (whether the world allows it now), `refusal`
(whether one resident's action may have it, `world.authority`), `book` (what it owes
or pays in that action) and `apply`. `world.rules.apply_effects` runs them in that
order, so a new kind of change is one class here.

Names in effects are the world's own: an agent is named by its persona name, a place by
its id, an item by its id or by its name (`"bread"`), which picks the holder's one stack
of that name. `from` and `to` of a transfer are each an agent name or a place id.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from concordia_like.text import squash
from concordia_like.world.authority import Authority, price
from concordia_like.world.code_rules import conserved_items, regrow_rule_of
from concordia_like.world.state import Item, Number, WorldState, name_key, slug

NAME = Field(min_length=1, max_length=80)
PropertyValue = str | int | float | bool


class EffectBase(BaseModel):
    """What every kind of effect answers; see the module's text."""

    # an infinite or NaN value or price would poison sums, bounds and checkpoints
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    kind: str

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, s: WorldState) -> str | None:
        """Why the world does not allow this effect now, or None."""
        raise NotImplementedError

    def refusal(self, bound: Authority) -> str | None:
        """Why `bound.actor`'s action may not have this effect, or None."""
        raise NotImplementedError

    def book(self, bound: Authority, index: int) -> None:
        """Book what this valid effect owes or pays in the action (before it applies)."""

    def apply(self, s: WorldState) -> None:
        """Change `s` (only after `check` passed), through its journaled writes."""
        raise NotImplementedError


class MoveEffect(EffectBase):
    """`agent` walks to `to`, which must connect to where they are and be open."""

    kind: Literal["move"] = "move"
    agent: str = NAME
    to: str = NAME

    def describe(self) -> str:
        return f"move {self.agent} to {self.to}"

    def check(self, s: WorldState) -> str | None:
        if self.agent not in s.agents:
            return f"no agent named {self.agent!r}"
        if self.to not in s.places:
            return f"no place {self.to!r}"
        here = s.location(self.agent)
        if self.to == here:
            return f"{self.agent} is already at {self.to}"
        if self.to not in s.places[here].connections:
            return (
                f"{self.to} does not connect to {here} "
                f"(from there: {', '.join(s.neighbours(here))})"
            )
        return s.entry_refusal(self.agent, self.to)

    def refusal(self, bound: Authority) -> str | None:
        a = bound.actor
        if self.agent != a:
            return (
                f"{self.agent} is another resident: {a}'s action may move only {a} "
                f"({self.agent} goes where they choose to go)"
            )
        return None

    def apply(self, s: WorldState) -> None:
        s.set_location(self.agent, self.to)


class TransferEffect(EffectBase):
    """`quantity` of `item` goes from one holder to another (a give, take, drop, sale)."""

    kind: Literal["transfer"] = "transfer"
    item: str = NAME
    from_: str = Field(alias="from", min_length=1, max_length=80)
    to: str = NAME
    quantity: int = Field(1, ge=1)

    def describe(self) -> str:
        return f"transfer {self.quantity} {self.item} from {self.from_} to {self.to}"

    def check(self, s: WorldState) -> str | None:
        src, dst = self.from_, self.to
        reason = (
            _quantity_problem(s, self.quantity) or holder_missing(s, src) or holder_missing(s, dst)
        )
        if reason:
            return reason
        if src == dst:
            return "source and destination are the same"
        src_agent, dst_agent = src in s.agents, dst in s.agents
        if src_agent and dst_agent:
            if s.location(src) != s.location(dst):
                return f"{dst} is not with {src} (at {s.location(dst)}, not {s.location(src)})"
        elif src_agent:
            if s.location(src) != dst:
                return f"{src} is not at {dst}"
        elif dst_agent:
            if s.location(dst) != src:
                return f"{dst} is not at {src}"
        else:
            return "items do not move between places by themselves; someone must carry them"
        stack, reason = one_stack(s, src, self.item)
        if reason or stack is None:
            return reason
        if stack.quantity < self.quantity:
            return f"{src} holds only {stack.quantity} {stack.name}"
        target = s.stack_named(dst, stack.name)
        if target is not None and target.quantity + self.quantity > s.max_stack:
            return f"{dst} would hold more than {s.max_stack} {stack.name}"
        return None

    def refusal(self, bound: Authority) -> str | None:
        return bound.take_refusal(self.from_, self.item, "take")

    def book(self, bound: Authority, index: int) -> None:
        s, a = bound.state, bound.actor
        place = s.places.get(self.from_)
        if place is None or self.from_ == a or a in place.keyholders or not place.keyholders:
            return
        stack = s.stack(self.from_, self.item)
        cost = price(stack) if stack is not None else None
        if stack is not None and cost is not None:
            what = f"{self.quantity} {stack.name} at {cost:g} {bound.money} each"
            bound.owed.append((index, self.from_, cost * self.quantity, what))

    def apply(self, s: WorldState) -> None:
        stack = s.stack(self.from_, self.item)
        assert stack is not None
        target = s.stack_named(self.to, stack.name)
        if target is None and stack.quantity == self.quantity:
            s.set_holder(stack.id, self.to)  # the whole stack moves and keeps its id
            return
        _take(s, stack, self.quantity)
        _give(s, self.to, stack.name, self.quantity, stack.properties)


class SetEffect(EffectBase):
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

    def outcome(self, s: WorldState) -> tuple[str | None, Number]:
        """(why the world refuses it, or None; the attribute's new value)."""
        if self.agent not in s.agents:
            return f"no agent named {self.agent!r}", 0
        attr = s.attributes.get(self.attribute)
        if attr is None:
            return f"no attribute {self.attribute!r} (attributes: {', '.join(s.attributes)})", 0
        if (self.value is None) == (self.delta is None):
            return "give exactly one of value and delta", 0
        current = s.attribute(self.agent, self.attribute)
        new = self.value if self.value is not None else current + (self.delta or 0)
        if isinstance(new, bool) or not math.isfinite(new):
            return f"{self.attribute} must be a finite number, got {new!r}", 0
        if attr.integer:
            if new != int(new):
                return f"{self.attribute} is a whole number, got {new!r}", 0
            new = int(new)
        if not attr.min <= new <= attr.max:
            return (
                f"{self.attribute} would be {new:g} (now {current:g}), outside its bounds "
                f"{attr.min:g}..{attr.max:g}"
            ), 0
        return None, new

    def change(self, s: WorldState) -> Number:
        """How much the attribute moves (for an effect on an existing agent)."""
        if self.delta is not None:
            return self.delta
        return (self.value or 0) - s.attribute(self.agent, self.attribute)

    def check(self, s: WorldState) -> str | None:
        return self.outcome(s)[0]

    def refusal(self, bound: Authority) -> str | None:
        s, a, who = bound.state, bound.actor, self.agent
        if who == a or who not in s.agents or self.attribute not in s.attributes:
            return None  # the physical check names what does not exist
        attr = s.attributes[self.attribute]
        if attr.conserved and self.change(s) > 0:
            here = s.location(a)
            if s.location(who) == here or who in s.places[here].keyholders:
                return None  # a payment: the conservation check makes it the actor's
            return f"{who} is neither with {a} nor a keeper of {here}: {a} cannot pay them"
        what = f"pay {who} {self.attribute}" if attr.conserved else "not change it"
        return (
            f"{who} is another resident: {a}'s action may change only {a}'s own "
            f"{self.attribute} ({who}'s {self.attribute} is theirs; {a} may {what})"
        )

    def book(self, bound: Authority, index: int) -> None:
        if self.agent != bound.actor and self.attribute == bound.money:
            change = self.change(bound.state)
            bound.paid[self.agent] = bound.paid.get(self.agent, 0) + change

    def apply(self, s: WorldState) -> None:
        s.set_attribute(self.agent, self.attribute, self.outcome(s)[1])


class CreateEffect(EffectBase):
    """`quantity` new `item` (a name) appear with `holder`: baking, harvest, a letter written."""

    kind: Literal["create"] = "create"
    item: str = NAME
    holder: str = NAME
    quantity: int = Field(1, ge=1)
    properties: dict[str, PropertyValue] = Field(default_factory=dict, max_length=16)

    def describe(self) -> str:
        return f"create {self.quantity} {self.item} held by {self.holder}"

    def check(self, s: WorldState) -> str | None:
        reason = (
            _quantity_problem(s, self.quantity)
            or holder_missing(s, self.holder)
            or _conserved(s, self.item, "made")
        )
        if reason:
            return reason
        if not self.item.strip():
            return "an item needs a name"
        target = s.stack_named(self.holder, self.item)
        if target is not None and target.quantity + self.quantity > s.max_stack:
            return f"{self.holder} would hold more than {s.max_stack} {target.name}"
        return None

    def refusal(self, bound: Authority) -> str | None:
        s, a = bound.state, bound.actor
        grown = regrow_rule_of(s, self.item)
        if grown is not None:
            return (
                f"{self.item} come only from {grown.place}, where a rule of the world makes "
                f"them grow: {a} may take them there, not make them"
            )
        here = s.location(a)
        if self.holder in s.agents and self.holder != a:
            return (
                f"{self.holder} is another resident: {a}'s action may make things for "
                f"{a} (or leave them here), then give them"
            )
        if self.holder in s.places and self.holder != here:
            return f"{a} is at {here}, not at {self.holder}"
        return bound.making_refusal(self.item)

    def apply(self, s: WorldState) -> None:
        name = squash(self.item)
        _give(s, self.holder, name, self.quantity, dict(self.properties))
        s.record(s.created, name, self.quantity)


class DestroyEffect(EffectBase):
    """`quantity` of `item` held by `holder` cease to exist: eaten, burnt, used up."""

    kind: Literal["destroy"] = "destroy"
    item: str = NAME
    holder: str = NAME
    quantity: int = Field(1, ge=1)

    def describe(self) -> str:
        return f"destroy {self.quantity} {self.item} held by {self.holder}"

    def check(self, s: WorldState) -> str | None:
        reason = _quantity_problem(s, self.quantity) or holder_missing(s, self.holder)
        if reason:
            return reason
        stack = s.stack(self.holder, self.item)
        if stack is not None and (reason := _conserved(s, stack.name, "destroyed")):
            return reason
        stack, reason = one_stack(s, self.holder, self.item)
        if reason or stack is None:
            return reason
        if stack.quantity < self.quantity:
            return f"{self.holder} holds only {stack.quantity} {stack.name}"
        return None

    def refusal(self, bound: Authority) -> str | None:
        return bound.take_refusal(self.holder, self.item, "destroy")

    def apply(self, s: WorldState) -> None:
        stack = s.stack(self.holder, self.item)
        assert stack is not None
        _take(s, stack, self.quantity)
        s.record(s.destroyed, stack.name, self.quantity)


Effect = Annotated[
    MoveEffect | TransferEffect | SetEffect | CreateEffect | DestroyEffect,
    Field(discriminator="kind"),
]
EFFECT_ADAPTER: TypeAdapter[Effect] = TypeAdapter(Effect)
EFFECT_LIST_ADAPTER: TypeAdapter[list[Effect]] = TypeAdapter(list[Effect])


def parse_effect(raw: EffectBase | dict[str, Any]) -> EffectBase:
    """A dict (or model) as an Effect; pydantic's ValidationError if it is not one."""
    if isinstance(raw, EffectBase):
        return raw
    return EFFECT_ADAPTER.validate_python(raw)


def effect_to_dict(effect: EffectBase) -> dict[str, Any]:
    """JSON-ready dict with the field names of the schema (`from`, not `from_`)."""
    return effect.model_dump(by_alias=True, mode="json", exclude_none=True)


# -- shared by the kinds ----------------------------------------------------------------


def holder_missing(s: WorldState, holder: str) -> str | None:
    """Why `holder` names no agent or place, or None."""
    return None if s.holder_exists(holder) else f"no agent or place named {holder!r}"


def one_stack(s: WorldState, holder: str, ref: str) -> tuple[Item | None, str | None]:
    """The holder's stack that `ref` names, or why there is none."""
    stack = s.stack(holder, ref)
    if stack is None:
        held = ", ".join(f"{i.name} x{i.quantity}" for i in s.items_held(holder)[:8]) or "nothing"
        return None, f"{holder} holds no {ref!r} (holds: {held})"
    return stack, None


def _quantity_problem(s: WorldState, q: int) -> str | None:
    if not isinstance(q, int) or isinstance(q, bool) or q < 1:
        return f"quantity must be a positive whole number, got {q!r}"
    if q > s.max_stack:
        return f"quantity {q} exceeds the world's limit of {s.max_stack}"
    return None


def _conserved(s: WorldState, item: str, verb: str) -> str | None:
    if s.code_rules and name_key(item) in conserved_items(s):
        return f"{item} is conserved here (a rule of the world): it changes hands, it is not {verb}"
    return None


def _take(s: WorldState, stack: Item, quantity: int) -> None:
    """`quantity` leave `stack`: the stack goes when nothing is left of it."""
    if stack.quantity == quantity:
        s.remove_item(stack.id)
    else:
        s.set_quantity(stack.id, stack.quantity - quantity)


def _give(s: WorldState, holder: str, name: str, quantity: int, properties: dict[str, Any]) -> None:
    """`quantity` of `name` arrive at `holder`: joining its stack, else a new stack."""
    target = s.stack_named(holder, name)
    if target is not None:
        s.set_quantity(target.id, target.quantity + quantity)
        return
    item_id = slug(name) if slug(name) not in s.items else s.new_item_id(name)
    s.add_item(Item(item_id, name, holder, quantity, dict(properties)))
