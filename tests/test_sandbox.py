"""The town sandbox in process, on the scripted model: each command does what it says
and nothing more (interview changes nothing; a mistake is a hint and no step), a failed
step leaves the town usable, playing shows only what the resident perceives, fork
copies the town, and step hooks keep their state through a rolled-back step."""

from __future__ import annotations

import io
import json
import random
import re
import sqlite3

import pytest
from rich.console import Console

from concordia_like.engine.hooks import HOOKS_KEY, StepHook
from concordia_like.engine.runs import resume_run, start_run
from concordia_like.llm import BackendUnavailableError, open_model, run_models
from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.sandbox.session import TownSession
from concordia_like.sandbox.terminal import TownCompleter

from support.engine import MEMORIES, TOWN, lm_factory, query, store_path, timeline

SECRET = "the ledger under the floorboard"


class Switchable(ScriptedBackend):
    """The scripted model, which stops answering (as a server gone would) while `down`."""

    down = False

    async def generate_batch(self, requests):
        if self.down:
            raise BackendUnavailableError("http://127.0.0.1:9/v1 stopped answering")
        return await super().generate_batch(requests)


class Town:
    """A session on a new town, with its output captured."""

    def __init__(self, root, backend=None, *, world=TOWN, width=100):
        self.backend = backend or ScriptedBackend()
        self.root, self.world = root, world
        self.factory = lm_factory(self.backend)
        sim = start_run(world, self.factory, root=root, seed=3)
        self.out = io.StringIO()
        console = Console(file=self.out, width=width, highlight=False)
        self.session = TownSession(sim, console, opener=self.open, root=root)

    def open(self, run_id):
        return resume_run(run_id, self.factory, world_path=self.world, root=self.root)

    def reopen(self, run_id):
        """The session's run opened again beside it: the session gives up its lease (one
        writer per run) and takes it again at its next write."""
        self.sim.recorder.leases.pop(run_id).release()
        return self.open(run_id)

    @property
    def sim(self):
        return self.session.sim

    async def __call__(self, *lines: str) -> str:
        start = self.out.tell()
        for line in lines:
            assert await self.session.execute(line)
        return self.out.getvalue()[start:]


@pytest.fixture
async def town(runs_root):
    t = Town(runs_root)
    yield t
    await t.session.aclose()


def store_rows(root, run_id) -> dict[str, list]:
    """Every row of every table of the run's store (SQLite), as text."""
    con = sqlite3.connect(f"file:{store_path(root, run_id)}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(map(repr, con.execute(f'SELECT * FROM "{t}"'))) for t in tables}
    finally:
        con.close()


def sim_state(sim) -> tuple:
    return (
        sim.step,
        json.dumps(sim.state.to_dict(), sort_keys=True, default=str),
        json.dumps({n: a.to_dict() for n, a in sim.agents.items()}, sort_keys=True),
    )


async def test_interview_changes_nothing(town):
    await town("step 2")
    rows, state, rnd = (
        store_rows(town.root, town.sim.run_id),
        sim_state(town.sim),
        random.getstate(),
    )
    out = await town("interview Tobias What do you hope for this week?")
    assert out.startswith("Tobias Marlowe: ")
    assert store_rows(town.root, town.sim.run_id) == rows
    assert sim_state(town.sim) == state
    assert random.getstate() == rnd
    # and the town goes on as if nothing had been asked
    await town("step")
    assert town.sim.step == 3


async def test_mistakes_are_one_line_hints_and_no_step(town):
    for line in (
        "dance",
        "inspect Nobody",
        "step many",
        "look moon",
        "until 25:99",
        "say hello",
        "leave",
        "interview Tobias",
    ):
        out = await town(line)
        assert out.startswith("hint: "), (line, out)
        assert out.count("\n") == 1, (line, out)
    assert town.sim.step == 0


async def test_look_inspect_help_stats_until(town):
    out = await town("look")
    assert "Marlowe's Bakery" in out and "Ines Marlowe" in out
    assert "06:00" in out
    out = await town("look Marlowe's Bakery")
    assert "leads to: market_square" in out
    out = await town("inspect Ines Marlowe")
    for part in ("baker", "relationships:", "recent memories:", "most important:"):
        assert part in out
    assert "reflections:" in out
    out = await town("help")
    assert all(f"e.g. {w}" in out for w in ("step 3", "until 08:00", "fork what-if"))
    assert "until HH:MM: advance to that clock time" in await town("help until")
    await town("until 06:30")
    assert f"{town.sim.state.now:%H:%M}" == "06:30"
    assert town.sim.step == 3
    out = await town("stats")
    assert re.search(r"this session: \d+ model calls", out)
    assert "p50" in out and "p95" in out
    assert "Mon 06:20" in out  # per step


async def test_whisper_is_a_memory_from_the_next_step_on(town):
    await town("step")
    out = await town(f"whisper Ines {SECRET}")
    assert "Ines Marlowe will remember" in out
    rows = query(
        store_path(town.root, town.sim.run_id),
        f"SELECT agent FROM {MEMORIES} WHERE run_id = ? AND text = ?",
        town.sim.run_id,
        SECRET,
    )
    assert rows == [("Ines Marlowe",)]
    assert town.sim.agents["Ines Marlowe"].query_key is None  # asked afresh next step
    await town("step")
    assert town.sim.agents["Ines Marlowe"].query_key is not None


async def test_inject_is_perceived_where_it_happens(town):
    out = await town("inject at bakery A cart overturns outside, spilling flour.")
    assert "at the next step, at bakery" in out
    out = await town("step")
    assert "A cart overturns outside" in out
    events = list(town.sim.recorder.events(town.sim.run_id, kinds=["announcement"]))
    assert [(e.text, e.place) for e in events] == [
        ("A cart overturns outside, spilling flour.", "bakery")
    ]
    ines, tobias = town.sim.agents["Ines Marlowe"], town.sim.agents["Tobias Marlowe"]
    assert any("cart overturns" in o for o in ines.observations)  # at the bakery
    assert not any("cart overturns" in o for o in tobias.observations)  # at home
    await town("step")  # consumed once
    assert len(list(town.sim.recorder.events(town.sim.run_id, kinds=["announcement"]))) == 1


async def test_failed_step_is_one_line_and_the_town_stays_usable(runs_root):
    t = Town(runs_root, Switchable())
    try:
        await t("step", "inject The church bell rings seven times.")
        t.backend.down = True
        state = sim_state(t.sim)
        out = await t("step 3")
        assert out.startswith("error: step 2 ") and "stopped answering" in out
        assert out.count("\n") == 1
        assert sim_state(t.sim) == state
        assert t.sim.recorder.run(t.sim.run_id).steps_done == 1
        t.backend.down = False
        out = await t("step")
        assert "step 2 " in out and "The church bell rings seven times." in out
        assert t.sim.step == 2
    finally:
        await t.session.aclose()


async def test_playing_shows_only_what_the_resident_perceives(town):
    await town(f"whisper Ines {SECRET}", "step 2")
    others = [n for n in town.sim.agents if n != "Tobias Marlowe"]
    private = [SECRET] + [m.text for n in others for m in town.sim.world.personas[n].seed_memories]
    out = await town(
        "play Tobias",
        "look",
        "inspect Tobias",
        "inspect Ines",
        "interview Ines What do you hide?",
        "look pub",
        "step 2",
        "wait",
        "go bakery",
        "hum a tune while kneading",
        "step 3",
    )
    assert "hint: while playing you see only what Tobias Marlowe perceives" in out
    assert "hint: while playing you cannot interview" in out
    for text in private:
        assert text not in out, text
    # every line a step showed is something Tobias perceived (his observation memories)
    seen = " ".join(
        m.text for m in town.sim.memory.recent("Tobias Marlowe", 100, kinds=["observation"])
    )
    step_lines, in_step = [], False
    for line in out.splitlines():
        if re.match(r"step \d+ .*, as Tobias Marlowe:$", line):
            in_step = True
        elif not line.startswith("  "):
            in_step = False
        elif in_step and not line.startswith("  It is "):
            step_lines.append(line[2:])
    assert len(step_lines) >= 6
    for line in step_lines:
        if line != "(nothing you could perceive)" and "could not do that" not in line:
            assert line.rstrip() in seen, line


async def test_played_actions_are_grounded_like_anyone_s(town):
    out = await town("play Tobias Marlowe", "go to the moon")
    assert "hint: from Marlowe House you can go to: bakery" in out
    assert town.sim.step == 0
    out = await town("go bakery")
    assert town.sim.state.location("Tobias Marlowe") == "bakery"
    assert "Tobias Marlowe goes from Marlowe House to Marlowe's Bakery." in out
    await town("say to Ines Good morning, Mum")
    said = town.sim.recorder.utterances(town.sim.run_id, speaker="Tobias Marlowe")
    assert [(u.addressees, u.text) for u in said] == [(["Ines Marlowe"], "Good morning, Mum")]
    acted = [
        e.data["action"]["kind"]
        for e in town.sim.recorder.events(town.sim.run_id, agent="Tobias Marlowe")
        if e.kind in ("action", "speech", "failure")
    ]
    assert acted == ["move", "say"]
    out = await town("leave")
    assert "back in its model's hands" in out
    await town("step")
    assert town.sim.step == 3


async def test_fork_copies_the_town_and_goes_on_in_the_copy(town):
    await town("step 3", "whisper Ines a thought to copy")
    old = town.sim.run_id
    before = timeline(town.sim)
    n_memories = town.sim.memory.count()
    out = await town("fork what-if")
    new = town.sim.run_id
    assert new != old and f"into {new} (what-if)" in out
    assert timeline(town.sim) == before
    assert town.sim.step == 3 and town.sim.memory.count() == n_memories
    found = town.sim.memory.retrieve("Ines Marlowe", "a thought to copy", town.sim.state.now, k=3)
    assert "a thought to copy" in [m.record.text for m in found]
    row = town.sim.recorder.run(new)
    assert row.config["forked_from"] == {"run": old, "step": 3}
    assert row.config["label"] == "what-if"
    await town("step 2")
    assert town.sim.step == 5
    original = town.open(old)  # the original is untouched and reopens where it was
    try:
        assert original.step == 3 and timeline(original) == before
    finally:
        await original.aclose()


class ClosingScripted(ScriptedBackend):
    """The scripted model, counting its closes."""

    closed = 0

    async def aclose(self) -> None:
        self.closed += 1


async def test_fork_closes_the_town_it_leaves_but_not_the_model_its_runs_borrow(runs_root):
    backend = ClosingScripted()
    lender = open_model(backend)
    factory = run_models(lender, "readwrite")

    def opener(run_id):
        return resume_run(run_id, factory, world_path=TOWN, root=runs_root)

    sim = start_run(TOWN, factory, root=runs_root, seed=3)
    console = Console(file=io.StringIO(), width=100)
    session = TownSession(sim, console, opener=opener, root=runs_root)
    assert await session.execute("step 1") and await session.execute("fork")
    assert session.sim is not sim and sim.lm.cache._closed  # the old town is closed
    assert backend.closed == 0
    assert await session.execute("step 1")  # the copy steps on the same loaded model
    assert session.sim.step == 2
    await session.aclose()
    assert backend.closed == 0  # left to its owner
    await lender.aclose()
    assert backend.closed == 1


async def test_completion_of_commands_names_and_places(town):
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    def complete(text):
        return [
            c.text
            for c in TownCompleter(town.session).get_completions(Document(text), CompleteEvent())
        ]

    assert complete("ste") == ["step "]
    assert complete("inspect Tob") == ["Tobias Marlowe", "Tobias"]
    assert "bakery" in complete("look bak")


class Counter(StepHook):
    """A hook with simulated state of its own: steps seen."""

    name = "counter"

    def __init__(self):
        self.seen = 0

    def after_observing(self, sim, step, events, perceived):
        self.seen += 1

    def checkpoint(self):
        return {"seen": self.seen}

    def restore(self, data):
        self.seen = data["seen"]


async def test_hook_state_is_checkpointed_and_rolled_back(runs_root):
    backend = Switchable()
    sim = start_run(TOWN, lm_factory(backend), root=runs_root)
    counter = Counter()
    sim.hooks.append(counter)
    async with sim:
        await sim.run_step()
        assert counter.seen == 1
        cp = sim.recorder.last_checkpoint(sim.run_id)
        assert cp.agents[HOOKS_KEY] == {"counter": {"seen": 1}}
        backend.down = True
        with pytest.raises(Exception, match="stopped answering"):
            await sim.run_step()
        assert counter.seen == 1
    again = resume_run(sim.run_id, lm_factory(), world_path=TOWN, root=runs_root)
    async with again:  # a checkpoint with hook states resumes like any
        assert again.step == 1
        await again.run_step()
