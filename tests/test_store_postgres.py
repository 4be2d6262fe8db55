"""The store on a real PostgreSQL server (tests/support/postgres.py): the town run through the
real command line on PostgreSQL, SIGKILLed mid-run and resumed, has the timeline of an
uninterrupted run on SQLite with the same seed; and columns PostgreSQL bounds (SQLite
does not) take the longest values the engine writes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest
from sqlalchemy import create_engine, inspect, select, text

from concordia_like.engine.events import Event, Utterance
from concordia_like.engine.recorder import RunRecorder
from concordia_like.store.run_tables import UtteranceRow

from support.engine import REPO, TOWN
from support.postgres import pg_server, pg_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.stores

STEPS = 24
SEED = 7
KILL_AFTER = 3  # steps committed before the kill
RUN_TIMEOUT_S = 120


def cli(*args: str) -> list[str]:
    """The `concordia-like` command, with the hashing embedder (support.fast_embedder)."""
    return [sys.executable, "-c", "from support.fast_embedder import main; main()", *map(str, args)]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "tests")}


def run_args(root, *extra: str) -> list[str]:
    return [
        "run",
        str(TOWN),
        "--steps",
        str(STEPS),
        "--seed",
        str(SEED),
        "--backend",
        "scripted",
        # everyone acts every step, so that every step has events to compare
        "--attention",
        "always",
        "--root",
        str(root),
        "--quiet",
        *extra,
    ]


def timeline(url: str, run_id: str) -> list[tuple]:
    recorder = RunRecorder(url)
    try:
        return [
            (e.step, e.seq, e.sim_time, e.kind, e.actor, e.place, e.text)
            for e in recorder.events(run_id)
        ]
    finally:
        recorder.close()


def steps_done(engine) -> tuple[str, int] | None:
    """(run id, steps_done) of the one run in the database, or None before it exists."""
    if not inspect(engine).has_table("runs"):
        return None  # the command has not created its tables yet
    with engine.connect() as conn:
        row = conn.execute(text("SELECT id, steps_done FROM runs")).first()
    return None if row is None else (row[0], int(row[1]))


def test_killed_town_run_resumes_on_postgresql_as_an_uninterrupted_sqlite_run(tmp_path, pg_url):  # noqa: F811
    # the run on PostgreSQL, killed once some steps have committed
    pg_root = tmp_path / "pg"
    proc = subprocess.Popen(
        cli(*run_args(pg_root, "--store", pg_url)),
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    engine = create_engine(pg_url)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while (state := steps_done(engine)) is None or state[1] < KILL_AFTER:
            assert proc.poll() is None, f"the run ended before the kill: {proc.stdout.read()}"
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        out = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    run_id, killed_at = steps_done(engine)
    engine.dispose()
    assert f"run {run_id} started; store: {pg_url}" in out
    assert KILL_AFTER <= killed_at < STEPS, killed_at  # killed on the way, not at the end

    # resumed on PostgreSQL to the end
    resumed = subprocess.run(
        cli(*run_args(pg_root, "--store", pg_url, "--resume", run_id)),
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming run {run_id} after step {killed_at}" in resumed.stdout

    # the same run uninterrupted on SQLite
    sqlite_root = tmp_path / "sqlite"
    straight = subprocess.run(
        cli(*run_args(sqlite_root)),
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert straight.returncode == 0, straight.stdout + straight.stderr
    straight_id = re.search(r"run (\w{12}) started", straight.stdout).group(1)
    sqlite_url = f"sqlite:///{sqlite_root / straight_id / 'store.sqlite'}"

    expected = timeline(sqlite_url, straight_id)
    got = timeline(pg_url, run_id)
    assert {e[0] for e in expected} == set(range(1, STEPS + 1))
    assert any(e[3] == "speech" for e in expected)  # utterances were written too
    assert got == expected

    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            done = conn.execute(text("SELECT steps_done FROM runs")).scalar_one()
            checkpoints = conn.execute(text("SELECT step FROM checkpoints")).scalars().all()
            utterances = conn.execute(text("SELECT count(*) FROM utterances")).scalar_one()
    finally:
        engine.dispose()
    assert (done, checkpoints) == (STEPS, [STEPS])
    assert utterances == sum(e[3] == "speech" for e in expected)


def test_an_utterance_with_a_long_conversation_id_commits_on_postgresql(pg_url):  # noqa: F811
    # names run to 60 characters (PersonaCard.name); a group of four of them, '|'-joined
    # with the date, is far past what a VARCHAR(64) took
    names = sorted(f"{first} " + "Longfellow-Featherstonehaugh-" * 2 for first in "ABCD")
    conversation = "|".join(names) + "@2024-05-06"
    assert len(conversation) > 200
    model = "openai:" + "/models/" * 30 + "Meta-Llama-3.1-70B-Instruct-Q4_K_M"
    recorder = RunRecorder(pg_url)
    try:
        run_id = recorder.create_run(
            world_path="worlds/town.yaml",
            world_name="Larkspur Ford",
            engine="simultaneous",
            backend=model,  # a model named by a long path
            seed=0,
            config={},
        )
        when = datetime(2024, 5, 6, 9, 0)
        recorder.commit_step(
            run_id,
            1,
            when,
            [Event("speech", "hello", actor=names[0], place="town_square")],
            [Utterance(conversation, names[0], names[1:], "town_square", "hello, all")],
            world={},
            agents={},
            usage={},
        )
        with recorder.sessions() as s:
            row = s.scalars(select(UtteranceRow).where(UtteranceRow.run_id == run_id)).one()
        assert row.conversation == conversation
        assert row.addressees == names[1:]
        assert recorder.run(run_id).backend == model
        assert recorder.run(run_id).steps_done == 1
    finally:
        recorder.close()
