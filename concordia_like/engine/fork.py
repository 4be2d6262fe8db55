"""Forking a run: a copy of it as last committed, to go on differently without losing
it (the sandbox's `fork`, an experiment's conditions continuing from a shared past).

The copy is a new run with the same history up to now: the run's row (marked as
forked from which run and step), its events, utterances, last checkpoint and every
memory with its embedding, copied through the recorder's and the memory store's typed
copies in one transaction of the new run's store (its own SQLite file in a new run
folder, or the same server store under a new id). Its vector index is rebuilt from SQL
when it is opened, as after any loss of the index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from concordia_like.engine.recorder import RunRecorder, new_run_id
from concordia_like.engine.runs import run_folder, store_url_for
from concordia_like.engine.simulation import Simulation


def fork_run(sim: Simulation, root: Path, store: str | None, label: str | None = None) -> str:
    """Copy `sim`'s run as last committed into a new run; return its id."""
    new_id = new_run_id()
    folder = run_folder(new_id, root)
    folder.mkdir(parents=True, exist_ok=True)
    target = RunRecorder(store_url_for(folder, store))

    def memories(session: Session) -> None:
        sim.memory.copy_into(session, new_id)

    try:
        config: dict[str, Any] = {"forked_from": {"run": sim.run_id, "step": sim.step}}
        if label:
            config["label"] = label
        sim.recorder.copy_run(sim.run_id, target, new_id, config=config, extra=memories)
    finally:
        target.close()
    return new_id
