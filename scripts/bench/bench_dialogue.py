"""Dialogue generation on the embedded model: conversations run together vs one after
another.

Eight conversations of six turns in the town (the same planned conversations, the
same seed), after an untimed warm-up of their first turns, once with all of them
stepping at once (`--parallel 8`: their speech, planning and importance calls meet in
the same batches) and once one at a time
(`--parallel 1`), on one backend loaded once, with the real embedder. Prints wall time
and conversations per minute for both, the batch sizes seen, and as its last line
`dialogue_batch_speedup=<x>` (target >= 1.5).

The "together" job is kept in `--keep DIR` if given (a work folder `concordia-like
dialogues --world worlds/town.yaml --conversations 8 --turns 6 --max-attempts 8
--work DIR/together.work` exports again without generating)."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from concordia_like.dialogue.filters import FilterConfig, statistics_of
from concordia_like.dialogue.job import run_job
from concordia_like.llm import make_backend, open_model
from concordia_like.world.loader import load_world

TOWN = Path(__file__).resolve().parents[2] / "worlds" / "town.yaml"


def timed(backend) -> list[float]:
    """Seconds spent inside the backend's batches (the rest of a turn is the engine:
    embedding, retrieval, the stores), summed into the returned one-item list."""
    spent = [0.0]
    inner = backend.generate_batch

    async def generate_batch(requests):
        start = time.perf_counter()
        try:
            return await inner(requests)
        finally:
            spent[0] += time.perf_counter() - start

    backend.generate_batch = generate_batch
    return spent


async def one_mode(world, shared, work: Path, n: int, turns: int, parallel: int):
    shared.batcher.recent_batch_sizes.clear()
    job = {"backend": shared.backend.name, "model": shared.backend.model, "base_url": None,
           "model_path": None, "sampling": None}  # fmt: skip
    start = time.perf_counter()
    result = await run_job(
        world, shared, work, conversations=n, turns=turns, seed=0, parallel=parallel,
        filters=FilterConfig(), max_attempts=n, job=job,
    )  # fmt: skip
    wall = time.perf_counter() - start
    sizes = list(shared.batcher.recent_batch_sizes)
    return result, wall, sizes


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--conversations", type=int, default=8)
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--keep", type=Path, default=None, help="keep the work folders here")
    ap.add_argument(
        "--backend", default="embedded", help="embedded (default), vllm, or openai (its env)"
    )
    args = ap.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    world = load_world(TOWN)
    backend = make_backend(args.backend)
    in_model = timed(backend)
    shared = open_model(backend)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-dialogue-"))
    n, turns = args.conversations, args.turns
    try:
        # not timed: the same conversations' first turn, together, so that both timed
        # modes find the model loaded and the plans' grammars compiled
        _, wall, _ = await one_mode(world, shared, folder / "warmup.work", n, 1, n)
        print(f"warm-up (first turns, not timed): {wall:.1f} s")
        rates = {}
        for label, parallel in (("together", n), ("one after another", 1)):
            work = folder / f"{label.split()[0]}.work"
            counts = getattr(backend, "stats", None) or {"prompt_tokens": 0, "reused_tokens": 0}
            before = dict(counts)
            in_model[0] = 0.0
            result, wall, sizes = await one_mode(world, shared, work, n, turns, parallel)
            prompt = counts["prompt_tokens"] - before["prompt_tokens"]
            reused = counts["reused_tokens"] - before["reused_tokens"]
            done = len(result.records)
            said = sum(len(r["turns"]) for r in result.records)
            rates[label] = done / wall * 60
            mean = statistics.fmean(sizes) if sizes else 0
            print(
                f"{label}: {done} conversations ({said} turns) in {wall:.1f} s, "
                f"{rates[label]:.2f} conversations/min; batches {len(sizes)}, "
                f"mean size {mean:.2f}, max {max(sizes, default=0)}; prompt tokens "
                f"{prompt}, {reused / max(prompt, 1):.2f} of them from kept prefixes; "
                f"{in_model[0]:.1f} s in the model's batches"
            )
            stats = statistics_of(result.selection, sorted(world.personas), FilterConfig())
            print(
                f"  kept {stats['kept']} of {stats['conversations']}: {stats['dropped_by_reason']}"
            )
    finally:
        await backend.aclose()
    print(f"dialogue_batch_speedup={rates['together'] / rates['one after another']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
