"""A run under changed files and silent servers: a resume refuses a world whose content
changed since the run began (a resident removed, a quantity changed, a persona card
edited) unless asked for, and records the change; a server that accepts and never
answers fails a step within its request or step deadline, with one clear error, nothing
committed and the run resumable."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from concordia_like.engine.runs import read_run, resume_run, start_run
from concordia_like.engine.simulation import StepAborted
from concordia_like.errors import ConfigError
from concordia_like.llm import LanguageModel
from concordia_like.llm.openai_compat import OpenAIBackend

from support.engine import MINI, REPO, TOWN, close, lm_factory, run_steps

# -- the world's content -------------------------------------------------------------


@pytest.fixture
def world_copy(tmp_path) -> Path:
    """The mini world and its persona cards, copied where a test may edit them."""
    shutil.copytree(REPO / "tests" / "fixtures" / "personas", tmp_path / "personas")
    (tmp_path / "worlds").mkdir()
    return Path(shutil.copy(MINI, tmp_path / "worlds" / "mini.yaml"))


def edit(path: Path, old: str, new: str) -> None:
    content = path.read_text()
    assert old in content, old
    path.write_text(content.replace(old, new, 1))


async def started(world: Path, root: Path) -> str:
    sim = start_run(world, lm_factory(), seed=2, root=root)
    await run_steps(sim, 1)
    await close(sim)
    return sim.run_id


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("worlds/mini.yaml", "  - {persona: ../personas/cy.yaml, start: lane}\n", ""),
        ("worlds/mini.yaml", "holder: shop, quantity: 10", "holder: shop, quantity: 11"),
        ("personas/cy.yaml", "age: 19", "age: 20"),
    ],
    ids=["resident removed", "quantity changed", "persona card edited"],
)
async def test_a_resume_refuses_a_changed_world_unless_allowed_and_records_it(
    world_copy, runs_root, file, old, new
):
    run_id = await started(world_copy, runs_root)
    edit(world_copy.parents[1] / file, old, new)
    with pytest.raises(ConfigError, match="other world content") as refused:
        resume_run(run_id, lm_factory(), root=runs_root)
    assert "--allow-change" in str(refused.value)
    sim = resume_run(run_id, lm_factory(), root=runs_root, allow_change=True)
    try:
        [change] = sim.recorder.run(run_id).config["changes"]
        assert change["after_step"] == 1 and change["world"][0] != change["world"][1]
    finally:
        await close(sim)
    # the change is the run's now: the next resume goes on with it without asking
    again = resume_run(run_id, lm_factory(), root=runs_root)
    await close(again)


async def test_a_world_only_reformatted_resumes_as_the_same_world(world_copy, runs_root):
    run_id = await started(world_copy, runs_root)
    edit(world_copy, "rules:\n", "# a comment, and the same rules\nrules:\n")
    sim = resume_run(run_id, lm_factory(), root=runs_root)
    assert "changes" not in sim.recorder.run(run_id).config
    await close(sim)


async def test_a_run_recorded_without_a_world_hash_resumes_as_before(world_copy, runs_root):
    run_id = await started(world_copy, runs_root)
    sim = resume_run(run_id, lm_factory(), root=runs_root)
    config = dict(sim.recorder.run(run_id).config)
    config.pop("world_hash")
    with sim.recorder.engine.begin() as conn:
        conn.execute(
            text("UPDATE runs SET config = :c WHERE id = :r"),
            {"c": __import__("json").dumps(config), "r": run_id},
        )
    await close(sim)
    edit(world_copy, "holder: shop, quantity: 10", "holder: shop, quantity: 11")
    sim = resume_run(run_id, lm_factory(), root=runs_root)
    assert "changes" not in sim.recorder.run(run_id).config
    await close(sim)


# -- a server that never answers -----------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server on 127.0.0.1 that accepts connections and never answers a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


#: everyone asked in step 1, so that the step calls the silent server (under events a
#: first step whose residents keep their routines calls nothing)
ASKED = {"mode": "always"}


def silent_model(url: str, **options) -> LanguageModel:
    return LanguageModel(OpenAIBackend(url, model="m", structured_output="json_object", **options))


async def test_a_silent_server_fails_the_step_at_the_request_deadline_and_it_resumes(
    silent_server, runs_root
):
    backend_model = silent_model(silent_server, timeout_s=0.5, max_retries=4)
    sim = start_run(TOWN, lambda folder: backend_model, seed=1, root=runs_root, attention=ASKED)
    try:
        with pytest.raises(StepAborted) as aborted:
            await sim.run_step()
        message = str(aborted.value)
        assert "request deadline of 0.5 s (--request-timeout)" in message
        assert "\n" not in message and aborted.value.last_committed == 0
        assert sim.step == 0 and read_run(sim.run_id, root=runs_root).steps_done == 0
        # a deadline, not five tries of it: the retries stop when the deadline is spent
        assert backend_model.backend.attempts < 5 * len(sim.agents)
    finally:
        await close(sim)
    resumed = resume_run(sim.run_id, lm_factory(), root=runs_root, allow_change=True)
    try:
        await resumed.run_step()
        assert read_run(sim.run_id, root=runs_root).steps_done == 1
    finally:
        await close(resumed)


async def test_a_silent_server_fails_the_step_at_the_step_deadline(silent_server, runs_root):
    sim = start_run(
        TOWN, lambda folder: silent_model(silent_server), seed=1, root=runs_root, attention=ASKED
    )
    sim.step_timeout_s = 0.5
    try:
        with pytest.raises(StepAborted, match=r"deadline of 0\.5 s \(--step-timeout\)"):
            await sim.run_step()
        assert read_run(sim.run_id, root=runs_root).steps_done == 0
    finally:
        await close(sim)


async def test_a_full_disk_at_commit_aborts_the_step_in_one_line_without_its_sql(
    runs_root, monkeypatch
):
    import sqlite3

    from sqlalchemy.exc import OperationalError

    sim = start_run(TOWN, lm_factory(), seed=1, root=runs_root)

    def full(*args, **kwargs):
        raise OperationalError(
            "INSERT INTO events (run_id, text) VALUES (?, ?)",
            ("x", "y"),
            sqlite3.OperationalError("database or disk is full"),
        )

    monkeypatch.setattr(sim.recorder, "commit_step", full)
    try:
        with pytest.raises(StepAborted) as aborted:
            await sim.run_step()
        message = str(aborted.value)
        assert message.endswith("the store failed: database or disk is full")
        assert "INSERT" not in message and "\n" not in message and sim.step == 0
    finally:
        await close(sim)
