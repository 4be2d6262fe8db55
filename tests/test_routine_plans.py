"""The routine as the day's plan: a resident with nothing new since its last plan keeps
its usual day with no model call; news, an intervention or a whisper has the model
propose the change, as before. Under `always`, every day plan is asked, as before."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from concordia_like.agents.attention import AttentionPolicy
from concordia_like.agents.planning import PlanContext, Planner
from concordia_like.engine.runs import start_run
from concordia_like.llm import LanguageModel
from concordia_like.llm.scripted import ScriptedBackend

from support.engine import TOWN, close, lm_factory, run_steps

ROUTINE = (
    (5 * 60, "bakes the day's bread", "Marlowe's Bakery"),
    (12 * 60, "lunch", "Marlowe House"),
    (13 * 60, "serves customers", "Marlowe's Bakery"),
)
NOW = datetime(2025, 4, 14, 5, 0)
INES = PlanContext(
    "Ines Marlowe",
    wake_hour=5,
    routine=ROUTINE,
    places=("Marlowe's Bakery", "Marlowe House"),
    place_ids={"Marlowe's Bakery": "bakery", "Marlowe House": "marlowe_house"},
)


async def test_with_nothing_new_the_routine_is_the_plan_and_no_call_is_made(caplog):
    lm = LanguageModel(ScriptedBackend())
    with caplog.at_level(logging.INFO, "concordia_like.agents.planning.planner"):
        plans = await Planner(lm).plan_days([replace(INES, news=())], NOW)
    assert lm.usage.total.calls == 0
    plan = plans["Ines Marlowe"]
    assert [(b.description, b.place) for b in plan.blocks] == [
        ("bakes the day's bread at Marlowe's Bakery", "bakery"),
        ("lunch at Marlowe House", "marlowe_house"),
        ("serves customers at Marlowe's Bakery", "bakery"),
    ]
    assert "its routine, nothing new since its last plan" in caplog.text


async def test_news_since_the_last_plan_has_the_model_propose_a_change():
    lm = LanguageModel(ScriptedBackend())
    await Planner(lm).plan_days([replace(INES, news=("news", "whisper"))], NOW)
    assert lm.usage.by_purpose["plan"].calls == 1
    assert lm.usage.by_why["plan:news+whisper"].calls == 1


async def test_a_context_that_tracks_nothing_asks_the_model_as_before():
    lm = LanguageModel(ScriptedBackend())
    await Planner(lm).plan_days([INES], NOW)  # news=None: not tracked
    assert lm.usage.by_purpose["plan"].calls == 1


async def test_without_a_routine_the_model_plans_the_day_whatever_is_new():
    lm = LanguageModel(ScriptedBackend())
    await Planner(lm).plan_days([replace(INES, routine=(), news=())], NOW)
    assert lm.usage.by_purpose["plan"].calls == 1


async def test_a_town_run_under_events_keeps_routines_until_news_and_always_plans(runs_root):
    events = start_run(TOWN, lm_factory(), seed=1, root=runs_root, start_time="07:00")
    assert events.attention.mode == "events"
    await run_steps(events, 1)  # everyone awake plans the day: nothing new yet
    assert "plan" not in events.lm.usage.by_purpose
    ines = events.agents["Ines Marlowe"]
    assert ines.plan is not None and ines.attention.plan_day == ines.plan.day
    await close(events)

    always = start_run(
        TOWN,
        lm_factory(),
        seed=1,
        root=runs_root,
        start_time="07:00",
        attention=AttentionPolicy(mode="always").record(),
    )
    await run_steps(always, 1)
    awake = sum(a.plan is not None for a in always.agents.values())
    assert always.lm.usage.by_purpose["plan"].calls >= awake
    await close(always)


def test_what_is_new_counts_from_the_days_plan_until_the_next():
    from concordia_like.agents.attention import Attention

    att = Attention()
    att.planned(NOW.date())
    att.note("news")
    att.asked(3)  # acted on, and still new since the plan
    assert att.since_plan == {"news"}
    att.planned(NOW.date())  # the same plan
    assert att.since_plan == {"news"}
    att.planned(NOW.date().replace(day=15))  # the next day's plan starts the count again
    assert att.since_plan == set()
