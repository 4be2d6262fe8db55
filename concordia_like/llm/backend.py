"""The one interface every backend implements.

A backend takes a whole batch at once: the batcher has already coalesced the requests
that were pending at the same moment, and a backend that can decode them together (the
embedded model's parallel sequences, a server's continuous batching) should."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from concordia_like.llm.types import LLMRequest, RawCompletion


class Backend(ABC):
    #: short name used on the command line and in cache keys
    name: str = "backend"
    #: the most requests handed over in one call to `generate_batch`
    max_batch: int = 8
    #: whether the batcher may start a new batch while one is still running
    #: (true for servers that batch continuously, false for an in-process model)
    concurrent_batches: bool = False

    @property
    @abstractmethod
    def model(self) -> str:
        """The model identifier, part of every cache key."""

    @abstractmethod
    async def generate_batch(self, requests: list[LLMRequest]) -> list[RawCompletion | Exception]:
        """Answer every request; a failure of one is returned in its slot, not raised,
        so that one bad request does not sink the others of its batch."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds (model memory, connections)."""

    async def reset_prefix_cache(self) -> None:  # noqa: B027 - optional hook
        """Forget the prompt prefixes kept from earlier requests, so that the next ones
        start cold (what a benchmark compares from); a backend keeping none has nothing
        to forget."""


async def fan_out(
    requests: list[LLMRequest], one: Callable[[LLMRequest], Awaitable[RawCompletion]]
) -> list[RawCompletion | Exception]:
    """A batch answered as that many concurrent requests, for a backend whose server or
    engine batches them itself (continuous batching); a request's failure stays in its
    slot, and a cancellation (not a failure of the request) propagates."""
    results = await asyncio.gather(*(one(r) for r in requests), return_exceptions=True)
    out: list[RawCompletion | Exception] = []
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, Exception):
            raise r
        out.append(r)
    return out
