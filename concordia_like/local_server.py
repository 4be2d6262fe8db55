"""A server started on 127.0.0.1 for the tests and benchmarks that need a real one
(`chroma run`, llama.cpp's and vLLM's OpenAI-compatible servers, PostgreSQL): one way to
start it, wait until it answers, say why it did not (with the end of its log), and
stop it, so that a server that never comes up fails fast instead of hanging a run."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

START_TIMEOUT_S = 60.0


class ServerStartError(RuntimeError):
    """The server exited, or did not answer in time; the message ends with its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness probe: a GET of `url` answers 200."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def log_tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "<no log>"


def wait_until_ready(
    ready: Callable[[], bool],
    *,
    name: str,
    timeout_s: float = START_TIMEOUT_S,
    interval_s: float = 0.1,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll `ready` until it holds; raise ServerStartError when `proc` (if given) has
    exited or `timeout_s` has passed, naming the server and quoting its log."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if proc is not None and proc.poll() is not None:
            why = f"exited with code {proc.returncode}"
        elif time.monotonic() > deadline:
            why = f"did not answer within {timeout_s:.0f} s"
        else:
            time.sleep(interval_s)
            continue
        tail = log_tail(log) if log is not None else "<no log>"
        raise ServerStartError(f"{name} {why}: {tail}")


class LocalServer:
    """A command that serves on 127.0.0.1, its output appended to a log file.

    `launch` returns at once (two slow servers can load side by side), `wait` returns
    once `ready` holds, `start` does both. `kill` ends it as a crash would (SIGKILL),
    `stop` cleanly; either way it can be started again, on the same port if its command
    names one. `close` stops it and removes the log when the log was its own."""

    def __init__(
        self,
        cmd: Sequence[str],
        ready: Callable[[], bool],
        *,
        name: str,
        log: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float = START_TIMEOUT_S,
        interval_s: float = 0.1,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.cmd = list(cmd)
        self.ready = ready
        self.name = name
        self.env = dict(env) if env is not None else None
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self.stop_timeout_s = stop_timeout_s
        self._own_log = log is None
        if log is None:
            fd, name_ = tempfile.mkstemp(prefix="concordia-server-", suffix=".log")
            os.close(fd)
            log = Path(name_)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def launch(self) -> None:
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.cmd, stdout=self._out, stderr=subprocess.STDOUT, env=self.env
        )

    def wait(self) -> None:
        assert self.proc is not None, "launch first"
        try:
            wait_until_ready(
                self.ready,
                name=self.name,
                timeout_s=self.timeout_s,
                interval_s=self.interval_s,
                proc=self.proc,
                log=self.log,
            )
        except ServerStartError:
            self.kill()
            raise

    def start(self) -> None:
        self.launch()
        self.wait()

    def tail(self, n: int = 3000) -> str:
        return log_tail(self.log, n)

    def kill(self) -> None:
        """Gone at once, as a crashed server is."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._ended()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._ended()

    def close(self) -> None:
        self.stop()
        if self._own_log:
            with contextlib.suppress(OSError):
                self.log.unlink()

    def _ended(self) -> None:
        self.proc = None
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> LocalServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
