"""Tables of associative memory: one row per memory, and each agent's reflection mark.

SQL is the source of truth: the Chroma index holds only ids, owners and vectors, and is
rebuilt from these rows. The embedding is kept here too (float32 bytes), so that a lost
index is rebuilt without the embedding model and with exactly the vectors it had."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from concordia_like.store.base import Base


class MemoryRow(Base):
    __tablename__ = "memories"
    __table_args__ = (
        # the three ways retrieval reads an agent's memories: newest ids (reflection,
        # watermarks), most recently retrieved, most important
        Index("ix_memories_owner_id", "run_id", "agent", "id"),
        Index("ix_memories_owner_recent", "run_id", "agent", "last_retrieved"),
        Index("ix_memories_owner_importance", "run_id", "agent", "importance"),
        # ids of deleted rows are never given again (SQLite would reuse a deleted
        # maximum): the vector index names memories by id
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: the run the memory belongs to: one store may hold several runs. Not a foreign key,
    #: so that memories can be kept (tests, benchmarks) without a run row.
    run_id: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime)
    last_retrieved: Mapped[datetime] = mapped_column(DateTime)
    importance: Mapped[int] = mapped_column(Integer)
    #: for reflections: ids of the memories the insight rests on
    evidence: Mapped[list] = mapped_column(JSON, default=list)
    #: float32 vector, little-endian; NULL when written by a tool without the embedder
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class ReflectionMarkRow(Base):
    """Per agent: memories with ids up to `upto_id` have been reflected on already."""

    __tablename__ = "memory_reflection_marks"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(100), primary_key=True)
    upto_id: Mapped[int] = mapped_column(Integer, default=0)
    last_reflected: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
