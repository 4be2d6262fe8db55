"""Bringing the vector index back in line with SQL, the source of truth.

Rows are committed before their index entries are written, and index writes are
buffered, so after a crash the index may lack recent memories; after a deleted index
folder it lacks all of them; an in-memory index (the exact layout) starts empty on
every open; after rows deleted by hand it may hold entries SQL no longer has.
Reconciling re-indexes what is missing (from the vectors stored with the rows,
embedding only rows stored without one) and drops what is orphaned."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select

from concordia_like.memory.embedder import Embedder, from_bytes
from concordia_like.memory.exact import ExactIndex
from concordia_like.memory.layouts import AutoIndex, VectorIndex
from concordia_like.store.memory_tables import MEMORIES_WITH_VECTORS, TEXT, VECTOR, MemoryRow

log = logging.getLogger(__name__)

T = MemoryRow.__table__
CHUNK = 5000
_COLS = (T.c.id, T.c.agent, TEXT, VECTOR)


def _rows() -> Any:
    """What indexing reads of a memory: its id, owner, text and vector."""
    return select(*_COLS).select_from(MEMORIES_WITH_VECTORS)


def reconcile_index(
    engine: Engine, index: VectorIndex, embedder: Embedder, run_id: str, *, full: bool = False
) -> int:
    """Re-index the run's memories the index lacks and drop entries SQL lacks; return
    how many were re-indexed. When the counts agree the two are taken to be in sync
    (cheap, on every open) unless `full` asks for the id-by-id comparison."""
    own = T.c.run_id == run_id
    with engine.connect() as conn:
        sql_count = int(conn.execute(select(func.count()).select_from(T).where(own)).scalar_one())
    held = index.count()
    if not full and held == sql_count:
        return 0
    if held == 0:  # built afresh: every row, read in one pass
        log.info("memory index: indexing %d memories", sql_count)
        _add_all(engine, index, embedder, run_id, None)
        return sql_count
    with engine.connect() as conn:
        owners = dict(conn.execute(select(T.c.id, T.c.agent).where(own)).all())
    indexed = index.ids()
    orphans = indexed - owners.keys()
    if orphans:  # entries whose rows are gone (deleted, or a transaction undone)
        index.discard(sorted(orphans))
    missing = sorted(owners.keys() - indexed)
    if not missing:
        return 0
    log.info("memory index: re-indexing %d of %d memories", len(missing), len(owners))
    if len(missing) > CHUNK:  # many (owners kept in Chroma, the rest rebuilt): one pass
        _add_all(engine, index, embedder, run_id, set(missing))
        return len(missing)
    for start in range(0, len(missing), CHUNK):
        chunk = missing[start : start + CHUNK]
        with engine.connect() as conn:
            _add(index, embedder, list(conn.execute(_rows().where(T.c.id.in_(chunk)))))
    index.flush()
    return len(missing)


def _add(index: VectorIndex, embedder: Embedder, rows: Sequence[Any]) -> None:
    """Index rows with their stored vectors (embedding those stored without one)."""
    vecs = np.empty((len(rows), embedder.dim), dtype=np.float32)
    need = [i for i, r in enumerate(rows) if r.embedding is None]
    for i, r in enumerate(rows):
        if r.embedding is not None:
            vecs[i] = from_bytes(r.embedding)
    if need:
        vecs[need] = embedder.embed([rows[i].text for i in need])
    index.add([r.id for r in rows], [r.agent for r in rows], vecs)


def _add_all(
    engine: Engine, index: VectorIndex, embedder: Embedder, run_id: str, only: set[int] | None
) -> None:
    """Index the run's rows (those in `only`, when given), read in one pass."""
    stmt = _rows().where(T.c.run_id == run_id).order_by(T.c.id)
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=CHUNK).execute(stmt)
        for rows in result.partitions():
            _add(index, embedder, rows if only is None else [r for r in rows if r.id in only])
    index.flush()


def load_in_memory(engine: Engine, index: VectorIndex, embedder: Embedder, run_id: str) -> int:
    """Fill the part of the index kept in memory (the exact layout, or the auto layout's
    exact part) from SQL, writing nothing anywhere: for a reader (the viewer) that must
    not touch the run's index on disk. Returns how many entries it holds then."""
    if isinstance(index, AutoIndex):
        exact, skip = index.exact, index.big  # the big owners are in Chroma already
    elif isinstance(index, ExactIndex):
        exact, skip = index, set()
    else:
        return 0
    stmt = _rows().where(T.c.run_id == run_id).order_by(T.c.id)
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=CHUNK).execute(stmt)
        for rows in result.partitions():
            _add(exact, embedder, [r for r in rows if r.agent not in skip])
    return exact.count()
