"""Hostile input and output targets: an endless input line ends the sandbox with one
error line after reading no more than the line bound; exports never follow a planted
link, stream to a device or a pipe rather than replace it, and a device that refuses
the bytes is one error line; a named pipe or a device given as a configuration file is
refused at once instead of waiting for a writer."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_engine_resume import cli, cli_env
from typer.testing import CliRunner

from concordia_like.engine.runs import start_run
from concordia_like.errors import ConcordiaError, ConfigError
from concordia_like.experiments.scenario import load_scenario
from concordia_like.files import WriteError, write_atomic
from concordia_like.sandbox.terminal import LINE_MAX_CHARS, bounded_lines, commands_or
from concordia_like.world import load_world
from concordia_like.world.persona import load_persona
from concordia_like.yaml_loader import ConfigFileError, read_yaml

from support.engine import MINI, REPO, close, lm_factory, run_steps

LAKE = REPO / "worlds" / "lake.yaml"
ZEROS = 50_000_000


# -- 1. an endless input line ------------------------------------------------------------


class Endless:
    """A binary stream of zeros that never ends, counting what was read from it."""

    def __init__(self) -> None:
        self.read = 0

    def readline(self, size: int = -1) -> bytes:
        assert size > 0, "an unbounded readline of an endless stream never returns"
        self.read += size
        return b"\0" * size


def test_an_endless_line_is_refused_after_reading_no_more_than_the_bound() -> None:
    stream = Endless()
    with pytest.raises(ConfigError, match=f"stdin: line 1 is longer than {LINE_MAX_CHARS:,}"):
        list(bounded_lines(stream, "stdin"))  # type: ignore[arg-type]
    assert stream.read <= 4 * LINE_MAX_CHARS + 1


def test_lines_are_read_one_at_a_time_bad_bytes_replaced(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_bytes(b"look\r\n\xff\xfe step\n" + b"x" * LINE_MAX_CHARS + b"\nquit\n")
    with script.open("rb") as f:
        assert list(bounded_lines(f, "script")) == ["look", "\ufffd\ufffd step", "x" * 4096, "quit"]
    script.write_bytes(b"look\n" + b"y" * (LINE_MAX_CHARS + 1) + b"\nquit\n")
    with script.open("rb") as f:
        lines = bounded_lines(f, "script")
        assert next(lines) == "look"
        with pytest.raises(ConfigError, match="script: line 2 is longer"):
            next(lines)


def test_stdin_without_commands_runs_the_default_and_is_never_held_whole() -> None:
    assert list(commands_or(iter(["", "  ", ""]), ["tour"])) == ["tour"]
    blanks_then_look = iter(["", "look", "quit", "never read"])
    got = commands_or(blanks_then_look, ["tour"])
    assert [next(got), next(got), next(got)] == ["", "look", "quit"]
    assert next(blanks_then_look) == "never read"  # read lazily, as the session goes


def test_the_town_fed_endless_zeros_ends_with_one_error_line(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        cli("town", str(LAKE), "--backend", "scripted", "--root", str(tmp_path / "runs")),
        cwd=REPO,
        env=cli_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None

    def feed() -> None:
        chunk = b"\0" * (1 << 20)
        try:
            for _ in range(ZEROS // len(chunk)):
                proc.stdin.write(chunk)  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError):
            pass  # the town stopped reading: what it should do

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    out, err = proc.communicate(timeout=300)
    text = out.decode() + err.decode()
    assert proc.returncode == 1, text
    assert f"error: stdin: line 1 is longer than {LINE_MAX_CHARS:,} characters" in text
    assert "Traceback" not in text


# -- 2. exports ---------------------------------------------------------------------------


def test_a_link_planted_at_the_temporary_name_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    target = tmp_path / "out.jsonl"
    planted = tmp_path / ".out.jsonl.aaaa.part"
    planted.symlink_to(victim)
    # the temporary's name is drawn: make the first draw the planted one
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: iter(["aaaa", "bbbb"]))
    write_atomic(target, "new\n")
    assert victim.read_text() == "keep" and planted.is_symlink()
    assert target.read_text() == "new\n" and not target.is_symlink()


def test_a_device_that_refuses_the_bytes_is_one_write_error() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with pytest.raises(WriteError, match="cannot write /dev/full: No space left on device"):
        write_atomic("/dev/full", "x" * 100_000)
    assert Path("/dev/full").is_char_device()


def test_a_system_name_that_leads_to_a_regular_file_is_streamed_to(tmp_path: Path) -> None:
    """`/dev/stdout` of a command whose output goes to a file: the file is written, and
    nothing is ever made under /dev or /proc."""
    out = tmp_path / "redirected"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        write_atomic(f"/proc/self/fd/{fd}", "through the shell's file\n")
    finally:
        os.close(fd)
    assert out.read_text() == "through the shell's file\n"
    with pytest.raises(ConfigError, match="no such device"):
        write_atomic("/dev/concordia-like-nothing-here", "x")


@pytest.fixture
async def finished_run(runs_root: Path) -> Callable[..., Any]:
    sim = start_run(MINI, lm_factory(), root=runs_root, seed=1)
    await run_steps(sim, 1)
    await close(sim)

    def log(*args: str) -> Any:
        from concordia_like.cli.main import app

        return CliRunner().invoke(app, ["log", sim.run_id, "--root", str(runs_root), *args])

    return log


def test_log_to_a_full_device_is_one_error_line(finished_run: Callable[..., Any]) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    result = finished_run("--jsonl", "/dev/full")
    assert result.exit_code == 1
    assert "error: cannot write /dev/full" in result.output
    assert "Traceback" not in result.output and "written to" not in result.output


def test_log_streams_to_a_named_pipe(finished_run: Callable[..., Any], tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    result = finished_run("--jsonl", str(fifo))
    reader.join()
    assert result.exit_code == 0, result.output
    assert got and got[0].count("\n") >= 1 and '"run"' in got[0]
    assert fifo.is_fifo()


# -- 5. a named pipe or a device as a configuration file ----------------------------------


def returns(call: Callable[[], Any]) -> BaseException | None:
    """What `call` raised (None if nothing); a call still waiting after a long while is a
    hang, which fails here instead of holding the suite."""
    raised: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            raised.append(None)
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(120)
    assert raised, "the loader waits on the pipe for a writer"
    return raised[0]


@pytest.mark.parametrize(
    "loader", [read_yaml, load_world, load_persona, load_scenario], ids=lambda f: f.__name__
)
def test_a_named_pipe_is_refused_not_waited_on(tmp_path: Path, loader: Callable) -> None:
    fifo = tmp_path / "card.yaml"
    os.mkfifo(fifo)
    exc = returns(lambda: loader(fifo))
    assert isinstance(exc, ConfigFileError), exc
    assert "is a named pipe: only a regular file is read" in str(exc)


def test_a_folder_or_a_device_is_refused_by_what_it_is(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="is a folder"):
        read_yaml(tmp_path)
    if Path("/dev/null").exists():
        with pytest.raises(ConfigFileError, match="is a device"):
            load_world("/dev/null")


async def test_play_new_with_a_named_pipe_is_one_error(runs_root: Path, tmp_path: Path) -> None:
    from concordia_like.sandbox.newcomer import read_newcomer

    sim = start_run(MINI, lm_factory(), root=runs_root)
    try:
        fifo = tmp_path / "me.yaml"
        os.mkfifo(fifo)
        exc = returns(lambda: read_newcomer(sim, fifo))
        assert isinstance(exc, ConcordiaError) and "named pipe" in str(exc)
    finally:
        await close(sim)
