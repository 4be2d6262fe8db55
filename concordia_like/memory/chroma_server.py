"""Chroma's own server (`chroma run`, from the chromadb package) on 127.0.0.1, for the
tests and benchmarks that need a real one: started on a free port with its data in a
temporary folder, and stopped, the folder removed, on every path out."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from concordia_like.local_server import LocalServer, free_port, http_ok


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
    cmd = [sys.executable, "-c", "from chromadb.cli.cli import app; app()", "run"]
    cmd += ["--path", str(top / "data"), "--host", "127.0.0.1", "--port", str(port)]
    ready = http_ok(f"{url}/api/v2/heartbeat")
    try:
        with LocalServer(cmd, ready, name="chroma run", log=top / "server.log") as server:
            yield ChromaServer(url, server.pid, top)
    finally:
        shutil.rmtree(top, ignore_errors=True)
