"""The validator: which effects the world allows, applied all together or not at all.

Whatever proposes a change (code grounding a typed action, a model's free-form
resolution, a scenario's intervention, a scheduled event, a code rule) passes through
here, so the world's constraints hold whatever a model writes:

- move: the agent exists, the destination exists, connects to where the agent is, is
  open now (keyholders may enter a closed place) and is not full;
- transfer: the source holds enough; a transfer between people needs both in one
  place, a take or drop needs the agent at that place; places do not pass items among
  themselves (someone carries them); the receiving stack stays within `max_stack`;
- set: the attribute exists, exactly one of value/delta is given, the result is finite,
  whole for integer attributes, and within bounds (refused, never clamped);
- create/destroy: positive quantities, an existing holder, destroy only what is held,
  and neither of a thing a `conserve` code rule keeps (`world.code_rules`);
- the world's own changes (an item's property, a code rule added): an existing stack, a
  rule that names the world's places;
- a list of effects may not change the total of a conserved attribute (money changes
  hands, it is not minted): checked over the whole list, since a sale is two sets.

One resident's action (`actor` given) is bounded besides by its authority
(`world.authority`): it may change only that resident, what it holds and what the world
leaves open. Each kind of effect carries its own check, bound and application
(`world.effects`); this module runs them, in order, all or nothing.

`apply_effects` validates each effect against the state as the earlier ones left it and
undoes everything on the first failure; its reason names the effect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from concordia_like.world.authority import Authority
from concordia_like.world.effects import EffectBase, SetEffect, parse_effect
from concordia_like.world.state import EPS, WorldState


@dataclass(frozen=True)
class ApplyResult:
    """`ok` and the effects applied, or the reason (naming the effect) and its index."""

    ok: bool
    applied: tuple[EffectBase, ...] = ()
    reason: str | None = None
    failed_index: int | None = None

    def __bool__(self) -> bool:
        return self.ok


def validate(state: WorldState, effect: EffectBase | dict[str, Any]) -> str | None:
    """Why `effect` (a model or a dict) may not be applied to `state` now, or None.

    A conserved attribute's total is a property of a whole list of effects, so it is
    checked by `apply_effects`, not here."""
    try:
        return parse_effect(effect).check(state)
    except ValidationError as exc:
        return _parse_reason(exc)


def apply_effects(
    state: WorldState,
    effects: Iterable[EffectBase | dict[str, Any]],
    *,
    actor: str | None = None,
) -> ApplyResult:
    """Apply `effects` (models or dicts) in order, atomically: all or nothing.

    With `actor`, they are one resident's action and bounded by its authority
    (`world.authority`): an effect on another resident is refused, naming them."""
    effects = list(effects)
    before = state.running_totals()
    applied: list[EffectBase] = []
    bound = Authority(state, actor) if actor is not None else None
    state.begin()
    try:
        for i, raw in enumerate(effects):
            try:
                effect = parse_effect(raw)
            except ValidationError as exc:
                state.rollback()
                return ApplyResult(False, (), f"effect {i + 1}: {_parse_reason(exc)}", i)
            reason = (bound.refusal(effect) if bound else None) or effect.check(state)
            if reason is not None:
                state.rollback()
                return ApplyResult(False, (), f"effect {i + 1} ({effect.describe()}): {reason}", i)
            if bound:
                effect.book(bound, i)
            effect.apply(state)
            applied.append(effect)
        unpaid = bound.unpaid() if bound else None
        if unpaid is not None:
            state.rollback()
            index, reason = unpaid
            return ApplyResult(
                False, (), f"effect {index + 1} ({applied[index].describe()}): {reason}", index
            )
        touched = sorted({e.attribute for e in applied if isinstance(e, SetEffect)} & set(before))
        after = state.running_totals() if touched else before
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
