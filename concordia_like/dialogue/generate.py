"""Generating conversations through the simulation, many at once, resumably.

Each conversation (a `ConversationSpec`) is a run of its own: the world with only its
members, all at the chosen place, starting at the chosen time, with the opener's topic
in mind (a memory planted before the first step, and the meeting as its first
observation). A step hook (`ConversationHook`, engine/hooks.py) takes turns: each step
one member speaks (the opener first; then mostly whoever was spoken to, answering) and
the others listen. The speaker's words are the agent's own speech call (its persona,
place, plan, retrieved memories and what it just heard; `agents.speech`, with its
degeneracy guards), and the `say` is grounded by the Game Master and perceived like any
action; the engine records the utterance, each listener's memory of it, plans,
importance and the checkpoint, step by step. Every run borrows the job's model (with a
usage ledger of its own; see `LanguageModel.borrow`), and conversations step
concurrently: their model calls meet in the same batches.

A job keeps its state in a work folder: `job.json` (what it was asked), its runs under
`runs/`, and `conversations.jsonl`, to which a conversation is appended (and synced)
once its run is complete. Killed at any moment and run again, a job reads the journal
(a torn last line is dropped), removes the runs that never reached it, and generates
what is missing, so that it ends with each planned conversation exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from concordia_like.agents.actions import Say, Wait
from concordia_like.agents.speech import write_speech
from concordia_like.dialogue.plan import ConversationSpec
from concordia_like.dialogue.records import conversations_of_run, dumps, silent_conversation
from concordia_like.engine.hooks import StepHook, StepInput
from concordia_like.engine.runs import start_run
from concordia_like.engine.simulation import RETRIEVE_K, Simulation
from concordia_like.llm import LanguageModel, run_models
from concordia_like.llm.sampling import derive_seed
from concordia_like.memory.records import RetrievalQuery
from concordia_like.world.loader import World
from concordia_like.world.state import WorldState

JOURNAL = "conversations.jsonl"


def cast_world(world: World, spec: ConversationSpec) -> World:
    """A fresh copy of `world` with only the conversation's members, all at its place.
    Items held by others are left out; places keep their keyholders' names."""
    data = world.new_state().to_dict()
    members = set(spec.members)
    gone = set(world.personas) - members
    data["agents"] = {n: a for n, a in data["agents"].items() if n in members}
    data["items"] = {i: it for i, it in data["items"].items() if it["holder"] not in gone}
    state = WorldState.from_dict(data)
    # the invariants hold of what is left: counts and conserved totals as cast
    state.initial_counts, state.initial_totals = state.item_counts(), state.conserved_totals()
    for name in spec.members:
        state.set_location(name, spec.place)
    return World(
        path=world.path,
        spec=world.spec,
        personas={n: world.personas[n] for n in spec.members},
        state=state,
        warnings=[],
        _initial=state.to_dict(),
        built={**world.built, "dialogue_cast": list(spec.members), "dialogue_place": spec.place},
    )


class ConversationHook(StepHook):
    """Turn-taking for one conversation (see the module's text). Its state (turns said,
    who spoke to whom last) is checkpointed with every step."""

    name = "dialogue"

    def __init__(self, spec: ConversationSpec, turns: int) -> None:
        self.spec = spec
        self.turns = turns
        self.said = 0
        self.last: tuple[str, str] | None = None
        self.dropped: list[str] = []
        self._pending: tuple[str, str, str | None, str | None] | None = None

    @property
    def done(self) -> bool:
        return self.said >= self.turns

    def next_turn(self, seed: int, step: int) -> tuple[str, str]:
        members = list(self.spec.members)
        if self.last is None:
            return members[0], members[1]
        prev_speaker, prev_to = self.last
        rng = random.Random(derive_seed(seed, step, "turn"))
        if len(members) == 2 or rng.random() < 0.7:
            speaker = prev_to
        else:
            speaker = rng.choice([m for m in members if m != prev_speaker])
        if speaker == prev_speaker:  # spoke to itself last: turn to someone else
            speaker = next(m for m in members if m != prev_speaker)
        to = prev_speaker if speaker != prev_speaker else prev_to
        if len(members) > 2 and speaker != prev_to and rng.random() < 0.5:
            to = rng.choice([m for m in members if m != speaker])
        return speaker, to

    async def before_acting(self, sim: Simulation, step: int) -> StepInput | None:
        speaker, to = self.next_turn(sim.seed, step)
        agent = sim.agents[speaker]
        now = sim.state.now
        parts = agent.new_query()
        if parts is not None:
            found = sim.memory.retrieve_many(
                [RetrievalQuery(speaker, " | ".join(parts), now, RETRIEVE_K, parts)], touch=False
            )[0]
            agent.memories = [m.record.text for m in found]
        agent.act_request(sim.state, derive_seed(sim.seed, step, speaker))  # the situation
        spoken = (
            await write_speech(
                sim.lm,
                sim.agents,
                [(speaker, to)],
                lambda n, k: derive_seed(sim.seed, step, n, "dialogue", k),
            )
        )[speaker]
        self._pending = (speaker, to, spoken.text, spoken.reason)
        actions: dict[str, Any] = {
            m: Wait(kind="wait", text=f"listens to {speaker}")
            for m in self.spec.members
            if m != speaker
        }
        if spoken.text is None:
            actions[speaker] = Wait(kind="wait", text="hesitates")
        else:
            actions[speaker] = Say(kind="say", to=to, text=spoken.text)
        return StepInput(actions=actions)

    def after_observing(self, sim: Simulation, step: int, events: Any, perceived: Any) -> None:
        if self._pending is None:
            return
        speaker, to, text, reason = self._pending
        if text is not None:
            sim.agents[speaker].last_said.append(text)
            self.said += 1
            self.last = (speaker, to)
        else:
            self.dropped.append(f"step {step}, {speaker}: {reason}")

    def after_commit(self, sim: Simulation, report: Any) -> None:
        self._pending = None

    def checkpoint(self) -> dict[str, Any]:
        return {
            "said": self.said,
            "last": list(self.last) if self.last else None,
            "dropped": list(self.dropped),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.said = data["said"]
        self.last = tuple(data["last"]) if data.get("last") else None
        self.dropped = list(data.get("dropped", []))


def max_steps(turns: int) -> int:
    """Steps a conversation may take: its turns, and half again for dropped ones."""
    return turns + max(1, turns // 2)


async def run_conversation(
    world: World,
    spec: ConversationSpec,
    model: LanguageModel,
    root: Path,
    *,
    turns: int,
    job_seed: int,
    config: dict[str, Any],
    sampling: dict[str, dict[str, float]] | None = None,
) -> tuple[Simulation, ConversationHook]:
    """Run one conversation to its end (`turns` utterances, or `max_steps`) on a model
    borrowed from `model`; the run is left open for the caller to read and close."""
    cast = cast_world(world, spec)
    sim = start_run(
        cast,
        run_models(model),
        seed=derive_seed(job_seed, spec.index, "run"),
        root=root,
        start_time=spec.start,
        sampling=sampling,
        config={**config, "dialogue": {**spec.to_dict(), "turns": turns}},
    )
    hook = ConversationHook(spec, turns)
    sim.hooks.append(hook)
    opener, others = spec.members[0], spec.members[1:]
    place = cast.state.places[spec.place].name
    for m in spec.members:
        company = ", ".join(x for x in spec.members if x != m)
        sim.agents[m].perceive(f"You meet {company} at {place}.")
    sim.plant_memory(opener, f"I want to talk with {' and '.join(others)} about {spec.topic}")
    try:
        while not hook.done and sim.step < max_steps(turns):
            await sim.run_step()
    except BaseException:
        await sim.aclose()
        raise
    return sim, hook


class Journal:
    """Completed conversations, one JSON line each, appended and synced."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        good, out, seen = 0, [], set()
        for line in raw.split(b"\n"):
            if not line.strip():
                good += len(line) + 1
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a line torn by a kill: it and anything after it are dropped
            good += len(line) + 1
            key = rec["provenance"].get("index")
            if key not in seen:
                seen.add(key)
                out.append(rec)
        if good < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(min(good, len(raw)))
        return out

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


def clean_unfinished(root: Path, keep: set[str]) -> int:
    """Remove the run folders under `root` whose conversation never reached the journal."""
    n = 0
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and d.name not in keep:
                shutil.rmtree(d, ignore_errors=True)
                n += 1
    return n


async def generate(
    world: World,
    specs: list[ConversationSpec],
    model: LanguageModel,
    work: Path,
    *,
    turns: int,
    job_seed: int,
    parallel: int,
    config: dict[str, Any],
    sampling: dict[str, dict[str, float]] | None = None,
    on_done: Callable[[dict[str, Any] | None], None] | None = None,
) -> list[dict[str, Any]]:
    """Generate every conversation of `specs` not yet in the work folder's journal, at
    most `parallel` at once, each on a model borrowed from `model`; returns the
    journal's records, in index order. A conversation in which nobody spoke is journaled
    too, with no turns, so that it counts (and is dropped by the filters) and is not
    tried again."""
    journal = Journal(work / JOURNAL)
    root = work / "runs"
    root.mkdir(parents=True, exist_ok=True)
    have = {r["provenance"]["index"]: r for r in journal.read()}
    clean_unfinished(root, {r["provenance"]["run_id"] for r in have.values()})
    gate = asyncio.Semaphore(max(1, parallel))

    async def one(spec: ConversationSpec) -> None:
        async with gate:
            sim, hook = await run_conversation(
                world,
                spec,
                model,
                root,
                turns=turns,
                job_seed=job_seed,
                config=config,
                sampling=sampling,
            )
            try:
                found = conversations_of_run(
                    sim.recorder, sim.run_id, world, generator="dialogues", messages=False
                )
                record = _one_record(found, sim, spec, world, hook)
            finally:
                await sim.aclose()
            journal.append(record)
            have[spec.index] = record
            if on_done is not None:
                on_done(record)

    todo = [s for s in specs if s.index not in have]
    tasks = [asyncio.ensure_future(one(s)) for s in todo]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return [have[i] for i in sorted(have)]


def _one_record(
    found: list[dict[str, Any]],
    sim: Simulation,
    spec: ConversationSpec,
    world: World,
    hook: ConversationHook,
) -> dict[str, Any]:
    """The conversation of a generated run (the longest, if the run's utterances fell
    apart into several), with the plan's index and what the hook dropped."""
    if found:
        rec = max(found, key=lambda r: len(r["turns"]))
    else:
        rec = silent_conversation(
            sim.recorder, sim.run_id, world, list(spec.members), spec.place, sim.state.now
        )
    rec["provenance"]["index"] = spec.index
    rec["provenance"]["planned_members"] = list(spec.members)
    rec["dropped_turns"] = list(hook.dropped)
    return rec
