"""Cross-agent batching: the hot path of every simulation step.

Callers await one request each; the batcher gathers whatever is pending at the same
moment and hands it to the backend as one batch. "The same moment" is a few turns of the
event loop: when the engine gathers every agent's step, each agent reaches its model call
within those turns, so one step's calls meet in one batch without anyone waiting on a
timer."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass

from concordia_like.llm.backend import Backend
from concordia_like.llm.types import LLMRequest, RawCompletion

#: how many of the latest batch sizes `Batcher.batch_sizes` keeps
RECENT_BATCHES = 1024


@dataclass
class _Pending:
    request: LLMRequest
    future: asyncio.Future[RawCompletion]


class Batcher:
    def __init__(self, backend: Backend, gather_ticks: int = 3) -> None:
        self.backend = backend
        self.gather_ticks = gather_ticks
        self._pending: list[_Pending] = []
        self._runner: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        # sizes of the batches handed to the backend, for benchmarks and tests; bounded:
        # the latest RECENT_BATCHES in order, and counts by size (no batch is larger
        # than the backend's max_batch, so there are at most that many sizes)
        self.recent_batch_sizes: deque[int] = deque(maxlen=RECENT_BATCHES)
        self.batch_size_counts: Counter[int] = Counter()
        #: batches handed to the backend, and the requests in them, since the start
        self.batches = 0
        self.batched_requests = 0

    @property
    def batch_sizes(self) -> list[int]:
        """Sizes of the latest batches (at most RECENT_BATCHES), oldest first."""
        return list(self.recent_batch_sizes)

    @property
    def mean_batch_size(self) -> float:
        return self.batched_requests / self.batches if self.batches else 0.0

    async def submit(self, request: LLMRequest) -> RawCompletion:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[RawCompletion] = loop.create_future()
        self._pending.append(_Pending(request, fut))
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run())
        return await fut

    async def _run(self) -> None:
        for _ in range(self.gather_ticks):
            await asyncio.sleep(0)
        while self._pending:
            batch = self._pending[: self.backend.max_batch]
            del self._pending[: len(batch)]
            if self.backend.concurrent_batches:
                task = asyncio.get_running_loop().create_task(self._dispatch(batch))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
                await asyncio.sleep(0)
            else:
                await self._dispatch(batch)
                # requests that arrived while the batch decoded get the same grace
                for _ in range(self.gather_ticks):
                    await asyncio.sleep(0)

    async def _dispatch(self, batch: list[_Pending]) -> None:
        self.recent_batch_sizes.append(len(batch))
        self.batch_size_counts[len(batch)] += 1
        self.batches += 1
        self.batched_requests += len(batch)
        try:
            results = await self.backend.generate_batch([p.request for p in batch])
        except Exception as exc:  # the whole batch failed: every caller hears why
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        for p, result in zip(batch, results, strict=True):
            if p.future.done():
                continue
            if isinstance(result, Exception):
                p.future.set_exception(result)
            else:
                p.future.set_result(result)
