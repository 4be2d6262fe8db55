"""Benchmark of associative memory: insert throughput and single-agent retrieval latency.

Inserts N memories spread over A agents (real embeddings, real SQLite, real Chroma) in
batches as a simulation step would, then retrieves for single agents with fresh query
texts (so every query is embedded: its embedding is part of the latency measured).

    .venv/bin/python scripts/bench/bench_memory.py --memories 100000
    .venv/bin/python scripts/bench/bench_memory.py --quick

The last line is `retrieval_p95_ms=<x>`.

`--residents N` measures instead what a run of N residents costs its memory at the
start: the town's residents (or `--world`'s, such as a generated city) replicated to N
(world/replicate.py), each with its card's seed memories and more drawn from a pool of
templated texts up to `--seeds`, written as a run's creation writes them (one
embedding call, one transaction, the index after the commit), then one step's
retrieval for `--queries` residents and a reopen (the index rebuilt or reconciled from
SQL, as on resume). The last line is
`residents=<n> layout=<l> create_s=<x> rss_mb=<y> query_ms=<z> reopen_s=<w>`."""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from concordia_like.memory.embedder import get_embedder
from concordia_like.memory.hash_embedder import HashEmbedder
from concordia_like.memory.layouts import LAYOUTS, run_layout
from concordia_like.memory.records import NewMemory, RetrievalQuery
from concordia_like.memory.stream import MemoryStore
from concordia_like.world import load_world, replicate_residents

WORLD = Path(__file__).resolve().parents[2] / "worlds" / "town.yaml"

NAMES = [
    "Isabella", "Klaus", "Maria", "Tom", "Ayesha", "Sam", "Jennifer", "Carlos", "Yuriko",
    "Wolfgang", "Hailey", "Giorgio", "Latoya", "Rajiv", "Abigail", "Francisco", "Mei",
    "Arthur", "Ryan", "Carmen", "Eddy", "Jane", "John", "Tamara",
]  # fmt: skip
VERBS = [
    "talks with", "argues with", "buys bread from", "helps", "waves at", "lends a book to",
    "cooks dinner for", "paints a portrait of", "plans a party with", "studies with",
    "complains to", "borrows money from", "jogs with", "writes a letter to", "meets",
    "teaches chess to", "sings with", "repairs a bike for", "shares gossip with", "thanks",
]  # fmt: skip
PLACES = [
    "at the cafe", "in the park", "at the library", "by the river", "at the market",
    "in the pharmacy", "at the college", "in the kitchen", "at the bar", "on main street",
    "at the town hall", "in the garden", "at the bakery", "at the bus stop",
]  # fmt: skip
TOPICS = [
    "about the election", "about the weather", "about a new recipe", "about the exam",
    "about the festival", "about rent prices", "about a lost cat", "about music",
    "about the football match", "about a secret", "about the harvest", "about a novel",
    "about moving away", "about a job offer", "about the broken fountain", "",
]  # fmt: skip
MOODS = ["", "cheerfully", "quietly", "angrily", "nervously", "at length", "briefly", "again"]
QUESTIONS = [
    "What do I know about {n}?", "Where can I buy {t}?", "Who did I meet {p}?",
    "What happened {p} recently?", "What should I talk about with {n}?",
    "Did anyone mention {t}?", "What are my plans with {n} {p}?",
]  # fmt: skip
THINGS = ["bread", "coffee", "flowers", "books", "medicine", "paint", "tickets", "wine"]


def memory_text(rng: random.Random, agent: int) -> str:
    who = NAMES[agent % len(NAMES)]
    other = rng.choice(NAMES)
    parts = [who, rng.choice(MOODS), rng.choice(VERBS), other, rng.choice(PLACES)]
    parts += [
        rng.choice(TOPICS),
        f"around {rng.randint(6, 22)}:{rng.choice(['00', '15', '30', '45'])}",
    ]
    return " ".join(p for p in parts if p)


def query_text(rng: random.Random, i: int) -> str:
    q = rng.choice(QUESTIONS).format(
        n=rng.choice(NAMES), t=rng.choice(THINGS), p=rng.choice(PLACES)
    )
    return f"{q} ({i})"  # distinct texts: no query is served from the embedding cache


def insert(
    store: MemoryStore, args: argparse.Namespace, rng: random.Random, t0: datetime, folder: Path
) -> float:
    """Insert the memories as a simulation would: batches of many agents' memories."""
    texts = [memory_text(rng, i % args.agents) for i in range(args.memories)]
    print(f"{len(set(texts))} distinct texts of {len(texts)}; {args.agents} agents; {folder}")
    start = time.perf_counter()
    for b in range(0, args.memories, args.batch):
        batch = [
            NewMemory(
                agent=f"agent{i % args.agents:03d}",
                text=texts[i],
                kind="observation",
                created=t0 + timedelta(minutes=i * 10 // args.agents),
                importance=1 + (i * 7919) % 10,
            )
            for i in range(b, min(args.memories, b + args.batch))
        ]
        store.add_many(batch)
        done = b + len(batch)
        if done % (args.batch * 20) == 0 or done == args.memories:
            rate = done / (time.perf_counter() - start)
            print(f"  inserted {done:>7} ({rate:6.0f} records/s)", flush=True)
    store.index.flush()
    seconds = time.perf_counter() - start
    rate = args.memories / seconds
    print(f"insert: {args.memories} records in {seconds:.1f} s = {rate:.0f} records/s")
    return rate


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class TimedEmbedder:
    """The embedder, with the seconds and texts it was asked to embed counted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.seconds = 0.0
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> Any:
        t = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - t
            self.texts += len(texts)

    def embed_one(self, text: str) -> Any:
        return self.embed([text])[0]


def residents(args: argparse.Namespace) -> None:
    """A run's memory at the start, for `args.residents` residents (see the docstring)."""
    rng = random.Random(args.seed)
    t = time.perf_counter()
    world = replicate_residents(load_world(args.world), args.residents)
    inner: Any = HashEmbedder() if args.hash_embedder else get_embedder()
    inner.embed(["warm up the model"])
    print(f"world and embedder ready in {time.perf_counter() - t:.1f} s")
    pool = [memory_text(rng, i) for i in range(args.pool)]
    t0 = datetime(2024, 2, 13, 7, 0)
    seeds = []
    for name, card in world.personas.items():
        texts = [m.text for m in card.seed_memories]
        texts += [rng.choice(pool) for _ in range(args.seeds - len(texts))]
        seeds += [NewMemory(name, text, "observation", t0, 1 + len(text) % 10) for text in texts]
    layout = args.layout or run_layout(args.residents)
    print(
        f"{args.residents} residents, {len(seeds)} seed memories "
        f"({len({m.text for m in seeds})} distinct texts), layout {layout}"
    )
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench_memory_"))
    embedder = TimedEmbedder(inner)
    rss_before = rss_mb()
    t = time.perf_counter()
    store = MemoryStore.open(folder, run_id="bench", layout=layout, embedder=embedder)
    with Session(store.engine) as session, session.begin():
        store.add_many(seeds, now=t0, session=session)
    store.index.flush()
    create_s = time.perf_counter() - t
    rss = rss_mb()
    print(
        f"created in {create_s:.1f} s (embedding {embedder.seconds:.1f} s); "
        f"RSS {rss:.0f} MiB ({rss - rss_before:+.0f} MiB for the memories)"
    )
    now = t0 + timedelta(hours=1)
    names = list(world.personas)
    queries = [
        RetrievalQuery(rng.choice(names), query_text(rng, i), now, args.k)
        for i in range(args.queries)
    ]
    inner.embed([q.text for q in queries])  # the queries' embedding is not timed here
    t = time.perf_counter()
    got = store.retrieve_many(queries, touch=False)
    query_ms = (time.perf_counter() - t) * 1000 / len(queries)
    assert all(len(g) == args.k for g in got)
    print(f"one step's retrieval for {len(queries)} residents: {query_ms:.2f} ms per resident")
    store.close()
    t = time.perf_counter()
    store = MemoryStore.open(folder, run_id="bench", layout=layout, embedder=embedder)
    reopen_s = time.perf_counter() - t
    assert store.index.count() == len(seeds)
    store.close()
    if not args.keep and args.folder is None:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"reopened (index rebuilt or reconciled from SQL) in {reopen_s:.1f} s")
    print(
        f"residents={args.residents} layout={layout} create_s={create_s:.1f} "
        f"rss_mb={rss:.0f} query_ms={query_ms:.2f} reopen_s={reopen_s:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--memories", type=int, default=100_000, help="records to insert")
    ap.add_argument("--agents", type=int, default=100, help="agents they are spread over")
    ap.add_argument("--queries", type=int, default=300, help="single-agent retrievals timed")
    ap.add_argument("--k", type=int, default=5, help="memories returned per retrieval")
    ap.add_argument("--batch", type=int, default=500, help="records per add_many call")
    ap.add_argument(
        "--layout",
        choices=LAYOUTS,
        default=None,
        help="default: per_agent (--residents: as a run picks it)",
    )
    ap.add_argument("--residents", type=int, default=None, help="time a run's start instead")
    ap.add_argument("--seeds", type=int, default=15, help="seed memories per resident")
    ap.add_argument("--pool", type=int, default=2000, help="templated seed texts drawn from")
    ap.add_argument(
        "--world", type=Path, default=WORLD, help="whose residents (default: the town's)"
    )
    ap.add_argument("--hash-embedder", action="store_true", help="skip the sentence model")
    ap.add_argument("--folder", type=Path, default=None, help="store folder (default: temp)")
    ap.add_argument("--keep", action="store_true", help="keep the store folder")
    ap.add_argument(
        "--reuse", action="store_true", help="time retrieval on the store in --folder, if full"
    )
    ap.add_argument("--quick", action="store_true", help="5000 memories, 100 queries")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.residents is not None:
        residents(args)
        return
    args.layout = args.layout or "per_agent"
    if args.quick:
        args.memories, args.queries = min(args.memories, 5000), min(args.queries, 100)

    rng = random.Random(args.seed)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench_memory_"))
    t_load = time.perf_counter()
    embedder = get_embedder()
    embedder.embed(["warm up the model"])
    print(f"embedder loaded in {time.perf_counter() - t_load:.1f} s")

    t0 = datetime(2024, 2, 13, 7, 0)
    store = MemoryStore.open(folder, run_id="bench", layout=args.layout, embedder=embedder)
    insert_rate = None
    if args.reuse and store.count() >= args.memories:
        print(f"reusing the {store.count()} memories in {folder}")
    else:
        insert_rate = insert(store, args, rng, t0, folder)
    # a fresh open, as when a run starts or resumes: nothing of the index is in memory
    store.close()
    t = time.perf_counter()
    store = MemoryStore.open(folder, run_id="bench", layout=args.layout, embedder=embedder)
    print(f"store reopened in {(time.perf_counter() - t) * 1000:.0f} ms")

    now = t0 + timedelta(minutes=args.memories * 10 // args.agents + 60)
    embed_ms: list[float] = []
    for i in range(min(100, args.queries)):
        t = time.perf_counter()
        embedder.embed([f"embedding alone {query_text(rng, i)}"])
        embed_ms.append((time.perf_counter() - t) * 1000)

    def timed(agent: str, i: int) -> float:
        nonlocal now
        t = time.perf_counter()
        got = store.retrieve(agent, query_text(rng, i), now, k=args.k)
        ms = (time.perf_counter() - t) * 1000
        assert len(got) == args.k, (agent, len(got))
        now += timedelta(minutes=1)
        return ms

    # first query of each agent: opens its collection and loads its graph from disk
    cold_ms = [timed(f"agent{a:03d}", -1 - a) for a in range(args.agents)]
    # steady state, as in a simulation where every agent retrieves every step
    lat_ms = [timed(f"agent{rng.randrange(args.agents):03d}", i) for i in range(args.queries)]
    # a simulation step: every agent retrieves at once (one embedding call, one statement)
    step_ms = []
    for step in range(5):
        queries = [
            RetrievalQuery(f"agent{a:03d}", query_text(rng, 10_000 * (step + 1) + a), now, args.k)
            for a in range(args.agents)
        ]
        t = time.perf_counter()
        store.retrieve_many(queries)
        step_ms.append((time.perf_counter() - t) * 1000)
        now += timedelta(minutes=10)
    store.close()
    if not args.keep and args.folder is None:
        shutil.rmtree(folder, ignore_errors=True)

    if insert_rate is not None:
        print(f"insert_records_per_s={insert_rate:.0f}")
    print(f"query embedding alone: p50 {pct(embed_ms, 50):.2f} ms, p95 {pct(embed_ms, 95):.2f} ms")
    print(
        f"first retrieval per agent (cold: {args.agents} queries): p50 {pct(cold_ms, 50):.2f} ms, "
        f"p95 {pct(cold_ms, 95):.2f} ms, max {max(cold_ms):.2f} ms"
    )
    print(
        f"retrieval ({args.queries} single-agent queries, k={args.k}, embedding included): "
        f"p50 {pct(lat_ms, 50):.2f} ms, p95 {pct(lat_ms, 95):.2f} ms, "
        f"mean {statistics.fmean(lat_ms):.2f} ms, max {max(lat_ms):.2f} ms"
    )
    print(
        f"batched retrieval for all {args.agents} agents (distinct queries): "
        f"median {statistics.median(step_ms):.0f} ms per step"
    )
    print(f"retrieval_p95_ms={pct(lat_ms, 95):.2f}")


if __name__ == "__main__":
    main()
