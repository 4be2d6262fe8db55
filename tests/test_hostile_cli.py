"""Every command under bad options and a failing environment: each failure is one
`error:` line and a non-zero exit, never a traceback, and leaves nothing behind (no run
folder, no store, no work folder): options are checked before anything is written, and
what fails later is cleaned up. `town --list` lists what it can read and names what it
cannot. A full disk under the response cache loses cached answers, not the run, and
never puts a traceback on the event loop."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from concordia_like.cli.main import app
from concordia_like.engine.runs import start_run
from concordia_like.llm.cache import ResponseCache
from concordia_like.llm.types import RawCompletion

from support.engine import TOWN, close, lm_factory, run_steps

W = str(TOWN)
RUN = ["run", W, "-b", "scripted", "--steps", "1", "--quiet"]
TOWN_CMD = ["town", W, "-b", "scripted", "--tour"]
SCENARIO = str(TOWN.parents[1] / "worlds" / "scenarios" / "bread_price.yaml")

#: (command line, what the error line says); relative names are in the test's folder,
#: which holds `text.txt` (a text file), `adir/` (a folder) and a run (`@run`) in `runs/`
BAD: list[tuple[list[str], str]] = [
    (["run", W, "--steps", "0"], "--steps"),
    ([*RUN, "--seed", "12345678901234567890123"], "--seed"),
    ([*RUN, "--seed", "-1"], "--seed"),
    ([*RUN, "--seed", "many"], "--seed"),
    ([*RUN, "--root", "text.txt"], "not a folder"),
    ([*RUN, "--root", "text.txt/under"], "not a folder"),
    ([*RUN, "--store", "sqlite:///text.txt"], "not a database"),
    ([*RUN, "--store", "sqlite:////dev/null"], "not a database"),
    ([*RUN, "--store", "sqlite:///adir"], "not a database"),
    ([*RUN, "--store", "postgresql+psycopg://nobody@127.0.0.1:9/none"], "cannot be opened"),
    ([*RUN, "--store", "nosuchdb://x"], "cannot be opened"),
    ([*RUN, "--cache", "text.txt"], "not a response cache"),
    ([*RUN, "--cache", "adir"], "not a file"),
    ([*RUN, "--cache-mode", "sometimes"], "--cache-mode"),
    ([*RUN, "--sampling", "act=5"], "--sampling"),
    ([*RUN, "--sampling", "act.top_p=0"], "--sampling"),
    ([*RUN, "--sampling", "act=nan"], "--sampling"),
    ([*RUN, "--sampling", "chat=0.5"], "--sampling"),
    ([*RUN, "--faults", "2"], "--faults"),
    ([*RUN, "--engine", "parallel"], "--engine"),
    ([*RUN, "--attention", "never"], "--attention"),
    ([*RUN, "--idle-steps", "0"], "--idle-steps"),
    ([*RUN, "--start", "25:00"], "--start"),
    ([*RUN, "--request-timeout", "0"], "--request-timeout"),
    ([*RUN, "--request-timeout", "inf"], "--request-timeout"),
    ([*RUN, "--step-timeout", "-1"], "--step-timeout"),
    ([*RUN, "--step-timeout", "nan"], "--step-timeout"),
    ([*RUN, "--resume", "nope"], "no run"),
    ([*RUN, "--no-such-flag"], "--no-such-flag"),
    (["run", "missing.yaml"], "does not exist"),
    (["run", "text.txt", "-b", "scripted"], "text.txt"),
    (["run", "adir", "-b", "scripted"], "does not exist"),
    (["run"], "Missing argument"),
    ([*TOWN_CMD, "--seed", "99999999999999999999999"], "--seed"),
    ([*TOWN_CMD, "--root", "text.txt"], "not a folder"),
    ([*TOWN_CMD, "--store", "sqlite:///text.txt"], "not a database"),
    ([*TOWN_CMD, "--cache-mode", "x"], "--cache-mode"),
    ([*TOWN_CMD, "--start", "9:99"], "--start"),
    ([*TOWN_CMD, "--step-timeout", "0"], "--step-timeout"),
    (["town", "--open", "nope", "--root", "runs"], "no run"),
    (["town", "--list", "--root", "text.txt"], "not a folder"),
    (["town", W, "--script", "missing.txt", "-b", "scripted"], "missing.txt"),
    (["town", W, "--script", "adir", "-b", "scripted"], "is a folder"),
    (["experiment", SCENARIO, "--out", "text.txt", "-b", "scripted"], "not a folder"),
    (["experiment", SCENARIO, "--out", "o", "--seeds", "0"], "--seeds"),
    (["experiment", SCENARIO, "--out", "o", "--executor", "cloud"], "--executor"),
    (["experiment", SCENARIO, "--out", "o", "--request-timeout", "0"], "--request-timeout"),
    (["experiment", "missing.yaml", "--out", "o", "-b", "scripted"], "missing.yaml"),
    (["experiment", "report", "adir"], "no finished experiment"),
    (["log", "nope"], "no run"),
    (["log", "@run", "--root", "runs", "--jsonl", "adir"], "adir"),
    (["log", "@run", "--store", "sqlite:///text.txt"], "not a database"),
    (["models", "--check", "telepathy"], "telepathy"),
    (
        ["dialogues", "--out", "d.jsonl", "--world", W, "-b", "scripted", "--sampling", "act=5"],
        "act",
    ),
    (["dialogues", "--out", "adir", "--world", W, "-b", "scripted"], "adir"),
]


@pytest.fixture
def folder(tmp_path, monkeypatch, fast_embedder) -> tuple[Path, str]:
    """The test's folder as the working directory, with a text file, a folder and a run
    of one step (and the run's id)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.txt").write_text("not a database, not a world\n")
    (tmp_path / "adir").mkdir()
    sim = start_run(TOWN, lm_factory(), root=tmp_path / "runs")
    asyncio.run(_one_step(sim))
    return tmp_path, sim.run_id


async def _one_step(sim) -> None:
    await run_steps(sim, 1)
    await close(sim)


def tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.mark.parametrize(("args", "says"), BAD, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD])
def test_a_bad_option_is_one_error_line_and_leaves_nothing_behind(folder, args, says):
    folder, run_id = folder
    args = [run_id if a == "@run" else a for a in args]
    before = tree(folder)
    result = CliRunner().invoke(app, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert says in lines[-1], lines[-1]
    assert tree(folder) == before, sorted(map(str, tree(folder) - before))


def test_town_list_lists_the_readable_towns_and_names_the_unreadable(folder):
    folder, _ = folder
    (folder / "runs" / "broken").mkdir()
    (folder / "runs" / "broken" / "store.sqlite").write_text("garbage")
    result = CliRunner().invoke(app, ["town", "--list", "--root", "runs"])
    assert result.exit_code == 0, result.output
    assert "1 towns in runs" in result.stdout and "Larkspur Ford" in result.stdout
    assert "cannot read" in result.stdout and "broken" in result.stdout


def test_a_cache_on_a_full_disk_loses_answers_not_the_run_and_raises_nothing(tmp_path, caplog):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    real = cache._db

    class FullDisk:
        """The connection, whose commits fail as on a full disk."""

        def __getattr__(self, name):
            return getattr(real, name)

        def commit(self):
            raise sqlite3.OperationalError("database or disk is full")

    cache._db = FullDisk()  # type: ignore[assignment]
    raised: list[dict] = []

    async def answers() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: raised.append(ctx))
        raw = RawCompletion(text="hi", prompt_tokens=1, completion_tokens=1)
        cache.put("k1", "scripted", "m", raw)
        await asyncio.sleep(0)  # the scheduled flush runs
        await asyncio.sleep(0)
        cache.put("k2", "scripted", "m", raw)

    with caplog.at_level(logging.WARNING):
        asyncio.run(answers())
        cache.close()
    assert raised == []
    assert "cannot be written: database or disk is full" in caplog.text
