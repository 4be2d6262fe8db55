"""Chroma's own server (`chroma run`, from the chromadb package) on 127.0.0.1, for the
tests and benchmarks that need a real one: started on a free port with its data in a
temporary folder, and stopped, the folder removed, on every path out."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class ChromaServer:
    url: str
    pid: int
    folder: Path


@contextlib.contextmanager
def chroma_server() -> Iterator[ChromaServer]:
    """A `chroma run` of this interpreter's chromadb, answering on its URL."""
    top = Path(tempfile.mkdtemp(prefix="concordia-chroma-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (top / "server.log").open("wb")
    cmd = [sys.executable, "-c", "from chromadb.cli.cli import app; app()", "run"]
    cmd += ["--path", str(top / "data"), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {proc.returncode}: {_tail(top)}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"chroma run did not answer on {url}: {_tail(top)}")
            time.sleep(0.1)
        yield ChromaServer(url, proc.pid, top)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(top, ignore_errors=True)


def _tail(top: Path, n: int = 2000) -> str:
    try:
        return (top / "server.log").read_text(errors="replace")[-n:]
    except OSError:
        return "<no log>"
