"""Benchmark of associative memory: insert throughput and single-agent retrieval latency.

Inserts N memories spread over A agents (real embeddings, real SQLite, real Chroma) in
batches as a simulation step would, then retrieves for single agents with fresh query
texts (so every query is embedded: its embedding is part of the latency measured).

    .venv/bin/python scripts/bench/bench_memory.py --memories 100000
    .venv/bin/python scripts/bench/bench_memory.py --quick

The last line is `retrieval_p95_ms=<x>`."""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from concordia_like.memory.embedder import get_embedder
from concordia_like.memory.records import NewMemory, RetrievalQuery
from concordia_like.memory.stream import MemoryStore

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--memories", type=int, default=100_000, help="records to insert")
    ap.add_argument("--agents", type=int, default=100, help="agents they are spread over")
    ap.add_argument("--queries", type=int, default=300, help="single-agent retrievals timed")
    ap.add_argument("--k", type=int, default=5, help="memories returned per retrieval")
    ap.add_argument("--batch", type=int, default=500, help="records per add_many call")
    ap.add_argument("--layout", choices=["per_agent", "shared"], default="per_agent")
    ap.add_argument("--folder", type=Path, default=None, help="store folder (default: temp)")
    ap.add_argument("--keep", action="store_true", help="keep the store folder")
    ap.add_argument(
        "--reuse", action="store_true", help="time retrieval on the store in --folder, if full"
    )
    ap.add_argument("--quick", action="store_true", help="5000 memories, 100 queries")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
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
