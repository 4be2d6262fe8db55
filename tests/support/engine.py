"""Shared helpers of the engine, Game Master and CLI tests: worlds, scripted models,
running steps and reading a run back. Fixtures built on these live in conftest.py."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from concordia_like.engine.simulation import Simulation
from concordia_like.llm import LanguageModel, LLMRequest
from concordia_like.llm.faults import FaultInjectingBackend
from concordia_like.llm.scripted import ScriptedBackend

REPO = Path(__file__).resolve().parents[2]
TOWN = REPO / "worlds" / "town.yaml"
MINI = REPO / "tests" / "fixtures" / "worlds" / "mini.yaml"
TYPED_KINDS = ("move", "say", "give", "wait", "continue")


def lm_factory(
    backend: ScriptedBackend | None = None, faults: float = 0.0, seed: int = 0
) -> Callable[[Path], LanguageModel]:
    """A run's model: the scripted backend (a fresh one unless given), maybe faulty."""

    def make(folder: Path) -> LanguageModel:
        inner = backend if backend is not None else ScriptedBackend()
        b = FaultInjectingBackend(inner, faults, seed=seed) if faults else inner
        return LanguageModel(b)

    return make


async def run_steps(sim: Simulation, n: int) -> None:
    for _ in range(n):
        await sim.run_step()


async def close(sim: Simulation) -> None:
    await sim.lm.aclose()
    sim.memory.close()
    sim.recorder.close()


def timeline(sim: Simulation) -> list[tuple[Any, ...]]:
    """Everything the log shows of each event, in order (no ids, no wall times)."""
    return [
        (e.step, e.seq, e.sim_time, e.kind, e.actor, e.place, e.text, e.data)
        for e in sim.recorder.events(sim.run_id)
    ]


def store_path(root: Path, run_id: str) -> Path:
    return root / run_id / "store.sqlite"


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on a run's SQLite store."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


#: the memories table with each row's text, its own or its key's in memory_vectors
#: (`store.memory_tables.TEXT`), for raw SQL: `f"SELECT text FROM {MEMORIES} ..."`
MEMORIES = (
    "(SELECT m.id, m.run_id, m.agent, m.kind, COALESCE(NULLIF(m.text, ''), v.text) AS text,"
    " m.created, m.importance FROM memories m LEFT JOIN memory_vectors v"
    " ON v.run_id = m.run_id AND v.key = m.text_key)"
)


def memories(db: Path, run_id: str) -> list[tuple[Any, ...]]:
    """Every memory of a run as (agent, kind, text, created, importance), in id order."""
    return query(
        db,
        f"SELECT agent, kind, text, created, importance FROM {MEMORIES}"
        " WHERE run_id = ? ORDER BY id",
        run_id,
    )


def resolve_calls(lm: LanguageModel) -> int:
    return lm.usage.summary()["by_purpose"].get("resolve", {}).get("calls", 0)


def force(
    backend: ScriptedBackend,
    purpose: str,
    respond: Callable[[LLMRequest], dict[str, Any] | None],
) -> None:
    """Answer `backend`'s requests of `purpose` with `respond`'s JSON; where it returns
    None, the backend answers as it would have without the rule."""

    def responder(req: LLMRequest) -> str:
        value = respond(req)
        return ScriptedBackend()._answer(req) if value is None else json.dumps(value)

    backend.add_rule(".", responder, purpose)


def checkpoint(db: Path, run_id: str | None = None) -> Any:
    """The newest checkpoint of run `run_id` (None: the store's only run) in the SQLite
    store `db`, read as the engine reads it (its state is kept in parts)."""
    from concordia_like.engine.recorder import RunRecorder
    from concordia_like.store.base import sqlite_url

    recorder = RunRecorder(sqlite_url(db))
    try:
        if run_id is None:
            (run,) = recorder.runs()
            run_id = run.id
        return recorder.last_checkpoint(run_id)
    finally:
        recorder.close()
