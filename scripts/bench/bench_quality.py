"""Benchmark of what the embedded model makes of the town: readable speech, real plans,
and the cost of a step.

Runs the town (`worlds/town.yaml`) on the embedded SmolLM2-135M from Monday 07:00 (when
most of it is up) for 18 steps (`--quick`: 6), with real embeddings, Chroma and SQLite,
and reports:

- degenerate speech: the share of the agents' decisions to speak that did not end in
  readable speech: utterances that are degenerate (`agents.degenerate`: under three
  words, a repeat of the speaker's last words, a loop, a copy of the prompt's example)
  plus those the guard dropped after its one regeneration;
- degenerate plans: the share of day plans that are one activity repeated (or loop);
- distinct-2 of all speech: distinct word pairs over all word pairs;
- prefix reuse: the share of prompt tokens the embedded backend served from prefixes
  kept in its KV cache instead of decoding them;
- seconds of wall time per awake agent-step (an agent that made an act call).

    .venv/bin/python scripts/bench/bench_quality.py --quick     # several minutes on 2 cores
    .venv/bin/python scripts/bench/bench_quality.py             # 18 steps

The last line is
`degenerate_speech=<x> degenerate_plans=<y> distinct2=<z> prefix_reuse=<r> s_per_agent_step=<t>`."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from concordia_like.agents.degenerate import distinct_n, plan_problem, utterance_problem
from concordia_like.agents.prompt import SPEECH_EXAMPLE
from concordia_like.engine.runs import start_run
from concordia_like.llm import LanguageModel
from concordia_like.llm.embedded import EmbeddedBackend

WORLD = Path(__file__).resolve().parents[2] / "worlds" / "town.yaml"


@dataclass
class Figures:
    steps: int
    wall_s: float = 0.0
    awake: int = 0
    says: int = 0
    degenerate: int = 0
    dropped: int = 0
    speech: list[str] = field(default_factory=list)
    plans: int = 0
    bad_plans: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    calls: int = 0
    agent_steps: int = 0
    by_purpose: dict[str, dict] = field(default_factory=dict)
    in_model: dict[str, dict] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    plan_samples: list[str] = field(default_factory=list)

    @property
    def degenerate_speech(self) -> float:
        return (self.degenerate + self.dropped) / self.says if self.says else 0.0

    @property
    def degenerate_plans(self) -> float:
        return self.bad_plans / self.plans if self.plans else 0.0

    @property
    def prefix_reuse(self) -> float:
        return self.reused_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def s_per_agent_step(self) -> float:
        return self.wall_s / self.awake if self.awake else 0.0

    def line(self) -> str:
        return (
            f"degenerate_speech={self.degenerate_speech:.3f} "
            f"degenerate_plans={self.degenerate_plans:.3f} "
            f"distinct2={distinct_n(self.speech):.3f} prefix_reuse={self.prefix_reuse:.3f} "
            f"s_per_agent_step={self.s_per_agent_step:.2f}"
        )


def plan_activities(text: str) -> list[str]:
    """The activities of a `... plans the day: 07:00 a; 08:00 b` event."""
    body = text.split(": ", 1)[1] if ": " in text else text
    return [part.strip()[6:] if part.strip()[:2].isdigit() else part for part in body.split("; ")]


async def run(steps: int, seed: int, root: Path, threads: int | None) -> Figures:
    backend = EmbeddedBackend(n_threads=threads)
    print(f"  model {backend.path.name}", flush=True)
    sim = start_run(
        WORLD, lambda _f: LanguageModel(backend), root=root, seed=seed, start_time="07:00"
    )
    fig = Figures(steps)
    history: dict[str, list[str]] = {}
    async with sim:
        for _ in range(steps):
            acts_before = sim.lm.usage.summary()["by_purpose"].get("act", {}).get("calls", 0)
            start = time.perf_counter()
            report = await sim.run_step()
            fig.wall_s += time.perf_counter() - start
            fig.awake += sim.lm.usage.summary()["by_purpose"]["act"]["calls"] - acts_before
            for e in report.events:
                action = e.data.get("action") or {}
                if e.kind == "plan" and "plans the day" in e.text:
                    fig.plans += 1
                    acts = plan_activities(e.text)
                    fig.bad_plans += plan_problem(acts) is not None
                    fig.plan_samples.append(e.text[:160])
                if e.kind == "failure" and "speech dropped" in e.data.get("reason", ""):
                    fig.says += 1
                    fig.dropped += 1
                if action.get("kind") == "say" and e.kind in ("speech", "action"):
                    text = action.get("text", "")
                    fig.says += 1
                    before = history.setdefault(e.actor or "", [])
                    if utterance_problem(text, before[-3:], [SPEECH_EXAMPLE]) is not None:
                        fig.degenerate += 1
                    fig.speech.append(text)
                    before.append(text)
                    fig.samples.append(e.text[:140])
                    print(f"    {e.text[:160]}", flush=True)
            print(
                f"  step {report.step} {report.sim_time:%H:%M} {report.wall_s:.1f} s",
                flush=True,
            )
        usage = sim.lm.usage.summary()
        fig.calls = usage["total"]["calls"]
        fig.by_purpose = usage["by_purpose"]
        fig.agent_steps = steps * len(sim.agents)
    fig.in_model = {p: dict(c) for p, c in backend.by_purpose.items()}
    fig.prompt_tokens = backend.stats["prompt_tokens"]
    fig.reused_tokens = backend.stats["reused_tokens"]
    return fig


def show(fig: Figures) -> None:
    print(
        f"{fig.steps} steps, {fig.awake} awake agent-steps, "
        f"{fig.wall_s:.0f} s; {fig.says} decisions to speak, {fig.degenerate} degenerate, "
        f"{fig.dropped} dropped by the guard; {fig.plans} day plans, {fig.bad_plans} "
        f"degenerate; {fig.calls / max(1, fig.agent_steps):.2f} calls per agent-step; "
        f"{fig.reused_tokens}/{fig.prompt_tokens} prompt tokens from reused prefixes"
    )
    for purpose, u in fig.by_purpose.items():
        m = fig.in_model.get(purpose, {})
        print(
            f"    {purpose:>10}: {u['calls']:>4} calls, {u['prompt_tokens']:>7} prompt tokens "
            f"({m.get('decoded', 0):>6} decoded), {u['completion_tokens']:>5} generated, "
            f"{m.get('seconds', 0.0):>6.1f} s in the model"
        )
    outside = fig.wall_s - sum(m.get("seconds", 0.0) for m in fig.in_model.values())
    print(f"    outside the model (memory, embeddings, Game Master, store): {outside:.1f} s")
    for s in fig.samples[:8]:
        print(f"    {s}")
    for s in fig.plan_samples[:3]:
        print(f"    {s}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="6 steps instead of 18")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    steps = args.steps or (6 if args.quick else 18)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    root = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    try:
        fig = asyncio.run(run(steps, args.seed, root, args.threads))
        show(fig)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(fig.line())


if __name__ == "__main__":
    main()
