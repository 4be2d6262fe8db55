"""Autopilot: a resident with nothing to react to walks the shortest open path to the
place its plan names, by code, and says once when no open path leads there."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from concordia_like.agents.actions import Continue, Move, Wait
from concordia_like.agents.agent import Agent
from concordia_like.agents.autopilot import follow_plan, pilot, plan_hint, plan_item, route
from concordia_like.memory.plans import DayPlan, PlanBlock
from concordia_like.world import load_world

from support.engine import MINI

ANN, BOB, CY = "Ann Reed", "Bob Vale", "Cy Moss"
MONDAY = datetime(2025, 4, 14)


@pytest.fixture
def world():
    return load_world(MINI)


def at(world, hhmm: str) -> None:
    h, m = map(int, hhmm.split(":"))
    world.state.clock.now = MONDAY.replace(hour=h, minute=m)


def resident(world, name: str, place: str | None, what: str = "sells apples") -> Agent:
    """`name` with a day plan of one item, at `place`, all day."""
    agent = Agent.create(world.personas[name], world.name, world.rules)
    start = MONDAY.replace(hour=7)
    agent.plan = DayPlan(
        name,
        MONDAY.date(),
        start,
        start + timedelta(hours=15),
        [PlanBlock(start, start + timedelta(hours=15), what, place)],
    )
    agent.activity = what
    return agent


def test_the_route_is_the_shortest_open_path(world):
    at(world, "10:00")
    way = route(world.state, CY, "shop")  # Cy is in the lane
    assert way.path == ("square", "shop") and way.next == "square"
    assert route(world.state, ANN, "square").arrived


def test_a_closed_door_is_no_way_in_but_for_a_keyholder(world):
    at(world, "08:00")  # the shop opens at 09:00
    refused = route(world.state, BOB, "shop")
    assert refused.next is None and "closed" in (refused.refusal or "")
    assert route(world.state, ANN, "shop").path == ("shop",)  # Ann holds its key


def test_a_closed_day_is_no_way_in(world):
    world.state.clock.now = datetime(2025, 4, 20, 10, 0)  # a Sunday
    assert "closed" in (route(world.state, BOB, "shop").refusal or "")


def test_a_full_place_is_no_way_in_nor_through(world):
    at(world, "10:00")
    world.state.set_location(BOB, "park")  # the park holds one
    assert "full" in (route(world.state, ANN, "park").refusal or "")
    world.state.places["lane"].capacity = 1  # Cy fills the lane, the only way home
    blocked = route(world.state, ANN, "home_ann")
    assert blocked.next is None
    assert "no open way" in (blocked.refusal or "") and "full" in (blocked.refusal or "")


def test_pilot_walks_to_the_plan_place_then_shows_the_activity_once(world):
    at(world, "10:00")
    cy = resident(world, CY, "shop")
    first = pilot(cy, world.state)
    assert isinstance(first, Move) and first.to == "square"
    world.state.set_location(CY, "square")
    assert pilot(cy, world.state) == Move(kind="move", to="shop", text=first.text)
    world.state.set_location(CY, "shop")
    there = pilot(cy, world.state)
    assert isinstance(there, Continue) and there.text == "sells apples"
    assert pilot(cy, world.state) is None  # shown once, as it begins


def test_no_path_is_said_once_and_then_the_resident_waits(world):
    at(world, "08:00")
    bob = resident(world, BOB, "shop")
    said = pilot(bob, world.state)
    assert isinstance(said, Wait) and "cannot get to Shop" in said.text
    assert pilot(bob, world.state) is None
    at(world, "09:00")  # the door opens: on its way at once
    moved = pilot(bob, world.state)
    assert isinstance(moved, Move) and moved.to == "shop"


def test_free_time_stays_put_and_carrying_on_follows_the_plan(world):
    at(world, "10:00")
    free = resident(world, BOB, None, "reads the paper")
    assert plan_item(free, world.state.now).place is None
    assert pilot(free, world.state) is None
    assert follow_plan(free, world.state) == Continue(kind="continue", text="reads the paper")
    busy = resident(world, CY, "shop")
    assert follow_plan(busy, world.state) == Move(
        kind="move", to="square", text=pilot(busy, world.state).text
    )  # type: ignore[union-attr]


def test_outside_the_plan_day_a_resident_heads_home(world):
    at(world, "23:30")
    cy = resident(world, CY, "shop")
    item = plan_item(cy, world.state.now)
    assert item.place == "home_bob"
    move = pilot(cy, world.state)
    assert isinstance(move, Move) and move.to == "home_bob"


def test_the_act_prompt_offers_carrying_on_with_the_plan(world):
    at(world, "10:00")
    cy = resident(world, CY, "shop")
    prompt = cy.act_request(world.state, seed=1).messages[-1].content
    assert "Your plan now: sells apples (at Shop, 2 places away: continue takes you" in prompt
    world.state.set_location(CY, "shop")
    prompt = cy.act_request(world.state, seed=1).messages[-1].content
    assert "Your plan now: sells apples (you are there: continue carries on with it)" in prompt
    at(world, "18:00")  # the shop is shut
    world.state.set_location(CY, "lane")
    assert "which you cannot reach now" in plan_hint(cy, world.state)
