"""Experiments over the apps, on the scripted model: each app measurement computes what
its text says from the app state (reach and cascade follow reads and messages, the
source of a rumour is not one it reached); a post, a ranking switch and an outage act
at their steps in the treated condition only, an outage ends at its own step, and a
resident's post refused for want of a phone is announced; a wrong reference is refused
at its file, line and field; an interrupted run resumed measures as an uninterrupted
one; and the shipped rumour scenario loads and runs every condition with every
measurement."""

from __future__ import annotations

import asyncio
import json

import pytest

from concordia_like.agents.actions import Message, Wait
from concordia_like.engine.hooks import StepHook, StepInput
from concordia_like.engine.runs import start_run
from concordia_like.engine.simulation import StepAborted
from concordia_like.experiments.app_measures import app_value
from concordia_like.experiments.app_spec import (
    LikeCount,
    MessagesSent,
    MoneyMoved,
    PostCount,
    PostReach,
)
from concordia_like.experiments.interventions import Interventions
from concordia_like.experiments.scenario import load_scenario
from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.world.app_effects import (
    BankEffect,
    LikeEffect,
    MessageEffect,
    PostEffect,
    ReadEffect,
)
from concordia_like.world.loader import load_world
from concordia_like.world.rules import apply_effects
from concordia_like.yaml_loader import ConfigFileError

from support.engine import REPO, lm_factory
from support.experiment import FailingAfter, run, values, write_scenario

MINI_APPS = REPO / "tests" / "fixtures" / "worlds" / "mini_apps.yaml"
RUMOUR = REPO / "worlds" / "scenarios" / "rumour.yaml"

SCENARIO = f"""
name: Mini feed
world: {MINI_APPS}
seeds: 1
stop: {{steps: 5}}
interventions:
  town_post: {{kind: post, at_step: 2, text: "Apples are free at the shop today."}}
  ann_post: {{kind: post, at_step: 2, author: Ann Reed, text: "Free apples, really."}}
  ranked: {{kind: feed_ranking, at_step: 3, ranking: engagement, text: The feed changes.}}
  quiet: {{kind: outage, at_step: 2, app: messages, steps: 2}}
  no_feed: {{kind: outage, at_step: 4, app: feed}}
control: control
conditions:
  control: []
  treated: [town_post, ann_post, ranked, quiet, no_feed]
measurements:
  - {{name: posts, kind: posts}}
  - {{name: ann_posts, kind: posts, author: Ann Reed}}
  - {{name: free_posts, kind: posts, contains: free}}
  - {{name: sent, kind: messages}}
  - {{name: likes, kind: likes}}
  - {{name: paid, kind: money_moved}}
  - {{name: reach, kind: reach, intervention: town_post}}
  - {{name: cascade, kind: reach, contains: free, stat: cascade}}
"""


# -- values on a hand-made app state ----------------------------------------------------


def _state():
    """Larkspur Ford with phones, in which Margo posts a rumour (step 1), Tobias reads and
    likes it and messages Hana (step 2), Hana pays Tobias and Ines, who has no phone,
    hears nothing (step 3); Hana messages Priya about the carriage (step 3)."""
    s = load_world(REPO / "worlds" / "town_digital.yaml").state
    steps = [
        [PostEffect(agent="Margo Vell", text="The mayor bought a carriage!")],
        [
            ReadEffect(agent="Tobias Marlowe", what="feed"),
            LikeEffect(agent="Tobias Marlowe", post="p1"),
            MessageEffect(agent="Tobias Marlowe", to="Hana Sato", text="Did you see Margo's post?"),
        ],
        [
            BankEffect(agent="Hana Sato", to="Tobias Marlowe", amount=7),
            PostEffect(agent="Hana Sato", text="Is that so?", reply_to="p1"),
            MessageEffect(agent="Hana Sato", to="Priya Anand", text="A carriage, they say."),
        ],
    ]
    for effects in steps:
        for e in effects:
            assert apply_effects(s, [e]).ok, e
        s.clock.advance()
    return s


def test_app_measurements_count_what_the_apps_hold():
    s = _state()
    assert app_value(PostCount(name="x"), s) == 2
    assert app_value(PostCount(name="x", replies=False), s) == 1
    assert app_value(PostCount(name="x", author="Hana Sato", contains="so"), s) == 1
    assert app_value(MessagesSent(name="x"), s) == 2
    assert app_value(MessagesSent(name="x", sender="Hana Sato", contains="CARRIAGE"), s) == 1
    assert app_value(LikeCount(name="x"), s) == 1
    assert app_value(LikeCount(name="x", post="p2"), s) == 0
    assert app_value(MoneyMoved(name="x"), s) == 7
    assert app_value(MoneyMoved(name="x", stat="count", sender="Tobias Marlowe"), s) == 0


def test_reach_follows_reads_and_cascade_follows_messages():
    s = _state()
    # Tobias was shown p1; Margo, its author, is its source, not one it reached
    assert app_value(PostReach(name="x", post="p1"), s) == 1
    # its tree: Margo, Tobias, Hana (messaged by Tobias after he read it), Priya
    # (messaged by Hana after she joined); Ines has no phone and is in no tree
    assert app_value(PostReach(name="x", post="p1", stat="cascade"), s) == 4
    # by its word: the post p1 and Hana's message mention "carriage"; Hana wrote it
    # before anyone sent her the word, so she is a source; Priya was reached by it
    assert app_value(PostReach(name="x", contains="carriage"), s) == 2
    assert app_value(PostReach(name="x", contains="carriage", stat="cascade"), s) == 4


# -- interventions ----------------------------------------------------------------------


class TryToMessage(StepHook):
    """Ann messages Bob at every step (refused while the messages app is down); Bob
    waits for it, so that he keeps his phone (the scripted model might give it away)."""

    name = "try"

    async def before_acting(self, sim, step):
        text = f"Step {step}: are you at the square?"
        ann = Message(kind="message", to="Bob Vale", text=text)
        return StepInput(actions={"Ann Reed": ann, "Bob Vale": Wait(kind="wait", text="reads")})


async def _run(scenario, condition, root, steps=5):
    sim = start_run(scenario.build_world(), lm_factory(), root=root, seed=0)
    sim.hooks.extend([Interventions(scenario, condition), TryToMessage()])
    seen = []
    async with sim:
        for _ in range(steps):
            await sim.run_step()
            apps = sim.state.apps
            seen.append(
                (
                    [p.author for p in apps.posts if "free" in p.text.lower()],
                    apps.spec.feed.ranking,
                    sorted(apps.down),
                    [m.step for m in apps.messages if m.sender == "Ann Reed"],
                )
            )
        failures = [
            (e.step, e.data.get("reason", ""))
            for e in sim.recorder.events(sim.run_id, kinds=["failure"])
            if e.actor == "Ann Reed"
        ]
        told = [e.text for e in sim.recorder.events(sim.run_id, kinds=["announcement"])]
    return seen, failures, told


def test_app_interventions_act_at_their_steps_in_the_treated_condition_only(tmp_path, runs_root):
    scenario = load_scenario(write_scenario(tmp_path, SCENARIO))
    seen, failures, told = asyncio.run(_run(scenario, "treated", runs_root))
    # the town's post and Ann's, at step 2
    assert [p for p, _, _, _ in seen] == [[]] + [["Mini Apps", "Ann Reed"]] * 4
    assert [r for _, r, _, _ in seen] == ["chronological"] * 2 + ["engagement"] * 3
    assert [d for _, _, d, _ in seen] == [[], ["messages"], ["messages"], ["feed"], ["feed"]]
    # Ann's messages went through before and after the outage of steps 2 and 3 only
    assert seen[-1][3] == [1, 4, 5]
    assert {step for step, _ in failures} == {2, 3}
    assert all("messages app is down" in reason for _, reason in failures)
    assert "The feed changes." in told
    assert scenario.build_world().state.apps.posts == []  # each run changes its own copy
    seen, failures, _ = asyncio.run(_run(scenario, "control", runs_root))
    assert all(r == "chronological" and d == [] for _, r, d, _ in seen)
    assert seen[-1][3] == [1, 2, 3, 4, 5] and failures == []


def test_a_post_by_a_resident_without_a_phone_is_refused_and_said(tmp_path, runs_root):
    # Bob holds a phone at the start (the load-time check passes) and loses it at step 1
    text = (
        SCENARIO.replace("author: Ann Reed", "author: Bob Vale")
        .replace(
            "interventions:\n",
            "interventions:\n  lost: {kind: effects, at_step: 1, effects: "
            "[{kind: destroy, holder: Bob Vale, item: phone}]}\n",
        )
        .replace("treated: [", "treated: [lost, ")
    )
    scenario = load_scenario(write_scenario(tmp_path, text))
    _, _, told = asyncio.run(_run(scenario, "treated", runs_root, steps=2))
    assert any(
        t.startswith("A post by Bob Vale on the town feed could not happen:") and "phone" in t
        for t in told
    ), told


# -- load-time problems ---------------------------------------------------------------


def problems(tmp_path, text):
    with pytest.raises(ConfigFileError) as err:
        load_scenario(write_scenario(tmp_path, text))
    return [str(i).split(": ", 1)[1] for i in err.value.issues], str(err.value)


def test_wrong_app_references_are_reported_at_their_lines(tmp_path):
    text = (
        SCENARIO.replace("author: Ann Reed", "author: Cy Moss")
        .replace("intervention: town_post", "intervention: ranked")
        .replace("{name: sent, kind: messages}", "{name: sent, kind: messages, to: Dee}")
    )
    found, message = problems(tmp_path, text)
    line = text.splitlines().index(next(x for x in text.splitlines() if "Cy Moss" in x)) + 1
    assert f"mini.yaml:{line}: interventions.ann_post.author: Cy Moss holds no phone" in message
    assert "measurements[3].to: 'Dee' is not a resident of the cast" in found
    assert "measurements[6].intervention: 'ranked' is no intervention of kind post" in found


def test_app_kinds_need_a_world_with_that_app(tmp_path):
    text = SCENARIO.replace(
        str(MINI_APPS), str(REPO / "tests" / "fixtures" / "worlds" / "mini.yaml")
    )
    found, _ = problems(tmp_path, text)
    assert (
        "interventions.quiet.app: the world has no apps (an `apps:` section in its world file)"
        in found
    )
    assert (
        "measurements[0].kind: the world has no apps (an `apps:` section in its world file)"
        in found
    )
    found, _ = problems(
        tmp_path,
        SCENARIO.replace("{name: posts, kind: posts}", "{name: posts, kind: posts, post: p1}"),
    )
    assert any(f.startswith("measurements[0].post: unknown field") for f in found), found
    found, _ = problems(
        tmp_path, SCENARIO.replace("intervention: town_post", "intervention: town_post, post: p1")
    )
    assert any("give exactly one of post, intervention and contains" in f for f in found), found


# -- runs -------------------------------------------------------------------------------


class Counting(ScriptedBackend):
    batches = 0

    async def generate_batch(self, requests):
        self.batches += 1
        return await super().generate_batch(requests)


def test_an_interrupted_run_resumed_measures_as_an_uninterrupted_one(tmp_path, fast_embedder):
    path = write_scenario(tmp_path, SCENARIO)
    counted = Counting()
    whole = run(path, tmp_path / "whole", seeds=[0], backend=counted)
    with pytest.raises(StepAborted, match="stopped answering"):  # dies in the conditions
        run(path, tmp_path / "cut", seeds=[0], backend=FailingAfter(counted.batches * 2 // 3))
    again = run(path, tmp_path / "cut", seeds=[0])
    assert again.seeds[0]["resumed"] >= 1
    key = lambda r: (r["condition"], r["seed"], r["step"], r["measurement"])  # noqa: E731
    assert sorted(again.rows, key=key) == sorted(whole.rows, key=key)
    # the town's post and Ann's, from step 2 on, in the treated condition only
    assert values(whole.rows, "free_posts", "treated") == [0.0] + [2.0] * 4
    assert values(whole.rows, "free_posts", "control") == [0.0] * 5


def test_the_rumour_scenario_runs_every_condition_with_every_measurement(tmp_path, fast_embedder):
    scenario = load_scenario(RUMOUR)
    assert scenario.conditions == ["word_of_mouth", "feed", "feed_engagement"]
    assert scenario.max_steps <= 12 and scenario.shared_steps() == 0
    rep = run(RUMOUR, tmp_path / "out", seeds=[0])
    names = [m.name for m in scenario.spec.measurements]
    for condition in scenario.conditions:
        got = {r["measurement"] for r in rep.rows if r["condition"] == condition}
        assert got == set(names), condition
        result = json.loads(
            (tmp_path / "out" / "runs" / "seed-0" / "results" / f"{condition}.json").read_text()
        )
        assert result["steps"] == scenario.max_steps
        assert set(result["answers"]["knows_rumour"]) == {
            "Tobias Marlowe",
            "Hana Sato",
            "Priya Anand",
            "Ines Marlowe",
        }
    # with the feed out of service nobody posts; the reach of the rumour is a count
    assert set(values(rep.rows, "posts", "word_of_mouth")) == {0.0}
    assert all(0 <= v <= 4 for v in values(rep.rows, "reach"))
    summary = {(r["measurement"], r["condition"]) for r in rep.summary}
    assert ("cascade", "feed_engagement") in summary
    assert (tmp_path / "out" / "summary.csv").is_file()
