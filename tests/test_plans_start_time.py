"""`run --start HH:MM`: a run begins at a chosen time of the world's first day (the
world file's `start` gives the day and the default time), validated, recorded, and kept
by a resume; residents up at that hour plan their day from their routine at once."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from concordia_like.cli.main import app
from concordia_like.engine.runs import read_run

from support.engine import TOWN


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_run_starts_at_the_time_given(runs_root):
    res = cli(
        "run",
        TOWN,
        "--steps",
        "2",
        "--start",
        "07:00",
        "--backend",
        "scripted",
        "--root",
        runs_root,
    )
    assert res.exit_code == 0, res.output
    assert "step 1 Mon 07:00" in res.output and "step 2 Mon 07:10" in res.output
    run_id = re.search(r"run (\w{12})", res.output).group(1)
    assert read_run(run_id, root=runs_root).config["start_time"] == "07:00"
    # a resume goes on from the run's clock
    more = cli("run", TOWN, "--steps", "3", "--resume", run_id, "--root", runs_root)
    assert more.exit_code == 0, more.output
    assert "step 3 Mon 07:20" in more.output


@pytest.mark.parametrize("bad", ["25:00", "7", "seven"])
def test_a_bad_start_time_is_refused_in_one_line(runs_root, bad):
    res = cli(
        "run", TOWN, "--steps", "1", "--start", bad, "--backend", "scripted", "--root", runs_root
    )
    assert res.exit_code != 0
    assert "error: --start" in res.output and "HH:MM" in res.output
    assert not list(runs_root.iterdir())


def test_start_is_for_a_new_run(runs_root):
    res = cli(
        "run", TOWN, "--steps", "1", "--start", "07:00", "--resume", "abc", "--root", runs_root
    )
    assert res.exit_code != 0 and "--start begins a new run" in res.output
