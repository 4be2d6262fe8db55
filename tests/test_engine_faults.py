"""A long run of the town on a faulty model: malformed, truncated, off-schema and
hostile output in 30% of calls. The run completes and the world stays lawful."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from concordia_like.cli.main import app
from concordia_like.engine.recorder import RunRecorder
from concordia_like.engine.runs import store_url_for
from concordia_like.llm.faults import HOSTILE_TEXT
from concordia_like.world.invariants import check_invariants
from concordia_like.world.loader import load_world
from concordia_like.world.state import WorldState

from support.engine import TOWN, query, store_path

STEPS = 200


@pytest.mark.slow
def test_200_steps_at_30_percent_faults_keep_the_world_lawful(runs_root):
    args = ["run", str(TOWN), "--steps", str(STEPS), "--backend", "scripted"]
    args += ["--attention", "always"]  # model calls every step to fault
    result = CliRunner().invoke(
        app, [*args, "--faults", "0.3", "--root", str(runs_root), "--quiet", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    [run_id] = re.findall(r"run (\w{12}): 200 steps", result.output)
    recorder = RunRecorder(store_url_for(runs_root / run_id, None))
    cp = recorder.last_checkpoint(run_id)
    assert cp is not None and cp.step == STEPS == recorder.run(run_id).steps_done
    state = WorldState.from_dict(cp.world)
    assert check_invariants(state) == []
    # against the world as loaded, not only the baselines the checkpoint carries
    fresh = load_world(TOWN).state
    assert check_invariants(state, fresh.item_counts(), fresh.conserved_totals()) == []
    assert sum(state.created.values()) > 0  # the morning bake ran: counts moved lawfully
    events = list(recorder.events(run_id))
    failures = [e for e in events if e.kind == "failure"]
    assert failures and all(e.data.get("reason", "").strip() for e in failures)
    # the faults did reach the world: hostile words were said, and came to nothing
    assert any(HOSTILE_TEXT in e.text for e in events)
    steps = query(store_path(runs_root, run_id), "SELECT DISTINCT step FROM events")
    assert sorted(s for (s,) in steps) == list(range(1, STEPS + 1))
    recorder.close()
