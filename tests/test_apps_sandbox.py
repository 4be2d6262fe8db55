"""The sandbox and the apps, on the scripted model in Larkspur Ford with phones: a player
messages, posts, replies, likes and pays through its phone (each a typed action the
world validates: money conserved); a form that cannot be done is a one-line hint and no
step; `inspect` shows a resident's phone, `feed` the town feed ranked as the world
ranks it (while playing, only what the resident last read); model text is shown as
text; and in a world without apps the same words are a free-form action as before."""

from __future__ import annotations

import pytest
from test_sandbox import Town

from concordia_like.agents.actions import Other
from concordia_like.sandbox.commands import help_text
from concordia_like.sandbox.seat import parse_action
from concordia_like.world.app_feed import rank_feed
from concordia_like.world.loader import load_world

from support.engine import REPO, TOWN

DIGITAL = REPO / "worlds" / "town_digital.yaml"
MARKUP = "[bold red]loud[/bold red] <b>bold</b>"


@pytest.fixture
async def town(runs_root):
    t = Town(runs_root, world=DIGITAL, width=120)
    yield t
    await t.session.aclose()


def money(sim, name):
    return sim.state.attribute(name, "money")


async def test_a_player_messages_posts_and_pays_through_its_phone(town):
    await town("play Margo Vell")
    total = sum(money(town.sim, n) for n in town.sim.state.agents)
    before = money(town.sim, "Margo Vell"), money(town.sim, "Tobias Marlowe")
    out = await town("message Tobias The mayor bought a carriage.")
    assert "You message Tobias Marlowe" in out and town.sim.step == 1
    apps = town.sim.state.apps
    assert [
        (m.sender, m.to, m.text, m.step) for m in apps.messages if m.sender == "Margo Vell"
    ] == [("Margo Vell", "Tobias Marlowe", "The mayor bought a carriage.", 1)]
    await town("post Town meeting about the bridge fund tonight.")
    mine = [p for p in apps.posts if p.author == "Margo Vell"]
    assert [(p.text, p.step) for p in mine] == [("Town meeting about the bridge fund tonight.", 2)]
    await town("pay 5 to Tobias")
    paid = [(t.sender, t.to, t.amount, t.step) for t in apps.transfers if t.sender == "Margo Vell"]
    assert paid == [("Margo Vell", "Tobias Marlowe", 5, 3)]
    # (Tobias's balance is his own too: the scripted model's actions may move it)
    assert money(town.sim, "Margo Vell") == before[0] - 5
    assert sum(money(town.sim, n) for n in town.sim.state.agents) == total
    assert town.sim.step == 3
    # Tobias reads the feed, likes and answers Margo's post
    await town("leave", "play Tobias", "read feed")
    post = mine[0].id
    assert post in apps.last_read("Tobias Marlowe", "feed").shown
    await town(f"like {post}", f"reply {post} I will be there.")
    assert ("Tobias Marlowe", post) in apps.likes
    reply = apps.posts[-1]
    assert (reply.author, reply.reply_to, reply.text) == (
        "Tobias Marlowe",
        post,
        "I will be there.",
    )


@pytest.mark.parametrize(
    ("who", "line", "hint"),
    [
        ("Ines Marlowe", "message Tobias Good morning to you.", "you hold no phone"),
        ("Margo Vell", "message Nell Good morning to you.", "no resident with a phone 'Nell'"),
        ("Margo Vell", "message Tobias", "message what?"),
        ("Margo Vell", "pay 100000 to Tobias", "you can pay at most"),
        ("Margo Vell", "pay 5 to Margo", "no resident with a phone 'Margo'"),
        ("Margo Vell", "like p1", "like one of the posts you last read (none yet: read feed"),
        ("Margo Vell", "reply p7 hello", "reply one of the posts you last read"),
        ("Margo Vell", "post", "post what?"),
        ("Margo Vell", "follow Tobias now", "unexpected 'now' after Tobias Marlowe"),
    ],
)
async def test_an_impossible_app_action_is_a_one_line_hint_and_no_step(town, who, line, hint):
    await town(f"play {who}")
    out = await town(line)
    assert out.startswith("hint: ") and hint in out, out
    assert out.count("\n") == 1, out
    assert town.sim.step == 0


async def test_inspect_shows_the_phone_and_feed_the_ranked_town_feed(town):
    await town("play Margo Vell", f"post {MARKUP}", "message Tobias See the feed, Tobias.")
    await town("leave", "play Tobias", "read feed", "leave")
    out = await town("inspect Tobias Marlowe")
    phone = out[out.index("phone:") :]
    assert "from Margo Vell: See the feed, Tobias." in phone
    assert "feed as last read (step 3):" in phone
    assert MARKUP in phone  # shown as written: markup in a post is text
    out = await town("inspect Ines Marlowe")
    assert "phone: none (holds no phone)" in out
    out = await town("feed")
    s = town.sim.state
    ranked = rank_feed(s, "", limit=20)
    assert out.startswith(f"the town feed, {len(s.apps.posts)} posts, ranked engagement:")
    shown_ids = [line.split("(")[1].split(",")[0] for line in out.splitlines()[1:]]
    assert shown_ids == [p.id for p in ranked]
    assert MARKUP in out
    # while playing, the feed is what the resident last read, and nothing else
    await town("play Hana")
    assert "Hana Sato has not read the feed yet" in await town("feed")
    await town("leave")


async def test_help_names_the_phone_forms_and_the_feed_command():
    text = "\n".join(help_text())
    assert "message NAME TEXT, post TEXT" in text and "pay N to NAME" in text
    assert help_text("feed")[0].startswith("feed: the town feed ranked as the world ranks it")


def test_in_a_world_without_apps_the_words_are_a_free_form_action():
    state = load_world(TOWN).state
    for line in ("post the letter to the county", "message the miller", "pay 3 to Tobias"):
        action = parse_action(state, "Ines Marlowe", line)
        assert isinstance(action, Other) and action.text == line
    # and with apps, a form that is not the phone's is the Game Master's as well
    digital = load_world(DIGITAL).state
    for line in ("pay Tobias for the bread", "read the notice board"):
        assert isinstance(parse_action(digital, "Margo Vell", line), Other)
