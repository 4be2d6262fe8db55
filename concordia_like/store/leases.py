"""One writer per run: a lease row per run in the run's own store.

Two processes writing one run would interleave steps (a stale sandbox committing into a
run another one moved on). So whoever writes a run first takes its lease: a row naming
the holder (host:pid:token) with a heartbeat that every committed write and a timer
refresh. A second writer is refused at once, naming the holder; readers never touch the
lease. A holder is gone when its process is gone (same host) or its heartbeat is older
than the bound (any host), and then its lease is taken over. Every write of the run
renews the lease inside its own transaction, so a writer whose lease was taken over
cannot commit: the row is the one mechanism, on SQLite and PostgreSQL alike (a
compare-and-set on the holder and a beat counter, no database-specific lock)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, Text, delete, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from concordia_like.errors import ConcordiaError
from concordia_like.store.base import Base

log = logging.getLogger(__name__)

#: a heartbeat older than this means its holder is gone, on any host
STALE_AFTER_S = 120.0
#: how often a holder's timer refreshes its heartbeat between writes
HEARTBEAT_S = 15.0


class LeaseRow(Base):
    __tablename__ = "run_leases"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: host:pid:token of the writer
    holder: Mapped[str] = mapped_column(Text)
    #: naive UTC
    heartbeat: Mapped[datetime] = mapped_column(DateTime)
    #: bumped on every refresh and takeover: what a takeover compares and sets
    beat: Mapped[int] = mapped_column(Integer, default=0)


class RunBusyError(ConcordiaError):
    """The run is written by another holder, or this writer's lease was taken over."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _who(holder: str) -> str:
    """host:pid, the part of a holder a person can act on."""
    return holder.rsplit(":", 1)[0]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def gone(holder: str, heartbeat: datetime, now: datetime, stale_after_s: float) -> str | None:
    """Why `holder` is gone (its process ended, its heartbeat is stale), or None."""
    age = (now - heartbeat).total_seconds()
    if age > stale_after_s:
        return f"its last heartbeat was {age:.0f} s ago"
    host, _, rest = holder.partition(":")
    pid = rest.split(":", 1)[0]
    if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
        return f"its process {pid} is gone"
    return None


class RunLease:
    """This process's lease on one run: acquired, renewed in each write's transaction
    and by a timer thread, released on close."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        run_id: str,
        *,
        timer: bool = True,
        stale_after_s: float | None = None,
        heartbeat_s: float | None = None,
    ) -> None:
        self.sessions = sessions
        self.run_id = run_id
        self.holder = new_holder()
        self.stale_after_s = STALE_AFTER_S if stale_after_s is None else stale_after_s
        self.heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
        #: what acquiring said of a holder taken over from (None: the lease was free)
        self.took_over: str | None = None
        self._timer = timer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease, or raise RunBusyError naming who holds it."""
        for _ in range(5):  # a race lost to another taker: read again
            with self.sessions() as s:
                row = s.get(LeaseRow, self.run_id)
                seen = (row.holder, row.heartbeat, row.beat) if row is not None else None
            now = _now()
            try:
                with self.sessions.begin() as s:
                    if seen is None:
                        s.add(LeaseRow(run_id=self.run_id, holder=self.holder, heartbeat=now))
                        s.flush()
                        break
                    holder, heartbeat, beat = seen
                    why = gone(holder, heartbeat, now, self.stale_after_s)
                    if why is None:
                        age = max(0.0, (now - heartbeat).total_seconds())
                        raise RunBusyError(
                            f"run {self.run_id} is being written by {_who(holder)} (heartbeat "
                            f"{age:.0f} s ago): one writer per run; reading it (log, inspect) "
                            "is allowed; close that session first"
                        )
                    taken = s.execute(
                        update(LeaseRow)
                        .where(
                            LeaseRow.run_id == self.run_id,
                            LeaseRow.holder == holder,
                            LeaseRow.beat == beat,
                        )
                        .values(holder=self.holder, heartbeat=now, beat=beat + 1)
                    )
                    if taken.rowcount == 1:  # type: ignore[attr-defined]
                        self.took_over = f"{_who(holder)} ({why})"
                        break
            except IntegrityError:  # another writer inserted the row first
                continue
        else:
            raise RunBusyError(f"run {self.run_id}: its lease is contended; try again")
        if self._timer:
            self._thread = threading.Thread(
                target=self._beat, name=f"lease-{self.run_id}", daemon=True
            )
            self._thread.start()

    def renew(self, session: Session) -> None:
        """Refresh the heartbeat as the first write of `session`'s transaction; raise
        RunBusyError (the transaction then rolls back) if the lease was taken over."""
        done = session.execute(
            update(LeaseRow)
            .where(LeaseRow.run_id == self.run_id, LeaseRow.holder == self.holder)
            .values(heartbeat=_now(), beat=LeaseRow.beat + 1)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise RunBusyError(
                f"run {self.run_id} was taken over by another writer while this session "
                "held it (its heartbeat went stale), so this session can no longer write it "
                "and nothing more of it was committed; leave, and reopen the run once the "
                "other writer is done"
            )

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                with self.sessions.begin() as s:
                    self.renew(s)
            except RunBusyError:
                return  # lost: the next write says so
            except SQLAlchemyError as exc:  # a busy or briefly gone store: next tick
                log.debug("lease heartbeat of run %s: %s", self.run_id, exc)

    def release(self) -> None:
        """Stop the timer and give the lease up (if this process still holds it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_s + 5)
            self._thread = None
        try:
            with self.sessions.begin() as s:
                s.execute(
                    delete(LeaseRow).where(
                        LeaseRow.run_id == self.run_id, LeaseRow.holder == self.holder
                    )
                )
        except SQLAlchemyError as exc:  # a store gone: the lease goes stale on its own
            log.debug("releasing the lease of run %s: %s", self.run_id, exc)
