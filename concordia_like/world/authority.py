"""Authority: what one resident's action may change, beyond what the world allows.

One resident's action (`apply_effects(..., actor=...)`) may change only that resident
(its place, its attributes), what it holds and what the world leaves open. Another
resident is never moved, never loses a thing and has no attribute changed, except that
it may receive: a thing handed over, or a conserved attribute paid to it (present, or a
keeper of the actor's place). A place's things are open to its keepers, and at a public
place (no keepers, or of kind `public`) to anyone; a priced stack at a kept place is
stock, taken only by buying it: its price times the quantity paid to the place's
keepers in the same effects. Nothing is made from nothing by a resident's action
unless a `make` rule of the world (`world.code_rules`) lets it: a baker making bread in
the bakery they keep, anyone writing a letter; so no coin is minted, no unique thing
forged and no shop stocked by someone who does not keep it. A thing a code rule grows
(fish in a lake) is never made by a resident's action, only taken. Effects of the world itself
(scheduled events, interventions: no `actor`) have no such bound. Another resident's
own typed actions (a `give`, a `move`) are how its holdings and place change. Through
the apps (`world.app_effects`) a resident acts only as itself: it never messages,
posts, likes, follows, reads or pays as another.

Each kind of effect says what the bound means for it (`refusal`, `book` in
`world.effects`); this module holds what they share: who keeps what, prices, and the
purchases of an action that are still to be paid for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from concordia_like.world.code_rules import make_rules_of
from concordia_like.world.state import EPS, Item, Number, Place, WorldState

if TYPE_CHECKING:
    from concordia_like.world.effects import EffectBase


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


class Authority:
    """One resident's action: which effects it may have (checked before the physical
    rules, against the state as the earlier effects left it), and what it owes for the
    stock it takes (settled after the last effect)."""

    def __init__(self, state: WorldState, actor: str) -> None:
        self.state = state
        self.actor = actor
        self.money = currency(state)
        #: (effect index, place, cost, what) of each purchase
        self.owed: list[tuple[int, str, Number, str]] = []
        #: resident -> money the action paid them
        self.paid: dict[str, Number] = {}

    def refusal(self, effect: EffectBase) -> str | None:
        """Why the actor's action may not have `effect`, or None."""
        if self.actor not in self.state.agents:
            return f"no agent named {self.actor!r} acts"
        return effect.refusal(self)

    def own_refusal(self, agent: str, verb: str) -> str | None:
        """Why the actor may not `verb` as `agent` through an app, or None: an app is
        used by the one holding it, so nobody messages, posts, reads or pays as another."""
        a = self.actor
        if agent == a:
            return None
        return f"{agent} is another resident: {a}'s action may not {verb} as {agent}"

    def take_refusal(self, holder: str, ref: str, verb: str) -> str | None:
        """Why the actor may not `verb` (take, destroy) `holder`'s `ref`, or None."""
        s, a = self.state, self.actor
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
                return None  # stock for sale: the transfer's `book` notes what it costs
            return f"{stack.name} at {holder} is for sale: {a} may buy it, not {verb} it"
        if is_public(place):
            return None
        return (
            f"{stack.name} at {holder} belongs to its keepers ({_names(place.keyholders)}) "
            f"and is not for sale: {a} may not {verb} it"
        )

    def making_refusal(self, item: str) -> str | None:
        """Why the actor may not make `item` where they are, or None: a make rule of
        the world must name it, and its places (if it lists any) hold the actor as a
        keeper, or are public."""
        s, a = self.state, self.actor
        rules = make_rules_of(s, item)
        if not rules:
            return (
                f"{item} is not made by anyone's action here: no rule of the world lets "
                f"residents make it ({a} may take or be given it)"
            )
        here = s.location(a)
        place = s.places[here]
        for rule in rules:
            if not rule.places:
                return None
            if here in rule.places and (a in place.keyholders or is_public(place)):
                return None
        where = ", ".join(sorted({p for r in rules for p in r.places}))
        return f"{item} is made only by the keepers of {where}, there: not by {a} at {here}"

    def unpaid(self) -> tuple[int, str] | None:
        """The first purchase whose price its place's keepers were not paid, and why."""
        paid = dict(self.paid)
        for index, where, cost, what in self.owed:
            keepers = sorted(self.state.places[where].keyholders)
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
