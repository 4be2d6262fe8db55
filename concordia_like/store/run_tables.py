"""Tables of a run: the run itself, its event log, its checkpoint and utterances.

A step's rows are written in one transaction together with the step's checkpoint, so
the last checkpoint always matches the last events: a resumed run starts right after
it, with no gap and no duplicate. A checkpoint is a head row (step, time, usage) and the
state's parts (`engine.checkpoints`), one row per part updated in place, so a step
writes the parts that changed in it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from concordia_like.store.base import Base


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    world_path: Mapped[str] = mapped_column(Text)
    world_name: Mapped[str] = mapped_column(String(200))
    engine: Mapped[str] = mapped_column(String(32))
    #: backend:model; a model may be named by a long path or hub id: no bound
    backend: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    #: the last step whose events and checkpoint are committed (0: none yet)
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    config: Mapped[dict] = mapped_column(JSON, default=dict)


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("run_id", "step", "seq", name="uq_event_order"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    step: Mapped[int] = mapped_column(Integer, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    sim_time: Mapped[datetime] = mapped_column(DateTime)
    #: action, outcome, failure, speech, announcement, plan, reflection, ...
    kind: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str | None] = mapped_column(String(100), index=True, nullable=True)
    place: Mapped[str | None] = mapped_column(String(100), index=True, nullable=True)
    text: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class CheckpointRow(Base):
    """The head of a run's newest checkpoint; its world is `{"parts": 1}` where the
    state is in `checkpoint_parts` (runs recorded before parts hold it whole here)."""

    __tablename__ = "checkpoints"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    sim_time: Mapped[datetime] = mapped_column(DateTime)
    world: Mapped[dict] = mapped_column(JSON)
    agents: Mapped[dict] = mapped_column(JSON)
    usage: Mapped[dict] = mapped_column(JSON, default=dict)
    wall_s: Mapped[float] = mapped_column(Float, default=0.0)


class CheckpointPartRow(Base):
    """One part of a run's newest checkpoint (`engine.checkpoints`): `step` is the step
    that last changed it."""

    __tablename__ = "checkpoint_parts"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    #: a prefix and a resident's or holder's name (names run to 100 characters)
    key: Mapped[str] = mapped_column(String(240), primary_key=True)
    step: Mapped[int] = mapped_column(Integer)
    #: canonical JSON text, kept as written (decoded only when a run is reopened)
    data: Mapped[str] = mapped_column(Text)


class UtteranceRow(Base):
    """Speech, kept apart from the event log so dialogue export need not parse it."""

    __tablename__ = "utterances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    #: the speakers' sorted names joined by '|' plus '@date' (names run to 60 characters
    #: each): no bound, which PostgreSQL would enforce and SQLite does not
    conversation: Mapped[str] = mapped_column(Text, index=True)
    speaker: Mapped[str] = mapped_column(String(100))
    addressees: Mapped[list] = mapped_column(JSON)
    place: Mapped[str] = mapped_column(String(100))
    sim_time: Mapped[datetime] = mapped_column(DateTime)
    text: Mapped[str] = mapped_column(Text)
