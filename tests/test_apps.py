"""The apps as typed, validated world state: each app effect and its refusals, the
bound of one resident's authority over them, the device that gives access, the feed's
rankings, and their checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from concordia_like.agents.actions import app_targets, decision_for
from concordia_like.world import TransferEffect, apply_effects, check_invariants, load_world
from concordia_like.world.app_effects import (
    BankEffect,
    FollowEffect,
    LikeEffect,
    MessageEffect,
    PostEffect,
    ReadEffect,
    app_notices,
    parse_app_effect,
)
from concordia_like.world.app_feed import rank_feed
from concordia_like.world.app_world import AppsSetEffect
from concordia_like.world.state import WorldState
from concordia_like.yaml_loader import ConfigFileError

from support.engine import REPO

APPS_WORLD = REPO / "tests" / "fixtures" / "worlds" / "mini_apps.yaml"
ANN, BOB, CY = "Ann Reed", "Bob Vale", "Cy Moss"


@pytest.fixture
def state() -> WorldState:
    # Ann (50 money) and Bob (20) at the square, each with a phone; Cy in the lane, none
    return load_world(APPS_WORLD).state


def snapshot(s: WorldState) -> str:
    return json.dumps(s.to_dict(), sort_keys=True)


def refused(s: WorldState, effect, actor: str | None = ANN) -> str:
    """The reason `effect` is refused, having checked that it changed nothing."""
    before = snapshot(s)
    result = apply_effects(s, [effect], actor=actor)
    assert not result.ok
    assert snapshot(s) == before
    assert result.reason is not None
    return result.reason


def next_step(s: WorldState) -> None:
    s.clock.advance()


# -- messages ---------------------------------------------------------------------------


def test_a_message_is_stored_and_reaches_its_addressee_wherever_it_is(state):
    state.set_location(BOB, "park")
    result = apply_effects(
        state, [MessageEffect(agent=ANN, to=BOB, text="Bridge closes")], actor=ANN
    )
    assert result.ok
    [m] = state.apps.messages
    assert (m.id, m.sender, m.to, m.text, m.step) == ("m1", ANN, BOB, "Bridge closes", 1)
    notices = app_notices(state, result.applied)
    assert notices[BOB] == ['Message from Ann Reed: "Bridge closes"']
    assert notices[ANN] == ['You message Bob Vale: "Bridge closes"']


def test_no_message_reaches_or_leaves_a_resident_without_a_phone(state):
    assert "Cy Moss holds no phone" in refused(state, MessageEffect(agent=ANN, to=CY, text="hi"))
    reason = refused(state, MessageEffect(agent=CY, to=ANN, text="hi"), actor=CY)
    assert "Cy Moss holds no phone" in reason


def test_a_message_longer_than_the_world_allows_or_empty_is_refused(state):
    assert "more than messages takes (120)" in refused(
        state, MessageEffect(agent=ANN, to=BOB, text="x" * 121)
    )
    assert "empty" in refused(state, MessageEffect(agent=ANN, to=BOB, text="   "))


def test_messages_past_the_rate_limit_of_a_step_are_refused_until_the_next(state):
    for i in range(2):
        assert apply_effects(state, [MessageEffect(agent=ANN, to=BOB, text=f"{i}")], actor=ANN)
    reason = refused(state, MessageEffect(agent=ANN, to=BOB, text="third"))
    assert "its limit (2)" in reason
    assert apply_effects(state, [MessageEffect(agent=BOB, to=ANN, text="mine")], actor=BOB)
    next_step(state)
    assert apply_effects(state, [MessageEffect(agent=ANN, to=BOB, text="again")], actor=ANN)


def test_notices_to_one_resident_are_bounded_per_step(state):
    result = apply_effects(
        state,
        [
            MessageEffect(agent=ANN, to=BOB, text="one"),
            MessageEffect(agent=ANN, to=BOB, text="two"),
        ],
        actor=ANN,
    )
    assert result.ok and len(state.apps.messages) == 2  # both delivered to the inbox
    notices = app_notices(state, result.applied)
    assert notices[BOB] == [
        'Message from Ann Reed: "one"',
        "More notifications are waiting on your phone.",
    ]
    read = apply_effects(state, [ReadEffect(agent=BOB, what="messages")], actor=BOB)
    assert app_notices(state, read.applied)[BOB][-1] == 'Message from Ann Reed: "two"'


# -- authority: nobody acts as another through an app ---------------------------------------


@pytest.mark.parametrize(
    "effect",
    [
        MessageEffect(agent=BOB, to=ANN, text="it is me, Bob"),
        PostEffect(agent=BOB, text="Bob here"),
        FollowEffect(agent=BOB, whom=ANN),
        ReadEffect(agent=BOB, what="messages"),
        BankEffect(agent=BOB, to=ANN, amount=5),
    ],
    ids=lambda e: e.kind,
)
def test_one_resident_never_messages_posts_follows_reads_or_pays_as_another(state, effect):
    reason = refused(state, effect, actor=ANN)
    assert "Bob Vale is another resident: Ann Reed's action may not" in reason


def test_the_world_itself_may_post_for_a_resident(state):
    """An intervention (no actor) has no such bound: a planted post goes through."""
    assert apply_effects(state, [PostEffect(agent=BOB, text="Planted")])
    assert state.apps.posts[0].author == BOB


# -- the bank -------------------------------------------------------------------------------


def test_a_bank_transfer_moves_money_and_conserves_it(state):
    state.set_location(BOB, "park")  # no need to be together
    before = state.conserved_totals()
    assert apply_effects(state, [BankEffect(agent=ANN, to=BOB, amount=30)], actor=ANN)
    assert state.attribute(ANN, "money") == 20
    assert state.attribute(BOB, "money") == 50
    assert state.conserved_totals() == before
    assert check_invariants(state) == []
    [t] = state.apps.transfers
    assert (t.sender, t.to, t.amount, t.currency) == (ANN, BOB, 30, "money")


def test_a_transfer_beyond_the_balance_the_limit_or_to_no_phone_is_refused(state):
    assert "has only 20 money" in refused(state, BankEffect(agent=BOB, to=ANN, amount=21), BOB)
    assert "more than one transfer moves (40)" in refused(
        state, BankEffect(agent=ANN, to=BOB, amount=41)
    )
    assert "Cy Moss holds no phone" in refused(state, BankEffect(agent=ANN, to=CY, amount=1))
    assert apply_effects(state, [BankEffect(agent=ANN, to=BOB, amount=1)], actor=ANN)
    assert "its limit (1)" in refused(state, BankEffect(agent=ANN, to=BOB, amount=1))


# -- the feed -------------------------------------------------------------------------------


def test_likes_and_replies_need_a_post_that_exists_and_a_like_counts_once(state):
    assert "no post 'p9' on the feed (posts: none yet)" in refused(
        state, LikeEffect(agent=ANN, post="p9")
    )
    assert "no post 'p2'" in refused(state, PostEffect(agent=ANN, text="yes", reply_to="p2"))
    assert apply_effects(state, [PostEffect(agent=BOB, text="Fresh apples")], actor=BOB)
    assert apply_effects(state, [LikeEffect(agent=ANN, post="p1")], actor=ANN)
    assert "already likes p1" in refused(state, LikeEffect(agent=ANN, post="p1"))
    reply = apply_effects(state, [PostEffect(agent=ANN, text="Yum", reply_to="p1")], actor=ANN)
    assert reply.ok
    assert app_notices(state, reply.applied)[BOB] == ['Ann Reed replies to your post p1: "Yum"']


def test_an_action_whose_later_app_effect_fails_leaves_no_trace(state):
    before = snapshot(state)
    result = apply_effects(
        state, [PostEffect(agent=ANN, text="first"), LikeEffect(agent=ANN, post="p7")], actor=ANN
    )
    assert not result.ok and result.failed_index == 1
    assert snapshot(state) == before


def test_the_feed_is_perceived_only_when_read_and_as_ranked(state):
    for text in ("one", "two", "three", "four"):
        assert apply_effects(state, [PostEffect(agent=BOB, text=text)])
        next_step(state)  # past the feed's limit of three a step
    post = apply_effects(state, [PostEffect(agent=ANN, text="mine")], actor=ANN)
    assert ANN in app_notices(state, post.applied) and BOB not in app_notices(state, post.applied)
    read = apply_effects(state, [ReadEffect(agent=ANN)], actor=ANN)
    lines = app_notices(state, read.applied)[ANN]
    assert [line.split('"')[1] for line in lines] == ["four", "three", "two"]  # newest first
    assert state.apps.reads[-1].shown == ("p4", "p3", "p2")


def feed_world(ranking: str, seed: int = 3) -> WorldState:
    s = load_world(APPS_WORLD).state
    spec = s.apps.spec
    s.apps.spec = spec.model_copy(
        update={"feed": spec.feed.model_copy(update={"ranking": ranking, "seed": seed})}
    )
    return s


def test_engagement_ranks_liked_and_followed_posts_first():
    s = feed_world("engagement")
    s.set_location(CY, "square")
    assert apply_effects(s, [TransferEffect(item="phone", from_=BOB, to=CY)], actor=BOB)
    for text in ("a", "b", "c"):
        assert apply_effects(s, [PostEffect(agent=CY, text=text)], actor=CY)
    assert apply_effects(s, [TransferEffect(item="phone", from_=CY, to=BOB)], actor=CY)
    next_step(s)
    assert apply_effects(s, [PostEffect(agent=BOB, text="newest")], actor=BOB)
    assert rank_feed(s, ANN)[0].id == "p4"  # recency
    assert apply_effects(s, [LikeEffect(agent=BOB, post="p1")], actor=BOB)
    ranked = [p.id for p in rank_feed(s, ANN)]
    assert ranked[0] == "p1"  # liked
    assert apply_effects(s, [FollowEffect(agent=ANN, whom=CY)], actor=ANN)
    assert "p4" not in [p.id for p in rank_feed(s, ANN)]  # behind the followed author's


def test_engagement_ties_are_broken_by_the_feed_seed_deterministically():
    orders = {}
    for seed in range(8):
        s = feed_world("engagement", seed)
        for author, text in ((BOB, "a"), (BOB, "b"), (BOB, "c"), (ANN, "d")):
            assert apply_effects(s, [PostEffect(agent=author, text=text)])
        first = [p.id for p in rank_feed(s, CY)]
        assert [p.id for p in rank_feed(s.copy(), CY)] == first
        orders[seed] = tuple(first)
    assert len(set(orders.values())) > 1  # the seed, not the order of posting, breaks ties


# -- the device: holding it is having the apps ------------------------------------------------


def kinds(schema) -> set[str]:
    return {m for m in schema.models if m not in schema.exclude}


def test_holding_or_losing_the_phone_changes_the_action_schema(state):
    def schema_of(name: str):
        return decision_for([], [], [], [], None, app_targets(state, name))

    assert {"MessageTo", "PostIt", "PayTo"} <= kinds(schema_of(BOB))  # nothing new to read
    assert not {"MessageTo", "PostIt", "ReadIt", "PayTo"} & kinds(schema_of(CY))
    state.set_location(CY, "square")
    assert apply_effects(state, [TransferEffect(item="phone", from_=BOB, to=CY)], actor=BOB)
    assert app_targets(state, BOB) is None
    assert "MessageTo" not in kinds(schema_of(BOB))
    assert "MessageTo" in kinds(schema_of(CY))
    assert app_targets(state, CY).contacts == (ANN,)  # Bob can no longer be reached
    assert "Bob Vale holds no phone" in refused(state, MessageEffect(agent=ANN, to=BOB, text="?"))


def test_likes_and_replies_are_offered_only_for_posts_the_resident_has_read(state):
    assert apply_effects(state, [PostEffect(agent=BOB, text="hello")], actor=BOB)
    assert app_targets(state, ANN).posts == ()
    assert "LikePost" not in kinds(decision_for([], [], [], [], None, app_targets(state, ANN)))
    assert apply_effects(state, [ReadEffect(agent=ANN)], actor=ANN)
    targets = app_targets(state, ANN)
    assert targets.posts == ("p1",)
    schema = decision_for([], [], [], [], None, targets)
    assert schema.validate_python({"kind": "like", "post": "p1"}).post == "p1"
    with pytest.raises(ValueError):
        schema.validate_python({"kind": "like", "post": "p2"})


# -- checkpoint and world file -----------------------------------------------------------


def test_app_state_round_trips_through_a_checkpoint_exactly(state):
    effects = [
        PostEffect(agent=BOB, text="Fresh apples"),
        LikeEffect(agent=ANN, post="p1"),
        FollowEffect(agent=ANN, whom=BOB),
        MessageEffect(agent=ANN, to=BOB, text="Saving one for me?"),
        BankEffect(agent=ANN, to=BOB, amount=4),
        ReadEffect(agent=ANN),
    ]
    assert apply_effects(state, effects)
    data = state.to_dict()
    again = WorldState.from_dict(json.loads(json.dumps(data)))
    assert again.to_dict() == data
    assert again.apps.likes == {(ANN, "p1")} and again.apps.reads == state.apps.reads


def test_an_app_effect_dict_parses_as_its_model():
    effect = parse_app_effect({"kind": "bank", "agent": ANN, "to": BOB, "amount": 3})
    assert isinstance(effect, BankEffect)
    assert parse_app_effect({"kind": "move", "agent": ANN, "to": "lane"}) == {
        "kind": "move",
        "agent": ANN,
        "to": "lane",
    }


def write_world(tmp_path: Path, old: str, new: str) -> Path:
    text = APPS_WORLD.read_text().replace(old, new)
    text = text.replace("../personas/", f"{APPS_WORLD.parent.parent}/personas/")
    path = tmp_path / "world.yaml"
    path.write_text(text)
    return path


def test_a_bank_over_an_attribute_that_is_not_conserved_is_refused_at_its_line(tmp_path):
    path = write_world(tmp_path, "currency: money", "currency: energy")
    with pytest.raises(ConfigFileError) as err:
        load_world(path)
    assert "energy is not conserved" in str(err.value)
    assert "apps.bank.currency" in str(err.value)


def test_an_unknown_ranking_is_refused(tmp_path):
    path = write_world(tmp_path, "ranking: chronological", "ranking: loudest")
    with pytest.raises(ConfigFileError, match="ranking"):
        load_world(path)


# -- the world's own changes: outages, a ranking switched, the town's posts ----------------


def test_an_app_that_is_down_refuses_its_actions_until_it_is_back(state):
    assert apply_effects(state, [AppsSetEffect(down=["messages"])])
    assert "the messages app is down" in refused(state, MessageEffect(agent=ANN, to=BOB, text="?"))
    assert apply_effects(state, [PostEffect(agent=ANN, text="feed still up")], actor=ANN)
    assert apply_effects(state, [parse_app_effect({"kind": "apps_set", "down": []})])
    assert apply_effects(state, [MessageEffect(agent=ANN, to=BOB, text="back")], actor=ANN)
    assert WorldState.from_dict(state.to_dict()).apps.down == set()


def test_the_feed_ranking_switched_mid_run_ranks_by_the_new_policy(state):
    for author, text in ((BOB, "old"), (ANN, "new")):
        assert apply_effects(state, [PostEffect(agent=author, text=text)])
    assert apply_effects(state, [LikeEffect(agent=ANN, post="p1")])
    assert [p.id for p in rank_feed(state, CY)] == ["p2", "p1"]  # chronological
    assert apply_effects(state, [AppsSetEffect(ranking="engagement")])
    assert state.apps.spec.feed.ranking == "engagement"
    assert [p.id for p in rank_feed(state, CY)] == ["p1", "p2"]  # the like counts now
    again = WorldState.from_dict(state.to_dict())
    assert [p.id for p in rank_feed(again, CY)] == ["p1", "p2"]


def test_no_resident_changes_the_apps_and_a_failed_change_is_undone(state):
    assert "only the world itself" in refused(state, AppsSetEffect(down=["bank"]), actor=ANN)
    before = snapshot(state)
    result = apply_effects(
        state,
        [AppsSetEffect(ranking="engagement", down=["feed"]), LikeEffect(agent=ANN, post="p5")],
    )
    assert not result.ok
    assert snapshot(state) == before


def test_the_world_may_post_as_the_town_and_a_resident_may_not(state):
    town = state.name
    assert apply_effects(state, [PostEffect(agent=town, text="Road works on Monday")])
    assert rank_feed(state, ANN)[0].author == town
    assert "may not post as Mini Apps" in refused(state, PostEffect(agent=town, text="fake"))
    assert [p.author for p in rank_feed(state, "", limit=10)] == [town]


def test_a_follow_counts_once_and_never_of_oneself_or_a_stranger(state):
    assert "cannot follow themselves" in refused(state, FollowEffect(agent=ANN, whom=ANN))
    assert "no resident named 'Zed'" in refused(state, FollowEffect(agent=ANN, whom="Zed"))
    assert apply_effects(state, [FollowEffect(agent=ANN, whom=CY)], actor=ANN)  # no phone needed
    assert "already follows Cy Moss" in refused(state, FollowEffect(agent=ANN, whom=CY))
    assert app_targets(state, ANN).followable == ()  # whose posts Ann has read: nobody's
