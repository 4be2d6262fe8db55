"""Benchmark of the hot path: how much of a backend's own peak a simultaneous step uses.

For each backend (embedded llama.cpp, vLLM in process) and each town size (the town's
residents replicated to 8, 32 and 64 agents, from Monday 10:00 when everyone is up):

- through the simulation: one warm-up step, then one timed step of the simultaneous
  engine. The act requests of that step (every awake agent's one act call) are recorded
  as the backend received them; their generated tokens over the span from the first act
  batch handed to the backend to the last one answered are the step's act throughput.
- the backend's own peak: the same act requests sent straight to the backend at once
  (one batch for vLLM, batches of `max_batch` back to back for the embedded model, as
  its batcher would), from the cache state the simulation had: vLLM's prefix cache is
  emptied before the warm-up step, and emptied again before the peak, which first
  replays, batch by batch, every request the backend received before the timed step's
  act calls (primed). Also printed: the peak with the cache emptied (cold) and again
  at once (warm: every prompt cached, nothing left to prefill; no step can reach it,
  since a step's new observations are new tokens).
- utilization = act throughput through the simulation / the primed peak: the same
  requests, the same cache, only the path differs.

Then, on vLLM at 32 agents: the simultaneous engine against the sequential one, each a
warm-up step then one timed step from the same world: engine speedup = sequential step
time / simultaneous step time.

    nice -n 10 .venv/bin/python scripts/bench/bench_hotpath.py             # 8, 32, 64 agents
    nice -n 10 .venv/bin/python scripts/bench/bench_hotpath.py --agents 8  # quicker

vLLM's engine starts in about 2 minutes on a small CPU machine (not timed). The
machine's load is printed: figures taken beside other work are lower and noisier.
The last line is `utilization_vllm=<x> utilization_embedded=<y> engine_speedup_32_vllm=<z>`."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from concordia_like.engine.runs import start_run
from concordia_like.llm import Backend, LanguageModel, LLMRequest
from concordia_like.llm.types import RawCompletion
from concordia_like.memory.embedder import get_embedder
from concordia_like.world import World, load_world, replicate_residents

WORLD = Path(__file__).resolve().parents[2] / "worlds" / "town.yaml"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


@dataclass
class Batch:
    start: float
    end: float
    requests: list[LLMRequest]
    tokens: int


@dataclass
class Recorder(Backend):
    """The backend as the simulation sees it, with every batch it was handed timed. It
    does not close the backend it wraps: the benchmark reuses it across runs."""

    inner: Backend
    batches: list[Batch] = field(default_factory=list)
    before: list[Batch] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = self.inner.name
        self.max_batch = self.inner.max_batch
        self.concurrent_batches = self.inner.concurrent_batches

    @property
    def model(self) -> str:
        return self.inner.model

    async def generate_batch(self, requests: list[LLMRequest]) -> list[RawCompletion | Exception]:
        start = time.perf_counter()
        out = await self.inner.generate_batch(requests)
        tokens = sum(r.completion_tokens for r in out if isinstance(r, RawCompletion))
        self.batches.append(Batch(start, time.perf_counter(), requests, tokens))
        return out

    def history(self) -> list[list[LLMRequest]]:
        """Every batch the backend received before the timed step's first act batch."""
        acts = [b.start for b in self.batches if any(r.purpose == "act" for r in b.requests)]
        first = min(acts, default=float("inf"))
        return [b.requests for b in self.before] + [
            b.requests for b in self.batches if b.start < first
        ]

    def act_phase(self) -> tuple[list[LLMRequest], int, float]:
        """The act requests, the tokens generated in the act span, and the span."""
        acts = [b for b in self.batches if any(r.purpose == "act" for r in b.requests)]
        if not acts:
            return [], 0, 0.0
        t0, t1 = min(b.start for b in acts), max(b.end for b in acts)
        tokens = sum(b.tokens for b in self.batches if b.start >= t0 and b.end <= t1)
        requests = [r for b in acts for r in b.requests if r.purpose == "act"]
        return requests, tokens, t1 - t0


@dataclass
class Row:
    backend: str
    agents: int
    acts: int
    sim_tps: float
    primed_tps: float
    cold_tps: float
    warm_tps: float

    @property
    def utilization(self) -> float:
        return self.sim_tps / self.primed_tps if self.primed_tps else 0.0


def at_ten(world: World) -> World:
    clock = world.state.clock
    clock.now = clock.now.replace(hour=10, minute=0)
    return world


async def timed_step(backend: Backend, world: World, root: Path, engine: str) -> tuple:
    """One warm-up step, then one timed, from an empty prefix cache: (the recorder,
    whose `before` holds the warm-up step's batches and `batches` the timed step's;
    the timed step's wall time)."""
    rec = Recorder(backend)
    await backend.reset_prefix_cache()
    sim = start_run(
        at_ten(world),
        lambda _folder: LanguageModel(rec),
        root=root,
        engine=engine,  # type: ignore[arg-type]
        seed=1,
    )
    await sim.run_step()
    rec.before, rec.batches = rec.batches, []
    start = time.perf_counter()
    await sim.run_step()
    wall = time.perf_counter() - start
    sim.memory.close()
    sim.recorder.close()
    return rec, wall


async def peak(
    backend: Backend,
    requests: list[LLMRequest],
    *,
    reset: bool,
    history: list[list[LLMRequest]] = (),  # type: ignore[assignment]
) -> float:
    """Generated tokens per second of `requests` sent straight to the backend at once,
    after emptying its prefix cache (`reset`) and replaying `history`, untimed."""
    if reset:
        await backend.reset_prefix_cache()
    for batch in history:
        await backend.generate_batch(batch)
    start = time.perf_counter()
    tokens = 0
    size = len(requests) if backend.concurrent_batches else backend.max_batch
    for i in range(0, len(requests), size):
        out = await backend.generate_batch(requests[i : i + size])
        tokens += sum(r.completion_tokens for r in out if isinstance(r, RawCompletion))
    return tokens / (time.perf_counter() - start)


async def utilization(backend: Backend, town: World, counts: list[int], root: Path) -> list[Row]:
    rows = []
    for n in counts:
        rec, _ = await timed_step(backend, replicate_residents(town, n), root, "simultaneous")
        requests, tokens, span = rec.act_phase()
        if not requests:
            print(f"  {backend.name}, {n} agents: no act call in the timed step")
            continue
        primed = await peak(backend, requests, reset=True, history=rec.history())
        cold = await peak(backend, requests, reset=True)
        warm = await peak(backend, requests, reset=False)
        row = Row(backend.name, n, len(requests), tokens / span, primed, cold, warm)
        rows.append(row)
        print(
            f"  {row.backend:8} {n:3d} agents: {row.acts:3d} act calls; through the step "
            f"{row.sim_tps:6.1f} tok/s; straight to the backend {primed:6.1f} (primed), "
            f"{cold:6.1f} (cold), {warm:6.1f} (warm) tok/s; utilization {row.utilization:.2f}"
            f" (against warm {row.sim_tps / warm if warm else 0:.2f})",
            flush=True,
        )
    return rows


def make(name: str) -> Backend:
    if name == "vllm":
        from concordia_like.llm.vllm_backend import VLLMBackend

        return VLLMBackend(kv_cache_gib=2.0)
    from concordia_like.llm.embedded import EmbeddedBackend

    return EmbeddedBackend(n_parallel=8)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[8, 32, 64])
    ap.add_argument("--backends", nargs="+", default=["embedded", "vllm"])
    ap.add_argument(
        "--speedup-agents", type=int, default=32, help="town size of the engine comparison"
    )
    args = ap.parse_args()
    town = load_world(WORLD)
    root = Path(tempfile.mkdtemp(prefix="bench_hotpath_"))
    rows: list[Row] = []
    speedup = float("nan")
    try:
        get_embedder().embed(["warm up the embedding model"])
        print(f"{load()}")
        for name in args.backends:
            start = time.perf_counter()
            backend = make(name)
            print(f"{name}: {backend.model} ready in {time.perf_counter() - start:.0f} s")
            try:
                rows += await utilization(backend, town, args.agents, root)
                if name == "vllm":
                    walls = {}
                    for engine in ("sequential", "simultaneous"):
                        world = replicate_residents(town, args.speedup_agents)
                        _, walls[engine] = await timed_step(backend, world, root, engine)
                        print(
                            f"  vllm {args.speedup_agents} agents, {engine}: {walls[engine]:.1f} s"
                        )
                    speedup = walls["sequential"] / walls["simultaneous"]
                    print(f"  engine speedup (sequential / simultaneous): {speedup:.2f}x")
            finally:
                close = getattr(backend, "close", None)
                if close is not None:
                    close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nat the end: {load()}")

    def mean(name: str) -> float:
        values = [r.utilization for r in rows if r.backend == name]
        return sum(values) / len(values) if values else float("nan")

    print(
        f"utilization_vllm={mean('vllm'):.2f} utilization_embedded={mean('embedded'):.2f} "
        f"engine_speedup_{args.speedup_agents}_vllm={speedup:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
