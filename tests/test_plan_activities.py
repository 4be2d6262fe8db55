"""Plan items the model writes must read as activities a person would plan; where one
does not, the routine's item stands."""

from __future__ import annotations

import pytest

from concordia_like.agents.degenerate import activity_problem

NAMES = ("Lottie Fenn", "Ines Marlowe", "The Old Bridge", "Marlowe's Bakery")


@pytest.mark.parametrize(
    "text",
    [
        "opens the shop and serves the early customers",
        "visit the bakery",
        "talks to Margo about the bridge",
        "studies for the exam",
        "walking to the market",
        "lunch at the pub",
        "teaches the morning class",
        "goes to the town meeting",
    ],
)
def test_activities_pass(text):
    assert activity_problem(text, NAMES) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # what the embedded model wrote into day plans
        ("If he'd had ible he'd have", "no verb"),
        ("daily-go-go- gives-every- minute-to-g- people-a-day", "a fragment"),
        ("dear Lottie", "a greeting"),
        ("monday morning", "a date"),
        ("The Old Bridgen", "no verb"),
        ("Yes", "a fragment"),
        ("Safe-life-f- ,", "a fragment"),
        ("Ines Marlowe", "a name"),
        ("the old bridge", "a name"),
        ("good morning everyone", "a greeting"),
        ("bread bread bread", "a fragment"),
        ("Toileter, walking by the river at", "a fragment"),
    ],
)
def test_what_is_not_an_activity_says_why(text, problem):
    assert activity_problem(text, NAMES) == problem


async def test_an_item_that_is_no_activity_leaves_the_routine_with_the_reason_logged(caplog):
    import json
    import logging
    from datetime import datetime

    from concordia_like.agents.planning import PlanContext, Planner
    from concordia_like.llm import LanguageModel
    from concordia_like.llm.scripted import ScriptedBackend

    backend = ScriptedBackend()
    proposals = [
        {"hour": 6, "place": "Clinic", "activity": "dear Lottie"},
        {"hour": 9, "place": "Clinic", "activity": "visits the doctor"},
    ]
    backend.add_rule(".", json.dumps({"items": proposals}), "plan")
    ctx = PlanContext(
        "Ines Marlowe",
        wake_hour=5,
        routine=((5 * 60, "bakes bread", "Marlowe's Bakery"), (6 * 60, "opens the shop", None)),
        places=("Marlowe's Bakery", "Clinic"),
        place_ids={"Marlowe's Bakery": "bakery", "Clinic": "clinic"},
    )
    with caplog.at_level(logging.INFO):
        plans = await Planner(LanguageModel(backend)).plan_days([ctx], datetime(2025, 4, 14, 5))
    blocks = [(b.start.hour, b.description, b.place) for b in plans["Ines Marlowe"].blocks]
    assert blocks == [
        (5, "bakes bread at Marlowe's Bakery", "bakery"),
        (6, "opens the shop", None),  # the routine's item stands
        (9, "visits the doctor at Clinic", "clinic"),  # typed: the place the model picked
    ]
    assert "'dear Lottie' of Ines Marlowe dropped (a greeting)" in caplog.text
