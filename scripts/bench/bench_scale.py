"""Benchmark of a step as the world grows: a city of 1,000 and of 10,000 residents.

Everything but the model is real (the scripted model answers at once): the sentence
embedder, the memory index, the store (SQLite, or PostgreSQL through the embedded
server the tests use), the Game Master, attention and autopilot, planning, one commit
per step. The world is the city generated from `worlds/city/city.yaml` at each size
(`--world town`: the town's residents replicated). By default a run starts at the
city's start of day (06:00) and is timed over the working hour after 10:00, when
residents are where their day has taken them (`--start`, `--warmup`, `--steps`).

Each size runs in a process of its own, so that its resident memory is its own. Per
size it prints: seconds to build the world and to create the run (seed memories
indexed), agent-steps per second over the timed steps (after warm-up steps), model
calls per agent-step, peak resident memory (RSS), store bytes written per step (the
values of every INSERT, UPDATE and DELETE the step sends to the store; the Chroma
index's own files are not counted) and how much the store's size grew, and seconds to
resume the run from its last step (its world rebuilt, store and index opened, state
read back) in a new process. `--embedder hash` puts the hashing stand-in in the
sentence embedder's place, to show the engine and the store apart from embedding.
With two sizes it prints how the larger compares: agent-steps per second, store bytes
per step, memories stored per step and bytes per memory stored. `--backend embedded`
(or another backend) runs the model itself, to show what the model part of a step
costs: seconds and calls per step (and every minute within a step, the calls answered
so far by purpose), no resume.

    .venv/bin/python scripts/bench/bench_scale.py --sizes 1000          # about five minutes
    .venv/bin/python scripts/bench/bench_scale.py --start 10:00 --warmup 1   # the walk to work
    .venv/bin/python scripts/bench/bench_scale.py --sizes 1000 --start 10:00 --warmup 0 \\
        --steps 2 --backend embedded
    .venv/bin/python scripts/bench/bench_scale.py                       # 1,000 and 10,000
    .venv/bin/python scripts/bench/bench_scale.py --store postgres
    .venv/bin/python scripts/bench/bench_scale.py --seed 2               # another city

The last line is
`agent_steps_per_s_10000=<x> rss_mb_10000=<y> store_kb_per_step_10000=<z> resume_s_10000=<w>`
(nan for a size not run)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import operator
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOWN = ROOT / "worlds" / "town.yaml"
CITY_SPEC = ROOT / "worlds" / "city" / "city.yaml"
#: the city's seed unless `--seed` says another
CITY_SEED = 1


def _size(value: Any) -> int:
    """Bytes a parameter value carries to the store (numbers as 8)."""
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, dict):
        return sum(_size(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_size(v) for v in value)
    return 8


class WriteCounter:
    """Bytes of the values written through an engine (INSERT, UPDATE, DELETE)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.bytes = 0
        self.statements = 0
        #: memories stored (an observation per resident who perceived something, and
        #: the plan notes and insights of the step)
        self.memories = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, _conn, _cursor, statement, parameters, _context, many) -> None:
        head = statement.lstrip()
        if head[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.bytes += _size(parameters)
            self.statements += 1
            if head.upper().startswith("INSERT INTO MEMORIES"):
                self.memories += len(parameters) if many else 1


def store_size(recorder: Any, folder: Path) -> int:
    """The store's size in bytes (the SQLite file and its log, or the database)."""
    engine = recorder.engine
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.connect() as conn:
            return int(conn.execute(text("select pg_database_size(current_database())")).scalar())
    return sum(p.stat().st_size for p in folder.glob("store.sqlite*"))


def build_world(n: int, kind: str, root: Path, seed: int = CITY_SEED) -> Any:
    """The world of `n` residents: the city generated from `worlds/city/city.yaml` with
    `seed` (written under `root`, where a resume finds it again), the town's residents
    replicated, or a world file (replicated to `n` if it has another number)."""
    from concordia_like.world import load_world, replicate_residents

    if kind == "city":
        from concordia_like.generate.write import generate, write_city

        return write_city(root / f"city-{n}", generate(CITY_SPEC, n, seed))
    world = load_world(TOWN if kind == "town" else kind)
    return world if len(world.personas) == n else replicate_residents(world, n)


def scripted(_folder: Path) -> Any:
    from concordia_like.llm import LanguageModel, make_backend

    return LanguageModel(make_backend("scripted"))


@contextlib.asynccontextmanager
async def models(backend: str) -> Any:
    """The runs' model factory: the scripted model, or a backend (`embedded`, ...)
    opened once and borrowed by the run."""
    if backend == "scripted":
        yield scripted
        return
    from concordia_like.llm import BackendOptions, open_model, run_models

    async with open_model(BackendOptions(backend)) as lender:
        yield run_models(lender)


def use_embedder(kind: str) -> None:
    """`hash`: the hashing stand-in for the sentence embedder, to measure the engine
    and the store apart from the embedding model's cost."""
    if kind == "hash":
        from concordia_like.memory.hash_embedder import install

        install()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def one_size(args: argparse.Namespace) -> dict[str, Any]:
    """Create a run of `args.one` residents and time its steps (this process)."""
    from concordia_like.engine.runs import start_run
    from concordia_like.memory.embedder import get_embedder

    n, root = args.one, Path(args.root)
    use_embedder(args.embedder)
    get_embedder().embed(["warm up the embedding model"])
    t = time.perf_counter()
    world = build_world(n, args.world, root, args.seed)
    world_s = time.perf_counter() - t
    async with models(args.backend) as factory:
        t = time.perf_counter()
        sim = start_run(world, factory, root=root, store=args.url, start_time=args.start)
        create_s = time.perf_counter() - t
        row = await timed_steps(sim, args, n, root)
    return {"world_s": world_s, "create_s": create_s, **row}


async def timed_steps(sim: Any, args: argparse.Namespace, n: int, root: Path) -> dict[str, Any]:
    """Warm-up steps, then the timed ones: their figures."""
    from concordia_like.engine.runs import run_folder

    folder = run_folder(sim.run_id, root)
    for _ in range(args.warmup):
        await sim.run_step()
    counter = WriteCounter(sim.recorder.engine)
    size0, calls0 = store_size(sim.recorder, folder), sim.lm.usage.total.calls
    t = time.perf_counter()
    for i in range(args.steps):
        step_t, step_calls = time.perf_counter(), sim.lm.usage.total.calls
        beat = asyncio.create_task(heartbeat(sim, i + 1, step_t)) if on_model(args) else None
        await sim.run_step()
        if beat is not None:  # minutes a step: say how each went
            beat.cancel()
            print(
                f"  step {i + 1} of {args.steps}: {time.perf_counter() - step_t:.0f} s, "
                f"{sim.lm.usage.total.calls - step_calls} calls",
                file=sys.stderr,
                flush=True,
            )
    wall = time.perf_counter() - t
    calls = sim.lm.usage.total.calls - calls0
    grown = store_size(sim.recorder, folder) - size0
    rss = rss_mb()
    await sim.aclose()
    agent_steps = n * args.steps
    return {
        "residents": n,
        "run_id": sim.run_id,
        "calls_per_step": calls / args.steps,
        "agent_steps_per_s": agent_steps / wall,
        "step_s": wall / args.steps,
        "calls_per_agent_step": calls / agent_steps,
        "rss_mb": rss,
        "store_kb_per_step": counter.bytes / args.steps / 1024,
        "store_grown_kb_per_step": grown / args.steps / 1024,
        "memories_per_step": counter.memories / args.steps,
    }


def on_model(args: argparse.Namespace) -> bool:
    """Whether the runs ask a model (minutes a step) rather than the scripted one."""
    return args.backend != "scripted"


async def heartbeat(sim: Any, step: int, since: float, every_s: float = 60.0) -> None:
    """While a model's step runs (minutes on a CPU), say every minute how many calls of
    each purpose the run has had answered, so a step cut short still tells its pace."""
    while True:
        await asyncio.sleep(every_s)
        done = {p: u["calls"] for p, u in sim.lm.usage.summary()["by_purpose"].items()}
        print(
            f"  step {step}: {time.perf_counter() - since:.0f} s so far, calls answered {done}",
            file=sys.stderr,
            flush=True,
        )


async def resume(args: argparse.Namespace) -> dict[str, Any]:
    """Reopen run `args.resume` from its last step (this process) and run one step."""
    from concordia_like.engine.runs import resume_run
    from concordia_like.memory.embedder import get_embedder

    use_embedder(args.embedder)
    get_embedder().embed(["warm up the embedding model"])
    t = time.perf_counter()
    sim = resume_run(args.resume, scripted, root=Path(args.root), store=args.url)
    resume_s = time.perf_counter() - t
    step = sim.step
    t = time.perf_counter()
    await sim.run_step()
    next_s = time.perf_counter() - t
    await sim.aclose()
    return {"resume_s": resume_s, "resumed_at": step, "next_step_s": next_s}


def child(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """Run this script for one size (or one resume) in a new process; its JSON line."""
    cmd = [sys.executable, __file__, "--root", args.root, "--start", args.start]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--world", args.world]
    cmd += ["--embedder", args.embedder, "--backend", args.backend, "--seed", str(args.seed)]
    if extra.get("url"):
        cmd += ["--url", extra["url"]]
    cmd += ["--one", str(extra["one"])] if "one" in extra else ["--resume", extra["resume"]]
    # a model's steps are reported as they end (on stderr, passed through)
    progress = on_model(args) and "one" in extra
    out = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=None if progress else subprocess.PIPE, text=True
    )
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[2:])} failed:\n{(out.stderr or '')[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def store_urls(kind: str) -> Iterator[Any]:
    """A function giving a fresh store URL per size: None (SQLite in the run's folder)
    or a new database on an embedded PostgreSQL server."""
    if kind != "postgres":
        yield lambda _n: None
        return
    sys.path.insert(0, str(ROOT))
    from tests.support.postgres import postgres_server

    with postgres_server() as server:

        def url(n: int) -> str:
            name = f"bench_scale_{n}_{os.getpid()}"
            server.admin(f'CREATE DATABASE "{name}"')
            return server.url(name)

        yield url


def _per(row: dict[str, Any]) -> float:
    """Store bytes per step per memory stored: what a step writes for each resident
    who perceived something."""
    return row["store_kb_per_step"] / max(row["memories_per_step"], 1)


def targets(small: dict[str, Any], big: dict[str, Any]) -> str:
    """Issue 25's targets at 10,000 residents, each with its figure and whether it is met."""
    checks = [
        ("run created", big["create_s"], "s", "<", 60.0),
        ("agent-steps/s", big["agent_steps_per_s"], "", ">=", 300.0),
        ("RSS", big["rss_mb"], "MB", "<=", 8192.0),
        ("store bytes per step vs 1,000", big["store_kb_per_step"] / small["store_kb_per_step"],
         "x", "<=", 10.0),
        ("resume", big["resume_s"], "s", "<", 30.0),
        ("agent-steps/s vs 1,000", big["agent_steps_per_s"] / small["agent_steps_per_s"],
         "x", ">=", 0.7),
    ]  # fmt: skip
    ops = {"<": operator.lt, "<=": operator.le, ">=": operator.ge}
    out = []
    for name, value, unit, op, bound in checks:
        digits = {"x": 3, "s": 1}.get(unit, 0)
        shown = f"x{value:.{digits}f}" if unit == "x" else f"{value:.{digits}f} {unit}".rstrip()
        verdict = "met" if ops[op](value, bound) else "NOT met"
        out.append(f"{name} {shown} ({op} {bound:g}: {verdict})")
    return "targets at 10000: " + "; ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000", help="residents per run (default 1000,10000)")
    ap.add_argument("--steps", type=int, default=9, help="timed steps per size (default 9)")
    ap.add_argument(
        "--warmup", type=int, default=24, help="steps before the timing (default 24: to 10:00)"
    )
    ap.add_argument(
        "--start", default="06:00", help="time of day the runs start (default 06:00, the city's)"
    )
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument(
        "--seed",
        type=int,
        default=CITY_SEED,
        help=f"the generated city's seed (default {CITY_SEED}): another city of the same spec",
    )
    ap.add_argument(
        "--world",
        default="city",
        help="city (generated from worlds/city/city.yaml, the default), town (its residents "
        "replicated) or a world file",
    )
    ap.add_argument(
        "--embedder",
        choices=("real", "hash"),
        default="real",
        help="real: the sentence embedder (default); hash: its hashing stand-in, to see "
        "the engine and store apart from embedding",
    )
    ap.add_argument(
        "--backend",
        default="scripted",
        help="the model: scripted (default: answers at once) or a backend such as embedded, "
        "to see what the model part costs (no resume figure then)",
    )
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--resume", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one is not None or args.resume is not None:
        result = asyncio.run(one_size(args) if args.one is not None else resume(args))
        print(json.dumps(result))
        return
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    one, five, _ = os.getloadavg()
    seed = f" (seed {args.seed})" if args.world == "city" else ""
    print(
        f"store {args.store}; world {args.world}{seed}; embedder {args.embedder}; from {args.start}"
    )
    print(f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores")
    rows = {}
    args.root = tempfile.mkdtemp(prefix="bench_scale_")
    try:
        with store_urls(args.store) as url_for:
            for n in sizes:
                url = url_for(n)
                row = child(args, one=n, url=url)
                if on_model(args):  # the model's cost: no resume figure
                    rows[n] = row
                    print(
                        f"{n:>6} residents on {args.backend}: {row['step_s']:.1f} s a step, "
                        f"{row['calls_per_step']:.0f} calls per step "
                        f"({row['calls_per_agent_step']:.2f} per agent-step), "
                        f"RSS {row['rss_mb']:.0f} MB",
                        flush=True,
                    )
                    continue
                row.update(child(args, resume=row["run_id"], url=url))
                rows[n] = row
                print(
                    f"{n:>6} residents: world {row['world_s']:.1f} s, run created "
                    f"{row['create_s']:.1f} s, {row['agent_steps_per_s']:.0f} agent-steps/s "
                    f"({row['step_s']:.1f} s a step), "
                    f"{row['calls_per_agent_step']:.2f} calls per agent-step, "
                    f"RSS {row['rss_mb']:.0f} MB, store {row['store_kb_per_step']:.0f} KB "
                    f"written per step (grew {row['store_grown_kb_per_step']:.0f} KB), "
                    f"resumed in {row['resume_s']:.1f} s (next step {row['next_step_s']:.1f} s)",
                    flush=True,
                )
    finally:
        shutil.rmtree(args.root, ignore_errors=True)
    if len(sizes) > 1:
        small, big = rows[sizes[0]], rows[sizes[-1]]

        def times(key: str) -> float:
            return float(big[key] / small[key]) if small.get(key) else float("nan")

        print(
            f"{sizes[-1]} against {sizes[0]}: agent-steps/s x{times('agent_steps_per_s'):.2f}, "
            f"store bytes per step x{times('store_kb_per_step'):.3f}, memories stored per step "
            f"x{times('memories_per_step'):.2f}, bytes per memory stored "
            f"x{_per(big) / _per(small):.2f}"
        )
        if sizes[-1] == 10000 and not on_model(args):
            print(targets(small, big))
    big = rows.get(10000, {})
    nan = float("nan")
    print(
        f"agent_steps_per_s_10000={big.get('agent_steps_per_s', nan):.1f} "
        f"rss_mb_10000={big.get('rss_mb', nan):.0f} "
        f"store_kb_per_step_10000={big.get('store_kb_per_step', nan):.0f} "
        f"resume_s_10000={big.get('resume_s', nan):.1f}"
    )


if __name__ == "__main__":
    main()
