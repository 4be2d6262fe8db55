"""A scripted OpenAI-compatible HTTP server: a test double, never a model.

It stands in for an inference server where what is measured is the route, not the
answers: how the `openai` backend spreads a step's calls over several servers, fails
over, or waits on a busy one. Each chat completion is answered after a fixed emulated
latency, at most `limit` at a time (the rest wait their turn, as on a GPU server that
batches a bounded number of sequences), with a valid instance of the request's
`response_format` schema chosen by a hash of the request (the scripted backend's rule),
or a line of text when no schema is asked for. GET .../models lists one model.

Run several from the command line (they serve until stdin closes, then print how many
requests each answered and the most it worked on at once):

    python -m concordia_like.llm.scripted_server --servers 4 --latency-ms 200 --limit 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import sys
from typing import Any

from concordia_like.llm.scripted import example_for_schema

MODEL = "scripted-http"
TEXT = "Someone considers the situation and carries on."


def schema_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request's `response_format` asks for, in either form the
    backends send (`json_schema`, or llama-cpp-python's `json_object` + `schema`)."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
    else:
        schema = fmt.get("schema")
    return schema if isinstance(schema, dict) else None


def completion_for(raw: bytes) -> dict[str, Any]:
    """A chat completion answering the request `raw` (the same request, the same answer)."""
    body = json.loads(raw or b"{}")
    rng = random.Random(int.from_bytes(hashlib.sha256(raw).digest()[:8], "big"))
    schema = schema_of(body)
    if schema is not None:
        content = json.dumps(example_for_schema(schema, rng, schema.get("$defs", {})))
    else:
        content = TEXT
    prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    return {
        "id": f"chatcmpl-{rng.getrandbits(32):08x}",
        "object": "chat.completion",
        "model": body.get("model") or MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": max(1, prompt // 4),
            "completion_tokens": max(1, len(content) // 4),
            "total_tokens": max(1, prompt // 4) + max(1, len(content) // 4),
        },
    }


class ScriptedOpenAIServer:
    """One scripted server on 127.0.0.1 (a free port unless given); `requests` counts
    the chat completions it answered and `peak` the most it worked on at once."""

    def __init__(self, latency_s: float = 0.0, limit: int = 8, port: int = 0) -> None:
        if latency_s < 0 or limit < 1:
            raise ValueError("latency must not be negative and the limit must be at least 1")
        self.latency_s = latency_s
        self.limit = limit
        self.port = port
        self.requests = 0
        self.peak = 0
        self._busy = 0
        self._slots: asyncio.Semaphore | None = None
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> ScriptedOpenAIServer:
        self._slots = asyncio.Semaphore(self.limit)
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ScriptedOpenAIServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _complete(self, raw: bytes) -> dict[str, Any]:
        assert self._slots is not None
        async with self._slots:
            self._busy += 1
            self.peak = max(self.peak, self._busy)
            try:
                await asyncio.sleep(self.latency_s)
                answer = completion_for(raw)
                self.requests += 1
                return answer
            finally:
                self._busy -= 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive: requests on one connection until the client closes it."""
        try:
            while True:
                method, path, raw = await read_request(reader)
                status: int
                payload: dict[str, Any]
                if method == "GET" and path.rstrip("/").endswith("/models"):
                    status, payload = (
                        200,
                        {"object": "list", "data": [{"id": MODEL, "object": "model"}]},
                    )
                elif method == "POST" and path.rstrip("/").endswith("/chat/completions"):
                    try:
                        status, payload = 200, await self._complete(raw)
                    except (ValueError, KeyError, TypeError) as exc:
                        status, payload = 400, {"error": {"message": f"bad request: {exc}"}}
                else:
                    status, payload = 404, {"error": {"message": f"no route {method} {path}"}}
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes]:
    """One HTTP/1.1 request off a connection: its method, path and body (by its
    Content-Length; none without one)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    return method, path, await reader.readexactly(length) if length else b""


async def serve(count: int, latency_s: float, limit: int) -> list[ScriptedOpenAIServer]:
    """Start `count` servers, print their base URLs as one JSON line, serve until stdin
    closes; the servers, closed."""
    servers = [await ScriptedOpenAIServer(latency_s, limit).start() for _ in range(count)]
    print(json.dumps({"base_urls": [s.base_url for s in servers]}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        await server.close()
    return servers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", type=int, default=1, help="how many servers (default 1)")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="emulated time per request")
    ap.add_argument("--limit", type=int, default=8, help="requests each works on at once")
    args = ap.parse_args()
    servers = asyncio.run(serve(args.servers, args.latency_ms / 1000, args.limit))
    answered = {"requests": [s.requests for s in servers], "peak": [s.peak for s in servers]}
    print(json.dumps(answered), flush=True)


if __name__ == "__main__":
    main()
