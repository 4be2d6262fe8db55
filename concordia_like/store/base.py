"""The SQL store: one declarative base for every table, and engine/session creation.

SQLite by default, any SQLAlchemy URL (PostgreSQL) the same way. SQL is the source of
truth of a run: events, memories and state; indexes and caches are rebuilt from it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from concordia_like.errors import ConfigError


class Base(DeclarativeBase):
    pass


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path)}"


def make_engine(url: str) -> Engine:
    """Open (and create the tables of) the store at `url`."""
    try:
        engine = create_engine(url, future=True)
    except Exception as exc:  # bad URL or missing driver
        raise ConfigError(f"store URL {url!r} cannot be opened: {exc}") from None
    if engine.dialect.name == "sqlite":
        db = engine.url.database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    # import every table module so that create_all sees them all
    from concordia_like.store import tables  # noqa: F401

    Base.metadata.create_all(engine)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False, future=True)
