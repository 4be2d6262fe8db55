"""The memory index on Chroma's own server (`chroma run`, from the chromadb package),
started on 127.0.0.1 on a free port with its data in a temporary folder and stopped
after: memories added through MemoryStore land on the server and are retrieved from it,
the index reconciles with SQL through it, a collection deleted on the server behind an
open store is built again, and a server that does not answer is an error, not an empty
index. SQL is SQLite; embeddings are the hashing stand-in (memory/hash_embedder.py)."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import create_engine, insert, select

from concordia_like.memory.chroma_server import chroma_server
from concordia_like.memory.embedder import to_bytes
from concordia_like.memory.hash_embedder import HashEmbedder
from concordia_like.memory.index import IndexGoneError, collection_name, make_client
from concordia_like.memory.records import NewMemory
from concordia_like.memory.stream import MemoryStore
from concordia_like.store.base import sqlite_url
from concordia_like.store.memory_tables import MemoryRow

pytestmark = pytest.mark.stores

START_TIMEOUT_S = 60
NOW = datetime(2024, 5, 6, 9, 0)
AGENTS = ("Ines Marlowe", "Tobias Marlowe")


@pytest.fixture(scope="module")
def chroma_url() -> Iterator[str]:
    with chroma_server() as server:
        yield server.url


@pytest.fixture
def stores(tmp_path, chroma_url):
    """Opens MemoryStores of one run (a fresh run id per test) whose SQL is SQLite in
    tmp_path and whose index is on the Chroma server; closes them at the end."""
    run_id = uuid.uuid4().hex[:12]
    embedder = HashEmbedder()
    opened: list[MemoryStore] = []

    def open_store(url: str = chroma_url) -> MemoryStore:
        store = MemoryStore.open(tmp_path / "run", run_id=run_id, chroma_url=url, embedder=embedder)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        with contextlib.suppress(Exception):  # a test may have stopped its server
            store.close()


def memories(agent: str, n: int, start: int = 0) -> list[NewMemory]:
    things = ["bread", "bridge", "letter", "meeting", "rain", "clinic", "pub", "cat"]
    return [
        NewMemory(
            agent=agent,
            text=f"{agent} noticed the {things[i % len(things)]} number {i}",
            kind="observation",
            created=NOW + timedelta(minutes=i),
            importance=3,
        )
        for i in range(start, start + n)
    ]


def server_ids(url: str, run_id: str, agent: str) -> set[int]:
    """The ids held on the server in the agent's collection (asked by another client)."""
    client = make_client(url=url)
    try:
        col = client.get_collection(collection_name(run_id, agent), embedding_function=None)
        return {int(i) for i in col.get(include=[])["ids"]}
    finally:
        client.close()


def delete_on_server(url: str, run_id: str, agent: str) -> None:
    client = make_client(url=url)
    try:
        client.delete_collection(collection_name(run_id, agent))
    finally:
        client.close()


def test_memories_added_through_the_server_are_retrieved_from_it(stores, chroma_url, tmp_path):
    store = stores()
    added = {a: store.add_many(memories(a, 12)) for a in AGENTS}
    store.close()  # writes the buffered entries to the server
    assert not (tmp_path / "run" / "chroma").exists()  # no local index beside the SQL
    for agent in AGENTS:
        assert server_ids(chroma_url, store.run_id, agent) == {r.id for r in added[agent]}

    again = stores()
    assert again.index.pending == 0  # nothing buffered: what it finds comes from the server
    assert again.reconcile(full=True) == 0  # in sync through the server
    [best, *_] = again.retrieve(AGENTS[0], "the letter number 10", NOW + timedelta(hours=1))
    assert best.record.text == f"{AGENTS[0]} noticed the letter number 10"
    found = again.retrieve(AGENTS[1], "the bridge number 9", NOW + timedelta(hours=1), k=5)
    assert found[0].record.text == f"{AGENTS[1]} noticed the bridge number 9"
    assert all(m.record.agent == AGENTS[1] for m in found)


def test_reopening_reconciles_the_server_index_with_sql(stores, chroma_url, tmp_path):
    store = stores()
    added = store.add_many(memories(AGENTS[0], 8) + memories(AGENTS[1], 8))
    store.close()
    run_id = store.run_id
    # one collection deleted on the server, and rows written to SQL by another tool that
    # never reached the index (one with its vector, one without)
    delete_on_server(chroma_url, run_id, AGENTS[0])
    engine = create_engine(sqlite_url(tmp_path / "run" / "store.sqlite"))
    embedder = HashEmbedder()
    extra = ["Tobias Marlowe heard the ferryman sing", "Tobias Marlowe found a silver key"]
    with engine.begin() as conn:
        for i, words in enumerate(extra):
            conn.execute(
                insert(MemoryRow).values(
                    run_id=run_id,
                    agent=AGENTS[1],
                    kind="observation",
                    text=words,
                    created=NOW,
                    last_retrieved=NOW,
                    importance=5,
                    evidence=[],
                    embedding=to_bytes(embedder.embed_one(words)) if i == 0 else None,
                )
            )
    engine.dispose()

    reopened = stores()  # reconciles on open, through the server
    with engine.connect() as conn:
        sql_ids = {
            a: set(
                conn.scalars(
                    select(MemoryRow.id).where(MemoryRow.run_id == run_id, MemoryRow.agent == a)
                )
            )
            for a in AGENTS
        }
    engine.dispose()
    assert len(sql_ids[AGENTS[1]]) == 10
    reopened.index.flush()
    for agent in AGENTS:
        assert server_ids(chroma_url, run_id, agent) == sql_ids[agent]
    assert {r.id for r in added if r.agent == AGENTS[0]} == sql_ids[AGENTS[0]]
    [key] = reopened.retrieve(AGENTS[1], "a silver key", NOW, k=1)
    assert key.record.text == extra[1]
    [mine] = reopened.retrieve(AGENTS[0], "the rain number 4", NOW, k=1)
    assert mine.record.text == f"{AGENTS[0]} noticed the rain number 4"


def test_a_collection_deleted_on_the_server_under_an_open_store_is_built_again(stores, chroma_url):
    store = stores()
    first = store.add_many(memories(AGENTS[0], 6))
    store.index.flush()
    assert store.retrieve(AGENTS[0], "bread", NOW)  # the store has the collection in hand
    run_id = store.run_id

    # deleted behind the store's back: new entries go to a collection made anew, not
    # kept buffered (and failing) for ever
    delete_on_server(chroma_url, run_id, AGENTS[0])
    later = store.add_many(memories(AGENTS[0], 2, start=6))
    store.index.flush()
    assert store.index.pending == 0
    assert server_ids(chroma_url, run_id, AGENTS[0]) == {r.id for r in later}

    # deleted again: a query fails loudly instead of answering without its memories
    delete_on_server(chroma_url, run_id, AGENTS[0])
    with pytest.raises(IndexGoneError):
        store.retrieve(AGENTS[0], "bread", NOW)
    # and reconciling brings back, from SQL, all that the server lost
    assert store.reconcile() == len(first + later)
    assert server_ids(chroma_url, run_id, AGENTS[0]) == {r.id for r in first + later}
    [best] = store.retrieve(AGENTS[0], "the meeting number 3", NOW, k=1)
    assert best.record.id == first[3].id


def test_a_server_that_does_not_answer_is_an_error_not_an_empty_index(stores):
    with chroma_server() as server:  # a server of this test's own, to stop midway
        url = server.url
        store = stores(url)
        store.add_many(memories(AGENTS[0], 5))
        store.close()
        reopened = stores(url)  # its collections are on the server, none in hand yet
        assert reopened.index.pending == 0
        assert len(reopened.retrieve(AGENTS[1], "bread", NOW)) == 0  # no such collection
    # the server is gone: retrieval must fail, not answer as if there were no memories
    with pytest.raises(httpx.TransportError):
        reopened.retrieve(AGENTS[0], "bread", NOW)


def test_a_cli_run_keeps_its_index_on_the_server_and_resumes_with_it(tmp_path, chroma_url):
    from test_engine_resume import cli, cli_env

    from support.engine import REPO, TOWN, query

    root = tmp_path / "runs"
    base = ["--backend", "scripted", "--quiet", "--root", str(root)]

    def run(*args):
        return subprocess.run(
            cli("run", str(TOWN), *base, *args),
            cwd=REPO,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=180,
        )

    first = run("--steps", "2", "--chroma-url", chroma_url)
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.split("run ", 1)[1].split()[0]
    resumed = run("--steps", "4", "--resume", run_id)  # the index stays on the server
    assert resumed.returncode == 0, resumed.stderr
    assert not (root / run_id / "chroma").exists()
    rows = query(root / run_id / "store.sqlite", "SELECT agent, id FROM memories")
    by_agent: dict[str, set[int]] = {}
    for agent, i in rows:
        by_agent.setdefault(agent, set()).add(i)
    assert rows and all(server_ids(chroma_url, run_id, a) == ids for a, ids in by_agent.items())
    moved = run("--steps", "5", "--resume", run_id, "--chroma-url", "http://127.0.0.1:9")
    assert moved.returncode == 1 and "cannot move it" in moved.stderr
