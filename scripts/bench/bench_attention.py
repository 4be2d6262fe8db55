"""Benchmark of attention: the town asked only where something calls for a choice
(`events`) against every awake resident asked every step (`always`), side by side.

Runs the town (`worlds/town.yaml`) from Monday 07:00 for 36 steps under each policy, on
one model (the embedded SmolLM2-135M unless `--backend` names another), with real
embeddings, Chroma and SQLite, and prints per policy:

- calls per awake agent-step: every model call of the run's usage ledger, whatever its
  purpose (act, converse, speech, plan, importance, reflect, the Game Master's resolve),
  over awake agent-steps (one resident not asleep in one step, asked or not);
- seconds of wall time per awake agent-step;
- at the plan's place: of the awake residents whose plan item names a place and has
  been under way for two steps or more (time to walk there), the share that is there
  after the step;
- conversations: distinct speaker-addressee pairs (a line of an act call's speech, or a
  turn of a conversation written in one call: both are `say` events);
- degenerate speech: the share of decisions to speak that did not end in readable
  speech (`agents.degenerate`, as bench_quality counts it).

    .venv/bin/python scripts/bench/bench_attention.py                 # embedded model
    .venv/bin/python scripts/bench/bench_attention.py --backend scripted --steps 6
    .venv/bin/python scripts/bench/bench_attention.py --steps 12 --only events   # a look

`--keep DIR` keeps both runs' stores there (their ids are printed) to read afterwards,
with `concordia-like log`. The last line is
`calls_per_awake_step=<x> s_per_awake_step_ratio=<r> at_plan_place=<p> pairs_ratio=<q>`:
`events`' calls per awake agent-step and share at the plan's place, and its seconds per
awake agent-step and conversations over `always`'."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from concordia_like.agents.autopilot import plan_item
from concordia_like.agents.degenerate import utterance_problem
from concordia_like.agents.prompt import SPEECH_EXAMPLE
from concordia_like.engine.runs import start_run
from concordia_like.engine.simulation import Simulation, StepReport
from concordia_like.llm import BackendOptions, open_model, run_models

WORLD = Path(__file__).resolve().parents[2] / "worlds" / "town.yaml"
#: steps a resident is given to walk to its plan item's place before it counts
TRAVEL_STEPS = 2


@dataclass
class Figures:
    mode: str
    run_id: str = ""
    steps: int = 0
    wall_s: float = 0.0
    awake: int = 0
    asked: int = 0
    calls: int = 0
    planned: int = 0
    at_place: int = 0
    says: int = 0
    degenerate: int = 0
    pairs: set[tuple[str, str]] = field(default_factory=set)
    by_purpose: dict[str, int] = field(default_factory=dict)
    by_why: dict[str, int] = field(default_factory=dict)

    @property
    def calls_per_awake(self) -> float:
        return self.calls / self.awake if self.awake else 0.0

    @property
    def s_per_awake(self) -> float:
        return self.wall_s / self.awake if self.awake else 0.0

    @property
    def at_plan_place(self) -> float:
        return self.at_place / self.planned if self.planned else 0.0

    @property
    def degenerate_speech(self) -> float:
        return self.degenerate / self.says if self.says else 0.0

    def show(self) -> None:
        print(
            f"{self.mode:>6}: {self.steps} steps, {self.awake} awake agent-steps, "
            f"{self.asked} asked; {self.calls} calls = {self.calls_per_awake:.2f} per awake "
            f"agent-step; {self.wall_s:.0f} s = {self.s_per_awake:.3f} s per awake "
            f"agent-step; at the plan's place {self.at_place}/{self.planned} = "
            f"{self.at_plan_place:.2f}; {len(self.pairs)} speaker-addressee pairs; "
            f"degenerate speech {self.degenerate}/{self.says} = {self.degenerate_speech:.2f}"
        )
        print(f"        calls by purpose: {self.by_purpose}")
        print(f"        calls by why: {self.by_why}")


def count_step(sim: Simulation, report: StepReport, fig: Figures, said: dict[str, list[str]]):
    """Add one step's figures: awake and asked residents, where they are against their
    plans, and what was said."""
    fig.awake += len(report.awake)
    fig.asked += sum(1 for n in report.awake if n in report.asked)
    travel = timedelta(minutes=TRAVEL_STEPS * sim.state.clock.step.total_seconds() / 60)
    for name in report.awake:
        agent = sim.agents[name]
        plan = agent.plan
        block = plan.block_at(report.sim_time) if plan is not None else None
        item = plan_item(agent, report.sim_time)
        if block is None or item.place is None or report.sim_time - block.start < travel:
            continue
        fig.planned += 1
        fig.at_place += sim.state.location(name) == item.place
    for e in report.events:
        action = e.data.get("action") or {}
        if e.kind == "failure" and "speech dropped" in e.data.get("reason", ""):
            fig.says += 1
            fig.degenerate += 1
        elif action.get("kind") == "say" and e.kind == "speech" and e.actor:
            text = action.get("text", "")
            fig.says += 1
            before = said.setdefault(e.actor, [])
            fig.degenerate += utterance_problem(text, before[-3:], [SPEECH_EXAMPLE]) is not None
            before.append(text)
            if action.get("to") != e.actor:
                fig.pairs.add((e.actor, action["to"]))


async def run(mode: str, lender, steps: int, seed: int, root: Path, idle: int | None) -> Figures:
    policy = {"mode": mode, "idle_steps": idle}
    sim = start_run(
        WORLD, run_models(lender), root=root, seed=seed, start_time="07:00", attention=policy
    )
    fig = Figures(mode, sim.run_id, steps)
    said: dict[str, list[str]] = {}
    async with sim:
        for _ in range(steps):
            start = time.perf_counter()
            report = await sim.run_step()
            fig.wall_s += time.perf_counter() - start
            count_step(sim, report, fig, said)
            print(
                f"  {mode} step {report.step} {report.sim_time:%H:%M} {report.wall_s:.1f} s, "
                f"{len(report.asked)}/{len(report.awake)} asked",
                flush=True,
            )
        usage = sim.lm.usage.summary()
        fig.calls = usage["total"]["calls"]  # every purpose: act, converse, plan, ...
        fig.by_purpose = {p: u["calls"] for p, u in usage["by_purpose"].items()}
        fig.by_why = {w: u["calls"] for w, u in usage.get("by_why", {}).items()}
    return fig


async def both(args: argparse.Namespace, root: Path) -> list[Figures]:
    modes = [args.only] if args.only else ["always", "events"]
    async with open_model(BackendOptions(args.backend)) as lender:
        return [
            await run(mode, lender, args.steps, args.seed, root, args.idle_steps) for mode in modes
        ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=36)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="embedded")
    ap.add_argument(
        "--idle-steps", type=int, default=None, help="over the world's (the town's own by default)"
    )
    ap.add_argument("--keep", type=Path, default=None, help="keep the runs' stores here")
    ap.add_argument(
        "--only", choices=("always", "events"), help="run one policy (no last line: no ratio)"
    )
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-attention-"))
    try:
        figures = asyncio.run(both(args, root))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    for fig in figures:
        fig.show()
        if args.keep is not None:
            print(f"        run {fig.run_id} in {root}")
    if args.only:
        return
    always, events = figures
    ratio = events.s_per_awake / always.s_per_awake if always.s_per_awake else 0.0
    pairs = len(events.pairs) / len(always.pairs) if always.pairs else 0.0
    print(
        f"calls_per_awake_step={events.calls_per_awake:.3f} s_per_awake_step_ratio={ratio:.3f} "
        f"at_plan_place={events.at_plan_place:.3f} pairs_ratio={pairs:.3f}"
    )


if __name__ == "__main__":
    main()
