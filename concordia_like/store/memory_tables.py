"""Tables of associative memory: one row per memory, each text with its vector, and
each agent's reflection mark.

SQL is the source of truth: the Chroma index holds only ids, owners and vectors, and is
rebuilt from these rows. The embedding is kept here too (float32 bytes), so that a lost
index is rebuilt without the embedding model and with exactly the vectors it had. A
text and its vector are stored once per run (`memory_vectors`), however many memories
hold the text: everyone at a place remembers the same lines. A memory row refers to
them by `text_key` and leaves its own `text` empty (`SHARED`); a row written before
texts were shared holds its own text, one written before vectors were shared (or by a
tool) its own `embedding`, and `TEXT` and `VECTOR` over `MEMORIES_WITH_VECTORS` read
either. An empty text cannot be a memory's own (`MemoryRecord` refuses one), so the
two never mix up."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import JSON, DateTime, Index, Integer, LargeBinary, String, Table, Text, func
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
    #: float32 vector, little-endian, of a row that holds its own; NULL when it is in
    #: `memory_vectors` (`text_key`) or was written by a tool without the embedder
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: the key (`text.text_key`) of the text's vector in `memory_vectors`
    text_key: Mapped[str | None] = mapped_column(String(24), nullable=True)


class MemoryVectorRow(Base):
    """A memory text's vector, once per run (see the module's notes)."""

    __tablename__ = "memory_vectors"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(24), primary_key=True)
    #: float32 vector, little-endian
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    #: the text, which the rows of this key leave empty (NULL: stored before texts
    #: were shared; those rows hold their own)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReflectionMarkRow(Base):
    """Per agent: memories with ids up to `upto_id` have been reflected on already."""

    __tablename__ = "memory_reflection_marks"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(100), primary_key=True)
    upto_id: Mapped[int] = mapped_column(Integer, default=0)
    last_reflected: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


_M = cast(Table, MemoryRow.__table__)
_V = cast(Table, MemoryVectorRow.__table__)
#: memories, each with its text's shared vector where it has one
MEMORIES_WITH_VECTORS = _M.outerjoin(_V, (_V.c.run_id == _M.c.run_id) & (_V.c.key == _M.c.text_key))
#: a memory's vector, its own or its text's (select from `MEMORIES_WITH_VECTORS`)
VECTOR = func.coalesce(_M.c.embedding, _V.c.embedding).label("embedding")
#: a memory row's `text` where its key's row in `memory_vectors` holds the text
SHARED = ""
#: a memory's text, its own or its key's (select from `MEMORIES_WITH_VECTORS`)
TEXT = func.coalesce(func.nullif(_M.c.text, SHARED), _V.c.text).label("text")
