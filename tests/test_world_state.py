"""The state beyond single effects: checkpoints, invariants, schedule, prompt slices,
opening hours, and a seeded fuzz of random effects against the town."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from concordia_like.world import (
    CreateEffect,
    DestroyEffect,
    MoveEffect,
    OpeningHours,
    SetEffect,
    TransferEffect,
    WorldState,
    apply_effects,
    check_invariants,
    load_world,
)

HERE = Path(__file__).resolve().parent
MINI = HERE / "fixtures" / "worlds" / "mini.yaml"
TOWN = HERE.parent / "worlds" / "town.yaml"
ANN, BOB, CY = "Ann Reed", "Bob Vale", "Cy Moss"


def dump(state: WorldState) -> str:
    return json.dumps(state.to_dict(), sort_keys=True)


@pytest.fixture
def s() -> WorldState:
    return load_world(MINI).state


# -- checkpoints ----------------------------------------------------------------------


def test_snapshot_round_trip_is_exact(s: WorldState) -> None:
    assert apply_effects(
        s,
        [
            TransferEffect(item="apple", from_=ANN, to=BOB, quantity=2),
            CreateEffect(item="pie", holder=BOB, properties={"price": 2.5, "hot": True}),
            DestroyEffect(item="spade", holder=BOB),
            SetEffect(agent=ANN, attribute="mood", value=0.25),
            MoveEffect(agent=CY, to="home_bob"),
        ],
    ).ok
    s.clock.advance(3)
    data = json.loads(json.dumps(s.to_dict()))  # through JSON, as a checkpoint row stores it
    back = WorldState.from_dict(data)
    assert dump(back) == dump(s)
    assert back.to_dict() == s.to_dict()
    assert back.clock.now == s.clock.now and back.clock.step_index == 3
    assert back.agents_at("home_bob") == [CY]
    assert back.stack(BOB, "apple").quantity == 2
    assert back.events[1].effects == s.events[1].effects
    assert check_invariants(back) == []
    # the restored state goes on exactly as the original would
    e = [CreateEffect(item="pie", holder=ANN), TransferEffect(item="apple", from_=BOB, to=ANN)]
    assert apply_effects(back, e).ok and apply_effects(s, e).ok
    assert dump(back) == dump(s)


def test_copy_is_independent(s: WorldState) -> None:
    c = s.copy()
    assert apply_effects(c, [MoveEffect(agent=BOB, to="park")]).ok
    assert s.location(BOB) == "square" and c.location(BOB) == "park"


def test_town_round_trip() -> None:
    s = load_world(TOWN).state
    assert dump(WorldState.from_dict(json.loads(dump(s)))) == dump(s)


def test_unknown_checkpoint_format_refused(s: WorldState) -> None:
    data = s.to_dict()
    data["format"] = 99
    with pytest.raises(ValueError, match="format"):
        WorldState.from_dict(data)


# -- invariants -----------------------------------------------------------------------


def test_invariants_hold_after_valid_effects(s: WorldState) -> None:
    baseline = s.item_counts()
    assert apply_effects(s, [CreateEffect(item="apple", holder="shop", quantity=4)]).ok
    assert apply_effects(s, [DestroyEffect(item="apple", holder=ANN, quantity=2)]).ok
    assert check_invariants(s, baseline) == []
    assert s.count("apple") == 13 + 4 - 2


def test_invariants_catch_tampering(s: WorldState) -> None:
    s.items["apple"].quantity += 1  # an apple from nowhere
    s.agents[BOB].attributes["energy"] = 101
    s.agents[ANN].attributes["money"] += 5
    s.agents[CY].location = "atlantis"
    problems = "\n".join(check_invariants(s))
    assert "item 'apple': 14 in the world, ledger says 13" in problems
    assert "Bob Vale: energy 101 outside 0..100" in problems
    assert "conserved money: total 95 != 90" in problems
    assert "Cy Moss: at 'atlantis', which is not a place" in problems
    assert "presence index out of step" in problems


def test_invariants_against_an_explicit_baseline(s: WorldState) -> None:
    problems = check_invariants(s, {"apple": 13, "spade": 1, "note for bob": 2})
    assert problems == ["item 'note for bob': 1 in the world, ledger says 2"]


def test_state_keeps_its_initial_baseline_through_checkpoints(s: WorldState) -> None:
    assert apply_effects(s, [CreateEffect(item="apple", holder="shop")]).ok
    back = WorldState.from_dict(s.to_dict())
    assert back.initial_counts == s.initial_counts and back.created == {"apple": 1}
    back.items["apple"].quantity -= 1
    assert check_invariants(back) == ["item 'apple': 13 in the world, ledger says 14"]


# -- schedule -------------------------------------------------------------------------


def test_events_due_in_a_window(s: WorldState) -> None:
    assert s.events_due() == []  # 08:00-08:10
    due = s.events_due(datetime(2025, 4, 14, 8, 30))
    assert [o.event.id for o in due] == ["delivery"]
    assert due[0].effects[0].kind == "create"
    day = s.events_due(datetime(2025, 4, 14), timedelta(days=1))
    assert [(o.event.id, o.at.hour) for o in day] == [("delivery", 8), ("opening", 9)]


def test_each_occurrence_seen_once_stepping_through(s: WorldState) -> None:
    seen = []
    while s.clock.now < datetime(2025, 4, 18):
        seen += [(o.event.id, o.at) for o in s.events_due()]
        s.clock.advance()
    assert seen == [
        ("delivery", datetime(2025, 4, 14, 8, 30)),
        ("opening", datetime(2025, 4, 14, 9, 0)),
        ("delivery", datetime(2025, 4, 15, 8, 30)),
        ("delivery", datetime(2025, 4, 16, 8, 30)),  # until 16 April 09:00
    ]


def test_town_schedule() -> None:
    s = load_world(TOWN).state
    week = s.events_due(s.clock.now, timedelta(days=7))
    ids = [o.event.id for o in week]
    assert ids.count("morning_bake") == 7 and "town_meeting" in ids and "market_day" in ids
    saturday = next(o for o in week if o.event.id == "market_day")
    assert saturday.at.strftime("%A %H:%M") == "Saturday 08:00"
    for occ in week:  # every event's effects apply on the state of that moment
        assert apply_effects(s, occ.effects).ok
    assert check_invariants(s) == []


# -- describe_for ---------------------------------------------------------------------


def test_describe_for_is_short_and_useful(s: WorldState) -> None:
    text = s.describe_for(ANN)
    assert "Monday 14 April 2025, 08:00" in text
    assert "You are at Square (square" in text
    assert "With you: Bob Vale." in text
    assert "You carry: apple x3." in text
    assert "money 50" in text and "energy 50/100" in text
    assert "You can go to: shop, lane, park." in text  # Ann holds the shop's key
    assert "shop" in s.describe_for(BOB).split("Not now:")[1]  # closed, for Bob
    assert len(s.describe_for(BOB, max_chars=120)) <= 120


def test_describe_for_stays_bounded_with_a_crowd() -> None:
    s = load_world(TOWN).state
    for i in range(200):
        assert apply_effects(s, [CreateEffect(item=f"pebble {i}", holder="bakery")]).ok
    text = s.describe_for("Ines Marlowe")
    assert "and 195 more" in text or "more" in text
    assert len(text) <= 700


# -- opening hours --------------------------------------------------------------------


def test_opening_hours() -> None:
    monday = datetime(2025, 4, 14)
    h = OpeningHours.parse("08:00-12:00,13:30-17:30", ["saturday", "sunday"])
    assert h.is_open(monday.replace(hour=8)) and not h.is_open(monday.replace(hour=12, minute=30))
    assert h.is_open(monday.replace(hour=17, minute=29)) and not h.is_open(
        monday.replace(hour=17, minute=30)
    )
    assert not h.is_open(monday.replace(day=19, hour=10))  # Saturday
    assert h.next_change(monday.replace(hour=12, minute=10)) == "closed, opens 13:30"
    pub = OpeningHours.parse("12:00-00:30", ["monday"])  # late hours belong to the evening before
    assert pub.is_open(datetime(2025, 4, 14, 0, 15))  # Monday 00:15: Sunday's evening
    assert not pub.is_open(datetime(2025, 4, 14, 13, 0))  # closed Mondays
    assert not pub.is_open(datetime(2025, 4, 15, 0, 15))  # Monday's evening did not happen
    assert pub.is_open(datetime(2025, 4, 15, 23, 59)) and pub.is_open(datetime(2025, 4, 16, 0, 29))
    assert not pub.is_open(datetime(2025, 4, 16, 0, 30))
    assert pub.next_change(datetime(2025, 4, 15, 23, 0)) == "open until 00:30"
    assert OpeningHours.parse("always").always and OpeningHours.parse(None).is_open(monday)
    for bad in ("9-17", "08:00-08:00", "08:00-25:00", "8am-5pm"):
        with pytest.raises(ValueError):
            OpeningHours.parse(bad)


# -- fuzz -----------------------------------------------------------------------------


def random_effect(rng: random.Random, s: WorldState):
    agents = list(s.agents)
    places = list(s.places)
    holders = agents + places
    names = [*sorted({i.name for i in s.items.values()}), "ghost item"]
    kind = rng.choice(["move", "transfer", "set", "create", "destroy"])
    if kind == "move":
        agent = rng.choice(agents)
        to = rng.choice(s.reachable(agent) or places) if rng.random() < 0.8 else rng.choice(places)
        return MoveEffect(agent=agent, to=to)
    if kind == "transfer":
        giver = rng.choice(holders)
        held = s.item_names(giver)
        item = rng.choice(held) if held and rng.random() < 0.8 else rng.choice(names)
        if giver in s.agents:
            near = [*s.others_present(giver), s.location(giver)]
        else:
            near = s.agents_at(giver)
        to = rng.choice(near) if near and rng.random() < 0.8 else rng.choice(holders)
        return TransferEffect(item=item, from_=giver, to=to, quantity=rng.randint(1, 8))
    if kind == "set":
        attr = rng.choice(list(s.attributes))
        return SetEffect(agent=rng.choice(agents), attribute=attr, delta=rng.randint(-60, 60))
    if kind == "create":
        return CreateEffect(
            item=rng.choice(names), holder=rng.choice(holders), quantity=rng.randint(1, 40)
        )
    holder = rng.choice(holders)
    held = s.item_names(holder)
    item = rng.choice(held) if held else rng.choice(names)
    return DestroyEffect(item=item, holder=holder, quantity=rng.randint(1, 5))


def test_random_effect_lists_never_break_invariants() -> None:
    rng = random.Random(7)
    world = load_world(TOWN)
    s = world.state
    baseline = s.item_counts()
    applied = refused = 0
    kinds_applied: set[str] = set()
    for step in range(400):
        effects = [random_effect(rng, s) for _ in range(rng.randint(1, 4))]
        before = dump(s)
        result = apply_effects(s, effects)
        if result.ok:
            applied += 1
            kinds_applied |= {e.kind for e in effects}
        else:
            refused += 1
            assert dump(s) == before, result.reason
        assert check_invariants(s, baseline) == [], step
        if step % 20 == 0:
            s.clock.advance(rng.randint(1, 30))
    assert applied > 40 and refused > 40
    assert kinds_applied == {"move", "transfer", "set", "create", "destroy"}
    assert dump(WorldState.from_dict(json.loads(dump(s)))) == dump(s)
