"""Which memories a retrieval scores, read from SQL in one statement per 100 agents.

The index proposes each query's nearest memories; besides those, an agent's most
recently retrieved and most important memories are always candidates (a fresh or
poignant memory can win on recency or importance with little relevance, as in the full
Generative Agents score). Candidates are read with their vectors, from which relevance
is computed, and with their times as text: a retrieval reads dozens of rows per agent
and keeps a few, so only the winners are made whole."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, literal, null, select, type_coerce, union_all

from concordia_like.memory.records import MemoryRecord
from concordia_like.store.memory_tables import MEMORIES_WITH_VECTORS, TEXT, VECTOR, MemoryRow

T = MemoryRow.__table__

#: a record's columns, with the evidence and times left as text: a retrieval reads
#: dozens of candidates per agent and keeps a few, so SQLAlchemy's parsing of two
#: datetimes per row is spared (scoring needs `last_retrieved` only, which
#: `datetime.fromisoformat` reads)
CANDIDATE_COLS = (
    *(T.c.id, T.c.agent, TEXT, T.c.kind),
    type_coerce(T.c.created, String).label("created"),
    type_coerce(T.c.last_retrieved, String).label("last_retrieved"),
    T.c.importance,
    type_coerce(T.c.evidence, String).label("evidence"),
)
#: agents per candidate statement (two LIMIT subqueries each; SQLite allows 500 terms)
_AGENTS_PER_STATEMENT = 100


def evidence_ids(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):  # JSON text (SQLite); other drivers decode JSON themselves
        value = json.loads(value) if value != "[]" else ()
    return tuple(int(i) for i in value or ())


def _when(value: Any) -> datetime:
    """A time read as text (see CANDIDATE_COLS), or as a datetime where the driver
    makes one itself (PostgreSQL)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def candidate_record(row: Any) -> MemoryRecord:
    """What scoring needs of a candidate row; `created` and `evidence` are filled in
    for the winners only (`winner_record`)."""
    when = _when(row.last_retrieved)
    return MemoryRecord(row.id, row.agent, row.text, row.kind, when, when, row.importance)


def winner_record(record: MemoryRecord, row: Any) -> MemoryRecord:
    return replace(record, created=_when(row.created), evidence=evidence_ids(row.evidence))


class CandidateReader:
    """Reads the candidates of many agents' queries; its statements are built once per
    shape (one subquery per agent: building one costs more than running it) and kept."""

    def __init__(self, run_id: str, n_recent: int, n_important: int) -> None:
        self.run_id = run_id
        self.n_recent = n_recent
        self.n_important = n_important
        self._statements: dict[tuple[int, bool], Any] = {}

    def rows(
        self, conn: Any, hit_ids: dict[str, set[int]]
    ) -> tuple[dict[int, Any], dict[str, set[int]]]:
        """Rows, with their vectors, of each agent's index hits and of its most
        recently retrieved and most important memories: one statement per 100 agents,
        each LIMIT read through its index."""
        rows: dict[int, Any] = {}
        extra: dict[str, set[int]] = {}
        agents = list(hit_ids)
        for start in range(0, len(agents), _AGENTS_PER_STATEMENT):
            chunk = agents[start : start + _AGENTS_PER_STATEMENT]
            hits = sorted(set().union(*(hit_ids[a] for a in chunk)))
            params: dict[str, Any] = {"run": self.run_id, "hits": hits}
            params.update({f"a{i}": agent for i, agent in enumerate(chunk)})
            stmt = self._statement(len(chunk), with_hits=bool(hits))
            for row in conn.execute(stmt, params):
                if row.extra:
                    extra.setdefault(row.agent, set()).add(row.id)
                    rows[row.id] = row
                else:
                    rows.setdefault(row.id, row)
        return rows, extra

    def _statement(self, n_agents: int, *, with_hits: bool) -> Any:
        """The candidate statement for `n_agents` agents, built once per shape (it has a
        subquery per agent; building it costs more than running it)."""
        key = (n_agents, with_hits)
        stmt = self._statements.get(key)
        if stmt is not None:
            return stmt
        parts: list[Any] = []
        for i in range(n_agents):
            own = (T.c.run_id == bindparam("run")) & (T.c.agent == bindparam(f"a{i}"))
            for order, n in (
                ((T.c.last_retrieved.desc(), T.c.id.desc()), self.n_recent),
                ((T.c.importance.desc(), T.c.id.desc()), self.n_important),
            ):
                if n > 0:
                    part = select(T.c.id).where(own).order_by(*order).limit(n)
                    parts.append(part.subquery().select())
        selects: list[Any] = []
        if parts:
            ids = parts[0]
            if len(parts) > 1:  # not a conditional expression: mypy fails on one here
                ids = union_all(*parts)
            cols = (*CANDIDATE_COLS, VECTOR, literal(True).label("extra"))
            selects.append(select(*cols).select_from(MEMORIES_WITH_VECTORS).where(T.c.id.in_(ids)))
        if with_hits:
            cols = (*CANDIDATE_COLS, VECTOR, literal(False).label("extra"))
            hits = T.c.id.in_(bindparam("hits", expanding=True))
            selects.append(select(*cols).select_from(MEMORIES_WITH_VECTORS).where(hits))
        if not selects:  # nothing to read: a statement that yields no rows
            selects.append(
                select(*CANDIDATE_COLS, null().label("embedding"), literal(False).label("extra"))
                .select_from(MEMORIES_WITH_VECTORS)
                .where(literal(False))
            )
        stmt = selects[0]
        if len(selects) > 1:
            stmt = union_all(*selects)
        self._statements[key] = stmt
        return stmt
