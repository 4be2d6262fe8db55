"""Conversations read back from a run's store, as plain records with their provenance.

A record is one conversation, every speaker named (the `records` format is exactly
this, one per line); every other format is made from records. Both generated
conversations and `--from-run` exports come through `conversations_of_run`: the run's
utterances (the typed `RunRecorder.utterances` query) are grouped into conversations
by place and time: an utterance joins a conversation at its place whose last turn is
at most `GAP_STEPS` steps before and which shares a person with it (speaker or
addressee); otherwise it opens a new one.

Each turn is checked for a leaked secret as it is read (`leaks`), against what the
speaker could know at that moment: its own card and the memories it had in the run
before the turn (what it was told, saw or heard), and the conversation so far."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from concordia_like.agents.prompt import PERSONA_MAX
from concordia_like.dialogue.secrets import leaked, secrets_of
from concordia_like.engine.recorder import RunRecorder
from concordia_like.store.memory_tables import MemoryRow
from concordia_like.store.run_tables import RunRow, UtteranceRow
from concordia_like.world.loader import World

GAP_STEPS = 3


def world_hash(world: World) -> str:
    """sha256 of the world file and its residents' cards as loaded."""
    h = hashlib.sha256(Path(world.path).read_bytes())
    for name in sorted(world.personas):
        h.update(world.personas[name].model_dump_json().encode())
    return h.hexdigest()


@dataclass
class _Group:
    place: str
    people: set[str]
    rows: list[UtteranceRow] = field(default_factory=list)

    @property
    def last_step(self) -> int:
        return self.rows[-1].step


def group_utterances(rows: list[UtteranceRow], gap_steps: int = GAP_STEPS) -> list[list[Any]]:
    """The run's utterances (in order) as conversations (see the module's text)."""
    open_: list[_Group] = []
    done: list[_Group] = []
    for r in rows:
        who = {r.speaker, *r.addressees}
        still: list[_Group] = []
        for g in open_:
            (still if r.step - g.last_step <= gap_steps else done).append(g)
        open_ = still
        joined = next((g for g in open_ if g.place == r.place and g.people & who), None)
        if joined is None:
            joined = _Group(r.place, set())
            open_.append(joined)
        joined.people |= who
        joined.rows.append(r)
    done += open_
    done.sort(key=lambda g: (g.rows[0].step, g.rows[0].id))
    return [g.rows for g in done]


def situation_text(world: World, place: str, at: datetime, people: list[str], topic: str | None):
    p = world.state.places.get(place)
    where = f"{p.name} ({p.description})" if p is not None else place
    text = f"{world.name}, {at:%A %d %B %Y}, {at:%H:%M}, at {where}. Present: {', '.join(people)}."
    if topic:
        text += f" {people[0]} has been meaning to talk about: {topic}"
    return text


def _knowledge(recorder: RunRecorder, run_id: str, agent: str) -> list[tuple[datetime, str]]:
    with recorder.sessions() as s:
        rows = s.execute(
            select(MemoryRow.created, MemoryRow.text).where(
                MemoryRow.run_id == run_id, MemoryRow.agent == agent
            )
        ).all()
    return [(c, t) for c, t in rows]


def conversations_of_run(
    recorder: RunRecorder,
    run_id: str,
    world: World,
    *,
    generator: str = "from-run",
    min_utterances: int = 1,
) -> list[dict[str, Any]]:
    """Every conversation of `run_id` as a record with its provenance."""
    with recorder.sessions() as s:
        run = s.get(RunRow, run_id)
    if run is None:
        raise ValueError(f"no run {run_id!r} in store {recorder.url}")
    whash = world_hash(world)
    secrets = secrets_of(world.personas.values())
    known_cache: dict[str, list[tuple[datetime, str]]] = {}
    out = []
    for n, rows in enumerate(group_utterances(recorder.utterances(run_id))):
        if len(rows) < min_utterances:
            continue
        people: list[str] = []
        for r in rows:
            for who in (r.speaker, *r.addressees):
                if who not in people:
                    people.append(who)
        start = rows[0].sim_time
        turns, leaks = [], []
        for k, r in enumerate(rows):
            turns.append(
                {
                    "speaker": r.speaker,
                    "to": list(r.addressees),
                    "text": r.text,
                    "sim_time": r.sim_time.isoformat(),
                    "step": r.step,
                }
            )
            if r.speaker not in known_cache:
                known_cache[r.speaker] = _knowledge(recorder, run_id, r.speaker)
            card = world.personas.get(r.speaker)
            known = [t for c, t in known_cache[r.speaker] if c < r.sim_time]
            known += [x.text for x in rows[:k]]
            if card is not None:
                known.append(card.prompt_text(10_000))
            hit = leaked(r.text, r.speaker, secrets, known)
            if hit is not None:
                leaks.append({"turn": k, "speaker": r.speaker, "owner": hit[0], "secret": hit[1]})
        conv_id = f"{run_id}-{n}"
        out.append(
            _record(
                run, world, whash, conv_id, people, rows[0].place, start, turns, leaks, generator
            )
        )
    return out


def _record(
    run: RunRow,
    world: World,
    whash: str,
    conv_id: str,
    people: list[str],
    place: str,
    start: datetime,
    turns: list[dict[str, Any]],
    leaks: list[dict[str, Any]],
    generator: str,
) -> dict[str, Any]:
    config = run.config or {}
    spec = config.get("dialogue") or {}
    backend, _, model = run.backend.partition(":")
    topic = spec.get("topic")
    p = world.state.places.get(place)
    return {
        "id": conv_id,
        "speakers": people,
        "turns": turns,
        "situation": situation_text(world, place, start, people, topic),
        "personas": {
            x: world.personas[x].prompt_text(PERSONA_MAX) for x in people if x in world.personas
        },
        "leaks": leaks,
        "provenance": {
            "generator": generator,
            "world": world.name,
            "world_path": str(world.path),
            "world_sha256": whash,
            "scenario": config.get("scenario"),
            "run_id": run.id,
            "conversation_id": conv_id,
            "index": spec.get("index"),
            "personas": people,
            "seed": run.seed,
            "backend": config.get("backend") or backend,
            "model": model or config.get("model"),
            "sampling": config.get("sampling"),
            "place": place,
            "place_name": p.name if p is not None else place,
            "sim_time": start.isoformat(),
            "topic": topic,
            "topic_source": spec.get("topic_source"),
        },
    }


def silent_conversation(
    recorder: RunRecorder, run_id: str, world: World, people: list[str], place: str,
    start: datetime, generator: str = "dialogues",
) -> dict[str, Any]:  # fmt: skip
    """The record of a planned conversation in which nobody spoke: no turns."""
    with recorder.sessions() as s:
        run = s.get(RunRow, run_id)
    assert run is not None
    conv_id = f"{run_id}-0"
    return _record(run, world, world_hash(world), conv_id, people, place, start, [], [], generator)


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False)
