"""Memory writes held for the transaction of the step that made them.

A step thinks before it commits: its observations, the notes of plans changed, the
insights of reflections and the last-retrieved times its retrievals moved are all made
while it runs, but none may reach the store before the step does, or a step re-run
after a crash would find them there (memories stored twice, recency scored from a
retrieval that never committed). Whatever makes such writes adds them to a
`MemoryWrites`; the engine writes them in the step's transaction, or drops them with a
step that aborts. Outside an engine, the same writes are simply written at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from concordia_like.memory.records import MemoryRecord, NewMemory, RetrievalQuery, ScoredMemory

if TYPE_CHECKING:
    from concordia_like.memory.stream import MemoryStore

Retrieved = tuple[Sequence[RetrievalQuery], list[list[ScoredMemory]]]


@dataclass
class MemoryWrites:
    #: retrievals whose last-retrieved times move
    retrieved: list[Retrieved] = field(default_factory=list)
    #: memories to store, one batch per maker (one embedding call and statement each)
    batches: list[list[NewMemory]] = field(default_factory=list)
    #: agent -> the memory id its reflection has reached
    marks: dict[str, int] = field(default_factory=dict)

    def touch(self, queries: Sequence[RetrievalQuery], results: list[list[ScoredMemory]]) -> None:
        if queries:
            self.retrieved.append((queries, results))

    def add(self, memories: Sequence[NewMemory]) -> None:
        if memories:
            self.batches.append(list(memories))

    def mark(self, marks: Mapping[str, int]) -> None:
        self.marks.update(marks)

    def extend(self, other: MemoryWrites) -> None:
        self.retrieved += other.retrieved
        self.batches += other.batches
        self.marks.update(other.marks)

    @property
    def memories(self) -> list[NewMemory]:
        return [m for batch in self.batches for m in batch]

    def take(self) -> MemoryWrites:
        """These writes, handed over once (this holder is left empty)."""
        out = MemoryWrites(self.retrieved, self.batches, self.marks)
        self.retrieved, self.batches, self.marks = [], [], {}
        return out

    def write(
        self, store: MemoryStore, now: datetime, *, session: Session | None = None
    ) -> list[MemoryRecord]:
        """Write everything to `store` (in `session`'s transaction when given); the
        stored memories in the order they were added."""
        for queries, results in self.retrieved:
            store.touch(queries, results, session=session)
        records = [
            r for batch in self.batches for r in store.add_many(batch, now=now, session=session)
        ]
        store.mark_reflected(self.marks, now, session=session)
        return records
