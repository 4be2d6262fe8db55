"""Whom a resident can reach through its apps is read from indexes kept as the world
changes (who holds the device, whom one has written to, paid or follows), not from a
scan of the town per act call: these check that the indexes follow every change, its
undo and a checkpoint, and answer as the scan would."""

from __future__ import annotations

import random

import pytest

from concordia_like.world import TransferEffect, apply_effects, load_world
from concordia_like.world.app_effects import BankEffect, FollowEffect, MessageEffect
from concordia_like.world.app_feed import CONTACTS_MAX, contacts, has_device
from concordia_like.world.replicate import replicate_residents
from concordia_like.world.state import Item, WorldState

from support.engine import REPO

APPS_WORLD = REPO / "tests" / "fixtures" / "worlds" / "mini_apps.yaml"
ANN, BOB, CY = "Ann Reed", "Bob Vale", "Cy Moss"


@pytest.fixture
def state() -> WorldState:
    # Ann (50 money) and Bob (20) at the square, each with a phone; Cy in the lane, none
    return load_world(APPS_WORLD).state


def scanned(s: WorldState, agent: str) -> list[str]:
    """Contacts as a scan of every resident, message and transfer finds them (what the
    indexes must agree with)."""
    others = [n for n in sorted(s.agents) if n != agent and has_device(s, n)]
    if len(others) <= CONTACTS_MAX:
        return others
    apps = s.apps
    known = {m.to for m in apps.messages if m.sender == agent}
    known |= {m.sender for m in apps.messages if m.to == agent}
    known |= {t.to for t in apps.transfers if t.sender == agent}
    known |= {b for a, b in apps.follows if a == agent}
    known |= set(s.others_present(agent))
    first = [n for n in others if n in known]
    return sorted((first + [n for n in others if n not in known])[:CONTACTS_MAX])


def phone_of(s: WorldState, holder: str) -> str:
    stack = s.stack_named(holder, "phone")
    assert stack is not None
    return stack.id


def test_gaining_and_losing_the_phone_updates_who_can_be_reached(state):
    assert state.holders_of("phone") == [ANN, BOB]
    assert contacts(state, ANN) == [BOB] and not has_device(state, CY)
    state.set_location(CY, "square")
    assert apply_effects(
        state, [TransferEffect(item="phone", from_=BOB, to=CY)], actor=BOB
    ).ok  # Bob hands his phone to Cy
    assert state.holders_of("Phone") == [ANN, CY]  # by name, as models capitalise
    assert contacts(state, ANN) == [CY]
    assert not has_device(state, BOB) and contacts(state, CY) == [ANN]
    state.set_holder(phone_of(state, CY), "square")  # dropped where it lies
    assert state.holders_of("phone") == [ANN, "square"]
    assert contacts(state, ANN) == []  # a phone at a place is nobody's contact


def test_an_undone_move_of_the_phone_restores_the_index(state):
    state.begin()
    state.set_holder(phone_of(state, BOB), "square")
    assert state.holders_of("phone") == [ANN, "square"]
    state.rollback()
    assert state.holders_of("phone") == [ANN, BOB] and contacts(state, ANN) == [BOB]


def test_a_message_of_a_failed_action_leaves_no_partner(state):
    ok = MessageEffect(agent=ANN, to=BOB, text="hi")
    refused = MessageEffect(agent=ANN, to=CY, text="hi")  # Cy has no phone: all undone
    assert not apply_effects(state, [ok, refused], actor=ANN).ok
    assert state.apps.partners(ANN) == set() and state.apps.partners(BOB) == set()
    assert apply_effects(state, [ok], actor=ANN).ok
    assert state.apps.partners(BOB) == {ANN} and state.apps.partners(ANN) == {BOB}


def test_in_a_crowd_of_phones_the_indexed_contacts_are_the_scanned_ones():
    """Forty-two residents, most with phones, scattered, writing, paying and following at random:
    at every turn each one's contacts are what a scan of the town gives, also after a
    checkpoint round trip (the partner index is rebuilt, not stored)."""
    s = replicate_residents(load_world(APPS_WORLD), 42).state
    rng = random.Random(5)
    places = sorted(s.places)
    for i, n in enumerate(sorted(s.agents)):
        s.set_location(n, rng.choice(places))
        if i % 4 and not has_device(s, n):  # about a quarter have none
            s.add_item(Item(id=f"phone-r{i}", name="phone", holder=n, quantity=1))
    everyone = sorted(s.agents)
    for turn in range(120):
        s.clock.advance()  # a new step: the rate limits start again
        a, b = rng.sample(everyone, 2)
        effect = rng.choice(
            [
                MessageEffect(agent=a, to=b, text=f"note {turn}"),
                BankEffect(agent=a, to=b, amount=1),
                FollowEffect(agent=a, whom=b),
            ]
        )
        apply_effects(s, [effect], actor=a)  # refused ones change nothing
        if turn % 10 == 0:
            phones = [p for p in s.items.values() if p.name == "phone"]
            without = [n for n in everyone if not has_device(s, n)]
            s.set_holder(rng.choice(phones).id, rng.choice(without))  # one changes hands
        for n in rng.sample(everyone, 5):
            assert contacts(s, n) == scanned(s, n), n
    apps = s.apps
    assert min(len(apps.messages), len(apps.transfers), len(apps.follows)) >= 10
    again = WorldState.from_dict(s.to_dict())
    for n in everyone:
        assert contacts(again, n) == scanned(again, n) == contacts(s, n)
    assert sum(len(contacts(s, n)) == CONTACTS_MAX for n in everyone) > 10  # capped often


def test_reading_is_offered_only_when_something_new_is_there(state):
    from concordia_like.agents.actions import app_targets
    from concordia_like.world.app_effects import PostEffect, ReadEffect

    assert app_targets(state, ANN).readable == ()  # nothing posted, nothing received
    assert apply_effects(state, [MessageEffect(agent=BOB, to=ANN, text="hi")], actor=BOB).ok
    assert apply_effects(state, [PostEffect(agent=BOB, text="Apples")], actor=BOB).ok
    assert app_targets(state, ANN).readable == ("feed", "messages")
    assert app_targets(state, BOB).readable == ()  # his own post and message
    assert apply_effects(state, [ReadEffect(agent=ANN, what="messages")], actor=ANN).ok
    assert apply_effects(state, [ReadEffect(agent=ANN, what="feed")], actor=ANN).ok
    assert app_targets(state, ANN).readable == ()
    again = WorldState.from_dict(state.to_dict())  # the indexes rebuilt on a resume
    assert app_targets(again, ANN).readable == ()
    state.clock.advance()
    assert apply_effects(state, [MessageEffect(agent=BOB, to=ANN, text="and?")], actor=BOB).ok
    assert app_targets(state, ANN).readable == ("messages",)
