"""Code measurements: queries on the state and the log, taken by a step hook.

Code measurements are taken once a step's actions are applied and perceived
(`after_observing`); their values, and the running event counts, are the hook's
checkpointed state, so they are committed with the step, rolled back with a failed
step, copied with a fork and restored on a resume. Each value is a row of the tidy
table: measurement, step, time, value.

Some code measurements read the effects of the step's events: what residents took
from a commons (`harvest`, round by round, a round closing at each regrowth of its
stock) and what passed between buyers and sellers (`trades`). Their running ledgers are
checkpointed with the rest. `conservation` is an assertion: a world whose money or
goods are not where its rules say stops the run with an error naming what broke.

The apps' measurements (posts, messages, likes, money moved, reach) read the app
state, which the world's checkpoint holds (`experiments.app_measures`).

Questions are put at the end of a run (`experiments.questions`)."""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Mapping, Sequence
from functools import singledispatch
from typing import TYPE_CHECKING, Any, get_args

from concordia_like.engine.hooks import StepHook
from concordia_like.errors import ConcordiaError
from concordia_like.experiments.app_measures import app_value
from concordia_like.experiments.app_spec import AppMeasure
from concordia_like.experiments.spec import (
    AttributeStat,
    Check,
    Conservation,
    EventCount,
    EventKind,
    Harvest,
    Holder,
    ItemCount,
    Measurement,
    Predicate,
    ResidentsAt,
    Trades,
)
from concordia_like.world.authority import currency, price
from concordia_like.world.code_rules import RegrowRule, conserved_items
from concordia_like.world.invariants import check_invariants
from concordia_like.world.state import WorldState, name_key

if TYPE_CHECKING:
    from concordia_like.engine.events import Event
    from concordia_like.engine.simulation import Simulation
    from concordia_like.experiments.scenario import Scenario

Value = float | str
OPS = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}


def _commons(m: Harvest) -> str:
    return f"{name_key(m.item)}@{m.place}"


def holds(value: Value, op: str, than: float) -> bool:
    """Whether a measured value compares so; a text value never does."""
    return isinstance(value, int | float) and OPS[op](value, than)


def _matches(m: EventCount, e: Event) -> bool:
    return (
        (e.kind in m.kinds if m.kinds else e.kind in get_args(EventKind))
        and (m.actor is None or e.actor == m.actor)
        and (m.place is None or e.place == m.place)
        and (m.contains is None or m.contains.lower() in e.text.lower())
    )


class ConservationError(ConcordiaError):
    """Money or goods are not where the world's rules say they must be: a bug of the
    framework (or a hand-made state), never a finding to average over seeds."""


def conservation_problems(state: WorldState, items: Sequence[str] = ()) -> list[str]:
    """What breaks conservation in `state`: its invariants (ledgered item counts,
    conserved attribute totals), and any item kept by a `conserve` rule or named in
    `items` that is not exactly as many as at the start."""
    problems = check_invariants(state)
    counts = state.item_counts()
    for key in sorted(conserved_items(state) | {name_key(i) for i in items}):
        now, start = counts.get(key, 0), state.initial_counts.get(key, 0)
        if now != start:
            problems.append(f"item {key!r}: {now} in the world, {start} at the start")
    return problems


def gini(values: Sequence[float]) -> float:
    """The Gini coefficient of `values`: 0 when all are equal, towards 1 when one has
    everything; 0 for nothing at all."""
    n, total = len(values), float(sum(values))
    if n == 0 or total <= 0:
        return 0.0
    diffs = sum(abs(a - b) for a in values for b in values)
    return diffs / (2 * n * total)


def new_harvest(stock: int) -> dict[str, Any]:
    """A commons' ledger: the current round's opening stock, what each took in it and
    how many steps of it were seen; the closed rounds (opening stock, takes, whether
    the round ended in collapse)."""
    return {"start": stock, "took": {}, "steps": 0, "rounds": []}


def note_harvest(ledger: dict[str, Any], item: str, place: str, events: Sequence[Event]) -> None:
    """Add a step's events to the ledger of `item` at `place`: takes (transfers out of
    the place in a successful action, credited to its actor) and the regrowth that
    closes a round (the engine logs it after the step's actions)."""
    key = name_key(item)
    ledger["steps"] += 1
    for e in events:
        data = e.data or {}
        if data.get("rule") == "regrow":
            if data.get("place") == place and name_key(str(data.get("item", ""))) == key:
                ledger["rounds"].append(
                    {
                        "start": ledger["start"],
                        "took": ledger["took"],
                        "collapsed": bool(data.get("collapsed")),
                    }
                )
                ledger.update(start=int(data.get("after", 0)), took={}, steps=0)
            continue
        if e.actor is None or not data.get("success"):
            continue
        took = sum(
            int(x.get("quantity", 1))
            for x in data.get("effects", [])
            if x.get("kind") == "transfer"
            and x.get("from") == place
            and name_key(str(x.get("item", ""))) == key
        )
        if took:
            ledger["took"][e.actor] = ledger["took"].get(e.actor, 0) + took


def harvest_value(
    stat: str, ledger: dict[str, Any], rule: RegrowRule | None, people: Sequence[str]
) -> float:
    """A `harvest` statistic of a ledger (see `experiments.spec.Harvest`). Rounds after
    the first collapse are left out (nothing is left to take or share); the current
    round counts once a step of it was seen."""
    rounds = list(ledger["rounds"])
    collapse = next((i for i, r in enumerate(rounds) if r["collapsed"]), None)
    if stat == "rounds_survived":
        return float(len(rounds) if collapse is None else collapse)
    if collapse is not None:
        rounds = rounds[: collapse + 1]
    elif ledger["steps"] > 0:
        rounds.append({"start": ledger["start"], "took": ledger["took"], "collapsed": False})
    if stat == "total":
        return float(sum(sum(r["took"].values()) for r in rounds))
    if stat == "gini":
        return gini([sum(r["took"].get(p, 0) for r in rounds) for p in people])
    pairs = over = 0
    beyond = 0.0
    for r in rounds:
        share = rule.sustainable_take(r["start"]) / len(people) if rule and people else math.inf
        for p in people:
            took = r["took"].get(p, 0)
            pairs += 1
            if took > share + 1e-9:
                over += 1
                beyond += took - share
    if stat == "overuse":
        return round(beyond, 6)
    return over / pairs if pairs else 0.0


def list_prices(state: WorldState) -> dict[str, float]:
    """Each priced good's list price, by item name (as `name_key`) and by item id: what
    the world lists it at before anyone trades."""
    out: dict[str, float] = {}
    for item in sorted(state.items.values(), key=lambda i: i.id):
        cost = price(item)
        if cost is not None:
            out.setdefault(name_key(item.name), float(cost))
            out.setdefault(item.id, float(cost))
    return out


def note_trades(
    ledger: dict[str, float],
    state: WorldState,
    events: Sequence[Event],
    sellers: set[str],
    buyers: set[str],
    prices: Mapping[str, float],
) -> None:
    """Add a step's trades to a `trades` ledger: goods from a seller (or a place a
    seller keeps) to a buyer, valued at list price, and money a buyer's own action
    paid a seller."""
    money = currency(state)

    def from_seller(holder: Any) -> bool:
        place = state.places.get(holder)
        return holder in sellers or (place is not None and bool(place.keyholders & sellers))

    for e in events:
        data = e.data or {}
        if e.actor is None or not data.get("success"):
            continue
        moved = 0
        for x in data.get("effects", []):
            if x.get("kind") == "transfer" and x.get("to") in buyers and from_seller(x.get("from")):
                cost = prices.get(str(x.get("item"))) or prices.get(name_key(str(x.get("item"))))
                if cost is None:
                    continue
                quantity = int(x.get("quantity", 1))
                moved += quantity
                ledger["list_value"] += quantity * cost
            elif (
                x.get("kind") == "set"
                and x.get("attribute") == money
                and x.get("agent") in sellers
                and e.actor in buyers
                and (x.get("delta") or 0) > 0
            ):
                ledger["paid"] += x["delta"]
        if moved:
            ledger["count"] += 1
            ledger["units"] += moved


def trades_value(stat: str, ledger: Mapping[str, float]) -> float:
    if stat == "price_ratio":
        value = ledger["paid"] / ledger["list_value"] if ledger["list_value"] else 0.0
        return round(value, 6)
    return float(ledger[stat])


class Measurements(StepHook):
    """Takes a scenario's code measurements after every step that asks for them."""

    name = "measurements"

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.code = [m for m in scenario.spec.measurements if m.name in scenario.measure_steps]
        self.rows: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {m.name: 0 for m in self.code if isinstance(m, EventCount)}
        start = scenario.world.state
        #: "item@place" -> the commons' ledger (`new_harvest`)
        self.harvests: dict[str, dict[str, Any]] = {
            _commons(m): new_harvest(start.count(m.item, m.place))
            for m in self.code
            if isinstance(m, Harvest)
        }
        #: measurement name -> its running trade totals
        self.trades: dict[str, dict[str, float]] = {
            m.name: {"count": 0, "units": 0, "paid": 0, "list_value": 0}
            for m in self.code
            if isinstance(m, Trades)
        }
        self.prices = list_prices(start)

    # -- values ------------------------------------------------------------------------

    def value(
        self, sim: Simulation, m: Measurement, taken: Mapping[str, Value] | None = None
    ) -> Value:
        """The value of code measurement `m` in `sim` as it stands (`taken`: the values
        of this round so far, which a check reads)."""
        return code_value(m, self, sim, taken or {})

    def _named(self, name: str) -> Measurement:
        return next(m for m in self.code if m.name == name)

    def predicate(self, sim: Simulation, p: Predicate) -> bool:
        return holds(self.value(sim, self._named(p.measure)), p.op, p.value)

    def take(self, sim: Simulation, step: int, only: Sequence[Measurement] | None = None) -> None:
        """Record the values of the measurements due at `step` (or of `only`)."""
        taken: dict[str, Value] = {}
        for m in self.code:
            due = self.scenario.measure_steps[m.name]
            if (only is None and (due is None or step in due)) or (only is not None and m in only):
                taken[m.name] = self.value(sim, m, taken)
        when = sim.state.now.isoformat(timespec="minutes")
        self.rows += [
            {"measurement": n, "step": step, "time": when, "value": v} for n, v in taken.items()
        ]

    def take_end(self, sim: Simulation) -> None:
        """The end of a run: the measurements not taken at its last step."""
        done = {r["measurement"] for r in self.rows if r["step"] == sim.step}
        missing = [m for m in self.code if m.name not in done]
        before = len(self.rows)
        self.take(sim, sim.step, only=missing)
        when = (sim.state.now - sim.state.clock.step).isoformat(timespec="minutes")
        for r in self.rows[before:]:  # the time of the last step, as its other values
            r["time"] = when

    # -- the hook ----------------------------------------------------------------------

    def after_observing(
        self,
        sim: Simulation,
        step: int,
        events: Sequence[Event],
        perceived: Mapping[str, Sequence[str]],
    ) -> None:
        for m in self.code:
            if isinstance(m, EventCount):
                self.counts[m.name] += sum(1 for e in events if _matches(m, e))
            elif isinstance(m, Trades):
                sellers = set(m.sellers)
                buyers = set(m.buyers) or set(sim.agents) - sellers
                note_trades(self.trades[m.name], sim.state, events, sellers, buyers, self.prices)
        for key, ledger in self.harvests.items():
            item, _, place = key.rpartition("@")
            note_harvest(ledger, item, place, events)
        self.take(sim, step)

    def checkpoint(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "rows": self.rows,
                "counts": self.counts,
                "harvests": self.harvests,
                "trades": self.trades,
            }
        )

    def restore(self, data: dict[str, Any]) -> None:
        data = copy.deepcopy(data)
        self.rows = list(data.get("rows", []))
        self.counts = {**dict.fromkeys(self.counts, 0), **data.get("counts", {})}
        self.harvests = {**self.harvests, **data.get("harvests", {})}
        self.trades = {**self.trades, **data.get("trades", {})}


# -- the value of each kind of code measurement -----------------------------------------


@singledispatch
def code_value(m: object, hook: Measurements, sim: Simulation, taken: Mapping[str, Value]) -> Value:
    """The value of code measurement `m` now: one function per kind, registered below
    (a new kind of measurement is its spec class and one function here)."""
    raise TypeError(f"not a code measurement: {m!r}")


@code_value.register(ResidentsAt)
def _residents_at(
    m: ResidentsAt, hook: Measurements, sim: Simulation, taken: Mapping[str, Value]
) -> Value:
    return float(len(sim.state.agents_at(m.place)))


@code_value.register(AttributeStat)
def _attribute_stat(
    m: AttributeStat, hook: Measurements, sim: Simulation, taken: Mapping[str, Value]
) -> Value:
    s = sim.state
    values = [s.attribute(n, m.attribute) for n in (m.of or sorted(s.agents))]
    if not values:
        return 0.0
    if m.stat == "sum":
        return float(sum(values))
    if m.stat == "min":
        return float(min(values))
    if m.stat == "max":
        return float(max(values))
    return float(sum(values) / len(values))


@code_value.register(ItemCount)
def _item_count(
    m: ItemCount, hook: Measurements, sim: Simulation, taken: Mapping[str, Value]
) -> Value:
    return float(sim.state.count(m.item, m.holder))


@code_value.register(Holder)
def _holder(m: Holder, hook: Measurements, sim: Simulation, taken: Mapping[str, Value]) -> Value:
    s = sim.state
    item = s.items.get(m.item) or next(
        (i for i in s.items.values() if i.name.lower() == m.item.lower()), None
    )
    return item.holder if item is not None else ""


@code_value.register(EventCount)
def _event_count(
    m: EventCount, hook: Measurements, sim: Simulation, taken: Mapping[str, Value]
) -> Value:
    return float(hook.counts[m.name])


@code_value.register(Harvest)
def _harvest(m: Harvest, hook: Measurements, sim: Simulation, taken: Mapping[str, Value]) -> Value:
    s = sim.state
    rule = next(
        (
            r
            for r in s.code_rules
            if isinstance(r, RegrowRule)
            and r.place == m.place
            and name_key(r.item) == name_key(m.item)
        ),
        None,
    )
    people = m.of or sorted(s.agents)
    return harvest_value(m.stat, hook.harvests[_commons(m)], rule, people)


@code_value.register(Trades)
def _trades(m: Trades, hook: Measurements, sim: Simulation, taken: Mapping[str, Value]) -> Value:
    return trades_value(m.stat, hook.trades[m.name])


@code_value.register(Conservation)
def _conservation(
    m: Conservation, hook: Measurements, sim: Simulation, taken: Mapping[str, Value]
) -> Value:
    problems = conservation_problems(sim.state, m.items)
    if problems:
        raise ConservationError(
            f"conservation broken (measurement {m.name}, step {sim.step}): "
            + "; ".join(problems[:10])
        )
    return 1.0


@code_value.register(Check)
def _check(m: Check, hook: Measurements, sim: Simulation, taken: Mapping[str, Value]) -> Value:
    other = taken.get(m.measure)
    if other is None:
        other = hook.value(sim, hook._named(m.measure))
    return 1.0 if holds(other, m.op, m.value) else 0.0


@code_value.register(AppMeasure)
def _app(m: AppMeasure, hook: Measurements, sim: Simulation, taken: Mapping[str, Value]) -> Value:
    return app_value(m, sim.state, hook.scenario)
