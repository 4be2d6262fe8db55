"""Day plans made from the persona's routine: the routine is the skeleton, the model's
proposals fill in or change it under a grammar of real places and the day's hours, and
a plan cannot be one activity repeated."""

from __future__ import annotations

import json
from datetime import datetime

from concordia_like.agents.degenerate import plan_problem
from concordia_like.agents.planning import PlanContext, Planner
from concordia_like.agents.planning.planner import merge_into_skeleton
from concordia_like.llm import LanguageModel
from concordia_like.llm.scripted import ScriptedBackend

ROUTINE = (
    (5 * 60, "bakes the day's bread", "Marlowe's Bakery"),
    (12 * 60, "lunch", "Marlowe House"),
    (13 * 60, "serves customers", "Marlowe's Bakery"),
    (19 * 60, "supper", None),
    (30, "locks up", None),  # past midnight, before waking: not today's
)
NOW = datetime(2025, 4, 14, 5, 0)
INES = PlanContext(
    "Ines Marlowe",
    persona="Ines is a baker.",
    wake_hour=5,
    routine=ROUTINE,
    places=("Marlowe's Bakery", "Marlowe House", "Clinic"),
)


def test_proposals_change_the_skeleton_but_never_repeat_an_activity():
    items = merge_into_skeleton(
        ROUTINE,
        [
            (5, "bakes morning breads", "Marlowe's Bakery"),
            (11, "bakes morning breads", "Marlowe's Bakery"),
            (12, "bakes morning breads", "Marlowe's Bakery"),
            (15, "visit the clinic with Tobias", "Clinic"),
            (16, "x", None),
            (17, "you remember you remember you remember you remember", None),
        ],
        wake_hour=5,
    )
    assert items == [
        (5, "bakes morning breads at Marlowe's Bakery", "Marlowe's Bakery"),
        (12, "lunch at Marlowe House", "Marlowe House"),
        (13, "serves customers at Marlowe's Bakery", "Marlowe's Bakery"),
        (15, "visit the clinic with Tobias", "Clinic"),  # names its place already
        (19, "supper", None),
    ]
    assert plan_problem([a for _, a, _ in items]) is None


async def test_a_model_that_repeats_one_activity_still_makes_a_real_plan():
    backend = ScriptedBackend()
    seen = []

    def repeated(req):
        seen.append(req)
        hours = req.json_schema["$defs"]
        item = next(v for k, v in hours.items() if k.startswith("PlanEntry"))
        hour_enum = item["properties"]["hour"]["enum"]
        place_enum = item["properties"]["place"]["enum"]
        return json.dumps(
            {
                "items": [
                    {"hour": h, "place": place_enum[0], "activity": "bakes morning breads"}
                    for h in hour_enum[:3]
                ]
            }
        )

    backend.add_rule(".", repeated, "plan")
    planner = Planner(LanguageModel(backend))
    ctx = INES
    plans = await planner.plan_days([ctx], NOW)
    plan = plans["Ines Marlowe"]
    activities = [b.description for b in plan.blocks]
    assert plan_problem(activities) is None, activities
    assert activities[0] == "bakes morning breads at Clinic"
    assert "lunch at Marlowe House" in activities and "supper" in activities
    # the grammar: the day's hours and the real places; the prompt shows the usual day
    # and no field name
    schema = seen[0].json_schema
    entry = next(v for k, v in schema["$defs"].items() if k.startswith("PlanEntry"))
    assert entry["properties"]["hour"]["enum"] == list(range(5, 23))
    assert set(entry["properties"]["place"]["enum"]) == set(ctx.places)
    prompt = seen[0].messages[-1].content
    assert "05:00 bakes the day's bread at Marlowe's Bakery" in prompt
    assert "locks up" not in prompt
    assert '"' not in prompt


async def test_without_a_routine_the_plan_is_asked_as_before():
    backend = ScriptedBackend()
    planner = Planner(LanguageModel(backend))
    await planner.plan_days([PlanContext("Klaus", persona="A student.")], NOW.replace(hour=8))
    (req,) = [r for r in backend.requests_seen if r.purpose == "plan"]
    assert "items" in req.messages[-1].content


async def test_routine_blocks_are_not_decomposed_but_proposed_ones_are():
    backend = ScriptedBackend()
    day = json.dumps({"items": [{"hour": 6, "place": "Clinic", "activity": "see the doctor"}]})
    backend.add_rule("usual day", day, "plan")
    steps = json.dumps({"steps": [{"activity": "wait for the doctor", "minutes": 60}]})
    backend.add_rule("Break this into", steps, "plan")
    planner = Planner(LanguageModel(backend))
    ctx = INES
    plans = {}
    # 05:00, a routine block: the day plan, and the routine's words as the hour's step
    doing = await planner.step([ctx], plans, NOW)
    assert [r.purpose for r in backend.requests_seen] == ["plan"]
    assert doing["Ines Marlowe"].description == "bakes the day's bread at Marlowe's Bakery"
    assert doing["Ines Marlowe"].minutes == 60
    # 06:00, the block the model proposed: broken down by the model
    doing = await planner.step([ctx], plans, NOW.replace(hour=6))
    assert len(backend.requests_seen) == 2
    assert "Break this into" in backend.requests_seen[-1].messages[-1].content
    assert doing["Ines Marlowe"].description == "wait for the doctor"
    # 12:00, the routine again: no call
    doing = await planner.step([ctx], plans, NOW.replace(hour=12))
    assert len(backend.requests_seen) == 2
    assert doing["Ines Marlowe"].description == "lunch at Marlowe House"
