"""Benchmark of the simulation loop on the scripted zero-latency model.

Everything but the model is real: sentence-transformers embeddings, the Chroma index,
the SQLite store, the Game Master, importance scoring, planning and reflection, one
commit per step. The scripted model answers at once, so the figures are the cost of
the library around the model, and of how many calls it makes.

- throughput: the town's residents replicated to 10, 100 and 1000 agents
  (`concordia_like.world.replicate_residents`), timed over steps after a warm-up
  (model load, the first step's embedder warm-up and day plans are left out), from
  Monday 10:00 (`--start`), when the whole town is up and acting.
  An agent-step is one agent in one step, asleep or not; the awake ones (those that
  made an act call) are shown beside them.
- budget: the town as written (11 residents) for 500 steps (from Monday 06:00 to
  Thursday 17:20): model calls per agent-step (every purpose: acting, Game Master,
  importance, planning, reflection) and the 95th percentile of prompt tokens per call,
  also for each half of the run, to show whether prompts grow with the run.

    .venv/bin/python scripts/bench/bench_sim.py            # about 2 to 3 minutes
    .venv/bin/python scripts/bench/bench_sim.py --quick    # about a minute, shorter runs

Runs are written to a temporary folder, removed at the end. The machine's load average
is printed: throughput measured beside other work (tests, another benchmark) is lower.
The last line is `calls_per_agent_step=<x> prompt_tokens_p95=<y> agent_steps_per_s_100=<z>`."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from concordia_like.engine.runs import start_run
from concordia_like.engine.simulation import Simulation
from concordia_like.llm import LanguageModel, make_backend
from concordia_like.llm.usage import Histogram
from concordia_like.memory.embedder import get_embedder
from concordia_like.world import World, load_world, replicate_residents

WORLD = Path(__file__).resolve().parents[2] / "worlds" / "town.yaml"


@dataclass
class Throughput:
    agents: int
    steps: int
    wall_s: float
    awake: int
    calls: int
    warmup_s: float

    @property
    def agent_steps(self) -> int:
        return self.agents * self.steps

    @property
    def per_s(self) -> float:
        return self.agent_steps / self.wall_s

    @property
    def awake_per_s(self) -> float:
        return self.awake / self.wall_s


@dataclass
class Budget:
    agents: int
    steps: int
    wall_s: float
    calls_by_purpose: dict[str, int]
    tokens: Histogram
    first_half: Histogram
    awake: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return sum(self.calls_by_purpose.values())

    @property
    def calls_per_agent_step(self) -> float:
        return self.calls / (self.agents * self.steps)


def load() -> str:
    """The machine's load: figures taken while other work runs are lower."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def scripted(_folder: Path) -> LanguageModel:
    """The scripted backend with no response cache: every call reaches the 'model'."""
    return LanguageModel(make_backend("scripted"))


def act_calls(sim: Simulation) -> int:
    return sim.lm.usage.by_purpose["act"].calls


async def run_steps(sim: Simulation, n: int) -> int:
    """Run n steps; return how many agents acted (one act call each) in them."""
    before = act_calls(sim)
    for _ in range(n):
        await sim.run_step()
    return act_calls(sim) - before


async def throughput(
    world: World,
    root: Path,
    warmup: int,
    steps: int,
    profile: cProfile.Profile | None,
    start_at: str,
) -> Throughput:
    hour, minute = (int(x) for x in start_at.split(":"))
    clock = world.state.clock
    clock.now = clock.now.replace(hour=hour, minute=minute)
    sim = start_run(world, scripted, root=root)
    start = time.perf_counter()
    await run_steps(sim, warmup)
    warmup_s = time.perf_counter() - start
    calls = sim.lm.usage.total.calls
    if profile is not None:
        profile.enable()
    start = time.perf_counter()
    awake = await run_steps(sim, steps)
    wall = time.perf_counter() - start
    if profile is not None:
        profile.disable()
    calls = sim.lm.usage.total.calls - calls
    await sim.lm.aclose()
    sim.memory.close()
    sim.recorder.close()
    return Throughput(len(world.personas), steps, wall, awake, calls, warmup_s)


async def budget(world: World, root: Path, steps: int) -> Budget:
    sim = start_run(world, scripted, root=root)
    start = time.perf_counter()
    awake = await run_steps(sim, steps // 2)
    first_half = sim.lm.usage.total.prompt_token_hist.copy()
    awake += await run_steps(sim, steps - steps // 2)
    wall = time.perf_counter() - start
    usage = sim.lm.usage
    figures = Budget(
        len(world.personas),
        steps,
        wall,
        {p: s.calls for p, s in sorted(usage.by_purpose.items())},
        usage.total.prompt_token_hist.copy(),
        first_half,
        awake,
    )
    await sim.lm.aclose()
    sim.memory.close()
    sim.recorder.close()
    return figures


def print_throughput(rows: list[Throughput]) -> None:
    print(
        f"{'agents':>6} {'steps':>5} {'wall s':>7} {'agent-steps/s':>13} "
        f"{'awake':>6} {'awake/s':>8} {'calls/agent-step':>16} {'warm-up s':>9}"
    )
    for r in rows:
        print(
            f"{r.agents:>6} {r.steps:>5} {r.wall_s:>7.2f} {r.per_s:>13.1f} "
            f"{r.awake:>6} {r.awake_per_s:>8.1f} {r.calls / r.agent_steps:>16.2f} "
            f"{r.warmup_s:>9.1f}"
        )


def print_budget(b: Budget) -> None:
    first, last = b.first_half, b.tokens.since(b.first_half)
    print(
        f"{b.agents} residents, {b.steps} steps ({b.agents * b.steps} agent-steps, "
        f"{b.awake} awake) in {b.wall_s:.1f} s"
    )
    print(f"model calls: {b.calls} = {b.calls_per_agent_step:.2f} per agent-step")
    for purpose, n in b.calls_by_purpose.items():
        print(f"  {purpose:<12} {n:>6}  {n / (b.agents * b.steps):.3f} per agent-step")
    print(
        f"prompt tokens per call: p50 {b.tokens.percentile(50):.0f}, "
        f"p95 {b.tokens.percentile(95):.0f}, max {b.tokens.percentile(100):.0f}"
    )
    print(
        f"  p95 first half {first.percentile(95):.0f} ({first.count} calls), "
        f"last half {last.percentile(95):.0f} ({last.count} calls)"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (about a minute)")
    ap.add_argument("--steps", type=int, help="steps of the budget run (default 500; quick 60)")
    ap.add_argument(
        "--agents",
        type=int,
        nargs="+",
        help="agent counts of the throughput runs (default 10 100 1000)",
    )
    ap.add_argument(
        "--start",
        default="10:00",
        help="time of day the throughput runs start (default 10:00: everyone is up; at "
        "06:00 most of the town is asleep and costs nothing)",
    )
    ap.add_argument(
        "--profile", action="store_true", help="cProfile the timed steps of the 100-agent run"
    )
    args = ap.parse_args()
    budget_steps = args.steps or (60 if args.quick else 500)
    counts = args.agents or [10, 100, 1000]
    # (warm-up steps, timed steps) per agent count: a few steps are enough at 1000
    plan = {
        n: ((2, 4) if args.quick else (6, 24)) if n <= 100 else ((1, 1) if args.quick else (2, 4))
        for n in counts
    }
    town = load_world(WORLD)
    root = Path(tempfile.mkdtemp(prefix="bench_sim_"))
    profile = cProfile.Profile() if args.profile else None
    try:
        start = time.perf_counter()
        get_embedder().embed(["warm up the embedding model"])
        print(f"embedding model loaded in {time.perf_counter() - start:.1f} s (not timed)")
        print(f"embeddings in {'bfloat16' if get_embedder().bfloat16 else 'float32'}; {load()}")
        if args.quick:
            print("quick: shorter runs than the full benchmark, figures are rougher")
        print()
        print("throughput (warm-up steps left out of the timing):")
        rows = []
        for n in counts:
            warmup, steps = plan[n]
            world = replicate_residents(town, n)
            rows.append(
                await throughput(
                    world, root, warmup, steps, profile if n == 100 else None, args.start
                )
            )
            print(f"  {n} agents: {warmup} warm-up steps, then {steps} timed", flush=True)
        print_throughput(rows)
        print()
        print("budget:")
        b = await budget(town, root, budget_steps)
        print_budget(b)
        print()
        await print_attention(root, min(budget_steps, 60))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if profile is not None:
        print()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(70)
    print(f"\nat the end: {load()}")
    per_s = {r.agents: r.per_s for r in rows}
    print()
    print(
        f"calls_per_agent_step={b.calls_per_agent_step:.2f} "
        f"prompt_tokens_p95={b.tokens.percentile(95):.0f} "
        f"agent_steps_per_s_100={per_s.get(100, float('nan')):.1f}"
    )


async def print_attention(root: Path, steps: int) -> None:
    """The town under each attention policy (`agents.attention`) from 07:00: model
    calls per agent-step and agent-steps per second."""
    print(f"attention (the town from 07:00, {steps} steps):")
    for mode in ("always", "events"):
        sim = start_run(WORLD, scripted, root=root, start_time="07:00", attention={"mode": mode})
        start = time.perf_counter()
        await run_steps(sim, steps)
        wall = time.perf_counter() - start
        agent_steps = steps * len(sim.agents)
        print(
            f"  {mode:>6}: {sim.lm.usage.total.calls / agent_steps:.2f} calls per agent-step, "
            f"{agent_steps / wall:.1f} agent-steps/s"
        )
        await sim.aclose()


if __name__ == "__main__":
    asyncio.run(main())
