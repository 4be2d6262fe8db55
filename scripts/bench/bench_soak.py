"""Soak test of the simulation loop: does the process's memory stay flat over a long run?

The town (worlds/town.yaml, 11 residents) runs on the scripted zero-latency model, as in
scripts/bench/bench_sim.py (real embeddings, Chroma and SQLite, the Game Master, importance,
planning and reflection, one commit per step), for 10,000 steps of 10 minutes (69 days
of the town). The resident memory (RSS) of the process is read, after a garbage
collection, every tenth of the run; the two figures compared are at 10% (step 1,000:
the embedding model, the first day plans and every cache are warm by then) and at the
end. The store grows on disk (events, memories): that is not counted, but the memory
the process holds for a growing store (Chroma's vector index, SQLite's page cache) is.
Beside RSS each checkpoint prints SQLite's own heap, and, by kind, Python's arenas and
live blocks and malloc's bytes in use: where a growth sits, before `--trace`.

    .venv/bin/python scripts/bench/bench_soak.py                 # 10,000 steps
    .venv/bin/python scripts/bench/bench_soak.py --quick         # 2,000 steps (200 and 2,000)
    .venv/bin/python scripts/bench/bench_soak.py --steps 5000    # checkpoints at 500 and 5,000
    .venv/bin/python scripts/bench/bench_soak.py --quick --trace # also: what grew, by line
    .venv/bin/python scripts/bench/bench_soak.py --types         # which object types grew
    .venv/bin/python scripts/bench/bench_soak.py --chroma-server # the index in `chroma run`
    .venv/bin/python scripts/bench/bench_soak.py --hash-embedder # the hashing embedder, no model

The vector index holds every memory's vector by design, so in one process the store's
growth shows in RSS. `--chroma-server` puts the index in Chroma's own server (started on
127.0.0.1 and stopped at the end), as a larger deployment would: the RSS compared is
then the simulation's alone, and the server's is printed beside it. `--hash-embedder`
swaps the sentence model for the hashing embedder (concordia_like.memory.hash_embedder):
about twice the steps per second, and the loop's own memory without the model's caches.

`--trace` runs tracemalloc (several times slower) and prints the source lines whose
Python allocations grew most between the two checkpoints, and the object types whose
counts grew; allocations made in C++ or Rust (Chroma's index, SQLite) are not traced
there and show only in RSS.

The run is written to a temporary folder, removed at the end. The last line is
`rss_<a>_mb=<x> rss_<b>_mb=<y> growth=<y/x>` (a, b: the two checkpoint steps)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import os
import re
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from concordia_like.engine.runs import start_run
from concordia_like.engine.simulation import Simulation
from concordia_like.memory import hash_embedder
from concordia_like.memory.chroma_server import chroma_server
from concordia_like.memory.embedder import get_embedder
from concordia_like.world import load_world

try:  # the helpers of the simulation benchmark: same model, same town
    from bench_sim import WORLD, load, scripted
except ImportError:  # run from elsewhere than scripts/bench/
    from scripts.bench.bench_sim import WORLD, load, scripted

#: the growth the issue allows between the two checkpoints
ALLOWED_GROWTH = 1.10


def rss_mb(pid: int | str = "self") -> float:
    """A process's resident memory now, in MiB (VmRSS, or psutil where /proc lacks it)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import psutil

    return psutil.Process(None if pid == "self" else int(pid)).memory_info().rss / 2**20


def rss_parts_mb() -> str:
    """RSS by kind (anonymous, file-backed, shared): a growing store file that is mapped
    shows as file or shared memory, the process's own heap as anonymous."""
    parts = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
                    parts[line[3:].split(":")[0].lower()] = int(line.split()[1]) / 1024
    except OSError:
        return ""
    return " ".join(f"{k} {v:.0f}" for k, v in parts.items())


def sqlite_heap_mb() -> float:
    """Memory SQLite's own allocator holds now (page caches, schemas, statements) for
    every connection in the process: the part of RSS that a growing store can claim."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        return lib.sqlite3_memory_used() / 2**20
    return float("nan")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def heaps_mb() -> str:
    """The process's heaps apart: Python's object allocator (its arenas, and the bytes
    in live blocks), and the C heap (malloc's bytes in use, mmapped blocks included),
    which holds SQLite's, numpy's and the extensions' allocations."""
    out = []
    with contextlib.suppress(OSError, AttributeError), tempfile.TemporaryFile("w+") as f:
        sys.stderr.flush()
        saved = os.dup(2)
        try:  # the allocator's statistics go to the C stderr: catch them in a file
            os.dup2(f.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read()
        arenas = re.search(r"# arenas allocated current\s*=\s*([\d,]+)", text)
        used = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
        if arenas and used:
            n = int(arenas.group(1).replace(",", ""))
            out.append(f"py {n} arenas, {int(used.group(1).replace(',', '')) / 2**20:.1f} used")
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        m = libc.mallinfo2()
        out.append(f"malloc {(m.uordblks + m.hblkhd) / 2**20:.1f}")
    return " ".join(out)


def malloc_trim() -> None:
    """Hand the C heap's free pages back to the system (glibc), so that RSS counts what
    the process holds rather than what its allocator has not yet returned."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: RSS as it is
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measured_rss_mb() -> float:
    gc.collect()
    malloc_trim()
    return rss_mb()


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def embed_cache() -> int:
    """Vectors in the embedder's LRU cache (bounded by its `cache_size`)."""
    return len(getattr(get_embedder(), "_cache", ()))


def type_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def bounded_sizes(sim: Simulation) -> str:
    """The sizes of the usage records, to show they do not grow with calls."""
    usage = sim.lm.usage
    buckets = sum(
        len(s.prompt_token_hist.counts) + len(s.latency_hist.counts)
        for s in [usage.total, *usage.by_purpose.values(), *usage.by_agent.values()]
    )
    b = sim.lm.batcher
    return (
        f"{usage.total.calls} calls in {b.batches} batches; kept: {buckets} histogram "
        f"buckets, {len(b.recent_batch_sizes)} recent batch sizes, "
        f"{len(b.batch_size_counts)} size counts"
    )


def print_trace(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot, top: int) -> None:
    noise = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        tracemalloc.Filter(False, "<unknown>"),
    ]
    first, last = first.filter_traces(noise), last.filter_traces(noise)
    grown = [d for d in last.compare_to(first, "lineno") if d.size_diff > 0]
    total = sum(d.size_diff for d in grown)
    print(f"\ntraced Python allocations grown by {total / 2**20:.1f} MiB in all; top {top} lines:")
    for d in grown[:top]:
        frame = d.traceback[0]
        print(
            f"  {d.size_diff / 2**20:+8.2f} MiB {d.count_diff:+9d} blocks  "
            f"{frame.filename}:{frame.lineno}"
        )


async def soak(
    steps: int,
    trace: bool,
    top: int,
    chroma_url: str | None = None,
    server_pid: int = 0,
    count_types: bool = False,
) -> tuple[float, float, int, int]:
    checkpoints = sorted({max(1, steps // 10), steps})
    report_every = max(1, steps // 10)
    world = load_world(WORLD)
    root = Path(tempfile.mkdtemp(prefix="bench_soak_"))
    rss: dict[int, float] = {}
    snapshots: list[tracemalloc.Snapshot] = []
    types: list[Counter[str]] = []
    try:
        sim = start_run(world, scripted, root=root, chroma_url=chroma_url)
        print(f"run {sim.run_id}: {len(sim.agents)} residents, {steps} steps; {load()}")
        server = f" {'server MiB':>10}" if server_pid else ""
        print(
            f"{'step':>6} {'RSS MiB':>8} {'memories':>9} {'store MiB':>9} "
            f"{'embed cache':>11} {'SQLite MiB':>10} {'steps/s':>8}{server}"
        )
        start = last_t = time.perf_counter()
        last_step = 0
        for step in range(1, steps + 1):
            await sim.run_step()
            if step % report_every and step not in checkpoints:
                continue
            now = time.perf_counter()
            rss[step] = measured_rss_mb()
            print(
                f"{step:>6} {rss[step]:>8.1f} {sim.memory.count():>9} "
                f"{folder_mb(root):>9.1f} {embed_cache():>11} {sqlite_heap_mb():>10.1f} "
                f"{(step - last_step) / (now - last_t):>8.2f}"
                + (f" {rss_mb(server_pid):>10.1f}" if server_pid else "")
                + f"   ({rss_parts_mb()}; {heaps_mb()})",
                flush=True,
            )
            if (trace or count_types) and step in checkpoints:
                if trace:
                    snapshots.append(tracemalloc.take_snapshot())
                types.append(type_counts())
            last_step, last_t = step, time.perf_counter()
        wall = time.perf_counter() - start
        print(f"{steps} steps in {wall:.0f} s; {bounded_sizes(sim)}")
        await sim.lm.aclose()
        sim.memory.close()
        sim.recorder.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if trace and len(snapshots) == 2:
        print_trace(snapshots[0], snapshots[1], top)
    if len(types) == 2:
        grown = (types[1] - types[0]).most_common(top)
        print(f"\nobject types grown most (of {sum(types[1].values())} objects):")
        for name, n in grown:
            print(f"  {n:+9d} {name} (now {types[1][name]})")
    a, b = checkpoints[0], checkpoints[-1]
    return rss[a], rss[b], a, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, help="steps in all (default 10000; quick 2000)")
    ap.add_argument("--quick", action="store_true", help="2000 steps, checkpoints at 200/2000")
    ap.add_argument(
        "--trace", action="store_true", help="tracemalloc: what grew between the checkpoints"
    )
    ap.add_argument("--types", action="store_true", help="only the object types that grew (fast)")
    ap.add_argument("--top", type=int, default=25, help="lines and types shown by --trace")
    ap.add_argument(
        "--chroma-server", action="store_true", help="the index in `chroma run` on 127.0.0.1"
    )
    ap.add_argument("--hash-embedder", action="store_true", help="the hashing embedder, no model")
    args = ap.parse_args()
    steps = args.steps or (2000 if args.quick else 10_000)
    if steps < 2:
        ap.error("--steps must be at least 2")
    if args.hash_embedder:
        hash_embedder.install()
    print(f"RSS at start {rss_mb():.1f} MiB")
    start = time.perf_counter()
    get_embedder().embed(["warm up the embedding model"])
    print(f"embedding model loaded in {time.perf_counter() - start:.1f} s; RSS {rss_mb():.1f} MiB")
    if args.trace:
        tracemalloc.start()
    if args.chroma_server:
        with chroma_server() as server:
            print(f"index on {server.url}, server RSS {rss_mb(server.pid):.1f} MiB")
            first, last, a, b = asyncio.run(
                soak(steps, args.trace, args.top, server.url, server.pid, args.types)
            )
    else:
        first, last, a, b = asyncio.run(soak(steps, args.trace, args.top, count_types=args.types))
    growth = last / first
    verdict = "within" if growth <= ALLOWED_GROWTH else "OVER"
    print(f"\nat the end: {load()}")
    print(f"RSS grew {100 * (growth - 1):+.1f}% from step {a} to step {b}: {verdict} 10%")
    print()
    print(f"rss_{a}_mb={first:.1f} rss_{b}_mb={last:.1f} growth={growth:.3f}")


if __name__ == "__main__":
    main()
