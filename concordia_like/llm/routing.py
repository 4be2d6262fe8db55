"""Several inference servers behind one backend: least-loaded first, a concurrency limit
per server, and failover.

One OpenAI-compatible server is one GPU (or one tensor-parallel group); a simulation
that outgrows it adds servers with a second `--base-url`, and the batcher's batches are
spread over them without a line of the simulation changing. Each request goes to the
server with the fewest requests in flight relative to its limit, since servers that
batch continuously answer a request sooner the less they already carry.

A server that stops answering (connection refused or reset, a timeout) is taken out and
the request goes to another at once: losing one server of several must not cost a step.
A taken-out server is tried again after `revive_after_s`, so a restarted one comes back.
Only when no server is left does a request fall back to the plain retries with backoff
on every server, and then fail with `BackendUnavailableError`, which the triage treats
as fatal: the step is aborted and nothing of it is committed. Answers that are errors
(429, 5xx) come from a server that is alive: they are retried with backoff, but do not
take the server out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Server:
    """One server of the pool, with what routing needs to know of it."""

    url: str
    limit: int
    inflight: int = 0
    #: monotonic time until which the server is out (0: it is in)
    out_until: float = 0.0
    #: requests it answered, and the times it was taken out (for tests and diagnostics)
    answered: int = 0
    taken_out: int = 0
    last_error: str = ""

    def is_in(self, now: float) -> bool:
        return self.out_until <= now

    @property
    def load(self) -> float:
        return self.inflight / self.limit


class ServerPool:
    """Hands out servers to requests: least-loaded of those in, each at most `limit`
    requests at a time; a request waits while every candidate is at its limit."""

    def __init__(self, urls: Sequence[str], limit: int, revive_after_s: float = 30.0) -> None:
        if not urls:
            raise ValueError("a server pool needs at least one server")
        if limit < 1:
            raise ValueError("the concurrency limit per server must be at least 1")
        if revive_after_s < 0:
            raise ValueError("revive_after_s must not be negative")
        self.servers = [Server(url, limit) for url in urls]
        self.revive_after_s = revive_after_s
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        # made on first use, inside the loop that uses it
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    def servers_in(self, avoid: set[Server] | None = None) -> list[Server]:
        now = time.monotonic()
        return [s for s in self.servers if s.is_in(now) and (avoid is None or s not in avoid)]

    def _candidates(self, avoid: set[Server]) -> list[Server]:
        """The servers in (less those this request already failed on); when none is in,
        every server not yet tried by this request, and at last every server: a request
        that has nowhere better to go probes the ones taken out."""
        return (
            self.servers_in(avoid)
            or [s for s in self.servers if s not in avoid]
            or list(self.servers)
        )

    async def acquire(self, avoid: set[Server] | None = None) -> Server:
        """A server for one request; `release` it when the request is done."""
        cond = self._condition()
        async with cond:
            while True:
                free = [s for s in self._candidates(avoid or set()) if s.inflight < s.limit]
                if free:
                    best = min(free, key=lambda s: s.load)  # ties: the first listed
                    best.inflight += 1
                    return best
                await cond.wait()

    async def release(self, server: Server, *, answered: bool) -> None:
        cond = self._condition()
        async with cond:
            server.inflight -= 1
            if answered:
                server.answered += 1
                server.out_until = 0.0
            cond.notify_all()

    def take_out(self, server: Server, reason: str) -> None:
        """The server stopped answering: no request goes to it for `revive_after_s`."""
        if server.is_in(time.monotonic()):
            server.taken_out += 1
            left = len(self.servers_in()) - 1
            # alone, a server taken out is only retried: the backend's error says it all
            log.log(
                logging.WARNING if len(self.servers) > 1 else logging.DEBUG,
                "inference server %s stopped answering (%s); taken out, %d server(s) left",
                server.url,
                reason,
                left,
            )
        server.out_until = time.monotonic() + self.revive_after_s
        server.last_error = reason

    def describe(self) -> str:
        """The servers, for error messages."""
        return ", ".join(s.url for s in self.servers)
