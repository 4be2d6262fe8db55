"""Experiments on the scripted model, on the mini world: interventions do what they say
in the treated condition only, every kind of measurement is taken, forks share the
exact past and give what unforked runs give, seeds matter, a rerun skips complete runs
and resumes an interrupted one, a stop predicate ends runs, intervals are right, and
the command refuses bad input with one line and writes nothing."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from concordia_like.cli.main import app
from concordia_like.engine.simulation import StepAborted
from concordia_like.experiments.stats import mean_ci, summarize
from concordia_like.llm.scripted import ScriptedBackend

from support.engine import MEMORIES, REPO, checkpoint, query, store_path
from support.experiment import (
    SCENARIO,
    FailingAfter,
    result,
    run,
    timeline_of,
    values,
    write_scenario,
)


@pytest.fixture(scope="module")
def forked(tmp_path_factory):
    """One experiment of two seeds with forks, and the same without (shared by tests)."""
    import concordia_like.memory.embedder as embedder_module
    from concordia_like.memory.hash_embedder import install

    saved = embedder_module._default
    install()
    try:
        folder = tmp_path_factory.mktemp("exp")
        path = write_scenario(folder)
        with_fork = run(path, folder / "forked")
        without = run(path, folder / "unforked", fork=False)
    finally:
        embedder_module._default = saved
    return path, with_fork, without


def test_interventions_act_in_the_treated_condition_only(forked):
    _, rep, _ = forked
    rows = rep.rows
    for seed in (0, 1):
        assert values(rows, "ann_energy", "control", seed) == [50.0] * 5
        assert values(rows, "ann_energy", "treated", seed) == [50.0, 50.0, 5.0, 5.0, 5.0]
        assert values(rows, "tired_now", "treated", seed) == [0.0, 0.0, 1.0, 1.0, 1.0]
        assert values(rows, "notices", "control", seed) == [0.0] * 5
        assert values(rows, "notices", "treated", seed) == [0.0, 0.0, 1.0, 1.0, 1.0]
        assert values(rows, "money", seed=seed) == [90.0] * 10  # conserved
    out = rep.out
    root = out / "runs" / "seed-0"
    ids = json.loads((root / "index.json").read_text())
    treated, control = ids["treated"], ids["control"]

    def memories(run_id, agent, like):
        return query(
            store_path(root, run_id),
            f"SELECT text FROM {MEMORIES} WHERE run_id = ? AND agent = ? AND text LIKE ?",
            run_id,
            agent,
            f"%{like}%",
        )

    # the message reached Cy only; the whisper was planted once, for Bob only
    assert memories(treated, "Cy Moss", "A letter says")
    assert not memories(treated, "Ann Reed", "A letter says")
    assert not memories(control, "Cy Moss", "A letter says")
    assert len(memories(treated, "Bob Vale", "a debt to Ann")) == 1
    assert not memories(control, "Bob Vale", "a debt to Ann")
    # the price was chalked anew in the treated world only
    for run_id, price in ((treated, 1), (control, 2)):
        items = checkpoint(store_path(root, run_id), run_id).world["items"]
        shop = [i for i in items.values() if i["holder"] == "shop" and i["name"] == "apple"]
        assert shop and shop[0]["properties"]["price"] == price


def test_every_kind_of_measurement_has_a_row_per_run(forked):
    _, rep, _ = forked
    for seed in (0, 1):
        for cond in ("control", "treated"):
            assert len(values(rep.rows, "in_square", cond, seed)) == 5
            assert values(rep.rows, "actions", cond, seed) == sorted(
                values(rep.rows, "actions", cond, seed)
            )  # a running count
            assert values(rep.rows, "apples", cond, seed)[-1] >= 13
            assert all(v in ("Ann Reed", "Bob Vale", "Cy Moss", "square") or v for v in
                       values(rep.rows, "spade_with", cond, seed))  # fmt: skip
            (heard,) = values(rep.rows, "heard", cond, seed)
            assert heard in (0.0, 1 / 3, 2 / 3, 1.0)  # a share of three residents
            (busy,) = values(rep.rows, "busy", cond, seed)
            assert 0 <= busy <= 9
            answers = result(rep.out, seed, cond)["answers"]
            assert set(answers["heard"]) == {"Ann Reed", "Bob Vale", "Cy Moss"}
            assert set(answers["heard"].values()) <= {"yes", "no"}


def test_forked_conditions_share_the_exact_past_and_equal_unforked_runs(forked):
    _, rep, plain = forked
    for seed in (0, 1):
        control = timeline_of(rep.out, seed, "control")
        treated = timeline_of(rep.out, seed, "treated")
        past = [e for e in control if e[0] <= 2]
        assert past and [e for e in treated if e[0] <= 2] == past
        assert control != treated
        # and each condition goes on exactly as a run of it from the start
        assert timeline_of(plain.out, seed, "control") == control
        assert timeline_of(plain.out, seed, "treated") == treated
        assert result(rep.out, seed, "treated")["from_past"] == 2
    key = lambda r: (r["condition"], r["seed"], r["step"], r["measurement"])  # noqa: E731
    assert sorted(rep.rows, key=key) == sorted(plain.rows, key=key)
    # 2 seeds x (2 shared steps once + 2 conditions x 3 steps) of 2 x 2 x 5
    assert (rep.steps_computed, rep.steps_total) == (16, 20)
    assert (plain.steps_computed, plain.steps_total) == (20, 20)
    assert rep.saved_share == pytest.approx(0.2)


def test_different_seeds_give_different_measurements(forked):
    _, rep, _ = forked
    assert values(rep.rows, "in_square", "control", 0) != values(
        rep.rows, "in_square", "control", 1
    )
    assert timeline_of(rep.out, 0, "control") != timeline_of(rep.out, 1, "control")


def test_outputs_are_written(forked):
    _, rep, _ = forked
    out = rep.out
    header = (out / "measurements.csv").read_text().splitlines()[0]
    assert header == "condition,seed,measurement,step,time,value"
    lines = (out / "measurements.csv").read_text().splitlines()
    assert len(lines) == 1 + len(rep.rows) == 1 + 2 * 2 * (8 * 5 + 2)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seeds"] == [0, 1] and manifest["backend"] == "scripted"
    assert manifest["ended"] and manifest["replayable"] is True
    assert manifest["shared_steps"] == 2 and len(manifest["scenario_hash"]) == 16
    assert (out / "measurements.png").read_bytes()[:4] == b"\x89PNG"
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(out / "measurements.parquet").to_pylist()
    assert len(table) == len(rep.rows)
    spade = [r for r in table if r["measurement"] == "spade_with"]
    assert spade[0]["value"] is None and spade[0]["value_text"] in ("Ann Reed", "Bob Vale")
    summary = (out / "summary.csv").read_text()
    assert summary.startswith("measurement,condition,n,mean,ci_low,ci_high,diff")


class Counting(ScriptedBackend):
    calls = 0

    async def generate_batch(self, requests):
        self.calls += len(requests)
        return await super().generate_batch(requests)


def test_rerun_skips_complete_runs_and_resumes_an_interrupted_one(forked, tmp_path, fast_embedder):
    path, rep, _ = forked
    out = tmp_path / "again"
    run(path, out, seeds=[0])  # seed 0 complete
    done = {c: result(out, 0, c) for c in ("control", "treated")}
    mtimes = {
        c: (out / "runs" / "seed-0" / "results" / f"{c}.json").stat().st_mtime_ns for c in done
    }
    with pytest.raises(StepAborted, match="stopped answering"):
        run(path, out, backend=FailingAfter(12))  # seed 1 dies on the way
    index = json.loads((out / "runs" / "seed-1" / "index.json").read_text())
    assert not (out / "runs" / "seed-1" / "results" / "treated.json").exists()
    again = Counting()
    rerun = run(path, out, backend=again)
    assert again.calls > 0
    by_seed = {s["seed"]: s for s in rerun.seeds}
    assert by_seed[0] == {"seed": 0, "skipped": 2, "resumed": 0, "ran": 0, "steps_run": 0}
    assert by_seed[1]["resumed"] >= 1 and by_seed[1]["steps_run"] < 2 + 2 * 3
    for c in done:  # complete runs are left as they were
        path_c = out / "runs" / "seed-0" / "results" / f"{c}.json"
        assert path_c.stat().st_mtime_ns == mtimes[c]
    # the interrupted runs went on in place, with no gap and no duplicate
    assert json.loads((out / "runs" / "seed-1" / "index.json").read_text()).items() >= index.items()
    for c in ("control", "treated"):
        steps = sorted({e[0] for e in timeline_of(out, 1, c)})
        assert steps == [1, 2, 3, 4, 5]
        assert timeline_of(out, 1, c) == timeline_of(rep.out, 1, c)
    key = lambda r: (r["condition"], r["seed"], r["step"], r["measurement"])  # noqa: E731
    assert sorted(rerun.rows, key=key) == sorted(rep.rows, key=key)


def test_a_stop_predicate_ends_runs_early(tmp_path, fast_embedder):
    text = SCENARIO.replace(
        "stop: {steps: 5}", "stop: {steps: 5, when: {measure: ann_energy, op: lt, value: 10}}"
    )
    rep = run(write_scenario(tmp_path, text), tmp_path / "out", seeds=[0])
    assert result(rep.out, 0, "treated")["steps"] == 3
    assert result(rep.out, 0, "control")["steps"] == 5


def test_intervals_match_a_hand_computation():
    # mean 2.5, sd sqrt(5/3) = 1.29099, t(0.975, 3) = 3.182: half width 2.0540
    m, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and lo == pytest.approx(0.4460, abs=1e-4) and hi == pytest.approx(4.5540, 1e-4)
    assert math.isnan(mean_ci([3.0])[1])
    rows = [
        {"measurement": "x", "condition": c, "seed": s, "step": step, "value": v}
        for c, vals in (("control", [1, 2, 3]), ("t", [2, 4, 9]))
        for s, v in enumerate(vals)
        for step, v in ((1, 0.0), (2, float(v)))  # the final value counts
    ]
    (ctrl, treat) = summarize(rows, ["control", "t"], "control")
    assert ctrl["mean"] == 2.0 and math.isnan(ctrl["diff"])
    # paired differences 1, 2, 6: mean 3, sd sqrt(7), t(2) = 4.303
    half = 4.303 * math.sqrt(7) / math.sqrt(3)
    assert treat["diff"] == 3.0
    assert treat["diff_low"] == pytest.approx(3 - half) and treat["diff_high"] == pytest.approx(
        3 + half
    )


def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path, fast_embedder):
    bad = write_scenario(tmp_path, SCENARIO.replace("place: square}", "plac: square}"))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["experiment", str(bad), "--out", str(out), "-b", "scripted"])
    assert res.exit_code == 1
    err = res.stderr.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("error: ") and "mini.yaml:" in err[0]
    assert "measurements[0].plac: unknown field 'plac'" in res.stderr
    assert not out.exists()
    res = CliRunner().invoke(
        app, ["experiment", str(write_scenario(tmp_path)), "--seeds", "0", "--out", str(out)]
    )
    assert res.exit_code == 1 and res.stderr.startswith("error: --seeds") and not out.exists()


@pytest.mark.slow
def test_cli_runs_then_skips_and_reports(forked, tmp_path, fast_embedder):
    path, _, _ = forked
    out = tmp_path / "cli"
    args = ["experiment", str(path), "--seeds", "1", "--out", str(out), "-b", "scripted"]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "120"})
    assert res.exit_code == 0, res.output
    assert "2 runs done (0 resumed), 0 already complete skipped" in res.output
    assert "forks from the shared past: 8 steps computed for 10 steps of runs (20% saved)" in (
        res.output
    )
    res = CliRunner().invoke(app, args, env={"COLUMNS": "120"})
    assert "0 runs done (0 resumed), 2 already complete skipped; 0 steps run now" in res.output
    res = CliRunner().invoke(app, ["experiment", "report", str(out)], env={"COLUMNS": "120"})
    assert res.exit_code == 0 and "ann_energy" in res.output and "treated" in res.output
    other = tmp_path / "other.yaml"
    other.write_text(SCENARIO.replace("Mini notice", "Another"))
    res = CliRunner().invoke(app, ["experiment", str(other), "--out", str(out), "-b", "scripted"])
    assert res.exit_code == 1 and "holds an experiment of another scenario" in res.stderr


def _steps_done(out, seed, condition):
    root = out / "runs" / f"seed-{seed}"
    try:
        run_id = json.loads((root / "index.json").read_text()).get(condition)
        if run_id is None:
            return 0
        rows = query(store_path(root, run_id), "SELECT steps_done FROM runs")
    except (OSError, ValueError, sqlite3.Error):
        return 0
    return rows[0][0] if rows else 0


@pytest.mark.slow
def test_sigkill_loses_at_most_the_steps_in_flight(forked, tmp_path, fast_embedder):
    path, rep, _ = forked
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    cmd = [sys.executable, "-c", "from support.fast_embedder import main; main()", "experiment",
           str(path), "--seeds", "2", "--out", str(out), "-b", "scripted"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any(_steps_done(out, s, "treated") >= 3 for s in (0, 1)):
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    missing = [
        (s, c)
        for s in (0, 1)
        for c in ("control", "treated")
        if not (out / "runs" / f"seed-{s}" / "results" / f"{c}.json").exists()
    ]
    assert missing  # killed mid-way
    rerun = run(path, out)
    for s, c in missing:  # no gap, no duplicate: as an uninterrupted run
        assert timeline_of(out, s, c) == timeline_of(rep.out, s, c)
    key = lambda r: (r["condition"], r["seed"], r["step"], r["measurement"])  # noqa: E731
    assert sorted(rerun.rows, key=key) == sorted(rep.rows, key=key)
