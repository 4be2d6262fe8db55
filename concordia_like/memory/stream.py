"""The memory store: every agent's memory stream, in SQL, with a vector index by owner
(layouts.py: Chroma collections, or exact search in memory).

One object per run, used for all agents at once: adding the step's memories for every
agent is one embedding call (each distinct text once) and one transaction, and
retrieving for every agent is one embedding call, one index query per agent, one SQL
statement for the candidates of each 100 agents and one update of last-retrieved times.

Writes go to SQL first and to the index after the commit; opening the store reconciles
the index with SQL, so a crash between the two writes, or a deleted index folder, loses
nothing."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from concordia_like.memory.candidates import CandidateReader, candidate_record, winner_record
from concordia_like.memory.embedder import (
    Embedder,
    embed_distinct,
    from_bytes,
    get_embedder,
    to_bytes,
)
from concordia_like.memory.importance import heuristic_importance
from concordia_like.memory.layouts import Layout, VectorIndex, open_index
from concordia_like.memory.reconcile import load_in_memory, reconcile_index
from concordia_like.memory.records import MemoryRecord, NewMemory, RetrievalQuery, ScoredMemory
from concordia_like.memory.rows import (
    MemoryRows,
    insert_rows,
    insert_vectors,
    naive_utc,
    transaction,
)
from concordia_like.memory.scoring import Candidate, ScoringWeights, score_candidates
from concordia_like.store.base import make_engine, sqlite_url
from concordia_like.store.memory_tables import SHARED
from concordia_like.text import text_key

log = logging.getLogger(__name__)

#: rows per INSERT statement of `add_many`
INSERT_SLICE = 10_000
#: vector keys a store remembers writing before it forgets them all (and writes a
#: vector it already holds again, to be kept as it was)
VECTOR_KEYS_KEPT = 200_000

__all__ = ["MemoryStore", "naive_utc"]


class MemoryStore(MemoryRows):
    """Add, retrieve and reconcile the memories of every agent of one run (reading
    them as rows is MemoryRows')."""

    def __init__(
        self,
        engine: Engine,
        index: VectorIndex,
        *,
        run_id: str = "default",
        embedder: Embedder | None = None,
        weights: ScoringWeights = ScoringWeights(),
        n_candidates: int = 50,
        n_recent: int = 10,
        n_important: int = 10,
        reconcile: bool = True,
    ) -> None:
        super().__init__(engine, run_id)
        self.index = index
        self.embedder = embedder or get_embedder()
        self.weights = weights
        #: nearest memories the index proposes per query
        self.n_candidates = n_candidates
        #: besides those, each agent's `n_recent` most recently retrieved and
        #: `n_important` most important memories (see candidates.py)
        self.candidates = CandidateReader(run_id, n_recent, n_important)
        #: keys of the vectors this store is known to hold (a key missing here is
        #: written again and kept as it was): added when their transaction commits
        self._vector_keys: set[str] = set()
        self._owns_engine = False
        if reconcile:
            self.reconcile()
        else:  # the index on disk is left alone; one kept in memory is filled
            load_in_memory(engine, index, self.embedder, run_id)

    @classmethod
    def open(
        cls,
        folder: str | Path,
        *,
        run_id: str = "default",
        db_url: str | None = None,
        chroma_url: str | None = None,
        layout: Layout = "per_agent",
        engine: Engine | None = None,
        **options: Any,
    ) -> MemoryStore:
        """The store of a run folder: `store.sqlite` and `chroma/` in it by default, or
        any SQLAlchemy URL / an already open engine, and a Chroma server URL. The index
        is laid out as `layout` says (layouts.py; a run picks it with `run_layout`)."""
        folder = Path(folder)
        owned = engine is None
        if engine is None:
            engine = make_engine(db_url or sqlite_url(folder / "store.sqlite"))
        index = open_index(
            layout,
            None if chroma_url else folder / "chroma",
            chroma_url,
            run_id=run_id,
        )
        store = cls(engine, index, run_id=run_id, **options)
        store._owns_engine = owned
        return store

    def close(self) -> None:
        """Write the index's buffered entries and release it (and the engine, if the
        store opened it)."""
        self.index.close()
        if self._owns_engine:
            self.engine.dispose()

    # -- adding ---------------------------------------------------------------------

    def add(self, memory: NewMemory, *, now: datetime | None = None) -> MemoryRecord:
        return self.add_many([memory], now=now)[0]

    def add_many(
        self,
        memories: Sequence[NewMemory],
        *,
        now: datetime | None = None,
        session: Session | None = None,
    ) -> list[MemoryRecord]:
        """Store memories of any agents: one embedding call, one INSERT per slice.

        `created` defaults to `now`; a memory without importance gets the heuristic
        score (the agent layer normally scores them first with ImportanceScorer).
        With `session` (the engine's step transaction) the rows join that transaction
        and reach the index only when it commits; otherwise they are committed here."""
        if not memories:
            return []
        vectors = embed_distinct(self.embedder, [m.text for m in memories])
        records: list[MemoryRecord] = []
        for m in memories:
            when = m.created or now
            if when is None:
                raise ValueError(f"memory of {m.agent!r} has no time: pass created or now")
            when = naive_utc(when)
            importance = m.importance
            if importance is None:
                importance = heuristic_importance(m.text, m.kind)
            records.append(MemoryRecord(0, m.agent, m.text, m.kind, when, when, importance))
        keys = [text_key(m.text) for m in memories]
        ids: list[int] = []
        with transaction(self.engine, session) as conn:
            # in slices: a big world's seed memories would otherwise hold every row's
            # parameters at once
            for at in range(0, len(memories), INSERT_SLICE):
                part = range(at, min(len(memories), at + INSERT_SLICE))
                known = self._vector_keys
                new = {
                    keys[i]: (to_bytes(vectors[i]), memories[i].text)
                    for i in part
                    if keys[i] not in known
                }
                insert_vectors(conn, self.run_id, new)
                rows = [self._row(records[i], memories[i], keys[i]) for i in part]
                ids += insert_rows(conn, self.run_id, rows)
        agents = [m.agent for m in memories]
        if session is None:
            self._committed(ids, agents, vectors, keys)
        else:
            self._index_after_commit(session, ids, agents, vectors, keys)
        return [
            replace(r, id=i, evidence=m.evidence)
            for i, r, m in zip(ids, records, memories, strict=True)
        ]

    def _row(self, record: MemoryRecord, memory: NewMemory, key: str) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "agent": record.agent,
            "kind": record.kind,
            "text": SHARED,  # the text's, in memory_vectors
            "created": record.created,
            "last_retrieved": record.last_retrieved,
            "importance": record.importance,
            "evidence": list(memory.evidence),
            "embedding": None,  # the text's, in memory_vectors
            "text_key": key,
        }

    def _index(self, ids: list[int], agents: list[str], vectors: np.ndarray) -> None:
        try:
            self.index.add(ids, agents, vectors)
        except Exception as exc:  # SQL has them; the next reconcile indexes them
            log.warning("memory index write failed (%s); reconcile will repair it", exc)

    def _committed(
        self, ids: list[int], agents: list[str], vectors: np.ndarray, keys: list[str]
    ) -> None:
        """What follows a commit of new rows: their index entries, and their vectors'
        keys known to be stored (forgotten now and then: a run has very many)."""
        if len(self._vector_keys) > VECTOR_KEYS_KEPT:
            self._vector_keys.clear()
        self._vector_keys.update(keys)
        self._index(ids, agents, vectors)

    def _index_after_commit(
        self,
        session: Session,
        ids: list[int],
        agents: list[str],
        vectors: np.ndarray,
        keys: list[str],
    ) -> None:
        """`_committed` once the rows' transaction commits; nothing if it rolls back
        (their ids may then be given to other rows, their vectors were not stored)."""

        def committed(_session: Session) -> None:
            event.remove(session, "after_rollback", rolled_back)
            self._committed(ids, agents, vectors, keys)

        def rolled_back(_session: Session) -> None:
            event.remove(session, "after_commit", committed)

        event.listen(session, "after_commit", committed, once=True)
        event.listen(session, "after_rollback", rolled_back, once=True)

    # -- retrieving -----------------------------------------------------------------

    def retrieve(self, agent: str, query: str, now: datetime, k: int = 5) -> list[ScoredMemory]:
        return self.retrieve_many([RetrievalQuery(agent, query, now, k)])[0]

    def retrieve_many(
        self, queries: Sequence[RetrievalQuery], *, touch: bool = True
    ) -> list[list[ScoredMemory]]:
        """The best memories for each query, scored by recency, importance and relevance.

        One embedding call for all query texts (or parts), one index query per agent (all of that
        agent's queries together), one SQL statement for the candidates, one for the
        last-retrieved update (`touch=False` leaves the times alone)."""
        if not queries:
            return []
        qvecs = self._query_vectors(queries)
        by_agent: dict[str, list[int]] = {}
        for qi, q in enumerate(queries):
            by_agent.setdefault(q.agent, []).append(qi)
        hits: list[set[int]] = [set() for _ in queries]  # ids the index proposes
        requests = [
            (agent, qvecs[qis], max(self.n_candidates, max(queries[qi].k for qi in qis)))
            for agent, qis in by_agent.items()
        ]
        answers = self.index.query_many(requests)
        for qis, found_per_query in zip(by_agent.values(), answers, strict=True):
            for qi, found in zip(qis, found_per_query, strict=True):
                hits[qi] = {h.id for h in found}
        wanted = {a: set().union(*(hits[qi] for qi in qis)) for a, qis in by_agent.items()}
        with self.engine.connect() as conn:
            rows, extra = self.candidates.rows(conn, wanted)
        results: list[list[ScoredMemory]] = []
        records: dict[int, MemoryRecord] = {}  # an agent's queries share its candidates
        for qi, q in enumerate(queries):
            ids = [
                mid
                for mid in sorted(hits[qi] | extra.get(q.agent, set()))
                if (row := rows.get(mid)) is not None and row.agent == q.agent
            ]  # an index entry SQL does not have is left out (reconcile drops it)
            # relevance from SQL's vector, not the index's distance: the index only
            # proposes candidates, so a score is the same whether the memory is still
            # in the index's write buffer (exact) or in Chroma (float32 HNSW
            # distance), and a resumed run ranks exactly as an uninterrupted one
            relevance = self._relevances([rows[mid] for mid in ids], qvecs[qi])
            cands = []
            for mid, rel in zip(ids, relevance, strict=True):
                record = records.get(mid)
                if record is None:
                    record = records[mid] = candidate_record(rows[mid])
                cands.append(Candidate(record, rel))
            best = score_candidates(cands, naive_utc(q.now), self.weights, q.k)
            results.append(
                [replace(s, record=winner_record(s.record, rows[s.record.id])) for s in best]
            )
        if touch:
            self.touch(queries, results)
        return results

    def _query_vectors(self, queries: Sequence[RetrievalQuery]) -> np.ndarray:
        """One unit vector per query, from one embedding call: of its text, or the
        normalised sum of its parts' vectors."""
        texts = [p for q in queries for p in (q.parts or (q.text,))]
        vecs = embed_distinct(self.embedder, texts)
        out = np.empty((len(queries), vecs.shape[1]), dtype=np.float32)
        at = 0
        for i, q in enumerate(queries):
            n = len(q.parts) or 1
            v = vecs[at : at + n].sum(axis=0)
            out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
            at += n
        return out

    def _relevances(self, rows: Sequence[Any], qvec: np.ndarray) -> list[float]:
        """Cosine similarity of each row's vector to the query's, in one product (a row
        without a stored vector, written before vectors were kept, is embedded now)."""
        if not rows:
            return []
        if any(row.embedding is None for row in rows):
            vecs = np.stack(
                [
                    from_bytes(row.embedding)
                    if row.embedding is not None
                    else self.embedder.embed_one(row.text)
                    for row in rows
                ]
            )
        else:
            vecs = from_bytes(b"".join(row.embedding for row in rows)).reshape(len(rows), -1)
        return [float(x) for x in vecs @ qvec]

    # -- reconciling ----------------------------------------------------------------

    def reconcile(self, *, full: bool = False) -> int:
        """Make the index hold exactly SQL's memories of this run; return how many were
        (re)indexed. Equal counts are taken as in sync unless `full` is set."""
        return reconcile_index(self.engine, self.index, self.embedder, self.run_id, full=full)
