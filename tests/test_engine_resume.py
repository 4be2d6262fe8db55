"""Resuming a run: 5 steps + resume to 10 equals 10 straight, and a run SIGKILLed at
random moments and resumed each time has every step exactly once and no duplicate."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pytest

from concordia_like.engine.runs import resume_run, start_run
from concordia_like.engine.simulation import ENGINES, Simulation, StepAborted
from concordia_like.engine.upkeep import Upkeep, UpkeepConfig
from concordia_like.memory.reflection import ReflectionConfig

from support.engine import (
    REPO,
    TOWN,
    close,
    lm_factory,
    memories,
    query,
    run_steps,
    store_path,
    timeline,
)


@pytest.mark.parametrize("engine", ENGINES)
async def test_resumed_run_equals_uninterrupted_run(tmp_path, runs_root, engine):
    straight = start_run(TOWN, lm_factory(), engine=engine, seed=5, root=runs_root)
    await run_steps(straight, 10)

    other = tmp_path / "other"
    first = start_run(TOWN, lm_factory(), engine=engine, seed=5, root=other)
    await run_steps(first, 5)
    await close(first)
    resumed = resume_run(first.run_id, lm_factory(), root=other)
    assert resumed.step == 5
    await run_steps(resumed, 5)

    assert timeline(resumed) == timeline(straight)
    a = memories(store_path(runs_root, straight.run_id), straight.run_id)
    b = memories(store_path(other, resumed.run_id), resumed.run_id)
    assert any(m[1] == "plan" for m in a)  # the comparison covers plan memories
    assert b == a
    assert resumed.state.to_dict() == straight.state.to_dict()
    for sim in (straight, resumed):
        await close(sim)


#: every awake resident asked every step: memories enough to reflect on, events each step
ALWAYS = {"mode": "always"}


def reflect_often(sim: Simulation) -> Simulation:
    config = UpkeepConfig(reflection=ReflectionConfig(threshold=20))
    sim.upkeep = Upkeep(sim.lm, sim.memory, sim.agents, config)
    return sim


class Crash(Exception):
    pass


async def test_a_step_that_crashed_before_its_commit_reruns_as_it_first_ran(tmp_path, runs_root):
    """The crash lands in a step that reflects midway (found from an uninterrupted run),
    after its model calls and retrievals, before its transaction: nothing the attempt
    did may change what the re-run sees."""
    steps = 12
    straight = reflect_often(
        start_run(TOWN, lm_factory(), seed=4, root=runs_root, attention=ALWAYS)
    )
    await run_steps(straight, steps)
    expected = timeline(straight)
    reflecting = sorted({e[0] for e in expected if e[3] == "reflection"})
    assert len(reflecting) > 2
    crash_at = reflecting[len(reflecting) // 2]  # with memories enough to compete

    other = tmp_path / "other"
    sim = reflect_often(start_run(TOWN, lm_factory(), seed=4, root=other, attention=ALWAYS))
    await run_steps(sim, crash_at - 1)

    def crash(*args, **kwargs):
        raise Crash

    sim.recorder.commit_step = crash  # type: ignore[method-assign]
    with pytest.raises(StepAborted) as err:
        await sim.run_step()
    assert isinstance(err.value.cause, Crash)
    await close(sim)
    resumed = reflect_often(resume_run(sim.run_id, lm_factory(), root=other))
    assert resumed.step == crash_at - 1
    await run_steps(resumed, steps - resumed.step)
    assert timeline(resumed) == expected
    a = memories(store_path(runs_root, straight.run_id), straight.run_id)
    assert memories(store_path(other, resumed.run_id), resumed.run_id) == a
    for s in (straight, resumed):
        await close(s)


def cli(*args: str) -> list[str]:
    """The `concordia-like` command, run with the hashing embedder (support.fast_embedder)."""
    return [sys.executable, "-c", "from support.fast_embedder import main; main()", *args]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "tests")}


def wait_for_run(root, proc) -> str:
    """The id of the run `proc` creates, once its row is committed."""
    while proc.poll() is None:
        for db in root.glob("*/store.sqlite"):
            with contextlib.suppress(sqlite3.Error):
                if query(db, "SELECT id FROM runs"):
                    return db.parent.name
        time.sleep(0.05)
    raise AssertionError(f"the run ended ({proc.returncode}) before it was created")


@pytest.mark.slow
def test_killed_run_resumes_with_every_step_exactly_once(tmp_path):
    steps, root = 60, tmp_path / "runs"
    base = ["--steps", str(steps), "--backend", "scripted", "--root", str(root), "--quiet"]
    base += ["--attention", "always"]  # every step has events to count
    rng = random.Random(20250414)
    env = cli_env()
    run_id, killed_at = None, []
    for attempt in range(4):
        args = ["run", str(TOWN), *base] + (["--resume", run_id] if run_id else [])
        proc = subprocess.Popen(cli(*args), cwd=REPO, env=env, stdout=subprocess.DEVNULL)
        if run_id is None:  # wait for the run to exist, then for a random moment
            run_id = wait_for_run(root, proc)
        time.sleep(rng.uniform(0.3, 1.5))
        if proc.poll() is not None:
            break  # finished before the kill: nothing more to interrupt
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, attempt
        db = store_path(root, run_id)
        killed_at += query(db, "SELECT steps_done FROM runs WHERE id = ?", run_id)[0]
    # the kills hit the run under way, not only its start or its end
    assert any(0 < done < steps for done in killed_at), killed_at
    out = subprocess.run(
        cli("run", str(TOWN), *base, "--resume", run_id),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert run_id in out.stdout

    db = store_path(root, run_id)
    rows = query(db, "SELECT step, seq FROM events WHERE run_id = ? ORDER BY step, seq", run_id)
    by_step: dict[int, list[int]] = {}
    for step, seq in rows:
        by_step.setdefault(step, []).append(seq)
    assert sorted(by_step) == list(range(1, steps + 1))
    assert all(seqs == list(range(len(seqs))) for seqs in by_step.values())
    mems = [(a, t, c) for a, _, t, c, _ in memories(db, run_id)]
    assert [m for m, n in Counter(mems).items() if n > 1] == []
    [(done,)] = query(db, "SELECT steps_done FROM runs WHERE id = ?", run_id)
    assert query(db, "SELECT step FROM checkpoints WHERE run_id = ?", run_id) == [(done,)]
    assert done == steps
