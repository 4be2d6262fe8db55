"""Writing a run to its store and reading it back.

`commit_step` is the only writer during a run: the step's events, utterances, extra rows
(memories) and checkpoint go in one transaction, and the run's `steps_done` moves in
the same transaction, so a run killed at any moment is either before or after a whole
step."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from concordia_like.engine.events import Event, Utterance
from concordia_like.errors import ConfigError
from concordia_like.store.base import make_engine, make_session_factory
from concordia_like.store.run_tables import CheckpointRow, EventRow, RunRow, UtteranceRow


def _utc_now() -> datetime:
    """When a run was made, in UTC: the column is naive, so the zone is fixed here."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Checkpoint:
    step: int
    sim_time: datetime
    world: dict[str, Any]
    agents: dict[str, Any]
    usage: dict[str, Any]


class RunRecorder:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)

    # -- runs -------------------------------------------------------------------------

    def create_run(
        self,
        *,
        world_path: str,
        world_name: str,
        engine: str,
        backend: str,
        seed: int,
        config: dict[str, Any],
        run_id: str | None = None,
        extra: Callable[[Session], None] | None = None,
    ) -> str:
        """Create the run row; `extra` (seed memories) joins the same transaction."""
        run_id = run_id or new_run_id()
        with self.sessions.begin() as s:
            s.add(
                RunRow(
                    id=run_id,
                    world_path=world_path,
                    world_name=world_name,
                    engine=engine,
                    backend=backend,
                    seed=seed,
                    created_at=_utc_now(),
                    steps_done=0,
                    config=config,
                )
            )
            if extra is not None:
                s.flush()
                extra(s)
        return run_id

    def run(self, run_id: str) -> RunRow:
        with self.sessions() as s:
            row = s.get(RunRow, run_id)
        if row is None:
            raise ConfigError(f"no run {run_id!r} in store {self.url}")
        return row

    def record_change(self, run_id: str, change: dict[str, Any]) -> None:
        """Append to the run's config what a resume changed (asked for explicitly)."""
        with self.sessions.begin() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise ConfigError(f"no run {run_id!r} in store {self.url}")
            config = dict(row.config or {})
            config["changes"] = [*config.get("changes", []), change]
            row.config = config

    def runs(self) -> list[RunRow]:
        with self.sessions() as s:
            return list(s.scalars(select(RunRow).order_by(RunRow.created_at)))

    def last_checkpoint(self, run_id: str) -> Checkpoint | None:
        with self.sessions() as s:
            row = s.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.run_id == run_id)
                .order_by(CheckpointRow.step.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return Checkpoint(row.step, row.sim_time, row.world, row.agents, row.usage)

    # -- steps ------------------------------------------------------------------------

    def commit_step(
        self,
        run_id: str,
        step: int,
        sim_time: datetime,
        events: list[Event],
        utterances: list[Utterance],
        world: dict[str, Any],
        agents: dict[str, Any],
        usage: dict[str, Any],
        wall_s: float = 0.0,
        extra: Callable[[Session], None] | None = None,
    ) -> None:
        with self.sessions.begin() as s:
            run = s.get(RunRow, run_id)
            if run is None:
                raise ConfigError(f"no run {run_id!r} in store {self.url}")
            if step != run.steps_done + 1:
                raise RuntimeError(f"step {step} committed after step {run.steps_done}")
            s.add_all(
                EventRow(
                    run_id=run_id,
                    step=step,
                    seq=i,
                    sim_time=sim_time,
                    kind=e.kind,
                    actor=e.actor,
                    place=e.place,
                    text=e.text,
                    data=e.data,
                )
                for i, e in enumerate(events)
            )
            s.add_all(
                UtteranceRow(
                    run_id=run_id,
                    step=step,
                    conversation=u.conversation,
                    speaker=u.speaker,
                    addressees=u.addressees,
                    place=u.place,
                    sim_time=sim_time,
                    text=u.text,
                )
                for u in utterances
            )
            if extra is not None:
                extra(s)
            # keep only the newest checkpoint of a run: each holds the whole state
            s.query(CheckpointRow).filter(CheckpointRow.run_id == run_id).delete()
            s.add(
                CheckpointRow(
                    run_id=run_id,
                    step=step,
                    sim_time=sim_time,
                    world=world,
                    agents=agents,
                    usage=usage,
                    wall_s=wall_s,
                )
            )
            run.steps_done = step

    # -- reading ----------------------------------------------------------------------

    def events(
        self,
        run_id: str,
        *,
        agent: str | None = None,
        place: str | None = None,
        kinds: list[str] | None = None,
    ) -> Iterator[EventRow]:
        q = select(EventRow).where(EventRow.run_id == run_id)
        if agent is not None:
            q = q.where(EventRow.actor == agent)
        if place is not None:
            q = q.where(EventRow.place == place)
        if kinds:
            q = q.where(EventRow.kind.in_(kinds))
        q = q.order_by(EventRow.step, EventRow.seq)
        with self.sessions() as s:
            yield from s.scalars(q)

    def event_count(self, run_id: str) -> int:
        with self.sessions() as s:
            return int(
                s.scalar(
                    select(func.count()).select_from(EventRow).where(EventRow.run_id == run_id)
                )
                or 0
            )

    def utterances(self, run_id: str, *, speaker: str | None = None) -> list[UtteranceRow]:
        """A run's speech in order, optionally of one speaker."""
        q = select(UtteranceRow).where(UtteranceRow.run_id == run_id)
        if speaker is not None:
            q = q.where(UtteranceRow.speaker == speaker)
        with self.sessions() as s:
            return list(s.scalars(q.order_by(UtteranceRow.step, UtteranceRow.id)))

    # -- copying ----------------------------------------------------------------------

    def copy_run(
        self,
        run_id: str,
        target: RunRecorder,
        new_id: str,
        *,
        config: dict[str, Any] | None = None,
        extra: Callable[[Session], None] | None = None,
    ) -> str:
        """Copy a run as it stands (its row, events, utterances, last checkpoint) into
        `target` (this store or another) as run `new_id`, with `config` merged into its
        config; `extra` (the memories) joins the same transaction, so a copy is whole
        or absent."""
        with self.sessions() as s:
            run = s.get(RunRow, run_id)
            if run is None:
                raise ConfigError(f"no run {run_id!r} in store {self.url}")
            tables = (EventRow, UtteranceRow, CheckpointRow)
            rows = [
                (table, _columns(r))
                for table in tables
                for r in s.scalars(select(table).where(table.run_id == run_id))
            ]
            head = _columns(run)
        head.update(id=new_id, created_at=_utc_now())
        head["config"] = {**(head.get("config") or {}), **(config or {})}
        with target.sessions.begin() as t:
            t.add(RunRow(**head))
            t.flush()
            for table, cols in rows:
                if table is not CheckpointRow:  # serial ids are the target's to give
                    cols.pop("id", None)
                t.add(table(**{**cols, "run_id": new_id}))
            if extra is not None:
                extra(t)
        return new_id

    def close(self) -> None:
        self.engine.dispose()


def _columns(row: Any) -> dict[str, Any]:
    """A mapped row's column values, to build a copy of it."""
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}
