"""Conversations read back from a run's store, as plain records with their provenance.

A record is one conversation, every speaker named (the `records` format is exactly
this, one per line); every other format is made from records. Both generated
conversations and `--from-run` exports come through `conversations_of_run`: the run's
utterances (the typed `RunRecorder.utterances` query) are grouped into conversations
by place and time: an utterance joins a conversation at its place whose last turn is
at most `GAP_STEPS` steps before and which shares a person with it (speaker or
addressee); otherwise it opens a new one.

Residents with phones also write to each other (`world.apps`): the messages between
two residents, in the order they were sent, are one conversation (`message_threads`),
read from the run's newest checkpoint, which holds every message; its record has
`channel: messages` and no place (a message reaches its addressee wherever it is).

Each turn is checked for a leaked secret as it is read (`leaks`), against what the
speaker could know at that moment: its own card and the memories it had in the run
before the turn (what it was told, saw or heard), and the conversation so far."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from concordia_like.agents.prompt import PERSONA_MAX
from concordia_like.dialogue.secrets import leaked, secrets_of
from concordia_like.engine.recorder import RunRecorder
from concordia_like.store.memory_tables import MEMORIES_WITH_VECTORS, TEXT, MemoryRow
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
            select(MemoryRow.created, TEXT)
            .select_from(MEMORIES_WITH_VECTORS)
            .where(MemoryRow.run_id == run_id, MemoryRow.agent == agent)
        ).all()
    return [(c, t) for c, t in rows]


class Knowledge:
    """What each resident knew in a run (its memories with their times), read once."""

    def __init__(self, recorder: RunRecorder, run_id: str) -> None:
        self.recorder, self.run_id = recorder, run_id
        self._known: dict[str, list[tuple[datetime, str]]] = {}

    def before(self, agent: str, when: datetime) -> list[str]:
        if agent not in self._known:
            self._known[agent] = _knowledge(self.recorder, self.run_id, agent)
        return [t for c, t in self._known[agent] if c < when]


def turns_of(
    rows: Sequence[Any], world: World, secrets: Any, knowledge: Knowledge
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The turns of a conversation (`rows`: utterances, or anything with a speaker,
    addressees, text, sim_time and step), and the secrets leaked in them."""
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
        card = world.personas.get(r.speaker)
        known = knowledge.before(r.speaker, r.sim_time)
        known += [x.text for x in rows[:k]]
        if card is not None:
            known.append(card.prompt_text(10_000))
        hit = leaked(r.text, r.speaker, secrets, known)
        if hit is not None:
            leaks.append({"turn": k, "speaker": r.speaker, "owner": hit[0], "secret": hit[1]})
    return turns, leaks


def conversations_of_run(
    recorder: RunRecorder,
    run_id: str,
    world: World,
    *,
    generator: str = "from-run",
    min_utterances: int = 1,
    messages: bool = True,
) -> list[dict[str, Any]]:
    """Every conversation of `run_id` as a record with its provenance: what was said,
    then (with `messages`) the threads of messages (`message_threads`)."""
    with recorder.sessions() as s:
        run = s.get(RunRow, run_id)
    if run is None:
        raise ValueError(f"no run {run_id!r} in store {recorder.url}")
    whash = world_hash(world)
    secrets = secrets_of(world.personas.values())
    knowledge = Knowledge(recorder, run_id)
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
        turns, leaks = turns_of(rows, world, secrets, knowledge)
        conv_id = f"{run_id}-{n}"
        out.append(
            record_of(
                run, world, whash, conv_id, people, rows[0].place, start, turns, leaks, generator
            )
        )
    if messages:
        out += message_threads(recorder, run_id, world, generator=generator)
    return out


def record_of(
    run: RunRow,
    world: World,
    whash: str,
    conv_id: str,
    people: list[str],
    place: str | None,
    start: datetime,
    turns: list[dict[str, Any]],
    leaks: list[dict[str, Any]],
    generator: str,
    channel: str = "speech",
    situation: str | None = None,
) -> dict[str, Any]:
    config = run.config or {}
    spec = config.get("dialogue") or {}
    backend, _, model = run.backend.partition(":")
    topic = spec.get("topic")
    p = world.state.places.get(place) if place is not None else None
    if situation is None:
        situation = situation_text(world, place or "", start, people, topic)
    return {
        "id": conv_id,
        "speakers": people,
        "turns": turns,
        "situation": situation,
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
            "channel": channel,
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
    return record_of(
        run, world, world_hash(world), conv_id, people, place, start, [], [], generator
    )


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False)


# -- message threads ------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    """One message as a turn (the shape `turns_of` reads)."""

    speaker: str
    addressees: tuple[str, ...]
    text: str
    sim_time: datetime
    step: int


def thread_situation(world: World, at: datetime, people: list[str]) -> str:
    a, b = people
    return (
        f"{world.name}, {at:%A %d %B %Y}, {at:%H:%M}. {a} and {b} write to each other "
        "in text messages on their phones."
    )


def message_threads(
    recorder: RunRecorder, run_id: str, world: World, *, generator: str = "from-run"
) -> list[dict[str, Any]]:
    """Every thread of messages between two residents of `run_id`, as records, in the
    order each thread began."""
    cp = recorder.last_checkpoint(run_id)
    apps = (cp.world or {}).get("apps") if cp is not None else None
    messages = (apps or {}).get("messages") or []
    if not messages:
        return []
    with recorder.sessions() as s:
        run = s.get(RunRow, run_id)
    if run is None:
        raise ValueError(f"no run {run_id!r} in store {recorder.url}")
    threads: dict[frozenset[str], list[_Line]] = {}
    for m in messages:
        line = _Line(
            m["sender"], (m["to"],), m["text"], datetime.fromisoformat(m["time"]), m["step"]
        )
        threads.setdefault(frozenset((m["sender"], m["to"])), []).append(line)
    whash = world_hash(world)
    secrets = secrets_of(world.personas.values())
    knowledge = Knowledge(recorder, run_id)
    out = []
    for n, lines in enumerate(threads.values()):
        people = [lines[0].speaker, lines[0].addressees[0]]
        start = lines[0].sim_time
        turns, leaks = turns_of(lines, world, secrets, knowledge)
        conv_id = f"{run_id}-messages-{n}"
        out.append(
            record_of(
                run,
                world,
                whash,
                conv_id,
                people,
                None,
                start,
                turns,
                leaks,
                generator,
                channel="messages",
                situation=thread_situation(world, start, people),
            )
        )
    return out
