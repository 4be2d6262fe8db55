"""The effect language and its validator on a small world (tests/fixtures/worlds/mini.yaml):
every effect kind valid and invalid, atomic application, conservation of money."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path

import pytest

from concordia_like.world import (
    CreateEffect,
    DestroyEffect,
    MoveEffect,
    SetEffect,
    TransferEffect,
    WorldState,
    apply_effects,
    check_invariants,
    load_world,
    validate,
)

MINI = Path(__file__).resolve().parent / "fixtures" / "worlds" / "mini.yaml"
ANN, BOB, CY = "Ann Reed", "Bob Vale", "Cy Moss"


@pytest.fixture
def s() -> WorldState:
    return load_world(MINI).state  # Monday 08:00; Ann and Bob at square, Cy on the lane


def frozen(state: WorldState) -> str:
    return json.dumps(state.to_dict(), sort_keys=True)


def ok(state: WorldState, *effects) -> None:
    result = apply_effects(state, effects)
    assert result.ok, result.reason
    assert check_invariants(state) == []


def refused(state: WorldState, effect, fragment: str) -> None:
    before = frozen(state)
    reason = validate(state, effect)
    assert reason is not None and fragment in reason, reason
    result = apply_effects(state, [effect])
    assert not result.ok and fragment in (result.reason or "")
    assert frozen(state) == before


# -- move -----------------------------------------------------------------------------


def test_move_valid(s: WorldState) -> None:
    ok(s, MoveEffect(agent=BOB, to="park"))
    assert s.location(BOB) == "park"
    assert s.agents_at("park") == [BOB]
    assert BOB not in s.agents_at("square")


@pytest.mark.parametrize(
    ("agent", "to", "fragment"),
    [
        ("Nobody", "park", "no agent named 'Nobody'"),
        (BOB, "moon", "no place 'moon'"),
        (BOB, "square", "already at square"),
        (CY, "shop", "shop does not connect to lane"),
        (BOB, "shop", "shop is closed at 08:00"),
    ],
)
def test_move_invalid(s: WorldState, agent: str, to: str, fragment: str) -> None:
    refused(s, MoveEffect(agent=agent, to=to), fragment)


def test_closed_place_cannot_be_entered_but_keyholders_may(s: WorldState) -> None:
    refused(s, MoveEffect(agent=BOB, to="shop"), "closed")
    ok(s, MoveEffect(agent=ANN, to="shop"))  # Ann holds the key
    s.clock.advance(6)  # 09:00, open
    ok(s, MoveEffect(agent=BOB, to="shop"))
    ok(s, MoveEffect(agent=BOB, to="square"))
    s.clock.now = s.clock.now.replace(hour=17, minute=0)
    refused(s, MoveEffect(agent=BOB, to="shop"), "closed at 17:00")
    s.clock.now += timedelta(days=6, hours=-5)  # Sunday 12:00
    refused(s, MoveEffect(agent=BOB, to="shop"), "closed")


def test_capacity(s: WorldState) -> None:
    ok(s, MoveEffect(agent=BOB, to="park"))
    refused(s, MoveEffect(agent=ANN, to="park"), "park is full (capacity 1)")
    s.clock.advance(6)  # shop open, capacity 2
    ok(s, MoveEffect(agent=ANN, to="shop"), MoveEffect(agent=CY, to="square"))
    ok(s, MoveEffect(agent=BOB, to="square"), MoveEffect(agent=BOB, to="shop"))
    refused(s, MoveEffect(agent=CY, to="shop"), "full")
    assert sorted(s.reachable(CY)) == ["lane", "park"]  # park has room again, shop is full


def test_reachable_lists_only_valid_moves(s: WorldState) -> None:
    assert sorted(s.reachable(BOB)) == ["lane", "park"]  # shop closed
    assert sorted(s.reachable(ANN)) == ["lane", "park", "shop"]  # keyholder
    for place in s.reachable(BOB):
        assert validate(s, MoveEffect(agent=BOB, to=place)) is None


# -- transfer -------------------------------------------------------------------------


def test_give_between_people_in_one_place(s: WorldState) -> None:
    ok(s, TransferEffect(item="apple", from_=ANN, to=BOB, quantity=2))
    assert s.count("apple", ANN) == 1 and s.count("apple", BOB) == 2
    ok(s, TransferEffect(item="Apple", from_=BOB, to=ANN))  # names are case-insensitive
    assert s.count("apple", ANN) == 2
    assert [i.name for i in s.items_held(ANN)] == ["apple"]  # one stack per name


def test_whole_stack_keeps_its_id(s: WorldState) -> None:
    ok(s, TransferEffect(item="spade", from_=BOB, to=ANN))
    assert s.items["spade"].holder == ANN
    assert s.item_names(BOB) == []


def test_take_and_drop_at_a_place(s: WorldState) -> None:
    s.clock.advance(6)
    ok(s, MoveEffect(agent=BOB, to="shop"))
    ok(s, TransferEffect(item="apple", from_="shop", to=BOB, quantity=4))
    assert s.count("apple", "shop") == 6 and s.count("apple", BOB) == 4
    ok(s, TransferEffect(item="spade", from_=BOB, to="shop"))
    assert s.items["spade"].holder == "shop"


def test_transfer_by_id(s: WorldState) -> None:
    ok(s, MoveEffect(agent=ANN, to="lane"), MoveEffect(agent=ANN, to="home_ann"))
    ok(s, TransferEffect(item="note", from_="home_ann", to=ANN))
    assert s.items["note"].holder == ANN and s.items["note"].properties == {"sealed": True}


@pytest.mark.parametrize(
    ("effect", "fragment"),
    [
        (TransferEffect(item="apple", from_=ANN, to=CY), "Cy Moss is not with Ann Reed"),
        (TransferEffect(item="apple", from_=ANN, to=BOB, quantity=4), "holds only 3 apple"),
        (TransferEffect(item="pear", from_=ANN, to=BOB), "holds no 'pear' (holds: apple x3)"),
        (TransferEffect(item="apple", from_="shop", to=ANN), "Ann Reed is not at shop"),
        (TransferEffect(item="apple", from_=ANN, to="shop"), "Ann Reed is not at shop"),
        (TransferEffect(item="apple", from_="shop", to="park"), "someone must carry them"),
        (TransferEffect(item="apple", from_=ANN, to=ANN), "the same"),
        (TransferEffect(item="apple", from_=ANN, to="Ghost"), "no agent or place named 'Ghost'"),
        (
            TransferEffect(item="apple", from_=ANN, to=BOB, quantity=101),
            "exceeds the world's limit",
        ),
    ],
)
def test_transfer_invalid(s: WorldState, effect: TransferEffect, fragment: str) -> None:
    refused(s, effect, fragment)


# -- set ------------------------------------------------------------------------------


def test_set_value_and_delta(s: WorldState) -> None:
    ok(s, SetEffect(agent=BOB, attribute="energy", delta=-10))
    assert s.attribute(BOB, "energy") == 40
    ok(s, SetEffect(agent=BOB, attribute="energy", value=100))
    assert s.attribute(BOB, "energy") == 100
    ok(s, SetEffect(agent=BOB, attribute="mood", value=0.5))
    assert s.attribute(BOB, "mood") == 0.5
    ok(s, SetEffect(agent=BOB, attribute="energy", delta=-40.0))  # whole, though a float
    assert s.attribute(BOB, "energy") == 60 and isinstance(s.attribute(BOB, "energy"), int)


@pytest.mark.parametrize(
    ("effect", "fragment"),
    [
        (SetEffect(agent=BOB, attribute="energy", delta=60), "would be 110 (now 50), outside"),
        (SetEffect(agent=BOB, attribute="energy", value=-1), "outside its bounds 0..100"),
        (SetEffect(agent=BOB, attribute="energy", value=5, delta=1), "exactly one"),
        (SetEffect(agent=BOB, attribute="energy"), "exactly one"),
        (SetEffect(agent=BOB, attribute="energy", delta=2.5), "whole number"),
        ({"kind": "set", "agent": BOB, "attribute": "mood", "value": math.nan}, "finite"),
        ({"kind": "set", "agent": BOB, "attribute": "mood", "delta": math.inf}, "finite"),
        (SetEffect(agent=BOB, attribute="charisma", value=1), "no attribute 'charisma'"),
        (SetEffect(agent="Ghost", attribute="energy", value=1), "no agent named"),
    ],
)
def test_set_invalid(s: WorldState, effect: SetEffect, fragment: str) -> None:
    refused(s, effect, fragment)


def test_conserved_money_moves_but_is_not_minted(s: WorldState) -> None:
    mint = SetEffect(agent=BOB, attribute="money", delta=5)
    assert validate(s, mint) is None  # one set alone is within bounds ...
    before = frozen(s)
    result = apply_effects(s, [mint])  # ... but a list must not change the total
    assert not result.ok and "money is conserved" in (result.reason or "")
    assert result.reason.startswith("effect 1 (set Bob Vale's money by +5)")
    assert frozen(s) == before
    sale = [
        TransferEffect(item="apple", from_=ANN, to=BOB, quantity=2),
        SetEffect(agent=BOB, attribute="money", delta=-4),
        SetEffect(agent=ANN, attribute="money", value=54),
    ]
    ok(s, *sale)
    assert (s.attribute(ANN, "money"), s.attribute(BOB, "money")) == (54, 16)
    broke = [
        SetEffect(agent=CY, attribute="money", delta=-21),
        SetEffect(agent=ANN, attribute="money", delta=21),
    ]
    assert "outside its bounds" in (apply_effects(s, broke).reason or "")


# -- create / destroy -----------------------------------------------------------------


def test_create_and_destroy_keep_the_ledger(s: WorldState) -> None:
    ok(s, CreateEffect(item="pie", holder=ANN, quantity=2, properties={"price": 5}))
    assert s.stack(ANN, "pie").properties == {"price": 5}
    ok(s, CreateEffect(item="Apple", holder="shop", quantity=5))  # joins the shop's apples
    assert s.count("apple", "shop") == 15 and len(s.items_held("shop")) == 1
    ok(s, DestroyEffect(item="apple", holder=ANN, quantity=3))
    assert s.stack(ANN, "apple") is None
    ok(s, DestroyEffect(item="pie", holder=ANN))
    assert s.created == {"pie": 2, "apple": 5}
    assert s.destroyed == {"apple": 3, "pie": 1}


@pytest.mark.parametrize(
    ("effect", "fragment"),
    [
        (CreateEffect(item="pie", holder="Ghost"), "no agent or place named 'Ghost'"),
        (CreateEffect(item="apple", holder="shop", quantity=91), "more than 100"),
        (
            CreateEffect.model_construct(item="pie", holder=ANN, quantity=0, properties={}),
            "positive",
        ),
        (CreateEffect(item="   ", holder=ANN), "needs a name"),
        (DestroyEffect(item="apple", holder=ANN, quantity=4), "holds only 3"),
        (DestroyEffect(item="pear", holder=ANN), "holds no 'pear'"),
        (DestroyEffect.model_construct(item="apple", holder=ANN, quantity=-1), "positive"),
    ],
)
def test_create_destroy_invalid(s: WorldState, effect, fragment: str) -> None:
    refused(s, effect, fragment)


# -- atomicity ------------------------------------------------------------------------


def test_one_invalid_effect_leaves_the_state_byte_identical(s: WorldState) -> None:
    before = frozen(s)
    effects = [
        TransferEffect(item="apple", from_=ANN, to=BOB, quantity=1),
        MoveEffect(agent=BOB, to="park"),
        CreateEffect(item="pie", holder=ANN, quantity=2),
        DestroyEffect(item="spade", holder=BOB),
        SetEffect(agent=ANN, attribute="energy", delta=-10),
        SetEffect(agent=ANN, attribute="energy", delta=-100),  # invalid
    ]
    result = apply_effects(s, effects)
    assert not result.ok and result.failed_index == 5 and result.applied == ()
    assert result.reason.startswith("effect 6 (set Ann Reed's energy by -100): energy would be -60")
    assert frozen(s) == before
    assert check_invariants(s) == []


def test_effects_see_the_state_earlier_ones_left(s: WorldState) -> None:
    # Bob moves away, so Ann can no longer give to him in the same list
    result = apply_effects(
        s, [MoveEffect(agent=BOB, to="park"), TransferEffect(item="apple", from_=ANN, to=BOB)]
    )
    assert not result.ok and result.failed_index == 1 and "not with" in (result.reason or "")
    assert s.location(BOB) == "square"
    ok(
        s,
        TransferEffect(item="apple", from_=ANN, to=BOB, quantity=3),
        TransferEffect(item="apple", from_=BOB, to=ANN),
    )


def test_dicts_are_parsed_and_bad_ones_refused(s: WorldState) -> None:
    good = {"kind": "transfer", "item": "apple", "from": ANN, "to": BOB, "quantity": 1}
    assert apply_effects(s, [good]).ok
    before = frozen(s)
    for bad, fragment in [
        ({"kind": "teleport", "agent": BOB}, "not a valid effect"),
        ({"kind": "move", "agent": BOB}, "to: Field required"),
        ({"kind": "create", "item": "gold", "holder": BOB, "quantity": -5}, "quantity"),
        ({"kind": "move", "agent": BOB, "to": "park", "by": "magic"}, "by: Extra inputs"),
    ]:
        result = apply_effects(s, [{"kind": "move", "agent": BOB, "to": "park"}, bad])
        assert not result.ok and result.failed_index == 1, bad
        assert (
            result.reason.startswith("effect 2: not a valid effect") and fragment in result.reason
        )
        assert frozen(s) == before


def test_validate_accepts_dicts(s: WorldState) -> None:
    assert validate(s, {"kind": "move", "agent": BOB, "to": "park"}) is None
    assert "not a valid effect" in (validate(s, {"kind": "fly", "agent": BOB}) or "")
    assert "closed" in (validate(s, {"kind": "move", "agent": BOB, "to": "shop"}) or "")


def test_empty_list_is_ok(s: WorldState) -> None:
    result = apply_effects(s, [])
    assert result.ok and result.applied == ()


def test_effect_json_schema_uses_from() -> None:
    from concordia_like.world import EFFECT_LIST_ADAPTER

    schema = json.dumps(EFFECT_LIST_ADAPTER.json_schema())
    assert '"from"' in schema and "from_" not in schema
    for kind in ("move", "transfer", "set", "create", "destroy"):
        assert f'"{kind}"' in schema
