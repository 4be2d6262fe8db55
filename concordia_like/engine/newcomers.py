"""Residents who join a run after it began (the sandbox's `play --new CARD.yaml`).

A world file fixes its residents, and a resume rebuilds them from it; a newcomer is in
no file, so the run itself records it: its card (as validated, home settled), where it
arrived and after which step, under `newcomers` in the run's config. Joining writes
that record and the newcomer's first memories in one transaction, so a newcomer is
either wholly in the run or not at all. From then on it is a resident like any other:
its agent state and place are in every checkpoint, and `resume_run` (and so a reopened
or forked town) puts back the newcomers a checkpoint does not yet hold (one who joined
after the last committed step) from that record.

What a newcomer brings: the world's initial attributes (money entering the world with
it, so a conserved total grows by it), no items, and the keys of its home when the
card's home is a place of the world (as a world file makes residents of a home its
keyholders)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from concordia_like.agents.agent import Agent
from concordia_like.engine.recorder import Checkpoint
from concordia_like.engine.simulation import Simulation
from concordia_like.errors import ConfigError
from concordia_like.memory.records import NewMemory
from concordia_like.store.run_tables import RunRow
from concordia_like.world.persona import PersonaCard
from concordia_like.world.state import WorldState

#: where a run's config records its newcomers
NEWCOMERS_KEY = "newcomers"
ARRIVAL_IMPORTANCE = 6


@dataclass(frozen=True)
class Newcomer:
    """A newcomer as its run records it."""

    card: PersonaCard
    #: the place it arrived at (its home, when the card's home is a place of the world)
    place: str
    #: it holds the keys of its home
    keyholder: bool
    #: the step after which it joined
    after_step: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "card": self.card.model_dump(mode="json"),
            "place": self.place,
            "keyholder": self.keyholder,
            "after_step": self.after_step,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Newcomer:
        return cls(
            PersonaCard.model_validate(data["card"]),
            data["place"],
            bool(data.get("keyholder")),
            int(data.get("after_step", 0)),
        )


def arrival_memory(world_name: str, place_name: str) -> str:
    return f"I have just arrived in {world_name}, at {place_name}; I am new here."


def add_newcomer(sim: Simulation, newcomer: Newcomer) -> None:
    """Record `newcomer` in the run and add it to the running simulation. The caller
    has checked it against the world (a free name, a real place): this only writes.
    Its seed memories and an arrival memory are stored with the record, at the
    current clock time, in the same transaction."""
    card, now = newcomer.card, sim.state.now
    where = sim.state.places[newcomer.place].name
    memories = [
        NewMemory(agent=card.name, text=m.text, created=now, importance=m.importance)
        for m in card.seed_memories
    ]
    memories.append(
        NewMemory(
            agent=card.name,
            text=arrival_memory(sim.world.name, where),
            created=now,
            importance=ARRIVAL_IMPORTANCE,
        )
    )
    with sim.recorder.writing(sim.run_id) as session:
        _record(session, sim.run_id, newcomer)
        sim.memory.add_many(memories, now=now, session=session)
    _place_in_state(sim, newcomer)
    _add_agent(sim, card)


def restore_newcomers(
    sim: Simulation, recorded: Sequence[Mapping[str, Any]], cp: Checkpoint | None
) -> list[str]:
    """Put a reopened run's newcomers back (`resume_run` calls this): each gets its
    agent, with its checkpointed state when the checkpoint has it, and its place in the
    world when the checkpoint is from before it joined. Returns their names."""
    names = []
    for data in recorded:
        newcomer = Newcomer.from_dict(data)
        name = newcomer.card.name
        if name in sim.agents:  # a world file that has since gained the same resident
            continue
        if name not in sim.state.agents:
            _place_in_state(sim, newcomer)
        agent = _add_agent(sim, newcomer.card)
        if cp is not None and name in cp.agents:
            agent.restore(cp.agents[name])
        names.append(name)
    return names


def _record(session: Session, run_id: str, newcomer: Newcomer) -> None:
    row = session.get(RunRow, run_id)
    if row is None:
        raise ConfigError(f"no run {run_id!r} in the store")
    config = dict(row.config or {})
    config[NEWCOMERS_KEY] = [*config.get(NEWCOMERS_KEY, []), newcomer.to_dict()]
    row.config = config


def _place_in_state(sim: Simulation, newcomer: Newcomer) -> None:
    """The world state with the newcomer in it. Rebuilt from its checkpoint form: the
    state has no primitive to add a resident, and its indexes (who is where) are
    rebuilt with it."""
    name, card = newcomer.card.name, newcomer.card
    data = sim.state.to_dict()
    attrs = sim.state.attributes
    data["agents"][name] = {
        "location": newcomer.place,
        "home": card.home,
        "attributes": {
            n: int(a.initial) if a.integer else float(a.initial) for n, a in sorted(attrs.items())
        },
    }
    if newcomer.keyholder and card.home in data["places"]:
        keys = data["places"][card.home]["keyholders"]
        data["places"][card.home]["keyholders"] = sorted({*keys, name})
    totals = data["ledger"]["initial_totals"]
    for n, a in attrs.items():
        if a.conserved and n in totals:
            totals[n] += a.initial
    sim.world.state = WorldState.from_dict(data)


def _add_agent(sim: Simulation, card: PersonaCard) -> Agent:
    agent = Agent.create(card, sim.world.name, sim.world.rules)
    sim.add_resident(agent)
    return agent
