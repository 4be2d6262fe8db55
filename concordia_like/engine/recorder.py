"""Writing a run to its store and reading it back.

`commit_step` is the only writer during a run: the step's events, utterances, extra rows
(memories) and checkpoint go in one transaction, and the run's `steps_done` moves in
the same transaction, so a run killed at any moment is either before or after a whole
step. Every write of a run goes through `writing`, which holds the run's lease
(`store.leases`): one writer per run, and a writer whose lease was taken over commits
nothing more."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from concordia_like.engine import checkpoints
from concordia_like.engine.checkpoints import PARTS_FORMAT, PARTS_MARK
from concordia_like.engine.events import Event, Utterance
from concordia_like.errors import ConfigError
from concordia_like.store.base import make_engine, make_session_factory
from concordia_like.store.leases import RunLease
from concordia_like.store.run_tables import (
    CheckpointPartRow,
    CheckpointRow,
    EventRow,
    RunRow,
    UtteranceRow,
)


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
        #: the runs this recorder writes, by id (`hold`)
        self.leases: dict[str, RunLease] = {}
        #: per run, the digests of the checkpoint parts the store holds (as this
        #: recorder last wrote or read them): a step writes the parts that differ
        self._stored: dict[str, dict[str, bytes]] = {}

    # -- one writer per run -----------------------------------------------------------

    def hold(self, run_id: str) -> RunLease:
        """Take the run's lease (once): raises RunBusyError naming the writer that holds
        it. Readers never need it."""
        lease = self.leases.get(run_id)
        if lease is None:
            # an in-memory SQLite store is one connection's: no other writer, no timer
            lease = RunLease(self.sessions, run_id, timer=not _in_memory(self.engine))
            lease.acquire()
            self.leases[run_id] = lease
        return lease

    @contextmanager
    def writing(self, run_id: str) -> Iterator[Session]:
        """A transaction that writes run `run_id`: the lease is renewed as its first
        write, so it commits only while this recorder still holds the run."""
        lease = self.hold(run_id)
        with self.sessions.begin() as s:
            lease.renew(s)
            yield s

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
        with self.writing(run_id) as s:
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
            if not (isinstance(row.world, dict) and PARTS_MARK in row.world):
                return Checkpoint(row.step, row.sim_time, row.world, row.agents, row.usage)
            parts = checkpoints.read_parts(s, run_id)
        self._stored[run_id] = {k: checkpoints.digest(t) for k, t in parts.items()}
        usage = checkpoints.join_usage(parts)
        world, agents = checkpoints.join(parts, int(row.world[PARTS_MARK]))
        return Checkpoint(row.step, row.sim_time, world, agents, usage)

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
        with self.writing(run_id) as s:
            run = s.get(RunRow, run_id)
            if run is None:
                raise ConfigError(f"no run {run_id!r} in store {self.url}")
            if step != run.steps_done + 1:
                raise RuntimeError(f"step {step} committed after step {run.steps_done}")
            # in bulk (one statement per table), not object by object: a city's step
            # has thousands of events
            if events:
                s.execute(
                    insert(EventRow),
                    [
                        {
                            "run_id": run_id,
                            "step": step,
                            "seq": i,
                            "sim_time": sim_time,
                            "kind": e.kind,
                            "actor": e.actor,
                            "place": e.place,
                            "text": e.text,
                            "data": e.data,
                        }
                        for i, e in enumerate(events)
                    ],
                )
            if utterances:
                s.execute(
                    insert(UtteranceRow),
                    [
                        {
                            "run_id": run_id,
                            "step": step,
                            "conversation": u.conversation,
                            "speaker": u.speaker,
                            "addressees": u.addressees,
                            "place": u.place,
                            "sim_time": sim_time,
                            "text": u.text,
                        }
                        for u in utterances
                    ],
                )
            if extra is not None:
                extra(s)
            # the newest checkpoint only: its head replaced, its changed parts rewritten
            s.query(CheckpointRow).filter(CheckpointRow.run_id == run_id).delete()
            s.add(
                CheckpointRow(
                    run_id=run_id,
                    step=step,
                    sim_time=sim_time,
                    world={PARTS_MARK: PARTS_FORMAT},
                    agents={},
                    usage={},  # a part: the same usage is not written again
                    wall_s=wall_s,
                )
            )
            digests = self._write_parts(s, run_id, step, world, agents, usage)
            run.steps_done = step
        self._stored[run_id] = digests

    def _write_parts(
        self,
        s: Session,
        run_id: str,
        step: int,
        world: dict[str, Any],
        agents: dict[str, Any],
        usage: dict[str, Any],
    ) -> dict[str, bytes]:
        """Write the parts of the state (and the usage) that differ from the store's;
        return the digests it then holds."""
        parts = checkpoints.split(world, agents)
        parts.update(checkpoints.split_usage(usage))
        return checkpoints.write_parts(s, run_id, step, parts, self._stored.get(run_id))

    # -- reading ----------------------------------------------------------------------

    def events(
        self,
        run_id: str,
        *,
        agent: str | None = None,
        place: str | None = None,
        kinds: list[str] | None = None,
        text: str | None = None,
        after_step: int = 0,
        offset: int = 0,
        limit: int | None = None,
    ) -> Iterator[EventRow]:
        """A run's events in order, filtered (`text`: contained, any case; steps after
        `after_step`), one page of them with `offset` and `limit`."""
        q = _event_filter(select(EventRow), run_id, agent, place, kinds, text, after_step)
        q = q.order_by(EventRow.step, EventRow.seq).offset(offset or None).limit(limit)
        with self.sessions() as s:
            yield from s.scalars(q)

    def event_count(
        self,
        run_id: str,
        *,
        agent: str | None = None,
        place: str | None = None,
        kinds: list[str] | None = None,
        text: str | None = None,
    ) -> int:
        """How many events `events` gives with the same filters."""
        q = select(func.count()).select_from(EventRow)
        q = _event_filter(q, run_id, agent, place, kinds, text, 0)
        with self.sessions() as s:
            return int(s.scalar(q) or 0)

    def event_counts(self, run_id: str) -> list[tuple[int, str, int]]:
        """(step, kind, how many events) of a run, in step order."""
        q = (
            select(EventRow.step, EventRow.kind, func.count())
            .where(EventRow.run_id == run_id)
            .group_by(EventRow.step, EventRow.kind)
            .order_by(EventRow.step, EventRow.kind)
        )
        with self.sessions() as s:
            return [(int(a), str(b), int(c)) for a, b, c in s.execute(q)]

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
        """Copy a run as it stands (its row, events, utterances, last checkpoint with its
        parts) into `target` (this store or another) as run `new_id`, with `config`
        merged into its config; `extra` (the memories) joins the same transaction, so a
        copy is whole or absent."""
        with self.sessions() as s:
            run = s.get(RunRow, run_id)
            if run is None:
                raise ConfigError(f"no run {run_id!r} in store {self.url}")
            tables = (EventRow, UtteranceRow, CheckpointRow, CheckpointPartRow)
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
        """Give up the leases held, and close the store's connections."""
        try:
            for lease in self.leases.values():
                lease.release()
            self.leases.clear()
        finally:
            self.engine.dispose()


def _in_memory(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


def _event_filter(
    q: Any,
    run_id: str,
    agent: str | None,
    place: str | None,
    kinds: list[str] | None,
    text: str | None,
    after_step: int,
) -> Any:
    q = q.where(EventRow.run_id == run_id)
    if agent is not None:
        q = q.where(EventRow.actor == agent)
    if place is not None:
        q = q.where(EventRow.place == place)
    if kinds:
        q = q.where(EventRow.kind.in_(kinds))
    if text:
        q = q.where(EventRow.text.icontains(text, autoescape=True))
    if after_step:
        q = q.where(EventRow.step > after_step)
    return q


def _columns(row: Any) -> dict[str, Any]:
    """A mapped row's column values, to build a copy of it."""
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}
