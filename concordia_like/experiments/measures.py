"""Measurements: code queries on the state and the log, taken by a step hook, and
questions put to residents (in character) or to a judge, at the end of a run.

Code measurements are taken once a step's actions are applied and perceived
(`after_observing`); their values, and the running event counts, are the hook's
checkpointed state, so they are committed with the step, rolled back with a failed
step, copied with a fork and restored on a resume. Each value is a row of the tidy
table: measurement, step, time, value.

Questions change nothing: an in-character answer is asked of the resident's own
memories, retrieved without touching them, and written nowhere but the table; a judge
reads a slice of the log. Both answer under a constraint (yes/no, a number in a range,
one of a list), with a seed from (run seed, step, who, question)."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, get_args

from pydantic import Field

from concordia_like.engine.hooks import StepHook
from concordia_like.experiments.spec import (
    Ask,
    AttributeStat,
    Check,
    EventCount,
    EventKind,
    Holder,
    ItemCount,
    Judge,
    Predicate,
    ResidentsAt,
)
from concordia_like.llm import LLMRequest
from concordia_like.llm.sampling import derive_seed, step_scope
from concordia_like.memory.records import RetrievalQuery

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


class Measurements(StepHook):
    """Takes a scenario's code measurements after every step that asks for them."""

    name = "measurements"

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.code = [m for m in scenario.spec.measurements if m.name in scenario.measure_steps]
        self.rows: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {m.name: 0 for m in self.code if isinstance(m, EventCount)}

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
        self.take(sim, step)

    def checkpoint(self) -> dict[str, Any]:
        return {"rows": list(self.rows), "counts": dict(self.counts)}

    def restore(self, data: dict[str, Any]) -> None:
        self.rows = list(data.get("rows", []))
        self.counts = {**{n: 0 for n in self.counts}, **data.get("counts", {})}


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
