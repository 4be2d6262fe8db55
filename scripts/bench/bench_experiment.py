"""Benchmark of the experiment runner on the embedded model: do the runs of several
seeds batch together?

K seeds of a short scenario (`worlds/scenarios/bread_price.yaml` cut to a few steps,
questions left out) are run twice on one loaded model: once concurrently in one process
(the local executor: every run's requests meet in one batcher), once one seed after
another. Both use forks from the shared past, and the response cache is off, so every
request reaches the model (the model, the embedder and a first short experiment are
run before the clock starts). It prints the wall time of each and the share of steps
that forking saved; the last line is
`seeds_batch_speedup=<x> fork_steps_saved=<share>`.

    .venv/bin/python scripts/bench/bench_experiment.py                 # K=4, 4 steps
    .venv/bin/python scripts/bench/bench_experiment.py --seeds 2 --steps 3 --backend scripted

Runs are written to a temporary folder, removed at the end."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from concordia_like.experiments.runner import run_experiment
from concordia_like.experiments.scenario import load_scenario
from concordia_like.experiments.settings import Settings
from concordia_like.llm import BackendOptions, LLMRequest, open_model
from concordia_like.memory.embedder import get_embedder

SCENARIO = Path(__file__).resolve().parents[2] / "worlds" / "scenarios" / "bread_price.yaml"


def short_scenario(folder: Path, steps: int) -> Path:
    """The bread price scenario cut to `steps` steps, its intervention at the middle
    and code measurements only."""
    data = yaml.safe_load(SCENARIO.read_text())
    data["world"] = str(SCENARIO.parent / data["world"])
    data["stop"] = {"steps": steps}
    iv = data["interventions"]["price_rise"]
    iv.pop("at", None)
    iv["at_step"] = max(2, steps // 2 + 1)
    data["measurements"] = [m for m in data["measurements"] if m["kind"] not in ("ask", "judge")]
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def timed(scenario, out: Path, seeds: list[int], model) -> tuple[float, object]:
    start = time.perf_counter()
    report = run_experiment(
        scenario,
        Settings(out=out, seeds=seeds, model=BackendOptions(model.backend.name), cache_mode="off"),
        model=model,
    )
    return time.perf_counter() - start, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--backend", default="embedded")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_experiment_"))
    try:
        scenario = load_scenario(short_scenario(tmp, args.steps))
        model = open_model(args.backend)
        seeds = list(range(args.seeds))

        async def warm() -> None:  # load the model and the embedder before the clock starts
            await model.batcher.submit(LLMRequest.chat("Say hello.", max_tokens=4))

        asyncio.run(warm())
        get_embedder().embed(["warm up the embedder"])
        # the first runs of a process pay for imports and store set-up: not timed
        (tmp / "warm").mkdir()
        timed(load_scenario(short_scenario(tmp / "warm", 2)), tmp / "warm-out", [99], model)
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        together_s, together = timed(scenario, tmp / "together", seeds, model)
        alone_s = 0.0
        for s in seeds:
            wall, _ = timed(scenario, tmp / f"alone-{s}", [s], model)
            alone_s += wall
        total = together.steps_total
        print(
            f"{args.seeds} seeds x {len(scenario.conditions)} conditions x {args.steps} steps "
            f"on {model.name}"
        )
        print(f"concurrently in one process: {together_s:.1f} s")
        print(f"one seed after another:      {alone_s:.1f} s")
        print(
            f"forks: {together.steps_computed} steps computed for {total} steps of runs "
            f"({together.saved_share:.0%} saved)"
        )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print(
            f"seeds_batch_speedup={alone_s / together_s:.2f} "
            f"fork_steps_saved={together.saved_share:.2f}"
        )
        asyncio.run(model.aclose())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
