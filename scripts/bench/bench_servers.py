"""Benchmark of a city step's model calls spread over several inference servers.

The world is the shipped 1,000-resident Wendmouth (`worlds/city/wendmouth-1000`, or the
city generated from `worlds/city/city.yaml` at `--residents`), from a working hour. Its
model is the `openai` backend over 1, 2 and 4 scripted OpenAI-compatible servers
(`concordia_like.llm.scripted_server`, a test double) started on 127.0.0.1 in a process
of their own. Each server answers a request after a fixed emulated latency and works on
at most `--limit` requests at a time, as a GPU server batching a bounded number of
sequences would; the backend's limit per server is the same. So the figures show how
the backend's routing (least-loaded, a limit per server) spreads a step's calls, not
what this machine's CPUs can decode. Everything else is real (the hashing stand-in for
the sentence embedder unless `--embedder real`).

Per server count it prints: model calls per step; calls per server (each one's share,
the least and the most); seconds a step and the speedup against one server; seconds per
call and its speedup (the number of calls a step makes varies a little from run to run,
with the order answers come back in); the batcher's batches a step and their mean size
(a step's calls come in rounds, each waiting on answers of the one before, so a round
narrower than the servers' room leaves some idle); and the most requests a server had
at once (its limit: it was full at times). The last line is
`servers_speedup_4=<x> calls_share_max_4=<y> call_speedup_4=<z>`: a step's speedup on
four servers, the largest server's share of the calls there (0.25 is an even spread),
and the speedup of a step's seconds per call.

    .venv/bin/python scripts/bench/bench_servers.py
    .venv/bin/python scripts/bench/bench_servers.py --servers 1,2,4,8 --latency-ms 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "worlds" / "city" / "wendmouth-1000" / "world.yaml"
CITY_SPEC = ROOT / "worlds" / "city" / "city.yaml"


def build_world(n: int, root: Path) -> Any:
    from concordia_like.world import load_world

    if n == 1000:
        return load_world(SHIPPED)
    from concordia_like.generate.write import generate, write_city

    return write_city(root / f"city-{n}", generate(CITY_SPEC, n, 1))


class Servers:
    """`count` scripted servers in a child process, for the length of a `with`."""

    def __init__(self, count: int, latency_ms: float, limit: int) -> None:
        cmd = [sys.executable, "-m", "concordia_like.llm.scripted_server"]
        cmd += ["--servers", str(count), "--latency-ms", str(latency_ms), "--limit", str(limit)]
        self.cmd = cmd
        #: the most requests each server worked on at once (its limit: it was full)
        self.peak: list[int] = []

    def __enter__(self) -> list[str]:
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"the scripted servers did not start: {' '.join(self.cmd)}")
        return json.loads(line)["base_urls"]

    def __exit__(self, *exc: object) -> None:
        out, _ = self.proc.communicate(timeout=60)
        lines = out.strip().splitlines()
        self.peak = json.loads(lines[-1])["peak"] if lines else []


async def one_count(world: Any, urls: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """A fresh run of `world` on the servers at `urls`; its timed steps' figures."""
    from concordia_like.engine.runs import start_run
    from concordia_like.llm import LanguageModel, make_backend
    from concordia_like.llm.scripted_server import MODEL

    def model(_folder: Path) -> Any:
        backend = make_backend("openai", base_url=urls, model=MODEL, concurrency=args.limit)
        return LanguageModel(backend)

    sim = start_run(world, model, root=Path(args.root), start_time=args.start)
    for _ in range(args.warmup):
        await sim.run_step()
    pool = sim.lm.backend.pool
    before = [s.answered for s in pool.servers]
    calls0 = sim.lm.usage.total.calls
    batcher = sim.lm.batcher
    batches0, batched0 = batcher.batches, batcher.batched_requests
    t = time.perf_counter()
    for _ in range(args.steps):
        await sim.run_step()
    wall = time.perf_counter() - t
    per_server = [s.answered - b for s, b in zip(pool.servers, before, strict=True)]
    calls = sim.lm.usage.total.calls - calls0
    batches = batcher.batches - batches0
    await sim.aclose()
    return {
        "calls_per_step": calls / args.steps,
        "per_server": per_server,
        "step_s": wall / args.steps,
        "batches_per_step": batches / args.steps,
        "batch_mean": (batcher.batched_requests - batched0) / max(batches, 1),
        "taken_out": sum(s.taken_out for s in pool.servers),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--residents", type=int, default=1000, help="default 1000 (the shipped city)")
    ap.add_argument("--servers", default="1,2,4", help="server counts to run (default 1,2,4)")
    ap.add_argument("--latency-ms", type=float, default=200.0, help="per request (default 200)")
    ap.add_argument("--limit", type=int, default=8, help="requests a server works on at once")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per count (default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="steps before the timing (default 1)")
    ap.add_argument("--start", default="10:00", help="time of day the runs start (default 10:00)")
    ap.add_argument("--embedder", choices=("hash", "real"), default="hash")
    args = ap.parse_args()
    counts = [int(x) for x in args.servers.split(",") if x.strip()]
    if args.embedder == "hash":
        from concordia_like.memory.hash_embedder import install

        install()
    one, five, _ = os.getloadavg()
    print(
        f"{args.residents} residents from {args.start}; servers answer after "
        f"{args.latency_ms:.0f} ms, {args.limit} at a time each; embedder {args.embedder}; "
        f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores",
        flush=True,
    )
    args.root = tempfile.mkdtemp(prefix="bench_servers_")
    rows: dict[int, dict[str, Any]] = {}
    try:
        world = build_world(args.residents, Path(args.root))
        for count in counts:
            servers = Servers(count, args.latency_ms, args.limit)
            with servers as urls:
                row = asyncio.run(one_count(world, urls, args))
            rows[count] = row
            per = row["per_server"]
            total = sum(per) or 1
            shares = [c / total for c in per]
            row["share_max"] = max(shares)
            first = rows[counts[0]]
            row["speedup"] = first["step_s"] / row["step_s"]
            row["ms_per_call"] = 1000 * row["step_s"] / max(row["calls_per_step"], 1)
            row["call_speedup"] = first["ms_per_call"] / row["ms_per_call"]
            print(
                f"{count} server(s): {row['calls_per_step']:.0f} model calls a step; per server "
                f"{', '.join(f'{c} ({s:.0%})' for c, s in zip(per, shares, strict=True))}; "
                f"least {min(per)}, most {max(per)}; {row['step_s']:.2f} s a step; "
                f"x{row['speedup']:.2f} against {counts[0]} server(s); "
                f"{row['ms_per_call']:.1f} ms a call (x{row['call_speedup']:.2f}); "
                f"{row['batches_per_step']:.0f} batches a step of {row['batch_mean']:.1f} calls "
                f"on average; at most {max(servers.peak, default=0)} at once on a server"
                + (f"; {row['taken_out']} taken out" if row["taken_out"] else ""),
                flush=True,
            )
    finally:
        shutil.rmtree(args.root, ignore_errors=True)
    four = rows.get(4, {})
    nan = float("nan")
    print(
        f"servers_speedup_4={four.get('speedup', nan):.2f} "
        f"calls_share_max_4={four.get('share_max', nan):.3f} "
        f"call_speedup_4={four.get('call_speedup', nan):.2f}"
    )


if __name__ == "__main__":
    main()
