"""The SQL store: one declarative base for every table, and engine/session creation.

SQLite by default, any SQLAlchemy URL (PostgreSQL) the same way. SQL is the source of
truth of a run: events, memories and state; indexes and caches are rebuilt from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from concordia_like.errors import ConfigError


class Base(DeclarativeBase):
    pass


#: columns added to a table after stores were first made with it: (table, column, SQL
#: type). Each is nullable, so rows written before read as they did; a store that lacks
#: one gets it when opened (`create_all` makes missing tables, not missing columns).
ADDED_COLUMNS = (("memories", "text_key", "VARCHAR(24)"), ("memory_vectors", "text", "TEXT"))


def _add_columns(engine: Engine) -> None:
    tables = inspect(engine)
    for table, column, sql_type in ADDED_COLUMNS:
        if column not in {c["name"] for c in tables.get_columns(table)}:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path)}"


def make_engine(url: str) -> Engine:
    """Open (and create the tables of) the store at `url`. Raises ConfigError, in one
    line, for a store that cannot be one: a bad URL, a file that is not a database, a
    server that is down."""
    try:
        engine = create_engine(url, future=True)
    except Exception as exc:  # bad URL or missing driver
        raise ConfigError(f"store URL {url!r} cannot be opened: {exc}") from None
    shown = engine.url.render_as_string(hide_password=True)
    if engine.dialect.name == "sqlite":
        db = engine.url.database
        if db and db != ":memory:":
            path = Path(db)
            if path.exists() and not path.is_file():
                raise ConfigError(f"store {shown}: {db} is not a database file")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"store {shown}: {exc.strerror} ({path.parent})") from None

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    # import every table module so that create_all sees them all
    from concordia_like.store import tables  # noqa: F401

    try:
        Base.metadata.create_all(engine)
        _add_columns(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise ConfigError(f"store {shown} cannot be opened: {first}") from None
    return engine


def dialect_name(conn: Session | Any) -> str:
    """The SQL dialect of `conn`, a Session or a Connection: "sqlite", "postgresql"."""
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    return str(bind.dialect.name)


def conflict_insert(conn: Session | Any, table: Table) -> Any:
    """An INSERT into `table` that can say what becomes of a row whose key is taken
    (`on_conflict_do_nothing`, `on_conflict_do_update`), for the stores that have one
    (SQLite, PostgreSQL); None for another."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialects: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
    make = dialects.get(dialect_name(conn))
    return make(table) if make is not None else None


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False, future=True)
