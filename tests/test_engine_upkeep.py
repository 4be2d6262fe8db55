"""Planning and reflection inside the engine's step: plans when agents wake, plan
memories written in the step's transaction (none duplicated by a resume), reflection
once importance passes the threshold."""

from __future__ import annotations

from collections import Counter

from concordia_like.engine.runs import resume_run, start_run
from concordia_like.engine.upkeep import Upkeep, UpkeepConfig, wake_hour
from concordia_like.memory.reflection import ReflectionConfig

from support.engine import (
    TOWN,
    close,
    lm_factory,
    memories,
    query,
    run_steps,
    store_path,
    timeline,
)


async def test_day_plans_when_agents_wake_and_stored_once_across_a_resume(runs_root):
    sim = start_run(TOWN, lm_factory(), seed=2, root=runs_root)
    start = sim.state.now
    await run_steps(sim, 6)
    await close(sim)
    sim = resume_run(sim.run_id, lm_factory(), root=runs_root)
    await run_steps(sim, 8)
    day_plans = [e for e in timeline(sim) if e[3] == "plan" and "plans the day" in e[6]]
    assert Counter(e[4] for e in day_plans) == Counter(set(sim.agents))  # once each
    for e in day_plans:
        wake = start.replace(hour=max(start.hour, wake_hour(sim.agents[e[4]].persona)))
        assert e[2] == wake, (e[4], e[2])
    plans = [m for m in memories(store_path(runs_root, sim.run_id), sim.run_id) if m[1] == "plan"]
    assert {m[0] for m in plans} == set(sim.agents)
    keys = [(agent, text, created) for agent, _, text, created, _ in plans]
    assert len(keys) == len(set(keys))
    await close(sim)


async def _reflections(root, threshold: int | None, steps: int = 10):
    sim = start_run(TOWN, lm_factory(), seed=2, root=root)
    if threshold is not None:
        config = UpkeepConfig(reflection=ReflectionConfig(threshold=threshold))
        sim.upkeep = Upkeep(sim.lm, sim.memory, sim.agents, config)
    await run_steps(sim, steps)
    events = [e for e in timeline(sim) if e[3] == "reflection"]
    stored = [m for m in memories(store_path(root, sim.run_id), sim.run_id) if m[1] == "reflection"]
    await close(sim)
    return events, stored


async def test_reflection_fires_past_the_importance_threshold(tmp_path, runs_root):
    events, stored = await _reflections(runs_root, threshold=20)
    assert events and len(stored) == len(events)
    assert {e[4] for e in events} == {m[0] for m in stored}
    assert all(f"{m[0]} concludes: {m[2]}" in {e[6] for e in events} for m in stored)
    # the same run under the default threshold has not reflected yet
    assert await _reflections(tmp_path / "default", threshold=None) == ([], [])


async def test_reflecting_writes_nothing_until_its_commit(runs_root):
    """The engine reflects before its agents act and writes in the step's transaction:
    preparing a reflection must leave the store as it was (a step re-run after a crash
    must see what its first attempt saw), and the commit moves what was retrieved."""
    sim = start_run(TOWN, lm_factory(), seed=2, root=runs_root)
    await run_steps(sim, 8)
    db = store_path(runs_root, sim.run_id)
    sql = "SELECT id, last_retrieved FROM memories WHERE run_id = ? ORDER BY id"
    before = query(db, sql, sim.run_id)
    reflector, now = sim.upkeep.reflector, sim.state.now
    pending = await reflector.prepare(list(sim.agents), now)
    assert pending.insights
    assert query(db, sql, sim.run_id) == before
    with sim.recorder.sessions.begin() as session:  # as the step's transaction does
        reflector.commit(pending, now, session=session)
    after = dict(query(db, sql, sim.run_id))
    cited = {i for m in pending.insights for i in m.evidence}
    assert any(after[i] != dict(before)[i] for i in cited)
    await close(sim)
