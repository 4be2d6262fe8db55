"""The validator: which effects the world allows, applied all together or not at all.

Whatever proposes a change (code grounding a typed action, a model's free-form
resolution, a scenario's intervention, a scheduled event) passes through here, so the
world's constraints hold whatever a model writes:

- move: the agent exists, the destination exists, connects to where the agent is, is
  open now (keyholders may enter a closed place) and is not full;
- transfer: the source holds enough; a transfer between people needs both in one
  place, a take or drop needs the agent at that place; places do not pass items among
  themselves (someone carries them); the receiving stack stays within `max_stack`;
- set: the attribute exists, exactly one of value/delta is given, the result is finite,
  whole for integer attributes, and within bounds (refused, never clamped);
- create/destroy: positive quantities, an existing holder, destroy only what is held,
  and neither of a thing a `conserve` code rule keeps (`world.code_rules`);
- a list of effects may not change the total of a conserved attribute (money changes
  hands, it is not minted): checked over the whole list, since a sale is two sets.

One resident's action (`actor` given) is bounded besides: it may change only that
resident (its place, its attributes), what it holds and what the world leaves open.
Another resident is never moved, never loses a thing and has no attribute changed,
except that it may receive: a thing handed over, or a conserved attribute paid to it
(present, or a keeper of the actor's place). A place's things are open to its keepers,
and at a public place (no keepers, or of kind `public`) to anyone; a priced stack at a
kept place is stock, taken only by buying it: its price times the quantity paid to the
place's keepers in the same effects. A thing a code rule grows (`world.code_rules`:
fish in a lake) is never made by a resident's action, only taken. Effects of the world
itself (scheduled events, interventions: no `actor`) have no such bound. Another
resident's own typed actions (a `give`, a `move`) are how its holdings and place change.

`apply_effects` validates each effect against the state as the earlier ones left it and
undoes everything on the first failure; its reason names the effect.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from concordia_like.world.code_rules import conserved_items, regrow_rule_of
from concordia_like.world.effects import (
    CreateEffect,
    DestroyEffect,
    MoveEffect,
    SetEffect,
    TransferEffect,
    parse_effect,
)
from concordia_like.world.state import Item, Number, Place, WorldState, name_key, slug

EPS = 1e-9


@dataclass(frozen=True)
class ApplyResult:
    """`ok` and the effects applied, or the reason (naming the effect) and its index."""

    ok: bool
    applied: tuple[Any, ...] = ()
    reason: str | None = None
    failed_index: int | None = None

    def __bool__(self) -> bool:
        return self.ok


def validate(state: WorldState, effect: Any) -> str | None:
    """Why `effect` (a model or a dict) may not be applied to `state` now, or None.

    A conserved attribute's total is a property of a whole list of effects, so it is
    checked by `apply_effects`, not here."""
    if isinstance(effect, dict):
        try:
            effect = parse_effect(effect)
        except ValidationError as exc:
            return _parse_reason(exc)
    if isinstance(effect, MoveEffect):
        return _check_move(state, effect)
    if isinstance(effect, TransferEffect):
        return _check_transfer(state, effect)
    if isinstance(effect, SetEffect):
        return _check_set(state, effect)[0]
    if isinstance(effect, CreateEffect):
        return _check_create(state, effect)
    if isinstance(effect, DestroyEffect):
        return _check_destroy(state, effect)
    return f"unknown effect {type(effect).__name__}"


def apply_effects(
    state: WorldState, effects: Iterable[Any], *, actor: str | None = None
) -> ApplyResult:
    """Apply `effects` (models or dicts) in order, atomically: all or nothing.

    With `actor`, they are one resident's action and bounded by its authority (see the
    module's text): an effect on another resident is refused, naming them."""
    effects = list(effects)
    before = state.conserved_totals()
    applied: list[Any] = []
    bound = _Authority(state, actor) if actor is not None else None
    state.begin()
    try:
        for i, raw in enumerate(effects):
            try:
                effect = parse_effect(raw)
            except ValidationError as exc:
                state.rollback()
                return ApplyResult(False, (), f"effect {i + 1}: {_parse_reason(exc)}", i)
            reason = (bound.refusal(effect) if bound else None) or validate(state, effect)
            if reason is not None:
                state.rollback()
                return ApplyResult(False, (), f"effect {i + 1} ({effect.describe()}): {reason}", i)
            if bound:
                bound.note(i, effect)
            _apply(state, effect)
            applied.append(effect)
        unpaid = bound.unpaid() if bound else None
        if unpaid is not None:
            state.rollback()
            index, reason = unpaid
            return ApplyResult(
                False, (), f"effect {index + 1} ({applied[index].describe()}): {reason}", index
            )
        touched = sorted({e.attribute for e in applied if isinstance(e, SetEffect)} & set(before))
        after = state.conserved_totals() if touched else before
        for name in touched:
            change = after[name] - before[name]
            if abs(change) > EPS:
                state.rollback()
                last = max(
                    i for i, e in enumerate(applied) if getattr(e, "attribute", None) == name
                )
                return ApplyResult(
                    False,
                    (),
                    f"effect {last + 1} ({applied[last].describe()}): the effects change the "
                    f"total {name} by {change:+g}, but {name} is conserved: it only moves "
                    "between people, so every decrease needs a matching increase",
                    last,
                )
        state.commit()
    except BaseException:
        state.rollback()
        raise
    return ApplyResult(True, tuple(applied))


def _parse_reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    return (
        f"not a valid effect: {where}: {first['msg']}"
        if where
        else f"not a valid effect: {first['msg']}"
    )


# -- checks ---------------------------------------------------------------------------


def _check_move(s: WorldState, e: MoveEffect) -> str | None:
    if e.agent not in s.agents:
        return f"no agent named {e.agent!r}"
    if e.to not in s.places:
        return f"no place {e.to!r}"
    here = s.location(e.agent)
    if e.to == here:
        return f"{e.agent} is already at {e.to}"
    if e.to not in s.places[here].connections:
        return f"{e.to} does not connect to {here} (from there: {', '.join(s.neighbours(here))})"
    return s.entry_refusal(e.agent, e.to)


def _holder_missing(s: WorldState, holder: str) -> str | None:
    return None if s.holder_exists(holder) else f"no agent or place named {holder!r}"


def _one_stack(s: WorldState, holder: str, ref: str) -> tuple[Item | None, str | None]:
    stack = s.stack(holder, ref)
    if stack is None:
        held = ", ".join(f"{i.name} x{i.quantity}" for i in s.items_held(holder)[:8]) or "nothing"
        return None, f"{holder} holds no {ref!r} (holds: {held})"
    return stack, None


def _check_quantity(s: WorldState, q: int) -> str | None:
    if not isinstance(q, int) or isinstance(q, bool) or q < 1:
        return f"quantity must be a positive whole number, got {q!r}"
    if q > s.max_stack:
        return f"quantity {q} exceeds the world's limit of {s.max_stack}"
    return None


def _check_transfer(s: WorldState, e: TransferEffect) -> str | None:
    reason = (
        _check_quantity(s, e.quantity) or _holder_missing(s, e.from_) or _holder_missing(s, e.to)
    )
    if reason:
        return reason
    if e.from_ == e.to:
        return "source and destination are the same"
    src_agent, dst_agent = e.from_ in s.agents, e.to in s.agents
    if src_agent and dst_agent:
        if s.location(e.from_) != s.location(e.to):
            return (
                f"{e.to} is not with {e.from_} (at {s.location(e.to)}, not {s.location(e.from_)})"
            )
    elif src_agent:
        if s.location(e.from_) != e.to:
            return f"{e.from_} is not at {e.to}"
    elif dst_agent:
        if s.location(e.to) != e.from_:
            return f"{e.to} is not at {e.from_}"
    else:
        return "items do not move between places by themselves; someone must carry them"
    stack, reason = _one_stack(s, e.from_, e.item)
    if reason or stack is None:
        return reason
    if stack.quantity < e.quantity:
        return f"{e.from_} holds only {stack.quantity} {stack.name}"
    target = s.stack_named(e.to, stack.name)
    if target is not None and target.quantity + e.quantity > s.max_stack:
        return f"{e.to} would hold more than {s.max_stack} {stack.name}"
    return None


def _check_set(s: WorldState, e: SetEffect) -> tuple[str | None, Number | None]:
    if e.agent not in s.agents:
        return f"no agent named {e.agent!r}", None
    attr = s.attributes.get(e.attribute)
    if attr is None:
        return f"no attribute {e.attribute!r} (attributes: {', '.join(s.attributes)})", None
    if (e.value is None) == (e.delta is None):
        return "give exactly one of value and delta", None
    current = s.attribute(e.agent, e.attribute)
    new = e.value if e.value is not None else current + e.delta  # type: ignore[operator]
    if isinstance(new, bool) or not math.isfinite(new):
        return f"{e.attribute} must be a finite number, got {new!r}", None
    if attr.integer:
        if new != int(new):
            return f"{e.attribute} is a whole number, got {new!r}", None
        new = int(new)
    if not attr.min <= new <= attr.max:
        return (
            f"{e.attribute} would be {new:g} (now {current:g}), outside its bounds "
            f"{attr.min:g}..{attr.max:g}"
        ), None
    return None, new


def _conserved(s: WorldState, item: str, verb: str) -> str | None:
    if s.code_rules and name_key(item) in conserved_items(s):
        return f"{item} is conserved here (a rule of the world): it changes hands, it is not {verb}"
    return None


def _check_create(s: WorldState, e: CreateEffect) -> str | None:
    reason = (
        _check_quantity(s, e.quantity)
        or _holder_missing(s, e.holder)
        or _conserved(s, e.item, "made")
    )
    if reason:
        return reason
    if not e.item.strip():
        return "an item needs a name"
    target = s.stack_named(e.holder, e.item)
    if target is not None and target.quantity + e.quantity > s.max_stack:
        return f"{e.holder} would hold more than {s.max_stack} {target.name}"
    return None


def _check_destroy(s: WorldState, e: DestroyEffect) -> str | None:
    reason = _check_quantity(s, e.quantity) or _holder_missing(s, e.holder)
    if reason:
        return reason
    stack = s.stack(e.holder, e.item)
    if stack is not None and (reason := _conserved(s, stack.name, "destroyed")):
        return reason
    stack, reason = _one_stack(s, e.holder, e.item)
    if reason or stack is None:
        return reason
    if stack.quantity < e.quantity:
        return f"{e.holder} holds only {stack.quantity} {stack.name}"
    return None


# -- authority: what one resident's action may change ---------------------------------


def is_public(place: Place) -> bool:
    """Whether what lies at `place` is anyone's to take: nobody keeps it, or it is public."""
    return not place.keyholders or place.kind == "public"


def currency(state: WorldState) -> str | None:
    """The conserved attribute prices are paid in: `money`, else the first conserved one."""
    conserved = [a.name for a in state.attributes.values() if a.conserved]
    return "money" if "money" in conserved else (conserved[0] if conserved else None)


def price(item: Item) -> Number | None:
    """The price of one of `item`, when it is for sale."""
    value = item.properties.get("price")
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return None
    return value


def _names(people: Iterable[str]) -> str:
    return ", ".join(sorted(people)) or "nobody"


class _Authority:
    """One resident's action: which effects it may have (checked before the physical
    rules, against the state as the earlier effects left it), and what it owes for the
    stock it takes (settled after the last effect)."""

    def __init__(self, state: WorldState, actor: str) -> None:
        self.s = state
        self.actor = actor
        self.money = currency(state)
        self.owed: list[tuple[int, str, Number, str]] = []  # (effect, place, cost, what)
        self.paid: dict[str, Number] = {}  # resident -> money received

    def refusal(self, e: Any) -> str | None:
        s, a = self.s, self.actor
        if a not in s.agents:
            return f"no agent named {a!r} acts"
        if isinstance(e, MoveEffect):
            if e.agent != a:
                return (
                    f"{e.agent} is another resident: {a}'s action may move only {a} "
                    f"({e.agent} goes where they choose to go)"
                )
        elif isinstance(e, SetEffect):
            return self._set_refusal(e)
        elif isinstance(e, TransferEffect):
            return self._take_refusal(e.from_, e.item, "take")
        elif isinstance(e, DestroyEffect):
            return self._take_refusal(e.holder, e.item, "destroy")
        elif isinstance(e, CreateEffect):
            grown = regrow_rule_of(s, e.item)
            if grown is not None:
                return (
                    f"{e.item} come only from {grown.place}, where a rule of the world makes "
                    f"them grow: {a} may take them there, not make them"
                )
            here = s.location(a)
            if e.holder in s.agents and e.holder != a:
                return (
                    f"{e.holder} is another resident: {a}'s action may make things for "
                    f"{a} (or leave them here), then give them"
                )
            if e.holder in s.places and e.holder != here:
                return f"{a} is at {here}, not at {e.holder}"
        return None

    def _set_refusal(self, e: SetEffect) -> str | None:
        s, a = self.s, self.actor
        if e.agent == a or e.agent not in s.agents or e.attribute not in s.attributes:
            return None  # the physical check names what does not exist
        current = s.attribute(e.agent, e.attribute)
        change = e.delta if e.delta is not None else (e.value or 0) - current
        attr = s.attributes[e.attribute]
        if attr.conserved and change > 0:
            here = s.location(a)
            if s.location(e.agent) == here or e.agent in s.places[here].keyholders:
                return None  # a payment: the conservation check makes it the actor's
            return f"{e.agent} is neither with {a} nor a keeper of {here}: {a} cannot pay them"
        what = f"pay {e.agent} {e.attribute}" if attr.conserved else "not change it"
        return (
            f"{e.agent} is another resident: {a}'s action may change only {a}'s own "
            f"{e.attribute} ({e.agent}'s {e.attribute} is theirs; {a} may {what})"
        )

    def _take_refusal(self, holder: str, ref: str, verb: str) -> str | None:
        s, a = self.s, self.actor
        if holder == a:
            return None
        if holder in s.agents:
            return (
                f"{holder} is another resident: {a}'s action may not {verb} what {holder} "
                f"holds (only {holder} hands it over, by a give)"
            )
        place = s.places.get(holder)
        stack = s.stack(holder, ref) if place is not None else None
        if place is None or stack is None or a in place.keyholders:
            return None  # not there (the physical check says so), or the actor's own
        cost = price(stack)
        if cost is not None and place.keyholders:
            if verb == "take" and self.money is not None:
                return None  # stock for sale: `note` books what it costs
            return f"{stack.name} at {holder} is for sale: {a} may buy it, not {verb} it"
        if is_public(place):
            return None
        return (
            f"{stack.name} at {holder} belongs to its keepers ({_names(place.keyholders)}) "
            f"and is not for sale: {a} may not {verb} it"
        )

    def note(self, index: int, e: Any) -> None:
        """Book what a valid effect owes or pays (before it is applied)."""
        s, a = self.s, self.actor
        if isinstance(e, SetEffect) and e.agent != a and e.attribute == self.money:
            current = s.attribute(e.agent, e.attribute)
            change = e.delta if e.delta is not None else (e.value or 0) - current
            self.paid[e.agent] = self.paid.get(e.agent, 0) + change
        elif isinstance(e, TransferEffect) and e.from_ in s.places and e.from_ != a:
            place = s.places[e.from_]
            stack = s.stack(e.from_, e.item)
            if a in place.keyholders or stack is None or not place.keyholders:
                return
            cost = price(stack)
            if cost is not None:
                what = f"{e.quantity} {stack.name} at {cost:g} {self.money} each"
                self.owed.append((index, e.from_, cost * e.quantity, what))

    def unpaid(self) -> tuple[int, str] | None:
        """The first purchase whose price its place's keepers were not paid, and why."""
        paid = dict(self.paid)
        for index, where, cost, what in self.owed:
            keepers = sorted(self.s.places[where].keyholders)
            due = cost
            for k in keepers:
                part = min(due, max(paid.get(k, 0), 0))
                paid[k] = paid.get(k, 0) - part
                due -= part
            if due > EPS:
                return index, (
                    f"{self.actor} takes {what} from {where} but does not pay for it: "
                    f"{cost:g} {self.money} is due to its keepers ({_names(keepers)}), "
                    f"{cost - due:g} paid"
                )
        return None


# -- application (after validation) ---------------------------------------------------


def _give(s: WorldState, holder: str, name: str, quantity: int, properties: dict[str, Any]) -> None:
    """`quantity` of `name` arrive at `holder`: joining its stack, else a new stack."""
    target = s.stack_named(holder, name)
    if target is not None:
        s.set_quantity(target.id, target.quantity + quantity)
        return
    item_id = slug(name) if slug(name) not in s.items else s.new_item_id(name)
    s.add_item(Item(item_id, name, holder, quantity, dict(properties)))


def _apply(s: WorldState, e: Any) -> None:
    if isinstance(e, MoveEffect):
        s.set_location(e.agent, e.to)
    elif isinstance(e, SetEffect):
        s.set_attribute(e.agent, e.attribute, _check_set(s, e)[1])  # type: ignore[arg-type]
    elif isinstance(e, TransferEffect):
        stack = s.stack(e.from_, e.item)
        assert stack is not None
        target = s.stack_named(e.to, stack.name)
        if target is None and stack.quantity == e.quantity:
            s.set_holder(stack.id, e.to)  # the whole stack moves and keeps its id
            return
        if stack.quantity == e.quantity:
            s.remove_item(stack.id)
        else:
            s.set_quantity(stack.id, stack.quantity - e.quantity)
        _give(s, e.to, stack.name, e.quantity, stack.properties)
    elif isinstance(e, CreateEffect):
        name = " ".join(e.item.split())
        _give(s, e.holder, name, e.quantity, dict(e.properties))
        s.record(s.created, name, e.quantity)
    elif isinstance(e, DestroyEffect):
        stack = s.stack(e.holder, e.item)
        assert stack is not None
        if stack.quantity == e.quantity:
            s.remove_item(stack.id)
        else:
            s.set_quantity(stack.id, stack.quantity - e.quantity)
        s.record(s.destroyed, stack.name, e.quantity)


# -- invariants -----------------------------------------------------------------------


def check_invariants(
    state: WorldState,
    baseline_counts: Mapping[str, int] | None = None,
    baseline_totals: Mapping[str, Number] | None = None,
) -> list[str]:
    """Every broken invariant, in words; empty when the state is sound.

    Item counts must equal the baseline (default: the counts when the world was loaded)
    plus created minus destroyed; conserved attribute totals must equal theirs."""
    s = state
    out: list[str] = []
    base = s.initial_counts if baseline_counts is None else baseline_counts
    counts = s.item_counts()
    for name in sorted(set(base) | set(counts) | set(s.created) | set(s.destroyed)):
        expected = base.get(name, 0) + s.created.get(name, 0) - s.destroyed.get(name, 0)
        if counts.get(name, 0) != expected:
            out.append(f"item {name!r}: {counts.get(name, 0)} in the world, ledger says {expected}")
    for item in s.items.values():
        if not isinstance(item.quantity, int) or not 1 <= item.quantity <= s.max_stack:
            out.append(f"item {item.id}: quantity {item.quantity!r} outside 1..{s.max_stack}")
        if not s.holder_exists(item.holder):
            out.append(f"item {item.id}: holder {item.holder!r} does not exist")
    present: dict[str, set[str]] = {}
    for agent in s.agents.values():
        if agent.location not in s.places:
            out.append(f"agent {agent.name}: at {agent.location!r}, which is not a place")
        present.setdefault(agent.location, set()).add(agent.name)
        if set(agent.attributes) != set(s.attributes):
            out.append(
                f"agent {agent.name}: has attributes {sorted(agent.attributes)}, "
                f"the world defines {sorted(s.attributes)}"
            )
        for name, attr in s.attributes.items():
            value = agent.attributes.get(name)
            if value is None:
                continue
            if not attr.min <= value <= attr.max:
                out.append(f"agent {agent.name}: {name} {value} outside {attr.min}..{attr.max}")
            if attr.integer and not isinstance(value, int):
                out.append(f"agent {agent.name}: {name} {value!r} is not a whole number")
    for place in set(present) | set(s._present):
        if present.get(place, set()) != s._present.get(place, set()):
            out.append(f"place {place}: presence index out of step with agents' locations")
    totals = s.initial_totals if baseline_totals is None else baseline_totals
    for name, total in s.conserved_totals().items():
        if name in totals and abs(total - totals[name]) > EPS:
            out.append(f"conserved {name}: total {total} != {totals[name]}")
    return out
