"""`concordia-like run` and `log` on the scripted model: the run id and store, the
timeline filtered and exported, and one-line errors that leave nothing behind."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from concordia_like.cli.main import app

from support.engine import MINI, REPO, TOWN

runner = CliRunner()
BAD_WORLD = REPO / "tests" / "fixtures" / "bad_worlds" / "wrong_type.yaml"
#: the line the fixture marks as wrong
BAD_LINE = next(
    i for i, line in enumerate(BAD_WORLD.read_text().splitlines(), 1) if "<-- error" in line
)


def cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def town_run(runs_root):
    """A 12-step scripted run of the town: (root, run id)."""
    res = cli("run", TOWN, "--steps", "12", "--backend", "scripted", "--root", runs_root)
    assert res.exit_code == 0, res.output
    return runs_root, res


def test_run_prints_its_id_and_store(town_run):
    root, res = town_run
    [run_id] = set(re.findall(r"run (\w{12})", res.output))
    assert (root / run_id / "store.sqlite").is_file()
    assert f"store: sqlite:///{root / run_id / 'store.sqlite'}" in res.output
    assert "scripted backend is a test double" in res.output
    assert f"concordia-like log {run_id}" in res.output


def _run_id(res) -> str:
    return re.search(r"run (\w{12})", res.output).group(1)


def _export(root, run_id, tmp_path, *filters: str) -> list[dict]:
    out = tmp_path / f"events{len(filters)}-{'-'.join(filters)}.jsonl"
    res = cli("log", run_id, "--root", root, "--jsonl", out, *filters)
    assert res.exit_code == 0, res.output
    lines = out.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_log_filters_and_exports_json_lines(town_run, tmp_path):
    root, res = town_run
    run_id = _run_id(res)
    everything = _export(root, run_id, tmp_path)
    assert everything and all(e["run"] == run_id for e in everything)
    assert [(e["step"], e["seq"]) for e in everything] == sorted(
        (e["step"], e["seq"]) for e in everything
    )
    agent = next(e["actor"] for e in everything if e["actor"])
    place = next(e["place"] for e in everything if e["place"])
    by_agent = _export(root, run_id, tmp_path, "--agent", agent)
    assert by_agent == [e for e in everything if e["actor"] == agent]
    by_place = _export(root, run_id, tmp_path, "--place", place)
    assert by_place == [e for e in everything if e["place"] == place]
    kinds = ["plan", "failure"]
    by_kind = _export(root, run_id, tmp_path, "--kind", "plan", "--kind", "failure")
    assert by_kind == [e for e in everything if e["kind"] in kinds]
    assert len({len(by_agent), len(by_place), len(by_kind), len(everything)}) > 1
    table = cli("log", run_id, "--root", root, "--agent", agent, "--kind", "plan")
    assert table.exit_code == 0 and agent in table.output and "plans" in table.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no/such/world.yaml"], "world file no/such/world.yaml does not exist"),
        (["run", BAD_WORLD], f"{BAD_WORLD.name}:{BAD_LINE}: places.shop.capacity"),
        (["run", MINI, "--backend", "gpt5"], "unknown backend 'gpt5'"),
        (["run", MINI, "--backend", "scripted", "--engine", "chaotic"], "--engine must be one"),
        (["run", MINI, "--backend", "scripted", "--steps", "-3"], "--steps must be at least 1"),
        (["run", MINI, "--backend", "scripted", "--resume", "nope"], "no run 'nope'"),
        (["log", "nope"], "no run 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(runs_root, args, message):
    res = cli(*args, "--root", runs_root)
    assert res.exit_code != 0
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], res.output
    assert list(runs_root.iterdir()) == []
