"""Questions put at the end of a run: to residents, in character, or to a judge.

Questions change nothing: an in-character answer is asked of the resident's own
memories, retrieved without touching them, and written nowhere but the table; a judge
reads a slice of the log. Both answer under a constraint (yes/no, a number in a range,
one of a list), with a seed from (run seed, step, who, question)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from concordia_like.engine.interview import question_requests
from concordia_like.experiments.spec import Ask, Judge
from concordia_like.llm import LLMRequest
from concordia_like.llm.sampling import derive_seed, step_scope

if TYPE_CHECKING:
    from concordia_like.engine.simulation import Simulation
    from concordia_like.experiments.scenario import Scenario

JUDGE_LOG_LINES = 60


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
    requests = question_requests(
        sim,
        names,
        q.question,
        tag="ask",
        instruction=_answer_hint(q),
        purpose="interview",
        max_tokens=16,
        temperature=0.0,
        **_constraint(q),
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
