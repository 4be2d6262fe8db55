"""A tiny scripted HTTP server for the failure paths of the OpenAI-compatible backends:
each POST gets the next answer of its script, in process, on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from concordia_like.llm.scripted_server import read_request

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
            method, path, body = await read_request(reader)
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
