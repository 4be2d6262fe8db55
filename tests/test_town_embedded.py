"""The town end to end on the real embedded model (SmolLM2-135M on llama.cpp), with real
embeddings, Chroma and SQLite: what `make run` does, checked. Few steps: the model is
slow on two cores."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from concordia_like.engine.runs import resume_run, start_run
from concordia_like.llm import LanguageModel
from concordia_like.llm.embedded import EmbeddedBackend
from concordia_like.store.memory_tables import MemoryRow
from concordia_like.store.run_tables import EventRow
from concordia_like.world.invariants import check_invariants

pytestmark = pytest.mark.embedded

#: every awake resident asked every step, so that each one acting is one act call
ALWAYS = {"mode": "always"}

TOWN = Path(__file__).resolve().parents[1] / "worlds" / "town.yaml"


@pytest.fixture(scope="module")
def backend():
    b = EmbeddedBackend(n_parallel=8, n_ctx=2048)
    yield b
    b.close()


def test_town_runs_and_resumes_on_the_embedded_model(tmp_path, backend):
    def lm_factory(_folder: Path) -> LanguageModel:
        return LanguageModel(backend)

    async def go(sim, steps):
        reports = [await sim.run_step() for _ in range(steps)]
        return sim, reports

    sim, reports = asyncio.run(
        go(start_run(TOWN, lm_factory, root=tmp_path, seed=3, attention=ALWAYS), 2)
    )
    run_id = sim.run_id
    usage = sim.usage()
    acting = sum(1 for r in reports for e in r.events if e.actor and e.kind != "plan")
    # one act call per acting agent, and the town is awake enough to act at 06:00
    assert usage["by_purpose"]["act"]["calls"] >= acting >= 4
    # the real model answers under its grammar: most actions parse and are grounded
    undecided = [
        e for r in reports for e in r.events if "could not decide" in e.data.get("reason", "")
    ]
    assert len(undecided) <= acting // 2
    # day plans were made by the model for those who are up
    assert any(e.kind == "plan" for r in reports for e in r.events)
    assert check_invariants(sim.state) == []
    with sim.recorder.engine.connect() as conn:
        n_events = conn.execute(select(func.count()).select_from(EventRow)).scalar_one()
        kinds = set(conn.execute(select(MemoryRow.kind).distinct()).scalars())
    assert n_events == sum(len(r.events) for r in reports)
    assert {"observation", "plan"} <= kinds
    sim.memory.close()
    sim.recorder.close()  # gives up the run, as a process that ends would

    # resumed from its last committed step, in a new simulation object
    again = resume_run(run_id, lm_factory, root=tmp_path)
    assert again.step == 2
    assert again.state.clock.now == sim.state.clock.now
    again, more = asyncio.run(go(again, 1))
    assert more[0].step == 3
    with again.recorder.engine.connect() as conn:
        steps = conn.execute(select(EventRow.step).distinct().order_by(EventRow.step))
        assert list(steps.scalars()) == [1, 2, 3]
    again.memory.close()
