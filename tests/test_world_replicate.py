"""Replicating a world's residents (the simulation benchmark's crowds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from concordia_like.world import load_world, replicate_residents
from concordia_like.world.invariants import check_invariants

TOWN = Path(__file__).resolve().parent.parent / "worlds" / "town.yaml"


@pytest.fixture(scope="module")
def town():
    return load_world(TOWN)


def test_clones_share_card_home_start_and_keys(town):
    n = len(town.personas)
    big = replicate_residents(town, 2 * n + 3)
    assert len(big.personas) == len(big.state.agents) == 2 * n + 3
    assert len(town.personas) == n  # the original world is left alone
    clone = big.personas["Ines Marlowe 2"]
    ines = town.personas["Ines Marlowe"]
    assert clone.name == "Ines Marlowe 2" and clone.home == ines.home
    assert clone.backstory == ines.backstory and clone.seed_memories == ines.seed_memories
    a, b = big.state.agents["Ines Marlowe"], big.state.agents["Ines Marlowe 3"]
    assert (a.location, a.home, a.attributes) == (b.location, b.home, b.attributes)
    bakery = big.state.places["bakery"]
    assert {"Ines Marlowe", "Ines Marlowe 2", "Ines Marlowe 3"} <= bakery.keyholders
    assert bakery.capacity == town.state.places["bakery"].capacity * 3
    assert big.state.items.keys() == town.state.items.keys()
    assert check_invariants(big.state) == []
    assert big.new_state().agents.keys() == big.state.agents.keys()


def test_fewer_residents_drop_the_rest_and_what_they_held(town):
    small = replicate_residents(town, 3)
    names = list(town.personas)[:3]
    assert list(small.personas) == names
    holders = {i.holder for i in small.state.items.values()}
    assert holders <= set(small.state.places) | set(names)
    assert all(k in names for p in small.state.places.values() for k in p.keyholders)


def test_bad_counts_are_refused(town):
    with pytest.raises(ValueError):
        replicate_residents(town, 0)
