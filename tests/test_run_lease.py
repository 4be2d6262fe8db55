"""One writer per run (store/leases.py): a second writer is refused at once naming the
holder, readers are not, a holder that died is taken over, and a session whose lease
was taken over commits nothing more and says so in one line."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime

import pytest
from rich.console import Console
from sqlalchemy import text
from typer.testing import CliRunner

from concordia_like.cli.main import app
from concordia_like.engine.recorder import RunRecorder
from concordia_like.engine.runs import read_run, resume_run, start_run
from concordia_like.sandbox.session import TownSession
from concordia_like.store import leases
from concordia_like.store.leases import RunBusyError

from support.engine import REPO, TOWN, lm_factory, store_path
from support.postgres import pg_server, pg_url  # noqa: F401 - fixtures

HOST_PID = f"{socket.gethostname()}:{os.getpid()}"


def stale(recorder: RunRecorder, run_id: str) -> None:
    """Its heartbeat long past, as a holder that stopped (suspended, or on a host gone)."""
    with recorder.engine.begin() as conn:
        conn.execute(
            text("UPDATE run_leases SET heartbeat = :t WHERE run_id = :r"),
            {"t": datetime(2000, 1, 1), "r": run_id},
        )


async def test_a_second_writer_is_refused_naming_the_holder_and_reading_stays_allowed(
    runs_root,
):
    first = start_run(TOWN, lm_factory(), seed=1, root=runs_root)
    async with first:
        await first.run_step()
        with pytest.raises(RunBusyError, match=f"being written by {HOST_PID} ") as refused:
            resume_run(first.run_id, lm_factory(), world_path=TOWN, root=runs_root)
        assert "\n" not in str(refused.value)
        # readers: the run's record, its events, the log command
        assert read_run(first.run_id, root=runs_root).steps_done == 1
        result = CliRunner().invoke(app, ["log", first.run_id, "--root", str(runs_root)])
        assert result.exit_code == 0 and "step" in result.stdout
        await first.run_step()  # the holder goes on writing
    again = resume_run(first.run_id, lm_factory(), world_path=TOWN, root=runs_root)
    async with again:  # closed, the run is free to the next writer
        assert again.step == 2
        await again.run_step()


async def test_the_run_command_is_refused_with_one_error_line_while_the_run_is_written(
    runs_root,
):
    sim = start_run(TOWN, lm_factory(), seed=1, root=runs_root)
    async with sim:
        args = ["run", str(TOWN), "--resume", sim.run_id, "--root", str(runs_root)]
        result = CliRunner().invoke(app, [*args, "--backend", "scripted", "--steps", "3"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: run ")
    assert "being written by" in lines[0] and "Traceback" not in result.output


@pytest.mark.slow
async def test_another_process_holding_a_run_refuses_it_until_killed_then_is_taken_over(
    runs_root,
):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from support.fast_embedder import main; main()",
            "town",
            str(TOWN),
            "--backend",
            "scripted",
            "--root",
            str(runs_root),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "tests"), "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.PIPE,  # left open: the town waits for its commands, holding the run
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        first = holder.stdout.readline()
        assert "new town" in first, first + holder.stderr.read()  # type: ignore[union-attr]
        run_id = first.split("new town ")[1].split(",")[0]
        with pytest.raises(RunBusyError, match=f":{holder.pid} "):
            resume_run(run_id, lm_factory(), world_path=TOWN, root=runs_root)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
        holder.stderr.close()  # type: ignore[union-attr]
        holder.stdin.close()  # type: ignore[union-attr]
    sim = resume_run(run_id, lm_factory(), world_path=TOWN, root=runs_root)
    async with sim:
        lease = sim.recorder.leases[run_id]
        assert lease.took_over is not None and f"process {holder.pid} is gone" in lease.took_over
        await sim.run_step()
    assert read_run(run_id, root=runs_root).steps_done == 1


async def test_a_stale_session_whose_run_was_taken_over_commits_nothing(runs_root, monkeypatch):
    monkeypatch.setattr(leases, "HEARTBEAT_S", 3600.0)  # no timer tick inside the test
    stale_sim = start_run(TOWN, lm_factory(), seed=1, root=runs_root)
    run_id = stale_sim.run_id
    out = io.StringIO()
    session = TownSession(
        stale_sim,
        Console(file=out, width=200),
        opener=lambda r: resume_run(r, lm_factory(), world_path=TOWN, root=runs_root),
        root=runs_root,
    )
    async with session:
        await session.execute("step")
        stale(stale_sim.recorder, run_id)
        newer = resume_run(run_id, lm_factory(), world_path=TOWN, root=runs_root)
        async with newer:
            assert "heartbeat was" in (newer.recorder.leases[run_id].took_over or "")
            for _ in range(3):
                await newer.run_step()
            memories_before = count(runs_root, run_id, "memories")
            out.truncate(0), out.seek(0)
            first = sorted(stale_sim.agents)[0]
            for line in ("step", f"whisper {first} the bridge is out"):
                await session.execute(line)
        said = out.getvalue().strip().splitlines()
    assert len(said) == 2, said
    for line in said:
        assert line.startswith("error: run ") and "taken over" in line
        assert "tries again" not in line and "INSERT" not in line and "SELECT" not in line
    assert read_run(run_id, root=runs_root).steps_done == 4
    assert count(runs_root, run_id, "memories") == memories_before


def count(root, run_id: str, table: str) -> int:
    import sqlite3

    con = sqlite3.connect(f"file:{store_path(root, run_id)}?mode=ro", uri=True)
    try:
        return con.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,)).fetchone()[
            0
        ]
    finally:
        con.close()


@pytest.mark.stores
def test_one_writer_per_run_on_postgresql(pg_url):  # noqa: F811 - the fixture
    a, b = RunRecorder(pg_url), RunRecorder(pg_url)
    try:
        run_id = a.create_run(
            world_path="w.yaml", world_name="w", engine="simultaneous", backend="x", seed=0,
            config={},
        )  # fmt: skip
        a.hold(run_id)
        with pytest.raises(RunBusyError, match=f"being written by {HOST_PID} "):
            b.hold(run_id)
        assert b.run(run_id).id == run_id  # reading stays allowed
        stale(a, run_id)
        b.hold(run_id)  # a heartbeat past its bound is taken over
        assert b.leases[run_id].took_over is not None
        with pytest.raises(RunBusyError, match="taken over"), a.writing(run_id):
            pass
    finally:
        a.close()
        b.close()
