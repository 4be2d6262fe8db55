"""Resume is safe: another backend, model, engine or sampling than the run recorded is
refused unless asked for (and then recorded); a run of a built world (replicated
residents) resumes as built; the fault-injection seed comes from the run."""

from __future__ import annotations

import subprocess

import pytest
from test_engine_resume import cli, cli_env

from concordia_like.engine.runs import resume_run, start_run
from concordia_like.errors import ConfigError
from concordia_like.world import load_world, replicate_residents

from support.engine import REPO, TOWN, close, lm_factory, run_steps, store_path, timeline


async def test_resuming_with_another_backend_is_refused_unless_allowed(runs_root):
    sim = start_run(TOWN, lm_factory(), seed=1, root=runs_root)
    await run_steps(sim, 1)
    await close(sim)
    with pytest.raises(ConfigError, match=r"recorded with backend 'scripted:scripted-v1'"):
        resume_run(sim.run_id, lm_factory(faults=0.5), root=runs_root)
    resumed = resume_run(sim.run_id, lm_factory(faults=0.5), root=runs_root, allow_change=True)
    [change] = resumed.recorder.run(sim.run_id).config["changes"]
    assert change["after_step"] == 1
    assert change["backend"] == ["scripted:scripted-v1", "scripted:scripted-v1+faults0.5/0"]
    await close(resumed)


async def test_resuming_with_another_engine_or_sampling_is_refused(runs_root):
    sim = start_run(TOWN, lm_factory(), engine="simultaneous", seed=1, root=runs_root)
    await run_steps(sim, 1)
    await close(sim)
    with pytest.raises(ConfigError, match="engine 'simultaneous', not 'sequential'"):
        resume_run(sim.run_id, lm_factory(), root=runs_root, engine="sequential")
    with pytest.raises(ConfigError, match="other sampling"):
        resume_run(sim.run_id, lm_factory(), root=runs_root, sampling={"act": {"temperature": 0}})
    # the recorded engine and sampling are no change
    same = resume_run(sim.run_id, lm_factory(), root=runs_root, engine="simultaneous")
    assert same.lm.sampling is not None and same.lm.sampling.act.temperature > 0
    assert "changes" not in same.recorder.run(sim.run_id).config
    await close(same)


async def test_a_run_of_replicated_residents_resumes_as_built(tmp_path, runs_root):
    world = replicate_residents(load_world(TOWN), 15)
    straight = start_run(world, lm_factory(), seed=3, root=runs_root)
    await run_steps(straight, 4)

    first = start_run(
        replicate_residents(load_world(TOWN), 15), lm_factory(), seed=3, root=tmp_path / "other"
    )
    await run_steps(first, 2)
    await close(first)
    resumed = resume_run(first.run_id, lm_factory(), root=tmp_path / "other")
    assert len(resumed.agents) == 15 and "Ines Marlowe 2" in resumed.agents
    await run_steps(resumed, 2)
    assert timeline(resumed) == timeline(straight)
    for s in (straight, resumed):
        await close(s)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli(*args), cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=180
    )


def events_of(root, run_id) -> list[tuple]:
    from support.engine import query

    return query(
        store_path(root, run_id),
        "SELECT step, seq, kind, actor, text FROM events WHERE run_id = ? ORDER BY step, seq",
        run_id,
    )


def run_id_of(out: str) -> str:
    return out.split("run ", 1)[1].split()[0]


@pytest.mark.slow
def test_a_resumed_faulty_run_keeps_its_recorded_fault_seed(tmp_path):
    # everyone asked each step, so that faults have calls to bite on
    base = ["--backend", "scripted", "--faults", "0.4", "--attention", "always", "--quiet"]
    straight = run_cli(
        "run", str(TOWN), "--steps", "6", "--seed", "7", *base, "--root", str(tmp_path / "a")
    )
    assert straight.returncode == 0, straight.stderr
    first = run_cli(
        "run", str(TOWN), "--steps", "3", "--seed", "7", *base, "--root", str(tmp_path / "b")
    )
    assert first.returncode == 0, first.stderr
    run_id = run_id_of(first.stdout)
    # no --seed and no --faults: both come from the run
    resumed = run_cli(
        "run",
        str(TOWN),
        "--steps",
        "6",
        "--resume",
        run_id,
        "--quiet",
        "--root",
        str(tmp_path / "b"),
    )
    assert resumed.returncode == 0, resumed.stderr
    a = events_of(tmp_path / "a", run_id_of(straight.stdout))
    assert any("could not" in e[4] or "Nothing comes of it" in e[4] for e in a)  # faults bit
    assert events_of(tmp_path / "b", run_id) == a
    refused = run_cli(
        "run",
        str(TOWN),
        "--steps",
        "7",
        "--resume",
        run_id,
        "--seed",
        "8",
        "--root",
        str(tmp_path / "b"),
    )
    assert refused.returncode == 1
    assert "error:" in refused.stderr and "seed 7" in refused.stderr
