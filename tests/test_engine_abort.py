"""Fatal model errors abort a step cleanly: nothing committed, the simulation back as at
its last commit, the same step runnable again with the result an unfailed run has; and
replay reproduces a recorded run exactly or fails on its first miss, naming the call."""

from __future__ import annotations

import asyncio
import json

import pytest

from concordia_like.engine.runs import start_run
from concordia_like.engine.simulation import Simulation, StepAborted
from concordia_like.llm import (
    BackendUnavailableError,
    CacheMissError,
    LanguageModel,
    ResponseCache,
    StructuredOutputError,
)
from concordia_like.llm.sampling import current_step
from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.llm.triage import triage

from support.engine import TOWN, close, lm_factory, memories, run_steps, store_path, timeline


class FailingOnce(ScriptedBackend):
    """The scripted model, except that the first batch holding a request of `purpose`
    at step `step` or later fails as a server that is gone would."""

    def __init__(self, purpose: str, step: int) -> None:
        super().__init__()
        self.purpose, self.step, self.failed_at = purpose, step, None

    async def generate_batch(self, requests):
        _, step = current_step()
        if (
            self.failed_at is None
            and step >= self.step
            and any(r.purpose == self.purpose for r in requests)
        ):
            self.failed_at = step
            raise BackendUnavailableError("http://127.0.0.1:9/v1 stopped answering")
        return await super().generate_batch(requests)


def state_of(sim: Simulation) -> tuple:
    return (
        sim.step,
        json.dumps(sim.state.to_dict(), sort_keys=True),
        json.dumps({n: a.to_dict() for n, a in sim.agents.items()}, sort_keys=True),
    )


def test_triage_degrades_only_on_output_problems():
    bad = StructuredOutputError("output does not match the schema at kind", "{}")
    assert triage(bad) is bad
    completion = object()
    assert triage(completion) is completion
    for fatal in (CacheMissError("miss"), BackendUnavailableError("gone"), KeyError("bug")):
        with pytest.raises(type(fatal)):
            triage(fatal)


async def test_a_backend_failure_names_the_call():
    class Gone(ScriptedBackend):
        async def generate_batch(self, requests):
            raise BackendUnavailableError("server gone")

    lm = LanguageModel(Gone())
    from concordia_like.llm import LLMRequest

    with pytest.raises(
        BackendUnavailableError, match="the act call of Ann Reed failed: server gone"
    ):
        await lm.complete(LLMRequest.chat("hi", purpose="act", agent="Ann Reed"))


# the purposes a town step calls, in the order a step meets them: plans come before the
# actions, resolutions after them, importance and replanning after the clock moved
@pytest.mark.parametrize("purpose", ["plan", "act", "resolve", "importance"])
async def test_a_failed_step_changes_nothing_and_reruns_as_if_it_had_not_failed(
    tmp_path, runs_root, purpose
):
    steps = 8
    # everyone asked every step, so that every purpose is called by step 3
    always = {"mode": "always"}
    straight = start_run(TOWN, lm_factory(), seed=2, root=runs_root, attention=always)
    await run_steps(straight, steps)

    flaky = FailingOnce(purpose, step=3)
    other = tmp_path / "other"
    sim = start_run(TOWN, lm_factory(flaky), seed=2, root=other, attention=always)
    failed = 0
    while sim.step < steps:
        before = state_of(sim)
        try:
            await sim.run_step()
        except StepAborted as exc:
            failed += 1
            assert exc.last_committed == sim.step
            assert f"the {purpose} call" in str(exc)
            assert state_of(sim) == before  # nothing of the attempt is left in memory
            db = store_path(other, sim.run_id)
            assert sim.recorder.run(sim.run_id).steps_done == sim.step
            assert db.exists()
    assert failed == 1, f"the {purpose} failure was never met"
    assert flaky.failed_at is not None
    assert timeline(sim) == timeline(straight)
    assert memories(store_path(other, sim.run_id), sim.run_id) == memories(
        store_path(runs_root, straight.run_id), straight.run_id
    )
    assert sim.state.to_dict() == straight.state.to_dict()
    for s in (straight, sim):
        await close(s)


async def test_an_interrupt_mid_step_leaves_the_last_commit(tmp_path, runs_root):
    """Ctrl-C under asyncio.run cancels the step's task: it is put back like a failure."""

    class Interrupting(ScriptedBackend):
        task: asyncio.Task | None = None

        async def generate_batch(self, requests):
            if self.task is not None and any(r.purpose == "importance" for r in requests):
                self.task.cancel()  # after the clock moved and the actions were applied
                self.task = None
                await asyncio.sleep(0)
            return await super().generate_batch(requests)

    backend = Interrupting()
    # everyone asked every step: the step has calls to interrupt
    sim = start_run(TOWN, lm_factory(backend), seed=1, root=runs_root, attention={"mode": "always"})
    await run_steps(sim, 2)
    before = state_of(sim)
    task = asyncio.ensure_future(sim.run_step())
    backend.task = task
    with pytest.raises(asyncio.CancelledError):
        await task
    assert state_of(sim) == before
    assert sim.recorder.run(sim.run_id).steps_done == 2
    await sim.run_step()  # and the town goes on
    assert sim.step == 3
    await close(sim)


def replay_factory(cache_path, mode):
    def make(folder):
        return LanguageModel(ScriptedBackend(), cache=ResponseCache(cache_path, mode))

    return make


async def test_a_recorded_run_replayed_reproduces_its_timeline_exactly(tmp_path, runs_root):
    cache = tmp_path / "cache.sqlite"
    recorded = start_run(TOWN, replay_factory(cache, "readwrite"), seed=5, root=runs_root)
    await run_steps(recorded, 6)
    await close(recorded)

    replayed = start_run(TOWN, replay_factory(cache, "replay"), seed=5, root=tmp_path / "r")
    await run_steps(replayed, 6)
    assert timeline(replayed) == timeline(recorded)
    assert replayed.lm.usage.total.cached == replayed.lm.usage.total.calls > 0
    await close(replayed)


async def test_a_replay_with_another_seed_fails_on_its_first_miss(tmp_path, runs_root):
    cache = tmp_path / "cache.sqlite"
    # everyone is asked each step (under events a first step may make no call to miss)
    always = {"mode": "always"}
    recorded = start_run(
        TOWN, replay_factory(cache, "readwrite"), seed=5, root=runs_root, attention=always
    )
    await run_steps(recorded, 2)
    await close(recorded)

    other = start_run(
        TOWN, replay_factory(cache, "replay"), seed=6, root=tmp_path / "r", attention=always
    )
    with pytest.raises(StepAborted) as err:
        await other.run_step()
    message = str(err.value)
    assert message.startswith("step 1 (Mon 06:00) aborted")
    assert "has no response" in message
    cause = err.value.cause
    assert isinstance(cause, CacheMissError)
    assert cause.agent in other.agents and f"the {cause.purpose} call of {cause.agent}" in message
    assert other.step == 0 and other.recorder.run(other.run_id).steps_done == 0
    await close(other)


@pytest.mark.slow
def test_the_cli_stops_a_departed_replay_with_one_error_line(tmp_path):
    import subprocess

    from test_engine_resume import cli, cli_env

    from support.engine import REPO

    def run(*args):
        return subprocess.run(
            cli(
                "run", str(TOWN), "--backend", "scripted", "--attention", "always", "--quiet", *args
            ),
            cwd=REPO,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=180,
        )

    first = run("--steps", "2", "--seed", "5", "--root", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.split("run ", 1)[1].split()[0]
    cache = tmp_path / "a" / run_id / "cache.sqlite"
    same = run(
        "--steps",
        "2",
        "--seed",
        "5",
        "--root",
        str(tmp_path / "b"),
        "--cache-mode",
        "replay",
        "--cache",
        str(cache),
    )
    assert same.returncode == 0, same.stderr
    other = run(
        "--steps",
        "2",
        "--seed",
        "6",
        "--root",
        str(tmp_path / "c"),
        "--cache-mode",
        "replay",
        "--cache",
        str(cache),
    )
    assert other.returncode == 1
    errors = [line for line in other.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: step 1 (Mon 06:00) aborted")
    assert "has no response" in errors[0]
    assert "last committed step: 0" in errors[0]
    assert "resume with: concordia-like run" in errors[0] and "--cache-mode replay" in errors[0]
    assert "hesitates" not in other.stdout


async def test_the_response_cache_commits_once_per_batch(tmp_path):
    from concordia_like.llm import LLMRequest

    cache = ResponseCache(tmp_path / "cache.sqlite", "readwrite")

    class Counting:
        """The cache's connection, counting commits."""

        def __init__(self, db):
            self.db, self.commits = db, 0

        def commit(self):
            self.commits += 1
            self.db.commit()

        def __getattr__(self, name):
            return getattr(self.db, name)

    counting = Counting(cache._db)
    cache._db = counting
    lm = LanguageModel(ScriptedBackend(), cache=cache)
    await lm.complete_many([LLMRequest.chat(f"greet {i}", seed=i) for i in range(16)])
    await asyncio.sleep(0)
    assert counting.commits == 1
    await lm.aclose()
    reopened = ResponseCache(tmp_path / "cache.sqlite", "replay")
    assert len(reopened) == 16  # all of them on disk
    reopened.close()


@pytest.mark.slow
def test_the_cli_closes_its_stores_so_the_index_holds_every_memory(tmp_path):
    import subprocess

    import chromadb
    from test_engine_resume import cli, cli_env

    from support.engine import REPO, query

    root = tmp_path / "runs"
    out = subprocess.run(
        cli(
            "run",
            str(TOWN),
            "--steps",
            "3",
            "--backend",
            "scripted",
            "--quiet",
            "--root",
            str(root),
        ),
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.split("run ", 1)[1].split()[0]
    [(in_sql,)] = query(root / run_id / "store.sqlite", "SELECT COUNT(*) FROM memories")
    client = chromadb.PersistentClient(path=str(root / run_id / "chroma"))
    in_index = sum(c.count() for c in client.list_collections())
    assert in_sql > 0 and in_index == in_sql
