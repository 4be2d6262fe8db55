"""Measurements: code queries on the state and the log, taken by a step hook, and
questions put to residents (in character) or to a judge, at the end of a run.

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

Questions change nothing: an in-character answer is asked of the resident's own
memories, retrieved without touching them, and written nowhere but the table; a judge
reads a slice of the log. Both answer under a constraint (yes/no, a number in a range,
one of a list), with a seed from (run seed, step, who, question)."""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, get_args

from pydantic import Field

from concordia_like.engine.hooks import StepHook
from concordia_like.errors import ConcordiaError
from concordia_like.experiments.spec import (
    Ask,
    AttributeStat,
    Check,
    Conservation,
    EventCount,
    EventKind,
    Harvest,
    Holder,
    ItemCount,
    Judge,
    Predicate,
    ResidentsAt,
    Trades,
)
from concordia_like.llm import LLMRequest
from concordia_like.llm.sampling import derive_seed, step_scope
from concordia_like.memory.records import RetrievalQuery
from concordia_like.world.code_rules import RegrowRule, conserved_items
from concordia_like.world.rules import check_invariants, currency, price
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
QUESTION_MEMORIES = 5
JUDGE_LOG_LINES = 60


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

    def value(self, sim: Simulation, m: Any, taken: Mapping[str, Value] | None = None) -> Value:
        """The value of code measurement `m` in `sim` as it stands (`taken`: the values
        of this round so far, which a check reads)."""
        s = sim.state
        if isinstance(m, ResidentsAt):
            return float(len(s.agents_at(m.place)))
        if isinstance(m, AttributeStat):
            values = [s.attribute(n, m.attribute) for n in (m.of or sorted(s.agents))]
            if not values:
                return 0.0
            stat = {"sum": sum, "min": min, "max": max}.get(m.stat)
            return float(stat(values)) if stat else float(sum(values) / len(values))
        if isinstance(m, ItemCount):
            return float(s.count(m.item, m.holder))
        if isinstance(m, Holder):
            item = s.items.get(m.item) or next(
                (i for i in s.items.values() if i.name.lower() == m.item.lower()), None
            )
            return item.holder if item is not None else ""
        if isinstance(m, EventCount):
            return float(self.counts[m.name])
        if isinstance(m, Harvest):
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
            return harvest_value(m.stat, self.harvests[_commons(m)], rule, people)
        if isinstance(m, Trades):
            return trades_value(m.stat, self.trades[m.name])
        if isinstance(m, Conservation):
            problems = conservation_problems(s, m.items)
            if problems:
                raise ConservationError(
                    f"conservation broken (measurement {m.name}, step {sim.step}): "
                    + "; ".join(problems[:10])
                )
            return 1.0
        if isinstance(m, Check):
            other = (taken or {}).get(m.measure)
            if other is None:
                other = self.value(sim, self._named(m.measure))
            return 1.0 if holds(other, m.op, m.value) else 0.0
        raise TypeError(f"not a code measurement: {m!r}")

    def _named(self, name: str) -> Any:
        return next(m for m in self.code if m.name == name)

    def predicate(self, sim: Simulation, p: Predicate) -> bool:
        return holds(self.value(sim, self._named(p.measure)), p.op, p.value)

    def take(self, sim: Simulation, step: int, only: Sequence[Any] | None = None) -> None:
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
        self.counts = {**{n: 0 for n in self.counts}, **data.get("counts", {})}
        self.harvests = {**self.harvests, **data.get("harvests", {})}
        self.trades = {**self.trades, **data.get("trades", {})}


# -- questions ---------------------------------------------------------------------------


def _constraint(q: Ask | Judge) -> dict[str, Any]:
    if q.answer == "yes_no":
        return {"choices": ["yes", "no"]}
    if q.answer == "choice":
        return {"choices": list(q.choices)}
    return {"schema": Annotated[int, Field(ge=q.min, le=q.max)]}


def _answer_hint(q: Ask | Judge) -> str:
    if q.answer == "yes_no":
        return "Answer yes or no."
    if q.answer == "choice":
        return "Answer with one of: " + ", ".join(q.choices) + "."
    return f"Answer with a whole number from {q.min} to {q.max}."


def _score(q: Ask | Judge, answers: Sequence[Any]) -> float:
    if not answers:
        return 0.0
    if q.answer == "number":
        return float(sum(answers) / len(answers))
    target = "yes" if q.answer == "yes_no" else q.counts
    return sum(1 for a in answers if a == target) / len(answers)


async def ask(sim: Simulation, q: Ask) -> tuple[float, dict[str, Any]]:
    """Put `q` to each resident asked, in character, from what each remembers of it:
    nothing of the run changes. The value and each resident's answer."""
    names = q.of or sorted(sim.agents)
    now = sim.state.now
    found = sim.memory.retrieve_many(
        [RetrievalQuery(n, q.question, now, QUESTION_MEMORIES) for n in names], touch=False
    )
    requests = []
    for name, memories in zip(names, found, strict=True):
        agent = sim.agents[name]
        remembered = "\n".join(f"- {m.record.text}" for m in memories) or "- nothing in particular"
        where = sim.state.places[sim.state.location(name)].name
        prompt = (
            f"It is {now:%A %H:%M}; you are at {where}.\nYou remember:\n{remembered}\n"
            f'Someone asks you: "{q.question}"\nAnswer as {name}, in character. ' + _answer_hint(q)
        )
        requests.append(
            LLMRequest.chat(
                prompt,
                system=agent.prefix,
                purpose="interview",
                agent=name,
                max_tokens=16,
                temperature=0.0,
                seed=derive_seed(sim.seed, sim.step, name, "ask", q.question),
                **_constraint(q),
            )
        )
    with step_scope(sim.seed, sim.step):
        answers = await sim.lm.complete_many(requests)
    parsed = {n: a.parsed for n, a in zip(names, answers, strict=True)}
    return _score(q, list(parsed.values())), parsed


def log_slice(sim: Simulation, q: Judge) -> list[str]:
    """The lines of the log a judge reads: the last steps asked, of the kinds asked."""
    first = 1 if q.last_steps is None else sim.step - q.last_steps + 1
    lines = [
        f"step {e.step} {e.sim_time:%a %H:%M}: {e.text}"
        for e in sim.recorder.events(sim.run_id, kinds=q.kinds)
        if e.step >= first
    ]
    return lines[-JUDGE_LOG_LINES:]


async def judge(sim: Simulation, q: Judge) -> tuple[float, dict[str, Any]]:
    """Put `q` to the model about a slice of the run's log."""
    lines = log_slice(sim, q) or ["(nothing happened)"]
    prompt = (
        f"Here is part of the log of a simulated town, {sim.world.name}:\n"
        + "\n".join(lines)
        + f"\n\nQuestion: {q.question}\n"
        + _answer_hint(q)
    )
    request = LLMRequest.chat(
        prompt,
        system="You are a careful, impartial judge of what a log shows.",
        purpose="judge",
        max_tokens=16,
        temperature=0.0,
        seed=derive_seed(sim.seed, sim.step, "judge", q.question),
        **_constraint(q),
    )
    with step_scope(sim.seed, sim.step):
        answer = await sim.lm.complete(request)
    return _score(q, [answer.parsed]), {"judge": answer.parsed, "lines": len(lines)}


async def questions(sim: Simulation, scenario: Scenario) -> list[tuple[str, float, Any]]:
    """Every question of the scenario put at the end of a run: (name, value, detail)."""
    out = []
    for m in scenario.spec.measurements:
        if isinstance(m, Ask):
            value, detail = await ask(sim, m)
        elif isinstance(m, Judge):
            value, detail = await judge(sim, m)
        else:
            continue
        out.append((m.name, value, detail))
    return out
