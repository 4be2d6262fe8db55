"""The world's own effects: changes only the world makes, never a resident's action.

An experiment's interventions chalk a new price on a stack or add a code rule; they go
through the one validator (`world.rules.apply_effects`) like every other change, so
they are checked, journaled and rolled back with a failed step. They are not in the
`Effect` union a world file or a model writes: a resident's action that names one is
refused (`refusal`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from concordia_like.world.authority import Authority
from concordia_like.world.code_rules import CodeRule, rule_problems
from concordia_like.world.effects import NAME, EffectBase, PropertyValue, holder_missing, one_stack
from concordia_like.world.state import WorldState


class _WorldOnly(EffectBase):
    """A change only the world itself makes (an intervention), never a resident."""

    def refusal(self, bound: Authority) -> str | None:
        return f"only the world itself may {self.describe()}, not {bound.actor}'s action"


class PropertyEffect(_WorldOnly):
    """A property of `holder`'s stack of `item` becomes `value` (a price chalked anew)."""

    kind: Literal["property"] = "property"
    item: str = NAME
    holder: str = NAME
    property: str = Field(min_length=1, max_length=40)
    value: PropertyValue

    def describe(self) -> str:
        return f"set the {self.property} of {self.item} held by {self.holder} to {self.value}"

    def check(self, s: WorldState) -> str | None:
        return holder_missing(s, self.holder) or one_stack(s, self.holder, self.item)[1]

    def apply(self, s: WorldState) -> None:
        stack = s.stack(self.holder, self.item)
        assert stack is not None
        s.set_properties(stack.id, {**stack.properties, self.property: self.value})


class RuleEffect(_WorldOnly):
    """A code rule (`world.code_rules`) holds from now on: a ban on speech, a stock that
    starts to regrow. A rule the world already has is kept once."""

    kind: Literal["rule"] = "rule"
    rule: CodeRule

    def describe(self) -> str:
        return f"add the {self.rule.kind} rule"

    def check(self, s: WorldState) -> str | None:
        problems = rule_problems(self.rule, s.places, s.max_stack)
        return "; ".join(message for _, message in problems) or None

    def apply(self, s: WorldState) -> None:
        if self.rule not in s.code_rules:
            s.add_code_rule(self.rule)
