"""A run's memories as SQL rows, with no index and no embedder: reading them by id, by
recency and by importance, moving their last-retrieved times, copying them into another
run, and each agent's reflection mark. `MemoryStore` (stream.py) adds embedding,
indexing and scored retrieval on top."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, func, insert, select, update
from sqlalchemy.orm import Session

from concordia_like.memory.candidates import evidence_ids
from concordia_like.memory.records import (
    EXPERIENCE_KINDS,
    MemoryRecord,
    RetrievalQuery,
    ScoredMemory,
)
from concordia_like.store.base import conflict_insert, dialect_name
from concordia_like.store.memory_tables import (
    MEMORIES_WITH_VECTORS,
    TEXT,
    VECTOR,
    MemoryRow,
    MemoryVectorRow,
    ReflectionMarkRow,
)

#: rows per slice when a run's memories are copied
COPY_SLICE = 5000

T = cast(Table, MemoryRow.__table__)
V = cast(Table, MemoryVectorRow.__table__)
MARKS = cast(Table, ReflectionMarkRow.__table__)
_RECORD_COLS = (
    *(T.c.id, T.c.agent, TEXT, T.c.kind, T.c.created, T.c.last_retrieved),
    *(T.c.importance, T.c.evidence),
)


def naive_utc(when: datetime) -> datetime:
    """Simulation times are stored naive (UTC); aware ones are converted, not rejected."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo is not None else when


def _record(row: Any) -> MemoryRecord:
    return MemoryRecord(
        id=row.id,
        agent=row.agent,
        text=row.text,
        kind=row.kind,
        created=row.created,
        last_retrieved=row.last_retrieved,
        importance=row.importance,
        evidence=evidence_ids(row.evidence),
    )


@contextmanager
def transaction(engine: Engine, session: Session | None) -> Iterator[Any]:
    """Somewhere to write: the caller's transaction, or a new one committed here."""
    if session is not None:
        yield session
        return
    with engine.begin() as conn:
        yield conn


def insert_vectors(conn: Any, run_id: str, texts: Mapping[str, tuple[bytes, str | None]]) -> None:
    """Store texts with their vectors (key -> (float32 bytes, text)) of run `run_id`
    through `conn`. A key the store holds already keeps its vector (the same text, the
    same vector) and gets the text if it was stored without one, so that once this
    returns, every key given with a text has it in the store."""
    if not texts:
        return
    rows = [{"run_id": run_id, "key": k, "embedding": v, "text": t} for k, (v, t) in texts.items()]
    stmt = conflict_insert(conn, V)
    if stmt is not None:
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={"text": stmt.excluded.text},
            where=V.c.text.is_(None),
        )
        conn.execute(stmt, rows)
        return
    keys = V.c.key.in_(sorted(texts))
    held = dict(conn.execute(select(V.c.key, V.c.text).where((V.c.run_id == run_id) & keys)).all())
    for key in [k for k, t in held.items() if t is None and texts[k][1] is not None]:
        where = (V.c.run_id == run_id) & (V.c.key == key)
        conn.execute(update(V).where(where).values(text=texts[key][1]))
    rows = [r for r in rows if r["key"] not in held]
    if rows:
        conn.execute(insert(V), rows)


def insert_rows(conn: Any, run_id: str, rows: list[dict[str, Any]]) -> list[int]:
    """Insert memory rows of run `run_id` through `conn` (a Session or Connection); their
    ids, in order. SQLite cannot return ids in order from a batched insert (SQLAlchemy
    would insert row by row, which a big world's seed memories feel), so there the ids
    are read after the insert: while a transaction writes, SQLite lets no one
    else write, and AUTOINCREMENT gives each row a larger id than any before, so the
    run's newest ids are these rows'."""
    if dialect_name(conn) != "sqlite" or len(rows) < 2:
        stmt = insert(T).returning(T.c.id, sort_by_parameter_order=True)
        return list(conn.execute(stmt, rows).scalars())
    conn.execute(insert(T), rows)
    newest = select(T.c.id).where(T.c.run_id == run_id).order_by(T.c.id.desc())
    ids = list(conn.execute(newest.limit(len(rows))).scalars())
    ids.reverse()
    return ids


class MemoryRows:
    """The SQL side of one run's memories (see the module's notes)."""

    def __init__(self, engine: Engine, run_id: str) -> None:
        self.engine = engine
        self.run_id = run_id

    def _rows(self, conn: Any, ids: Iterable[int]) -> dict[int, Any]:
        ids = list(ids)
        out: dict[int, Any] = {}
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            stmt = (
                select(*_RECORD_COLS, VECTOR)
                .select_from(MEMORIES_WITH_VECTORS)
                .where(T.c.id.in_(chunk))
            )
            for row in conn.execute(stmt):
                out[row.id] = row
        return out

    def touch(
        self,
        queries: Sequence[RetrievalQuery],
        results: list[list[ScoredMemory]],
        *,
        session: Session | None = None,
    ) -> None:
        """Move the last-retrieved time of what was retrieved; with `session` (the
        engine's step transaction) the update commits with the step, so a step re-run
        after a crash scores recency exactly as the first attempt did."""
        by_time: dict[datetime, set[int]] = {}
        for q, res in zip(queries, results, strict=True):
            if res:
                by_time.setdefault(naive_utc(q.now), set()).update(s.record.id for s in res)
        if not by_time:
            return
        with transaction(self.engine, session) as conn:
            for when, ids in by_time.items():
                conn.execute(
                    update(T)
                    .where(T.c.id.in_(sorted(ids)) & (T.c.last_retrieved < when))
                    .values(last_retrieved=when)
                )

    # -- reading --------------------------------------------------------------------

    def get(self, ids: Iterable[int]) -> list[MemoryRecord]:
        """Records by id, in the order asked (unknown ids are left out)."""
        ids = list(ids)
        with self.engine.connect() as conn:
            rows = self._rows(conn, ids)
        return [_record(rows[i]) for i in ids if i in rows]

    def recent(
        self,
        agent: str,
        n: int,
        *,
        kinds: Sequence[str] | None = None,
        after_id: int = 0,
    ) -> list[MemoryRecord]:
        """The agent's `n` newest memories (newest first), optionally of some kinds."""
        stmt = (
            select(*_RECORD_COLS)
            .select_from(MEMORIES_WITH_VECTORS)
            .where((T.c.run_id == self.run_id) & (T.c.agent == agent) & (T.c.id > after_id))
        )
        if kinds is not None:
            stmt = stmt.where(T.c.kind.in_(list(kinds)))
        stmt = stmt.order_by(T.c.id.desc()).limit(n)
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt)]

    def count(self, agent: str | None = None) -> int:
        stmt = select(func.count()).select_from(T).where(T.c.run_id == self.run_id)
        if agent is not None:
            stmt = stmt.where(T.c.agent == agent)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def agents(self) -> list[str]:
        stmt = select(T.c.agent).where(T.c.run_id == self.run_id).distinct().order_by(T.c.agent)
        with self.engine.connect() as conn:
            return list(conn.execute(stmt).scalars())

    def important(self, agent: str, n: int) -> list[MemoryRecord]:
        """The agent's `n` most important memories (newest first among equals)."""
        stmt = (
            select(*_RECORD_COLS)
            .select_from(MEMORIES_WITH_VECTORS)
            .where((T.c.run_id == self.run_id) & (T.c.agent == agent))
            .order_by(T.c.importance.desc(), T.c.id.desc())
            .limit(n)
        )
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt)]

    def copy_into(self, session: Session, run_id: str) -> int:
        """Copy every memory of this run, with its embedding, and the reflection marks
        into `session` (any store's transaction) as memories of run `run_id`; return
        how many. Ids are the target's to give, so a reflection's evidence and a mark
        are moved onto the copies' ids. Rows are read and written in slices (a city's
        run holds very many). The copy's index is rebuilt from SQL when its
        store is opened (see `reconcile`)."""
        new_ids: dict[int, int] = {}
        olds: list[int] = []
        rows: list[dict[str, Any]] = []
        vectors: dict[str, tuple[bytes, str | None]] = {}
        copied_keys: set[str] = set()

        def write() -> None:
            insert_vectors(session, run_id, vectors)
            copied_keys.update(vectors)
            vectors.clear()
            new_ids.update(zip(olds, insert_rows(session, run_id, rows), strict=True))
            olds.clear()
            rows.clear()

        own = [c for c in T.c if c.name != "embedding"]
        stmt = (
            select(*own, VECTOR, V.c.text.label("shared_text"))
            .select_from(MEMORIES_WITH_VECTORS)
            .where(T.c.run_id == self.run_id)
            .order_by(T.c.id)
        )
        with self.engine.connect() as conn:
            for r in conn.execution_options(yield_per=COPY_SLICE).execute(stmt):
                row = dict(r._mapping)
                key = row["text_key"]
                shared = row.pop("shared_text")
                if key is not None:  # the copy refers to its own run's copy of the vector
                    if key not in copied_keys and row["embedding"] is not None:
                        vectors[key] = (row["embedding"], shared)
                    row["embedding"] = None
                cited = evidence_ids(row["evidence"])
                if any(i not in new_ids and i < row["id"] for i in cited) and rows:
                    write()  # a reflection citing a memory of this slice: give it its id first
                olds.append(row.pop("id"))
                row["run_id"] = run_id
                row["evidence"] = [new_ids[i] for i in cited if i in new_ids]
                rows.append(row)
                if len(rows) >= COPY_SLICE:
                    write()
            if rows:
                write()
            marks = [
                dict(r._mapping)
                for r in conn.execute(select(MARKS).where(MARKS.c.run_id == self.run_id))
            ]
        copied = sorted(new_ids)  # the old ids, ascending
        for mark in marks:
            k = bisect_right(copied, mark["upto_id"])
            upto = new_ids[copied[k - 1]] if k else 0
            session.execute(insert(MARKS).values({**mark, "run_id": run_id, "upto_id": upto}))
        return len(new_ids)

    # -- reflection bookkeeping -----------------------------------------------------

    def reflection_marks(self, agents: Sequence[str]) -> dict[str, int]:
        """Per agent, the id up to which its memories have been reflected on (0: never)."""
        stmt = select(MARKS.c.agent, MARKS.c.upto_id).where(
            (MARKS.c.run_id == self.run_id) & MARKS.c.agent.in_(list(agents))
        )
        with self.engine.connect() as conn:
            marks = dict(conn.execute(stmt).all())
        return {a: int(marks.get(a, 0)) for a in agents}

    def importance_since_reflection(self, agents: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Per agent: (summed importance of its experiences since its last reflection,
        the newest id among them). One statement for all agents."""
        marks = self.reflection_marks(agents)
        out = {a: (0, marks[a]) for a in agents}
        if not agents:
            return out
        mark = (
            select(MARKS.c.upto_id)
            .where((MARKS.c.run_id == T.c.run_id) & (MARKS.c.agent == T.c.agent))
            .scalar_subquery()
        )
        stmt = (
            select(T.c.agent, func.sum(T.c.importance), func.max(T.c.id))
            .where(
                (T.c.run_id == self.run_id)
                & T.c.agent.in_(list(agents))
                & T.c.kind.in_(EXPERIENCE_KINDS)
                & (T.c.id > func.coalesce(mark, 0))
            )
            .group_by(T.c.agent)
        )
        with self.engine.connect() as conn:
            for agent, total, newest in conn.execute(stmt):
                out[agent] = (int(total or 0), int(newest or marks[agent]))
        return out

    def mark_reflected(
        self, marks: dict[str, int], now: datetime, *, session: Session | None = None
    ) -> None:
        """Record that each agent has reflected on its memories up to the given id
        (in `session`'s transaction when given)."""
        if not marks:
            return
        current = self.reflection_marks(list(marks))
        when = naive_utc(now)
        with transaction(self.engine, session) as conn:
            for agent, upto in marks.items():
                values = {"upto_id": max(upto, current[agent]), "last_reflected": when}
                where = (MARKS.c.run_id == self.run_id) & (MARKS.c.agent == agent)
                if conn.execute(update(MARKS).where(where).values(**values)).rowcount == 0:
                    conn.execute(insert(MARKS).values(run_id=self.run_id, agent=agent, **values))
