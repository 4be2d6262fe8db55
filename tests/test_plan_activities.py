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
    ],
)
def test_what_is_not_an_activity_says_why(text, problem):
    assert activity_problem(text, NAMES) == problem
