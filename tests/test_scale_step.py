"""A step's cost follows the residents involved, not the world's size: announcements
reach their hearers through the state's index of who is where (the same hearers as a
scan of every resident), and a conserved attribute's total is kept by each write rather
than counted over every resident for each action."""

from __future__ import annotations

from concordia_like.engine.hooks import Announcement
from concordia_like.engine.runs import start_run
from concordia_like.world import load_world, replicate_residents
from concordia_like.world.rules import apply_effects
from concordia_like.world.state import WorldState

from support.engine import REPO, TOWN, close, lm_factory, run_steps


def scanned(sim, ann: Announcement) -> set[str]:
    """Who hears an announcement, by looking at every resident (as the engine did)."""
    return {
        n
        for n in sim.agents
        if (n in ann.to if ann.to is not None else ann.place in (None, sim.state.location(n)))
    }


async def test_announcements_reach_the_same_residents_as_a_scan_of_everyone(runs_root):
    world = replicate_residents(load_world(TOWN), 33)
    sim = start_run(world, lm_factory(), seed=2, root=runs_root, start_time="10:00")
    await run_steps(sim, 2)  # people spread over the town
    places = sorted({sim.state.location(n) for n in sim.agents})
    assert len(places) > 2
    cases = [Announcement(f"a bell rings at {p}", p) for p in places]
    cases += [
        Announcement("thunder", None),
        Announcement("a letter", None, to=("Ines Marlowe", "Hana Sato 2", "Hana Sato 2")),
        Announcement("a bell rings where nobody is", "nowhere"),
    ]
    for ann in cases:
        perceived: dict[str, list[str]] = {n: [] for n in sim.agents}
        sim._noted = {}
        sim._announce(ann, {}, [], perceived)
        heard = {n for n, lines in perceived.items() if lines}
        assert heard == scanned(sim, ann), ann
        assert all(len(lines) == 1 for lines in perceived.values() if lines)  # once each
        assert set(sim._noted) == heard
    await close(sim)


def test_running_totals_match_a_recount_after_actions_and_refusals():
    world = load_world(TOWN)
    state: WorldState = world.state
    money = next(a.name for a in state.attributes.values() if a.conserved)
    names = sorted(state.agents)
    a, b = names[0], names[1]
    pay = [
        {"kind": "set", "agent": a, "attribute": money, "delta": -3},
        {"kind": "set", "agent": b, "attribute": money, "delta": 3},
    ]
    assert apply_effects(state, pay).ok
    printed = [{"kind": "set", "agent": a, "attribute": money, "delta": 5}]  # from nowhere
    assert not apply_effects(state, printed).ok  # refused and rolled back
    assert state.running_totals() == state.conserved_totals() == state.initial_totals
    assert state.agents[a].attributes[money] == world.new_state().agents[a].attributes[money] - 3


def test_a_route_searched_past_no_dead_end_is_the_full_search_s_path():
    """The city at 1,000 residents: for residents at home and at work, to homes, shops
    and workplaces, open or closed, the path (or the refusal) is the one the search of
    every place finds."""
    import random

    from concordia_like.agents.autopilot import _search

    world = load_world(REPO / "worlds" / "city" / "wendmouth-1000" / "world.yaml")
    state = world.state
    rng = random.Random(3)
    names, places = sorted(state.agents), sorted(state.places)
    compared = 0
    for hour in (3, 10):
        state.clock.now = state.clock.now.replace(hour=hour)
        for _ in range(150):
            agent, target = rng.choice(names), rng.choice(places)
            here = state.location(agent)
            if target == here or state.entry_refusal(agent, target) is not None:
                continue
            fast = _search(state, agent, here, target, through=True)
            full = _search(state, agent, here, target, through=False)
            assert fast.path == full.path or fast.refusal is not None
            compared += 1
    assert compared > 100
