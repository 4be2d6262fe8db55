"""The language model as every other part of the library sees it.

One object per run: it holds the backend, the batcher, the cache and the usage ledger,
so that every call anywhere in a simulation is batched, cached and counted the same way.

A model either owns its backend (it closes it) or borrows another model's (`borrow`):
runs that share one loaded model each borrow it, with a ledger and a cache of their
own, and their requests meet in the lender's batcher; closing a run closes only what
the run owns. Models are made by `llm.registry.open_model`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from concordia_like.llm.backend import Backend
from concordia_like.llm.batcher import Batcher
from concordia_like.llm.cache import ResponseCache
from concordia_like.llm.errors import LLMError, OutputError, StructuredOutputError
from concordia_like.llm.sampling import SamplingPolicy, current_step
from concordia_like.llm.structured import parse_output
from concordia_like.llm.types import Completion, LLMRequest, RawCompletion
from concordia_like.llm.usage import UsageLedger


class LanguageModel:
    def __init__(
        self,
        backend: Backend,
        *,
        cache: ResponseCache | None = None,
        ledger: UsageLedger | None = None,
        gather_ticks: int = 3,
        sampling: SamplingPolicy | None = None,
        batcher: Batcher | None = None,
        owns_backend: bool = True,
    ) -> None:
        self.backend = backend
        self.cache = cache
        #: applied to every request (see `llm.sampling`); None leaves requests as they are
        self.sampling = sampling
        self.usage = ledger or UsageLedger()
        self.batcher = batcher or Batcher(backend, gather_ticks=gather_ticks)
        #: whether `aclose` closes the backend (false for a model made by `borrow`)
        self.owns_backend = owns_backend

    def borrow(self, *, cache: ResponseCache | None = None) -> LanguageModel:
        """A model over this one's backend and batcher, so that the requests of both meet
        in the same batches, with its own usage ledger, cache and sampling. Closing it
        closes its cache and leaves the backend to its owner."""
        return LanguageModel(self.backend, cache=cache, batcher=self.batcher, owns_backend=False)

    @property
    def name(self) -> str:
        return f"{self.backend.name}:{self.backend.model}"

    async def complete(self, request: LLMRequest) -> Completion:
        """Answer one request; concurrent callers are batched together.

        Raises StructuredOutputError (with the raw text) when the output fails its
        schema or choices; the call is still counted, as failed. Any other failure
        (a replay miss, a server gone, a bug) is raised as it is, its message naming
        the call's purpose and agent: the one triage of model errors is `llm.triage`."""
        if self.sampling is not None:
            request = self.sampling.apply(request, *current_step())
        start = time.perf_counter()
        try:
            raw, cached = await self._raw(request)
        except OutputError:
            raise
        except LLMError as exc:
            if exc.purpose is None:  # named once, by the call that met it
                who = f" of {request.agent}" if request.agent else ""
                exc.args = (f"the {request.purpose} call{who} failed: {exc}",)
                exc.purpose, exc.agent = request.purpose, request.agent
            raise
        except Exception as exc:  # a bug: it keeps its type and traceback
            exc.add_note(f"in the {request.purpose} call of {request.agent}")
            raise
        latency = time.perf_counter() - start
        try:
            parsed = parse_output(request, raw)
        except StructuredOutputError:
            self._count(request, raw, latency, cached=cached, failed=True)
            raise
        self._count(request, raw, latency, cached=cached, failed=False)
        return Completion(
            text=raw.text,
            parsed=parsed,
            prompt_tokens=raw.prompt_tokens,
            completion_tokens=raw.completion_tokens,
            latency_s=latency,
            finish_reason=raw.finish_reason,
            cached=cached,
            backend=self.backend.name,
            model=self.backend.model,
        )

    async def complete_many(
        self, requests: list[LLMRequest], *, return_exceptions: bool = False
    ) -> list[Any]:
        """Answer many requests at once (they meet in the same batches)."""
        return await asyncio.gather(
            *(self.complete(r) for r in requests), return_exceptions=return_exceptions
        )

    async def _raw(self, request: LLMRequest) -> tuple[RawCompletion, bool]:
        if self.cache is None or self.cache.mode == "off":
            return await self.batcher.submit(request), False
        key = request.key(self.backend.name, self.backend.model)
        hit = self.cache.get(key)
        if hit is not None:
            return hit, True
        raw = await self.batcher.submit(request)
        self.cache.put(key, self.backend.name, self.backend.model, raw)
        return raw, False

    def _count(
        self,
        request: LLMRequest,
        raw: RawCompletion,
        latency: float,
        *,
        cached: bool,
        failed: bool,
    ) -> None:
        self.usage.record(
            request.purpose,
            request.agent,
            raw.prompt_tokens,
            raw.completion_tokens,
            latency,
            cached=cached,
            failed=failed,
            why=request.why,
        )

    async def aclose(self) -> None:
        """Close the cache, and the backend if this model owns it."""
        try:
            if self.owns_backend:
                await self.backend.aclose()
        finally:
            if self.cache is not None:
                self.cache.close()

    async def __aenter__(self) -> LanguageModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
