"""`play --new CARD.yaml` and the sandbox's log, in process on the scripted model: a
newcomer joins where its card says (or at a public place), is played like any resident
and handed back to its model, comes back when the town is reopened or forked, and sees
only what it perceives; a bad card is one error line with nothing changed. The
library's warnings (degraded model calls) go to the town's log file, not the screen."""

from __future__ import annotations

import logging
import re
import textwrap
from pathlib import Path

import pytest
from test_sandbox import SECRET, Town, sim_state, store_rows

from concordia_like.engine.newcomers import NEWCOMERS_KEY
from concordia_like.engine.runs import resume_run
from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.sandbox.runlog import LOG_NAME
from concordia_like.world.invariants import check_invariants

from support.engine import TOWN, lm_factory, memories, store_path

NEWCOMER = "Wren Hollis"
CARD = """\
name: Wren Hollis
age: 31
pronouns: she/her
occupation: travelling clockmaker
traits: [curious, soft-spoken]
speaking_style: Asks a question before she answers any.
goals: [find a workshop to rent for the summer]
routine:
  - {at: "06:00", activity: looks for work around the square, place: market_square}
home: caravan
seed_memories:
  - text: My last town had no clock that kept time.
    importance: 6
"""


@pytest.fixture
async def town(runs_root):
    t = Town(runs_root)
    yield t
    await t.session.aclose()


@pytest.fixture
def card(tmp_path):
    """Writes a persona card (CARD by default, or CARD with some lines replaced)."""

    def write(text: str = CARD, name: str = "wren.yaml", **replace: str) -> str:
        for old, new in replace.items():
            assert old in text, old
            text = text.replace(old, new)
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write


async def test_newcomer_joins_at_a_public_place_and_is_played(town, card):
    await town("step")
    out = await town(f"play --new {card()}")
    assert out.splitlines()[0] == (
        "Wren Hollis joins Larkspur Ford, at Market Square (home 'caravan' is no place of "
        "Larkspur Ford; Market Square is home now)"
    )
    assert "you are Wren Hollis now" in out
    sim = town.sim
    assert sim.state.location(NEWCOMER) == "market_square"
    assert sim.state.agents[NEWCOMER].attributes == {"energy": 80, "hunger": 20, "money": 50}
    assert check_invariants(sim.state) == []  # her money entered the world with her
    assert town.session.prompt() == "Wren Hollis Mon 06:10> "
    # recorded in the run, with her first memories, before any step
    row = sim.recorder.run(sim.run_id)
    assert [n["card"]["name"] for n in row.config[NEWCOMERS_KEY]] == [NEWCOMER]
    mine = [m for m in memories(store_path(town.root, sim.run_id), sim.run_id) if m[0] == NEWCOMER]
    assert [m[2] for m in mine] == [
        "My last town had no clock that kept time.",
        "I have just arrived in Larkspur Ford, at Market Square; I am new here.",
    ]
    # she acts: what is typed is her action, grounded by the Game Master
    out = await town("go bakery")
    assert sim.step == 2 and sim.state.location(NEWCOMER) == "bakery"
    assert "step 2 Mon 06:10, as Wren Hollis:" in out
    assert "Wren Hollis goes from Market Square to Marlowe's Bakery." in out
    await town("hum a tune while the ovens heat")
    acted = [
        e.data["action"]["kind"]
        for e in sim.recorder.events(sim.run_id, agent=NEWCOMER)
        if e.kind in ("action", "speech", "failure")
    ]
    assert acted == ["move", "other"]
    # and she perceived what happened where she was
    # (in her observation memories: her prompt shows only the latest few observations)
    mine = [m for m in memories(store_path(town.root, sim.run_id), sim.run_id) if m[0] == NEWCOMER]
    assert any(
        kind == "observation" and "arrives at Market Square" in text for _, kind, text, *_ in mine
    )
    # handed back, her model decides for her like anyone's
    out = await town("leave")
    assert "Wren Hollis is back in its model's hands" in out
    backend = town.backend
    asked = len(backend.requests_seen)
    await town("step")
    acts = [r for r in backend.requests_seen[asked:] if r.purpose == "act"]
    assert NEWCOMER in {r.agent for r in acts}
    assert sim.step == 4


async def test_a_card_whose_home_is_a_place_arrives_there_with_its_keys(town, card):
    out = await town(f"play --new {card(**{'home: caravan': 'home: workshop'})}")
    assert "joins Larkspur Ford, at home, Okonjo Joinery" in out
    state = town.sim.state
    assert state.location(NEWCOMER) == "workshop"
    assert NEWCOMER in state.places["workshop"].keyholders
    assert town.sim.world.personas[NEWCOMER].home == "workshop"


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        ({"age: 31": "age: old"}, r"wren\.yaml:2: age: Input should be a valid integer"),
        ({"pronouns:": "pronowns:"}, r"wren\.yaml:3: pronowns: unknown field"),
        (
            {"name: Wren Hollis": "name: Ines Marlowe"},
            r"wren\.yaml:1: name: 'Ines Marlowe' already",
        ),
        ({"name: Wren Hollis": "name: bakery"}, r"wren\.yaml:1: name: 'bakery' is a place id"),
        (
            {"place: market_square": "place: market_squar"},
            (
                r"wren\.yaml:9: routine\[0\]\.place: unknown place 'market_squar' of "
                r"Larkspur Ford \(did you mean 'market_square'\?\)"
            ),
        ),
        (
            {"age: 31": "age: old", "pronouns:": "pronowns:"},
            r"wren\.yaml:2: age: .*\(and 1 more problem\)$",
        ),
    ],
)
async def test_a_bad_card_is_one_error_line_and_changes_nothing(town, card, replace, expected):
    await town("step")
    rows, state = store_rows(town.root, town.sim.run_id), sim_state(town.sim)
    out = await town(f"play --new {card(**replace)}")
    assert out.startswith("error: ") and out.count("\n") == 1, out
    assert "Traceback" not in out
    assert re.search(expected, out), out
    assert store_rows(town.root, town.sim.run_id) == rows
    assert sim_state(town.sim) == state
    assert town.session.seat.resident is None and town.session.injections.pending == []


async def test_a_missing_card_and_a_missing_path_are_one_line_each(town, tmp_path):
    out = await town(f"play --new {tmp_path / 'nobody.yaml'}")
    assert out.startswith("error: ") and "nobody.yaml:0: file not found" in out
    assert out.count("\n") == 1
    out = await town("play --new")
    assert out.startswith("hint: play --new CARD.yaml") and out.count("\n") == 1
    assert town.sim.step == 0 and NEWCOMER not in town.sim.agents


async def test_playing_a_newcomer_shows_none_of_the_others_private_memories(town, card):
    await town(f"whisper Ines {SECRET}", "step")
    others = [n for n in town.sim.agents if n != NEWCOMER]
    private = [SECRET] + [m.text for n in others for m in town.sim.world.personas[n].seed_memories]
    out = await town(
        f"play --new {card()}",
        "look",
        "inspect Wren",
        "inspect Ines",
        "interview Ines What do you hide?",
        "go bakery",
        "wait",
        "step 2",
    )
    assert "hint: while playing you see only what Wren Hollis perceives" in out
    assert "hint: while playing you cannot interview" in out
    assert "My last town had no clock" in out  # her own memories are hers to see
    for text in private:
        assert text not in out, text


async def test_a_newcomer_comes_back_when_the_town_is_reopened_or_forked(town, card):
    await town("step", f"play --new {card()}")
    run_id = town.sim.run_id
    # reopened before any step since she joined: where she arrived, a fresh agent
    again = town.reopen(run_id)
    try:
        assert again.state.location(NEWCOMER) == "market_square"
        assert NEWCOMER in again.agents and again.world.personas[NEWCOMER].home == "market_square"
        assert check_invariants(again.state) == []
    finally:
        await again.aclose()
    await town("go bakery", "hum a tune", "leave", "step")
    observed = town.sim.agents[NEWCOMER].to_dict()
    state = sim_state(town.sim)
    again = town.reopen(run_id)
    try:  # after steps: as the checkpoint has her, her agent's state too
        assert again.state.location(NEWCOMER) == town.sim.state.location(NEWCOMER)
        assert again.agents[NEWCOMER].to_dict() == observed
        assert sim_state(again) == state
    finally:
        await again.aclose()
    out = await town("fork with-wren")
    assert "into " in out and town.sim.run_id != run_id
    assert NEWCOMER in town.sim.agents
    assert town.sim.agents[NEWCOMER].to_dict() == observed
    out = await town("play Wren", "look", "step")
    assert "you are Wren Hollis now" in out and town.sim.step == 5


async def test_a_newcomer_joined_at_step_0_is_back_after_a_reopen(runs_root, card):
    t = Town(runs_root)
    try:
        await t(f"play --new {card()}")
        run_id = t.sim.run_id
    finally:
        await t.session.aclose()
    sim = resume_run(run_id, lm_factory(), world_path=TOWN, root=runs_root)
    try:
        assert sim.step == 0 and sim.state.location(NEWCOMER) == "market_square"
        await sim.run_step()  # and the reopened town steps with her in it
        assert sim.state.location(NEWCOMER) in sim.state.places
    finally:
        await sim.aclose()


class PlansRefused(ScriptedBackend):
    """The scripted model, whose day plans never meet their schema: every plan call
    degrades (the planner logs a warning and falls back to the routine)."""

    def __init__(self):
        super().__init__()
        self.add_rule(".", "not a plan", purpose="plan")


async def test_degraded_call_warnings_go_to_the_log_file_not_the_screen(runs_root, capsys):
    t = Town(runs_root, PlansRefused())
    try:
        # news for Ines before her day plan: she asks the model (else her routine stands)
        await t("whisper Ines the flour merchant wrote that prices rise in May")
        out = await t("step")
        folder = runs_root / t.sim.run_id
        log = (folder / LOG_NAME).read_text()
        assert "skipped: unusable model output" in log
        warned = log.count(" WARNING ")
        assert warned >= 1
        # the screen: the step, and one line saying how many and where
        notices = [line for line in out.splitlines() if "such as a degraded model call" in line]
        what = "warning" if warned == 1 else "warnings"
        assert notices == [
            f"  ({warned} {what}, such as a degraded model call, in {folder / LOG_NAME})"
        ]
        assert "unusable model output" not in out
        assert "unusable model output" not in capsys.readouterr().err
        # a command that logs nothing adds no notice
        assert "warning" not in await t("look")
        # after a fork, the library's warnings go to the fork's folder
        await t("fork")
        logging.getLogger("concordia_like.agents.planning").warning("a warning in the fork")
        out = await t("look")
        forked = runs_root / t.sim.run_id / LOG_NAME
        assert out.splitlines()[-1] == f"  (1 warning, such as a degraded model call, in {forked})"
        assert "a warning in the fork" in forked.read_text()
        assert "a warning in the fork" not in (folder / LOG_NAME).read_text()
    finally:
        await t.session.aclose()
    # closing the session gives the library's records back to where they went
    logger = logging.getLogger("concordia_like")
    assert logger.propagate and not [h for h in logger.handlers if type(h).__name__ == "RunLog"]


async def test_the_sandbox_doc_s_example_card_joins_the_town(town, card):
    doc = (Path(__file__).resolve().parent.parent / "docs" / "sandbox.md").read_text()
    example = doc.split("```yaml\n# me.yaml\n", 1)[1].split("```", 1)[0]
    out = await town(f"play --new {card(example, name='me.yaml')}")
    assert out.startswith("Wren Hollis joins Larkspur Ford, at Market Square"), out
