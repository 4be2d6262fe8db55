"""Planning: plan arithmetic by hand, and the planner on the scripted model (day plans,
decomposition, replanning, batching, bad output)."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

import pytest

from concordia_like.agents.planning import PlanContext, Planner
from concordia_like.llm import LanguageModel, ScriptedBackend
from concordia_like.memory.plans import (
    Activity,
    DayPlan,
    PlanBlock,
    activities_in,
    blocks_from_hours,
    fit_durations,
    replace_rest_of_day,
)
from concordia_like.memory.records import MemoryRecord, NewMemory

DAY = date(2024, 2, 13)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 2, 13, hour, minute)


# -- plan arithmetic -------------------------------------------------------------------


def test_durations_fill_the_time_exactly_in_5_to_60_minute_steps():
    assert fit_durations([30, 30], 60) == [30, 30]
    assert fit_durations([10, 50, 100], 60) == [5, 25, 30]  # 100 counts as 60: 10:50:60
    assert fit_durations([20, 20], 15) == [10, 5]
    assert fit_durations([60], 45) == [45]
    assert fit_durations([1], 60) == [60]
    assert fit_durations([5] * 20, 60) == [5] * 12  # more steps than 5-minute slots
    for proposal in ([7, 13, 41], [59, 1, 1, 1], [15] * 5, [45, 45]):
        out = fit_durations(proposal, 60)
        assert sum(out) == 60 and all(5 <= m <= 60 and m % 5 == 0 for m in out)
    with pytest.raises(ValueError):
        fit_durations([10], 7)


def test_blocks_are_sorted_clipped_and_contiguous_from_wake_to_bedtime():
    items = [(12, "lunch at Hobbs Cafe"), (9, "work on the paper"), (3, "too early"),
             (9, "duplicate hour"), (22, "read"), (23, "too late"), (14, "  ")]  # fmt: skip
    blocks = blocks_from_hours(items, at(7), at(23))
    assert [(b.start, b.end, b.description) for b in blocks] == [
        (at(7), at(9), "too early"),  # the first block starts at wake-up
        (at(9), at(12), "work on the paper"),
        (at(12), at(22), "lunch at Hobbs Cafe"),
        (at(22), at(23), "read"),
    ]
    assert blocks_from_hours([], at(7), at(23)) == []


def test_activities_fill_a_window_and_the_plan_says_what_is_going_on():
    steps = activities_in(
        (at(9), at(10)), [("make coffee", 10), ("read emails", 20), ("write", 30)]
    )
    assert [(s.start, s.minutes, s.description) for s in steps] == [
        (at(9), 10, "make coffee"),
        (at(9, 10), 20, "read emails"),
        (at(9, 30), 30, "write"),
    ]
    plan = DayPlan(
        "Klaus", DAY, at(7), at(23),
        [PlanBlock(at(7), at(9), "breakfast"), PlanBlock(at(9), at(23), "work")], steps,
    )  # fmt: skip
    assert plan.current(at(6)).description == "sleeping"
    assert plan.current(at(8, 30)).description == "breakfast"
    assert plan.current(at(9, 15)).description == "read emails"
    assert plan.current(at(10, 5)).description == "work"
    assert plan.current(at(23, 30)).description == "sleeping"
    assert plan.needs_decomposition(at(10)) and not plan.needs_decomposition(at(9, 40))
    assert plan.window(at(10, 17)) == (at(10, 15), at(11))
    assert DayPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_replacing_the_rest_of_the_day_keeps_the_past():
    plan = DayPlan(
        "Klaus", DAY, at(7), at(23),
        [PlanBlock(at(7), at(9), "breakfast"), PlanBlock(at(9), at(23), "work")],
        [Activity(at(9), 30, "emails"), Activity(at(9, 30), 30, "write")],
    )  # fmt: skip
    new = replace_rest_of_day(plan, at(9, 42), [PlanBlock(at(9, 40), at(23), "help Maria")])
    assert [(b.start, b.end, b.description) for b in new.blocks] == [
        (at(7), at(9), "breakfast"),
        (at(9), at(9, 40), "work"),
        (at(9, 40), at(23), "help Maria"),
    ]
    assert [(s.start, s.minutes) for s in new.steps] == [(at(9), 30), (at(9, 30), 10)]
    assert new.revision == 1 and plan.revision == 0


# -- the planner -----------------------------------------------------------------------


def day_plan(request) -> str:
    return json.dumps(
        {"items": [{"hour": 7, "activity": "wake up and have breakfast"},
                   {"hour": 9, "activity": "work on the research paper"},
                   {"hour": 12, "activity": "lunch at Hobbs Cafe"},
                   {"hour": 13, "activity": "study at the library"},
                   {"hour": 19, "activity": "dinner and reading"}]}
    )  # fmt: skip


def steps(request) -> str:
    return json.dumps(
        {"steps": [{"activity": "get ready", "minutes": 15}, {"activity": "do it", "minutes": 45}]}
    )


def replan(request) -> str:
    hour = int(re.search(r"It is (\d+):", request.messages[-1].content).group(1))
    return json.dumps(
        {"change": True, "reaction": "run to help at the fire",
         "items": [{"hour": hour + 2, "activity": "rest at home"}]}
    )  # fmt: skip


def planning_model(day=day_plan, decompose=steps, react=replan):
    backend = ScriptedBackend()
    backend.add_rule(r"in broad strokes", day, purpose="plan")
    backend.add_rule(r"Break this into", decompose, purpose="plan")
    backend.add_rule(r"change the plan", react, purpose="plan")
    return backend, LanguageModel(backend)


def contexts(*agents: str) -> list[PlanContext]:
    return [PlanContext(a, persona=f"{a} is a student.", yesterday="A quiet day.") for a in agents]


async def test_day_plans_and_decompositions_for_all_agents_in_two_batches(memory_store):
    backend, lm = planning_model()
    planner = Planner(lm, memory_store)
    plans: dict[str, DayPlan] = {}
    agents = ["Klaus", "Maria", "Isabella"]
    assert await planner.step(contexts(*agents), plans, at(6, 30)) == {
        a: Activity(at(6, 30), 5, "sleeping") for a in agents
    }
    assert backend.requests_seen == []  # asleep: no plan yet

    now = at(7, 0)
    doing = await planner.step(contexts(*agents), plans, now)
    assert lm.batcher.batch_sizes == [3, 3]  # day plans together, then decompositions
    for agent in agents:
        plan = plans[agent]
        assert plan.day == DAY and [b.start.hour for b in plan.blocks] == [7, 9, 12, 13, 19]
        assert plan.blocks[-1].end == at(23)
        assert [(s.start, s.minutes, s.description) for s in plan.steps] == [
            (at(7), 15, "get ready"),
            (at(7, 15), 45, "do it"),
        ]
        assert doing[agent] == plan.steps[0]
    # plans are stored as plan memories
    [note] = memory_store.recent("Klaus", 5, kinds=("plan",))
    assert note.text.startswith("Plan for Tuesday February 13: 07:00 wake up and have breakfast;")

    # later in the same hour: nothing to ask; at the next hour: decompositions only
    calls = len(backend.requests_seen)
    doing = await planner.step(contexts(*agents), plans, at(7, 20))
    assert len(backend.requests_seen) == calls and doing["Maria"].description == "do it"
    await planner.step(contexts(*agents), plans, at(8, 0))
    assert lm.batcher.batch_sizes == [3, 3, 3]
    assert plans["Klaus"].current(at(8, 30)).description == "do it"
    assert plans["Klaus"].current(at(8, 30)).start == at(8, 15)


async def test_day_plan_prompt_uses_persona_yesterday_and_stored_reflections(memory_store):
    backend, lm = planning_model()
    memory_store.add(NewMemory("Klaus", "Klaus is devoted to his research", "reflection", at(6), 7))
    planner = Planner(lm, memory_store)
    ctx = PlanContext(
        "Klaus", persona="Klaus is a sociology student. " * 100, yesterday="He wrote."
    )
    await planner.plan_days([ctx], at(7))
    prompt = backend.requests_seen[0].messages[-1].content
    assert "Klaus is devoted to his research" in prompt and "Yesterday: He wrote." in prompt
    assert len(prompt) < 1200  # the persona is cut: prompts stay bounded
    given = PlanContext("Klaus", reflections=["Klaus likes tea"])
    await planner.plan_days([given], at(7))
    assert "Klaus likes tea" in backend.requests_seen[-1].messages[-1].content
    assert (
        backend.requests_seen[-1].purpose == "plan" and backend.requests_seen[-1].agent == "Klaus"
    )


async def test_an_important_observation_changes_the_rest_of_the_day(memory_store):
    backend, lm = planning_model()
    planner = Planner(lm, memory_store)
    plans: dict[str, DayPlan] = {}
    await planner.step(contexts("Klaus", "Maria"), plans, at(9))
    before = plans["Klaus"]

    def obs(agent: str, text: str, importance: int) -> MemoryRecord:
        return MemoryRecord(99, agent, text, "observation", at(10, 7), at(10, 7), importance)

    fire = obs("Klaus", "The bakery next door is on fire", 9)
    dull = obs("Maria", "A bird sings", 2)
    calls = len(backend.requests_seen)
    changed = await planner.react([fire, dull], plans, at(10, 7))
    assert changed == {"Klaus": True}
    assert len(backend.requests_seen) == calls + 2  # Klaus's replan, then its decomposition
    after = plans["Klaus"]
    assert after.revision == 1 and plans["Maria"].revision == 0
    assert after.blocks[0] == before.blocks[0]  # the morning is history
    assert (after.blocks[1].start, after.blocks[1].end) == (at(9), at(10, 5))  # cut short
    assert after.block_at(at(10, 5)).description == "run to help at the fire"
    assert after.block_at(at(12, 30)).description == "rest at home"
    assert after.current(at(10, 7)).description == "get ready"  # re-decomposed from 10:05
    assert after.current(at(10, 7)).start == at(10, 5)
    [note] = memory_store.recent("Klaus", 1, kinds=("plan",))
    assert note.text.startswith("Changed plan at 10:05 after: The bakery next door is on fire.")


async def test_a_replan_the_agent_declines_leaves_the_plan(memory_store):
    _backend, lm = planning_model(react=lambda r: '{"change": false}')
    planner = Planner(lm, memory_store)
    plans: dict[str, DayPlan] = {}
    await planner.step(contexts("Klaus"), plans, at(9))
    before = plans["Klaus"].to_dict()
    fire = MemoryRecord(5, "Klaus", "Sirens far away", "observation", at(10), at(10), 8)
    assert await planner.react([fire], plans, at(10)) == {"Klaus": False}
    assert plans["Klaus"].to_dict() == {**before, "asked": at(10).isoformat()}


async def test_an_agent_is_asked_to_replan_at_most_once_an_hour(memory_store):
    backend, lm = planning_model(react=lambda r: '{"change": false}')
    planner = Planner(lm, memory_store)
    plans: dict[str, DayPlan] = {}
    await planner.step(contexts("Klaus"), plans, at(9))

    def news(minute: int) -> MemoryRecord:
        when = at(10, minute)
        return MemoryRecord(5, "Klaus", f"Sirens at {minute}", "observation", when, when, 8)

    calls = len(backend.requests_seen)
    assert await planner.react([news(0)], plans, at(10)) == {"Klaus": False}
    assert await planner.react([news(30)], plans, at(10, 30)) == {}  # within the hour
    assert len(backend.requests_seen) == calls + 1
    restored = {"Klaus": DayPlan.from_dict(plans["Klaus"].to_dict())}  # a checkpoint keeps it
    assert await planner.react([news(50)], restored, at(10, 50)) == {}
    assert await planner.react([news(0)], restored, at(11)) == {"Klaus": False}
    assert len(backend.requests_seen) == calls + 2


async def test_unusable_plans_fall_back_without_crashing(memory_store, caplog):
    broken = lambda r: "I will go to the market"  # noqa: E731 - not JSON
    _backend, lm = planning_model(day=broken, decompose=broken, react=broken)
    planner = Planner(lm, memory_store)
    plans: dict[str, DayPlan] = {}
    doing = await planner.step(contexts("Klaus"), plans, at(8, 10))
    plan = plans["Klaus"]
    assert [(b.start, b.end) for b in plan.blocks] == [(at(7), at(23))]
    assert doing["Klaus"].description == "go about the usual daily routine"
    assert (doing["Klaus"].start, doing["Klaus"].minutes) == (at(8, 10), 50)
    fire = MemoryRecord(5, "Klaus", "Fire!", "observation", at(9), at(9), 10)
    assert await planner.react([fire], plans, at(9)) == {"Klaus": False}
    assert "day plan of Klaus skipped" in caplog.text and "replan of Klaus skipped" in caplog.text


async def test_random_schema_valid_answers_make_valid_plans():
    lm = LanguageModel(ScriptedBackend())  # no rules: random instances of each schema
    planner = Planner(lm)  # no store: plans are not remembered
    plans: dict[str, DayPlan] = {}
    ctxs = [PlanContext(f"agent{i}", wake_hour=6 + i % 3, bedtime_hour=22) for i in range(6)]
    for hour in (8, 9, 13):
        doing = await planner.step(ctxs, plans, at(hour, 20))
        for ctx in ctxs:
            plan = plans[ctx.agent]
            assert plan.blocks[0].start == plan.wake and plan.blocks[-1].end == at(22)
            assert all(a.end == b.start for a, b in zip(plan.blocks, plan.blocks[1:], strict=False))
            assert all(5 <= s.minutes <= 60 for s in plan.steps)
            current = doing[ctx.agent]
            assert current.start <= at(hour, 20) < current.end
            assert plan.step_at(at(hour, 20)) is not None


async def test_plan_calls_open_with_the_agents_own_prefix_and_do_not_repeat_the_persona(
    memory_store,
):
    """Day plan, decomposition, replan and its decomposition all carry the agent's act
    prefix as system message (so a backend that keeps prefixes decodes it once); without
    a prefix the persona opens the question under the planner's generic system message."""
    backend, lm = planning_model()
    planner = Planner(lm, memory_store)
    persona = "Klaus is a sociology student."
    prefix = "You are Klaus Mueller, a sociology student. Rules of the world: none."
    ctx = PlanContext("Klaus", persona=persona, prefix=prefix)
    plans: dict[str, DayPlan] = {}
    await planner.step([ctx], plans, at(9))
    fire = MemoryRecord(99, "Klaus", "The bakery is on fire", "observation", at(10), at(10), 9)
    assert await planner.react([fire], plans, at(10, 7), {"Klaus": ctx}) == {"Klaus": True}
    seen = backend.requests_seen
    assert len(seen) == 4  # day plan, decomposition, replan, decomposition
    for request in seen:
        assert request.messages[0].role == "system" and request.messages[0].content == prefix
        assert persona not in request.messages[-1].content
    plain = PlanContext("Maria", persona="Maria is a painter.")
    await planner.plan_days([plain], at(7))
    assert seen[-1].messages[0].content != prefix
    assert seen[-1].messages[-1].content.startswith("Maria is a painter.")


async def test_the_town_plans_under_each_residents_act_prefix(tmp_path):
    from concordia_like.engine.runs import start_run

    from support.engine import TOWN, close, lm_factory

    backend = ScriptedBackend()
    # under `always` (routines are planned too: under `events` a routine is kept as the plan)
    always = {"mode": "always"}
    sim = start_run(TOWN, lm_factory(backend), root=tmp_path, start_time="07:00", attention=always)
    try:
        await sim.run_step()
    finally:
        await close(sim)
    plan_calls = [r for r in backend.requests_seen if r.purpose == "plan"]
    assert len({r.agent for r in plan_calls}) > 1
    for request in plan_calls:
        assert request.messages[0].content == sim.agents[request.agent].prefix
