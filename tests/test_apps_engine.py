"""The apps in a running world: the Game Master grounds app actions (typed, or free-form
through its model), a message reaches its addressee wherever it is and wakes its
attention, and a resumed run with apps in use equals an uninterrupted one."""

from __future__ import annotations

from datetime import datetime

import pytest

from concordia_like.agents.actions import Message, Other, Pay, Post, ReadApp
from concordia_like.agents.attention import AttentionPolicy
from concordia_like.engine.runs import resume_run, start_run
from concordia_like.engine.simulation import ENGINES, Simulation
from concordia_like.gm.master import GameMaster
from concordia_like.llm import LanguageModel, LLMRequest
from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.memory.plans import DayPlan, PlanBlock
from concordia_like.world import check_invariants, load_world

from support.engine import REPO, close, force, lm_factory, resolve_calls, run_steps, timeline

APPS_WORLD = REPO / "tests" / "fixtures" / "worlds" / "mini_apps.yaml"
TOWN_DIGITAL = REPO / "worlds" / "town_digital.yaml"
ANN, BOB, CY = "Ann Reed", "Bob Vale", "Cy Moss"
NEWS = "The bridge is closing at noon"


@pytest.fixture
def backend():
    return ScriptedBackend()


@pytest.fixture
def gm(backend):
    return GameMaster(load_world(APPS_WORLD), LanguageModel(backend))


def test_a_typed_message_is_grounded_by_code_and_onlookers_see_no_words(gm):
    out = gm.ground(ANN, Message(kind="message", to=BOB, text=NEWS))
    assert out.success
    assert out.text == "Ann Reed sends Bob Vale a message."
    assert NEWS not in out.text
    assert out.notices[BOB] == [f'Message from Ann Reed: "{NEWS}"']
    assert out.effects == [{"kind": "message", "agent": ANN, "to": BOB, "text": NEWS}]
    assert gm.state.apps.messages[0].text == NEWS


def test_refused_app_actions_fail_with_their_reason_and_change_nothing(gm):
    before = gm.state.to_dict()
    out = gm.ground(ANN, Message(kind="message", to=CY, text="hello"))
    assert not out.success and "Cy Moss holds no phone" in (out.reason or "")
    assert out.notices == {}
    out = gm.ground(BOB, Pay(kind="transfer", to=ANN, amount=30, text="pays"))
    assert not out.success and "has only 20 money" in (out.reason or "")
    out = gm.ground(CY, ReadApp(kind="read", what="feed", text="reads"))
    assert not out.success and "Cy Moss holds no phone" in (out.reason or "")
    assert gm.state.to_dict() == before


async def test_free_text_about_texting_is_grounded_as_the_typed_message(gm, backend):
    force(
        backend,
        "resolve",
        lambda req: {
            "success": True,
            "outcome": "Ann texts Bob.",
            "effects": [{"kind": "message", "to": BOB, "text": NEWS}],
        },
    )
    action = Other(kind="other", text="I text Bob that the bridge is closing at noon")
    out = await gm.resolve_one(ANN, action)
    assert out.success and resolve_calls(gm.lm) == 1
    [m] = gm.state.apps.messages
    assert (m.sender, m.to, m.text) == (ANN, BOB, NEWS)
    assert out.notices[BOB] == [f'Message from Ann Reed: "{NEWS}"']
    [request] = [r for r in backend.requests_seen if r.purpose == "resolve"]
    assert "Ann Reed's phone has: messages to Bob Vale" in request.messages[-1].content
    message = request.json_schema["$defs"]["MessageOut"]
    assert message["properties"]["to"]["enum"] == [BOB]  # Cy has no phone to reach


async def test_a_resident_without_a_phone_is_not_resolved_as_using_apps(gm, backend):
    await gm.resolve_one(CY, Other(kind="other", text="I text Ann"))
    requests = [r for r in backend.requests_seen if r.purpose == "resolve"]
    assert requests  # the first, and its retry if the scripted answer was refused
    for request in requests:
        defs = request.json_schema.get("$defs", {})
        assert not {"MessageOut", "PostOut", "BankOut", "ReadOut"} & set(defs)
        assert "phone has" not in request.messages[-1].content


def test_a_post_reaches_nobody_until_they_read_the_feed(gm):
    out = gm.ground(BOB, Post(kind="post", text="Apples half price today"))
    assert out.success and set(out.notices) == {BOB}
    read = gm.ground(ANN, ReadApp(kind="read", what="feed", text="reads"))
    assert read.text == "Ann Reed reads the town feed."
    assert read.notices[ANN] == [
        'On the feed, Bob Vale posts (p1, 0 likes): "Apples half price today"'
    ]


# -- in a running world ---------------------------------------------------------------------

MONDAY = datetime(2025, 4, 14)
EVENTS = AttentionPolicy(idle_steps=50)


def apps_run(runs_root, backend, engine: str) -> Simulation:
    """The apps world under `events`: Ann's day at the square, Bob's at the park, Cy's in
    the lane, each alone from the first step on."""
    sim = start_run(
        APPS_WORLD,
        lm_factory(backend),
        engine=engine,
        seed=3,
        root=runs_root,
        attention=EVENTS.record(),
    )
    start, end = MONDAY.replace(hour=7), MONDAY.replace(hour=22)
    for name, place in ((ANN, "square"), (BOB, "park"), (CY, "lane")):
        block = PlanBlock(start, end, f"spends the day at {place}", place)
        sim.agents[name].plan = DayPlan(name, MONDAY.date(), start, end, [block])
    return sim


def why_of(sim: Simulation, step: int, actor: str) -> list[str] | None:
    for e in timeline(sim):
        if e[0] == step and e[4] == actor and e[3] in ("action", "speech", "failure"):
            return e[7].get("why")
    return None


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_message_reaches_its_addressee_elsewhere_and_wakes_it(runs_root, engine):
    backend = ScriptedBackend()

    def act(req):
        if req.agent == ANN and "bridge" in req.messages[-1].content:
            return {"kind": "message", "to": BOB}
        return {"kind": "continue"}

    def words(req: LLMRequest) -> str:  # asked for apart, like speech, as a text to Bob
        assert req.messages[-1].content.endswith(
            "You text Bob Vale on your phone. What do you write to Bob?"
        )
        return NEWS

    force(backend, "act", act)
    backend.add_rule(".", words, "speech")
    sim = apps_run(runs_root, backend, engine)
    sim.state.set_location(BOB, "park")  # apart from the start: nobody meets anybody
    await run_steps(sim, 2)
    assert all(why_of(sim, 2, n) is None for n in (ANN, BOB, CY))
    sim.plant_memory(ANN, "The bridge is closing at noon.")
    await run_steps(sim, 2)
    assert why_of(sim, 3, ANN) == ["whisper"]
    [event] = [e for e in timeline(sim) if e[7].get("action", {}).get("kind") == "message"]
    assert (event[0], event[6]) == (3, "Ann Reed sends Bob Vale a message.")
    assert sim.state.location(BOB) == "park" != sim.state.location(ANN)
    assert why_of(sim, 4, BOB) == ["message"]
    assert f'Message from Ann Reed: "{NEWS}"' in sim.agents[BOB].observations
    assert why_of(sim, 4, CY) is None  # nothing reached Cy
    await close(sim)


async def test_a_resumed_run_with_apps_in_use_equals_an_uninterrupted_one(tmp_path, runs_root):
    always = {"mode": "always"}
    straight = start_run(TOWN_DIGITAL, lm_factory(), seed=3, root=runs_root, attention=always)
    await run_steps(straight, 8)

    other = tmp_path / "other"
    first = start_run(TOWN_DIGITAL, lm_factory(), seed=3, root=other, attention=always)
    await run_steps(first, 4)
    await close(first)
    resumed = resume_run(first.run_id, lm_factory(), root=other)
    await run_steps(resumed, 4)

    assert timeline(resumed) == timeline(straight)
    assert resumed.state.to_dict() == straight.state.to_dict()
    apps = straight.state.apps
    used_after_resume = [
        r.step for r in (*apps.messages, *apps.posts, *apps.transfers) if r.step > 4
    ]
    assert used_after_resume  # the apps were in use on both sides of the resumption
    assert check_invariants(straight.state) == []
    for sim in (straight, resumed):
        await close(sim)
