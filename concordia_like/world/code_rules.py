"""World rules evaluated by code, not by a model: what must hold whatever a model writes.

A world's `rules` are text the Game Master reads and a small model may ignore. Where a
rule is the point of an experiment (a commons that regrows and collapses, a ban on
talking), leaving it to the model would measure the model's arithmetic, not the
residents' choices. `code_rules` are typed instead, validated like the rest of the
file, applied by the engine in the step's transaction and recorded as events:

    code_rules:
      # at the end of every `every_steps`-th step, the stock of `item` at `place` grows
      # by `factor` up to `cap`; a stock below `collapse_below` collapses to nothing
      - {kind: regrow, item: fish, place: lake, factor: 2, cap: 100, collapse_below: 5}
      # speech to another resident is refused at these places (none listed: everywhere)
      - {kind: silence, places: [lake]}
      # these things change hands but are never made or destroyed, by anyone
      - {kind: conserve, items: [apples, cheese]}
      # what residents' actions may make: these things, at these places by their keepers
      # (no places: anywhere, by anyone); without a make rule, nothing is made by them
      - {kind: make, items: [bread, pie], places: [bakery]}
      - {kind: make, items: [letter]}

A regrowing item is the rule's alone to make: a resident's action may take it from its
place but not create it (`world.rules` refuses such a create, naming the rule), so a
Game Master's model cannot mint fish. A regrow is a function of the stock and the step
number, so a resumed run needs no state beyond the world's checkpoint; a rule added
mid-run (a scenario's `code_rule` intervention) is part of that checkpoint."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, model_validator

from concordia_like.strict import Strict
from concordia_like.world.state import WorldState, name_key


class RegrowRule(Strict):
    """A renewable stock at a place (fish in a lake, grass on a common)."""

    kind: Literal["regrow"] = "regrow"
    item: str = Field(min_length=1, max_length=80)
    place: str = Field(min_length=1, max_length=80)
    factor: float = Field(2.0, ge=1.0, le=100.0)
    cap: int = Field(ge=1, le=1_000_000)
    collapse_below: int = Field(0, ge=0)
    every_steps: int = Field(1, ge=1, le=100_000)

    @model_validator(mode="after")
    def _threshold_under_cap(self) -> RegrowRule:
        if self.collapse_below > self.cap:
            raise ValueError(f"collapse_below {self.collapse_below} is above cap {self.cap}")
        return self

    def regrown(self, stock: int) -> tuple[int, bool]:
        """(the stock after a round's regrowth, whether it collapsed). Regrowth never
        shrinks a stock already above the cap; only a collapse takes it away."""
        if stock < self.collapse_below:
            return 0, True
        return max(stock, min(self.cap, math.floor(stock * self.factor))), False

    def sustainable_take(self, stock: int) -> float:
        """The most that can be taken from `stock` in a round so that regrowth brings
        it back to where it was (GovSim's sustainability threshold): `stock - stock /
        factor`, and none below the collapse threshold."""
        if stock < self.collapse_below:
            return 0.0
        return max(0.0, stock - max(stock / self.factor, float(self.collapse_below)))


class SilenceRule(Strict):
    """No speech between residents at these places (thinking aloud is still allowed)."""

    kind: Literal["silence"] = "silence"
    places: list[str] = Field(default_factory=list, max_length=100)


class ConserveRule(Strict):
    """Goods that only change hands: a create or destroy of them is refused, whoever
    proposes it (a resident's action, a scheduled event, an intervention)."""

    kind: Literal["conserve"] = "conserve"
    items: list[str] = Field(min_length=1, max_length=100)


class MakeRule(Strict):
    """What a resident's action may bring into being (a create effect with an actor):
    `items`, at `places` by those who keep them (or by anyone at a public one), or
    anywhere by anyone when no place is listed. The world itself (scheduled events,
    interventions, a regrow) is not bound by it."""

    kind: Literal["make"] = "make"
    items: list[str] = Field(min_length=1, max_length=100)
    places: list[str] = Field(default_factory=list, max_length=100)


CodeRule = Annotated[
    RegrowRule | SilenceRule | ConserveRule | MakeRule, Field(discriminator="kind")
]
CODE_RULES_ADAPTER: TypeAdapter[Any] = TypeAdapter(list[CodeRule])


def rule_problems(
    rule: Any, places: set[str] | dict[str, Any], max_stack: int
) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with `rule` in a world of these places: (field path, message)
    pairs for the world's and the scenario's checkers to place at their lines."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(rule, RegrowRule):
        if rule.place not in places:
            out.append((("place",), f"unknown place {rule.place!r}"))
        if rule.cap > max_stack:
            out.append((("cap",), f"cap {rule.cap} is over the world's max_stack {max_stack}"))
    elif isinstance(rule, SilenceRule | MakeRule):
        out += [(("places", i), f"unknown place {p!r}") for i, p in enumerate(rule.places)
                if p not in places]  # fmt: skip
    return out


def speech_refusal(state: WorldState, place: str) -> str | None:
    """Why nobody may speak to another at `place` now, or None."""
    for rule in state.code_rules:
        if isinstance(rule, SilenceRule) and (not rule.places or place in rule.places):
            return f"nobody may speak to anyone at {place}: a rule of the world forbids it"
    return None


def conserved_items(state: WorldState) -> set[str]:
    """The item names (as `name_key`) that conserve rules keep from being made or
    destroyed."""
    return {name_key(i) for r in state.code_rules if isinstance(r, ConserveRule) for i in r.items}


def make_rules_of(state: WorldState, item: str) -> list[MakeRule]:
    """The make rules that let residents make `item` (by name)."""
    key = name_key(item)
    return [
        r
        for r in state.code_rules
        if isinstance(r, MakeRule) and key in {name_key(i) for i in r.items}
    ]


def regrow_rule_of(state: WorldState, item: str) -> RegrowRule | None:
    """The regrow rule that makes `item` (by name), if any."""
    key = name_key(item)
    return next(
        (r for r in state.code_rules if isinstance(r, RegrowRule) and name_key(r.item) == key),
        None,
    )


@dataclass(frozen=True)
class RuleOutcome:
    """What a code rule did in a step: announced at `place` and logged with `data`."""

    text: str
    place: str | None
    data: dict[str, Any] = field(default_factory=dict)


def apply_code_rules(state: WorldState, step: int) -> list[RuleOutcome]:
    """Apply the rules due at the end of `step` to `state`, each atomically through the
    world's validator (as a world effect: no actor); what each did."""
    from concordia_like.world.effects import CreateEffect, DestroyEffect, EffectBase
    from concordia_like.world.rules import apply_effects

    out = []
    for rule in state.code_rules:
        if not isinstance(rule, RegrowRule) or step % rule.every_steps:
            continue
        stock = state.count(rule.item, rule.place)
        new, collapsed = rule.regrown(stock)
        effects: list[EffectBase] = []
        if new > stock:
            effects.append(CreateEffect(item=rule.item, holder=rule.place, quantity=new - stock))
        elif new < stock:
            effects.append(DestroyEffect(item=rule.item, holder=rule.place, quantity=stock - new))
        result = apply_effects(state, effects)
        where = state.places[rule.place].name
        rounds = step // rule.every_steps
        if not result.ok:
            text = f"The {rule.item} at {where} cannot regrow: {result.reason}."
            new = stock
        elif collapsed:
            text = (
                f"Only {stock} {rule.item} were left at {where}, fewer than "
                f"{rule.collapse_below}: the {rule.item} stock has collapsed."
            )
        else:
            text = f"The {rule.item} at {where} regrow from {stock} to {new}."
        data = {
            "rule": "regrow",
            "item": rule.item,
            "place": rule.place,
            "round": rounds,
            "before": stock,
            "after": new,
            "collapsed": collapsed,
            "ok": result.ok,
        }
        out.append(RuleOutcome(text, rule.place, data))
    return out
