"""The typed world state: clock, places, items, agents' locations and attributes.

Plain dataclasses, not pydantic: the state is read thousands of times a step (who is
here, what do they hold, where can they go) and written only through the five effects,
so it is kept cheap to query. Every write goes through one of a few primitives that
journal their inverse while a transaction is open; `world.rules.apply_effects` opens one
per action, so an action whose third effect is invalid is undone exactly, without
copying the state.

Holders: an item is held by an agent (by persona name) or lies at a place (by place
id). Place ids are lower-case slugs and agent names are persona names, and a world is
refused where the two overlap, so a holder string is never ambiguous. A holder has at
most one stack of each item name (compared case-insensitively): more bread arriving
joins the bread already there and takes its properties, so "bread" always names one
stack and the agents' and Game Master's schemas can list items by name. Things that
must stay apart get different names ("letter for Tobias").

The ledger (`created`, `destroyed` per item name) records every quantity that entered or
left the world through an explicit effect: item counts are conserved except through it,
which `world.invariants.check_invariants` verifies.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from concordia_like.text import squash
from concordia_like.world.hours import OpeningHours

if TYPE_CHECKING:
    from concordia_like.world.apps import AppState
    from concordia_like.world.code_rules import CodeRule
    from concordia_like.world.effects import EffectBase
    from concordia_like.world.schedule import EventOccurrence

Number = int | float
Properties = dict[str, Any]
#: how far two totals of a conserved attribute may differ and still be equal
EPS = 1e-9


@dataclass
class Clock:
    """Simulation time: `now` moves by `step` each engine step; `step_index` counts them."""

    now: datetime
    step: timedelta
    step_index: int = 0

    def advance(self, steps: int = 1) -> datetime:
        self.now += self.step * steps
        self.step_index += steps
        return self.now


@dataclass
class Place:
    id: str
    name: str
    kind: str
    description: str
    connections: tuple[str, ...]
    hours: OpeningHours
    capacity: int | None
    keyholders: frozenset[str]


@dataclass(frozen=True)
class AttributeDef:
    """An agent attribute's bounds. `conserved`: only moves between agents (money)."""

    name: str
    min: Number
    max: Number
    initial: Number
    integer: bool = True
    conserved: bool = False
    description: str = ""


@dataclass
class Item:
    """A stack of identical things: `quantity` of `name` with one `holder`."""

    id: str
    name: str
    holder: str
    quantity: int
    properties: Properties = field(default_factory=dict)


@dataclass
class Resident:
    """A resident as the world holds it: where they are, where they live, their
    attributes (their mind is `agents.agent.Agent`, keyed by the same name)."""

    name: str
    location: str
    home: str
    attributes: dict[str, Number]


@dataclass(frozen=True)
class ScheduledEvent:
    """Something that happens at `at` (and every day/week after, if `repeat`); `place`
    None means announced to everyone. `effects` are applied like any action's."""

    id: str
    at: datetime
    text: str
    place: str | None = None
    repeat: str = "none"
    until: datetime | None = None
    effects: tuple[EffectBase, ...] = ()


def name_key(name: str) -> str:
    """Item names compare case- and space-insensitively: "Bread " is "bread"."""
    return squash(name).casefold()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "item"


class WorldState:
    """The mutable world. Read freely; write only through `world.rules.apply_effects`."""

    def __init__(
        self,
        *,
        name: str,
        clock: Clock,
        places: dict[str, Place],
        attributes: dict[str, AttributeDef],
        agents: dict[str, Resident],
        items: dict[str, Item],
        events: Iterable[ScheduledEvent] = (),
        max_stack: int = 1000,
        created: dict[str, int] | None = None,
        destroyed: dict[str, int] | None = None,
        initial_counts: dict[str, int] | None = None,
        initial_totals: dict[str, Number] | None = None,
        item_seq: int = 0,
        code_rules: Iterable[CodeRule] = (),
        apps: AppState | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.places = places
        self.attributes = attributes
        self.agents = agents
        self.items = items
        self.events = list(events)
        self.max_stack = max_stack
        self.created: dict[str, int] = dict(created or {})
        self.destroyed: dict[str, int] = dict(destroyed or {})
        self.item_seq = item_seq
        #: typed rules the engine applies each step (`world.code_rules`)
        self.code_rules: list[CodeRule] = list(code_rules)
        #: what the world's apps hold (`world.apps`); None: the world has no apps
        self.apps = apps
        self.initial_counts = (
            dict(initial_counts) if initial_counts is not None else self.item_counts()
        )
        self.initial_totals = (
            dict(initial_totals) if initial_totals is not None else self.conserved_totals()
        )
        self._journal: list[Callable[[], object]] | None = None
        self._running: dict[str, Number] = self.conserved_totals()
        self._open: tuple[datetime | None, dict[str, bool]] = (None, {})
        self._only_way = {
            pid: p.connections[0] for pid, p in places.items() if len(p.connections) == 1
        }
        #: each place's neighbours less the dead ends that lead only back to it
        self._through = {
            pid: tuple(n for n in p.connections if self._only_way.get(n) != pid)
            for pid, p in places.items()
        }
        self._present: dict[str, set[str]] = {p: set() for p in places}
        for agent in agents.values():
            self._present.setdefault(agent.location, set()).add(agent.name)
        self._stacks: dict[str, dict[str, str]] = {}  # holder -> name key -> item id
        self._holders: dict[str, list[str]] = {}  # name key -> its holders, sorted
        for item in items.values():
            self._index(item)

    # -- reading ----------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.clock.now

    def holder_exists(self, holder: str) -> bool:
        return holder in self.agents or holder in self.places

    def location(self, agent: str) -> str:
        return self.agents[agent].location

    def agents_at(self, place: str) -> list[str]:
        """Agents at `place`, sorted by name."""
        return sorted(self._present.get(place, ()))

    def others_present(self, agent: str) -> list[str]:
        """Everyone else where `agent` is: whom they can talk to or give things to."""
        return [a for a in self.agents_at(self.location(agent)) if a != agent]

    def items_held(self, holder: str) -> list[Item]:
        """Stacks held by an agent or lying at a place, sorted by name."""
        stacks = self._stacks.get(holder, {})
        return [self.items[stacks[k]] for k in sorted(stacks)]

    def item_names(self, holder: str) -> list[str]:
        """Names of what `holder` has, sorted: the enum an agent's `give` picks from."""
        return [i.name for i in self.items_held(holder)]

    def stack(self, holder: str, ref: str) -> Item | None:
        """The holder's stack that `ref` names, by id or by name (case-insensitively:
        models capitalise), or None."""
        item = self.items.get(ref)
        if item is not None and item.holder == holder:
            return item
        item_id = self._stacks.get(holder, {}).get(name_key(ref))
        return self.items[item_id] if item_id is not None else None

    def holders_of(self, name: str) -> list[str]:
        """Who holds a stack of `name` (residents and places), sorted: kept as things
        move, so that asking (who has a phone) scans nothing. Read, never change, it."""
        return self._holders.get(name_key(name), [])

    def stack_named(self, holder: str, name: str) -> Item | None:
        """The holder's stack of `name` (never by id): where arriving `name` goes."""
        item_id = self._stacks.get(holder, {}).get(name_key(name))
        return self.items[item_id] if item_id is not None else None

    def count(self, name: str, holder: str | None = None) -> int:
        key = name_key(name)
        return sum(
            i.quantity
            for i in self.items.values()
            if name_key(i.name) == key and (holder is None or i.holder == holder)
        )

    def item_counts(self) -> dict[str, int]:
        """Total quantity of each item name (as `name_key`) in the world."""
        counts: dict[str, int] = {}
        for i in self.items.values():
            key = name_key(i.name)
            counts[key] = counts.get(key, 0) + i.quantity
        return counts

    def running_totals(self) -> dict[str, Number]:
        """Each conserved attribute's total as kept by every write since the state was
        built: what an action's effects changed it by costs nothing however many
        residents there are (`conserved_totals` counts them all again)."""
        return dict(self._running)

    def conserved_totals(self) -> dict[str, Number]:
        """Sum over agents of each conserved attribute (money in circulation)."""
        return {
            a.name: sum(ag.attributes.get(a.name, 0) for ag in self.agents.values())
            for a in self.attributes.values()
            if a.conserved
        }

    def attribute(self, agent: str, name: str) -> Number:
        return self.agents[agent].attributes[name]

    def is_open(self, place: str, at: datetime | None = None) -> bool:
        return self.places[place].hours.is_open(at or self.clock.now)

    def entry_refusal(self, agent: str, place: str) -> str | None:
        """Why `agent` cannot enter `place` now (closed, full), or None."""
        p = self.places[place]
        if not self._open_now(place) and agent not in p.keyholders:
            return f"{place} is closed at {self.clock.now:%H:%M} ({p.hours.text()})"
        if p.capacity is not None and len(self._present.get(place, ())) >= p.capacity:
            return f"{place} is full (capacity {p.capacity})"
        return None

    def _open_now(self, place: str) -> bool:
        """Whether `place` is open at the clock's time, each place's hours read once per
        time (a route search asks of the same places for one resident after another)."""
        when, known = self._open
        if when != self.clock.now:
            known = {}
            self._open = (self.clock.now, known)
        is_open = known.get(place)
        if is_open is None:
            is_open = known[place] = self.places[place].hours.is_open(self.clock.now)
        return is_open

    def neighbours(self, place: str) -> tuple[str, ...]:
        return self.places[place].connections

    def only_way(self, place: str) -> str | None:
        """The one place connected to `place` when it has one (a home off its street): a
        route search need not look past it."""
        return self._only_way.get(place)

    def through(self, place: str) -> tuple[str, ...]:
        """`neighbours` less the dead ends whose only way is back to `place`: the places
        a route search goes on through (a street's homes are not)."""
        return self._through[place]

    def reachable(self, agent: str) -> list[str]:
        """Places `agent` can move to right now: connected, open to them, not full."""
        here = self.location(agent)
        return [p for p in self.places[here].connections if self.entry_refusal(agent, p) is None]

    def events_due(
        self, at: datetime | None = None, window: timedelta | None = None
    ) -> list[EventOccurrence]:
        """Scheduled events occurring in [at, at + window), default the current step."""
        from concordia_like.world.schedule import events_due

        start = at or self.clock.now
        return events_due(self.events, start, start + (window or self.clock.step))

    def describe_for(self, agent: str, max_chars: int = 700) -> str:
        """A short text of what `agent` perceives and can do now, for its prompt."""
        from concordia_like.world.describe import describe_for

        return describe_for(self, agent, max_chars)

    # -- writing (journaled) ----------------------------------------------------------

    def begin(self) -> None:
        """Start journaling writes so that `rollback` can undo them."""
        if self._journal is not None:
            raise RuntimeError("a world transaction is already open")
        self._journal = []

    def commit(self) -> None:
        self._journal = None

    def rollback(self) -> None:
        journal, self._journal = self._journal, None
        for undo in reversed(journal or []):
            undo()

    def _log(self, undo: Callable[[], object]) -> None:
        if self._journal is not None:
            self._journal.append(undo)

    def set_location(self, agent: str, place: str) -> None:
        a = self.agents[agent]
        old = a.location
        self._present.setdefault(old, set()).discard(agent)
        self._present.setdefault(place, set()).add(agent)
        a.location = place
        self._log(lambda: self.set_location(agent, old))

    def set_attribute(self, agent: str, name: str, value: Number) -> None:
        old = self._write_attribute(agent, name, value)
        self._log(lambda: self._write_attribute(agent, name, old))

    def _write_attribute(self, agent: str, name: str, value: Number) -> Number:
        """Set one attribute, keeping the running total of a conserved one; returns the
        old value."""
        attrs = self.agents[agent].attributes
        old = attrs[name]
        attrs[name] = value
        if name in self._running:
            self._running[name] += value - old
        return old

    def _index(self, item: Item) -> None:
        stacks = self._stacks.setdefault(item.holder, {})
        key = name_key(item.name)
        if stacks.get(key, item.id) != item.id:
            raise ValueError(f"{item.holder} already has a stack of {item.name!r}")
        stacks[key] = item.id
        holders = self._holders.setdefault(key, [])
        i = bisect_left(holders, item.holder)
        if i == len(holders) or holders[i] != item.holder:
            holders.insert(i, item.holder)

    def _unindex(self, item: Item) -> None:
        stacks = self._stacks.get(item.holder, {})
        key = name_key(item.name)
        stacks.pop(key, None)
        if not stacks:
            self._stacks.pop(item.holder, None)
        holders = self._holders.get(key, [])
        i = bisect_left(holders, item.holder)
        if i < len(holders) and holders[i] == item.holder:
            del holders[i]

    def add_item(self, item: Item) -> None:
        if item.id in self.items:
            raise ValueError(f"item id {item.id!r} is taken")
        self._index(item)
        self.items[item.id] = item
        self._log(lambda: self.remove_item(item.id))

    def remove_item(self, item_id: str) -> None:
        item = self.items.pop(item_id)
        self._unindex(item)
        self._log(lambda: self.add_item(item))

    def set_quantity(self, item_id: str, quantity: int) -> None:
        item = self.items[item_id]
        old = item.quantity
        item.quantity = quantity
        self._log(lambda: setattr(item, "quantity", old))

    def set_properties(self, item_id: str, properties: Properties) -> None:
        item = self.items[item_id]
        old = item.properties
        item.properties = properties
        self._log(lambda: setattr(item, "properties", old))

    def add_code_rule(self, rule: CodeRule) -> None:
        self.code_rules.append(rule)
        self._log(self.code_rules.pop)

    def set_holder(self, item_id: str, holder: str) -> None:
        item = self.items[item_id]
        old = item.holder
        self._unindex(item)
        item.holder = holder
        self._index(item)
        self._log(lambda: self.set_holder(item_id, old))

    def record(self, ledger: dict[str, int], name: str, quantity: int) -> None:
        """Add `quantity` of `name` to the created or destroyed ledger."""
        name = name_key(name)
        old = ledger.get(name)
        ledger[name] = (old or 0) + quantity
        self._log(lambda: ledger.__setitem__(name, old) if old is not None else ledger.pop(name))

    def new_item_id(self, name: str) -> str:
        """A fresh, deterministic id for a new stack: `bread-7`."""
        while True:
            old = self.item_seq
            self.item_seq += 1
            self._log(partial(setattr, self, "item_seq", old))
            candidate = f"{slug(name)}-{self.item_seq}"
            if candidate not in self.items:
                return candidate

    # -- checkpoints ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON-ready data; `from_dict` rebuilds it exactly."""
        from concordia_like.world.serialize import state_to_dict

        return state_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorldState:
        from concordia_like.world.serialize import state_from_dict

        return state_from_dict(data)

    def copy(self) -> WorldState:
        """An independent deep copy (through the checkpoint form, so it is exact)."""
        return WorldState.from_dict(self.to_dict())
