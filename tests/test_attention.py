"""Attention: each reason a resident is asked what it does, and none where nothing calls
for a choice."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from concordia_like.agents.agent import Agent
from concordia_like.agents.attention import (
    MET_MAX,
    Attention,
    AttentionPolicy,
    arrivals,
    attend,
    watched,
    why_text,
)
from concordia_like.memory.plans import DayPlan, PlanBlock
from concordia_like.world import load_world

from support.engine import MINI

ANN, BOB, CY = "Ann Reed", "Bob Vale", "Cy Moss"
MONDAY = datetime(2025, 4, 14)
EVENTS = AttentionPolicy()


@pytest.fixture
def world():
    w = load_world(MINI)
    w.state.clock.now = MONDAY.replace(hour=10)
    return w


def resident(world, name: str, blocks: list[tuple[int, str, str | None]]) -> Agent:
    """`name` with a day plan of (hour, activity, place) items from 07:00 to 22:00."""
    agent = Agent.create(world.personas[name], world.name, world.rules)
    start, end = MONDAY.replace(hour=7), MONDAY.replace(hour=22)
    hours = [MONDAY.replace(hour=h) for h, _, _ in blocks] + [end]
    agent.plan = DayPlan(
        name,
        MONDAY.date(),
        start,
        end,
        [PlanBlock(hours[i], hours[i + 1], w, p) for i, (_, w, p) in enumerate(blocks)],
    )
    return agent


def settled(world, agent: Agent, step: int = 1) -> None:
    """First sight of the item and the company: asked once, for those."""
    attend(agent, world.state, step, EVENTS)
    agent.attention.asked(step)


def test_nothing_to_react_to_asks_nothing(world):
    cy = resident(world, CY, [(7, "reads", "lane")])  # alone in the lane
    settled(world, cy)
    assert attend(cy, world.state, 2, EVENTS) == []


def test_being_spoken_to_asks_the_next_step(world):
    cy = resident(world, CY, [(7, "reads", "lane")])
    settled(world, cy)
    cy.reply_to = 'Bob Vale said to you: "Hello"'
    assert attend(cy, world.state, 2, EVENTS) == ["addressed"]


@pytest.mark.parametrize("reason", ["news", "intervention", "whisper"])
def test_what_it_perceived_asks_the_next_step_once(world, reason):
    cy = resident(world, CY, [(7, "reads", "lane")])
    settled(world, cy)
    cy.attention.note(reason)
    assert attend(cy, world.state, 2, EVENTS) == [reason]
    cy.attention.asked(2)
    assert attend(cy, world.state, 3, EVENTS) == []


def test_company_asks_once_per_pair_and_plan_item(world):
    ann = resident(world, ANN, [(7, "tidies the square", "square"), (11, "sweeps", "square")])
    assert attend(ann, world.state, 1, EVENTS) == ["company"]  # Bob is at the square
    ann.attention.asked(1)
    assert attend(ann, world.state, 2, EVENTS) == []  # still together: not again
    world.state.set_location(CY, "square")
    assert attend(ann, world.state, 3, EVENTS) == ["company"]  # Cy arrives
    ann.attention.asked(3)
    world.state.clock.now = MONDAY.replace(hour=11)  # a new item: met afresh
    assert attend(ann, world.state, 4, EVENTS) == ["company"]


def test_a_plan_item_with_no_place_asks_as_it_begins(world):
    cy = resident(world, CY, [(7, "reads", "lane"), (11, "free time", None)])
    settled(world, cy)
    world.state.clock.now = MONDAY.replace(hour=11)
    assert attend(cy, world.state, 2, EVENTS) == ["plan_start"]
    cy.attention.asked(2)
    world.state.clock.now += timedelta(minutes=10)
    assert attend(cy, world.state, 3, EVENTS) == []


def test_a_plan_item_with_a_place_asks_nothing_as_it_begins(world):
    cy = resident(world, CY, [(7, "reads", "lane"), (11, "buys apples", "shop")])
    settled(world, cy)
    world.state.clock.now = MONDAY.replace(hour=11)
    assert attend(cy, world.state, 2, EVENTS) == []


def test_idle_steps_without_a_call_ask_for_a_chance_to_do_something_else(world):
    cy = resident(world, CY, [(7, "reads", "lane")])
    settled(world, cy, step=1)
    policy = AttentionPolicy(idle_steps=3)
    assert attend(cy, world.state, 3, policy) == []
    assert attend(cy, world.state, 4, policy) == ["idle"]


def test_always_asks_everyone_and_says_so_where_nothing_else_does(world):
    cy = resident(world, CY, [(7, "reads", "lane")])
    settled(world, cy)
    always = AttentionPolicy(mode="always")
    assert attend(cy, world.state, 2, always) == ["always"]
    cy.reply_to = "Bob said hi"
    assert attend(cy, world.state, 3, always) == ["addressed"]


def test_attention_round_trips_with_its_resident(world):
    ann = resident(world, ANN, [(7, "tidies the square", "square")])
    attend(ann, world.state, 1, EVENTS)
    ann.attention.note("whisper")
    ann.attention.stuck = "x"
    copy = Agent.create(world.personas[ANN], world.name, world.rules)
    copy.restore(ann.to_dict())
    assert copy.attention == ann.attention
    assert (
        Attention().to_dict()
        == Agent.create(world.personas[BOB], world.name, world.rules).to_dict()["attention"]
    )


def test_only_perceived_reasons_wait_for_the_next_step():
    with pytest.raises(ValueError):
        Attention().note("company")


def test_reasons_are_labelled_in_one_order():
    assert why_text(["company", "addressed"]) == "addressed+company"


def test_the_policy_refuses_what_it_does_not_know():
    with pytest.raises(ValueError):
        AttentionPolicy(mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AttentionPolicy(idle_steps=0)


def test_a_crowd_passing_by_leaves_a_bounded_memory_of_whom_it_met():
    att = Attention()
    quiet = AttentionPolicy(idle_steps=10_000)
    crowd = [f"C{i:03d}" for i in range(200)]  # stands in the square all along

    def meet(step: int, present: list[str], arrived: set[str]) -> list[str]:
        return att.reasons(
            step=step,
            policy=quiet,
            addressed=False,
            present=present,
            new_item=False,
            item_has_place=True,
            arrived=arrived,
        )

    assert meet(1, crowd, set(crowd)) == ["company"]
    for i in range(60):  # one passer-by a step through the standing crowd
        passer = f"P{i:02d}"
        assert meet(i + 2, [*crowd, passer], {passer}) == ["company"]
        assert att.fresh == {passer}
    assert len(att.met) == MET_MAX  # the latest met, not the crowd
    assert meet(62, crowd, set()) == []  # the crowd did not arrive: nobody new
    assert meet(63, [*crowd, "P59"], {"P59"}) == []  # met lately, back again
    assert meet(64, [*crowd, "P00"], {"P00"}) == ["company"]  # met long ago: anew
    copy = Attention()
    copy.restore(att.to_dict())
    assert copy.met == att.met


def test_whoever_arrived_is_found_from_where_each_was_last_asked(world):
    agents = {n: Agent.create(world.personas[n], world.name, world.rules) for n in (ANN, CY)}
    assert arrivals(agents, world.state) == {ANN, CY}  # never asked: anyone may be new
    watched(agents, world.state, {ANN, CY})
    assert arrivals(agents, world.state) == set()
    world.state.set_location(CY, "square")
    watched(agents, world.state, {ANN})  # Cy was not asked (asleep, played)
    assert arrivals(agents, world.state) == {CY}
    assert agents[CY].attention.at is None
