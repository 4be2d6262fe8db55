"""Any OpenAI-compatible chat server over HTTP: `vllm serve`, llama.cpp's server,
llama-cpp-python's server, Ollama, hosted APIs.

A batch is sent as that many concurrent requests (bounded by a semaphore): the server's
continuous batching is what decodes them together, so the batcher may hand over a new
batch while one is still in flight.

Structured output: OpenAI's `json_schema` response_format, or llama-cpp-python's
`json_object` form where the server rejects it (see `llm.response_format`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from concordia_like.llm.backend import Backend, fan_out
from concordia_like.llm.errors import BackendUnavailableError, LLMError, SchemaRefusedError
from concordia_like.llm.response_format import (
    ResponseFormats,
    StructuredMode,
    looks_like_response_format_rejection,
)
from concordia_like.llm.routing import Server, ServerPool
from concordia_like.llm.types import LLMRequest, RawCompletion

log = logging.getLogger(__name__)

BASE_URL_ENVS = ("CONCORDIA_OPENAI_BASE_URL", "OPENAI_BASE_URL")
MODEL_ENVS = ("CONCORDIA_OPENAI_MODEL", "OPENAI_MODEL")
API_KEY_ENVS = ("OPENAI_API_KEY",)

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
#: the most seconds one request may take, all its tries and waits together
REQUEST_TIMEOUT_S = 120.0


def _env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def resolve_base_url(base_url: str | None) -> str:
    """The server's API root (ending in /v1 or whatever the server uses), without a
    trailing slash. A bare `http://host:port` gets `/v1`, as every local server expects."""
    url = base_url or _env(BASE_URL_ENVS)
    if not url:
        raise BackendUnavailableError(
            "the openai backend needs the URL of an OpenAI-compatible server: pass "
            "--base-url (base_url=...) or set CONCORDIA_OPENAI_BASE_URL or OPENAI_BASE_URL, "
            "e.g. http://127.0.0.1:8000/v1"
        )
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BackendUnavailableError(
            f"the openai backend's base URL {url!r} is not an http(s) URL; "
            "expected something like http://127.0.0.1:8000/v1"
        )
    if parts.path in ("", "/"):
        url += "/v1"
    return url


def resolve_base_urls(base_url: str | Sequence[str] | None) -> list[str]:
    """Every server's API root: a list (`--base-url` given more than once, a list in the
    run config) or one string, in which commas separate servers (so that the environment
    variable can name several)."""
    if base_url is None or isinstance(base_url, str):
        given = [base_url] if base_url else [_env(BASE_URL_ENVS)]
        parts = [p for g in given if g for p in g.split(",") if p.strip()]
    else:
        parts = [p for p in base_url if p and p.strip()]
    urls = [resolve_base_url(p) for p in parts] if parts else [resolve_base_url(None)]
    seen: set[str] = set()
    for url in urls:
        if url in seen:
            raise BackendUnavailableError(f"the server {url} is given twice as a base URL")
        seen.add(url)
    return urls


def _auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _first_model(payload: Any, url: str) -> str:
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, list):
        for entry in data:
            if isinstance(entry, dict) and entry.get("id"):
                return str(entry["id"])
    raise BackendUnavailableError(
        f"the server at {url} lists no models; pass --model (model=...) or set "
        "CONCORDIA_OPENAI_MODEL"
    )


def list_first_model(base_url: str, api_key: str | None = None, timeout_s: float = 10.0) -> str:
    """The first model id the server lists at GET {base_url}/models (blocking)."""
    url = f"{base_url}/models"
    try:
        response = httpx.get(url, headers=_auth_headers(api_key), timeout=timeout_s)
        response.raise_for_status()
        payload = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise BackendUnavailableError(
            f"could not list the models at {url} to pick one ({_describe(exc)}); is the "
            "server running? Or name the model with --model (model=...) or "
            "CONCORDIA_OPENAI_MODEL"
        ) from exc
    return _first_model(payload, url)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}: {exc.response.text[:200]}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def probe_structured_mode(
    base_url: str, model: str, api_key: str | None = None, timeout_s: float = 30.0
) -> str:
    """Ask the server once (blocking, one token) whether it takes OpenAI's json_schema
    response_format: "json_schema" if it does, "json_object" if it rejects it (as
    llama-cpp-python's server does), "auto" if the probe itself failed."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Say a."}],
        "max_tokens": 1,
        "temperature": 0.0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "probe", "schema": {"type": "string", "enum": ["a"]}},
        },
    }
    try:
        response = httpx.post(
            f"{base_url}/chat/completions",
            json=body,
            headers=_auth_headers(api_key),
            timeout=timeout_s,
        )
    except httpx.HTTPError:
        return "auto"
    if response.status_code < 300:
        return "json_schema"
    if looks_like_response_format_rejection(response.status_code, response.text):
        return "json_object"
    return "auto"


class _RequestRejected(LLMError):
    """A non-retryable answer (4xx) to one request."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def map_finish_reason(reason: Any) -> Literal["stop", "length"]:
    return "length" if reason == "length" else "stop"


def estimate_tokens(text: str) -> int:
    """A rough count (about 4 characters a token) for servers that report no usage."""
    return max(1, (len(text) + 3) // 4)


class OpenAIBackend(Backend):
    name = "openai"
    max_batch = 64
    concurrent_batches = True

    def __init__(
        self,
        base_url: str | Sequence[str] | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        concurrency: int = 32,
        timeout_s: float = REQUEST_TIMEOUT_S,
        connect_timeout_s: float = 10.0,
        max_retries: int = 4,
        retry_base_delay_s: float = 0.5,
        retry_max_delay_s: float = 30.0,
        structured_output: StructuredMode = "auto",
        strict: bool = True,
        extra_body: dict[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        revive_after_s: float = 30.0,
    ) -> None:
        """`base_url` names one server or several (a list, or commas); `concurrency` is
        the limit of requests in flight per server; a server that stops answering is
        taken out for `revive_after_s` (see `llm.routing`). `timeout_s` is the request's
        deadline: all its tries, failovers and backoff waits together (a server that
        accepts and never answers costs at most that, not that per try)."""
        if not 0 < timeout_s < float("inf"):
            raise ValueError(f"the request timeout must be a positive number, not {timeout_s}")
        self.formats = ResponseFormats(structured_output, strict=strict)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.base_urls = resolve_base_urls(base_url)
        self.base_url = self.base_urls[0]
        self.pool = ServerPool(self.base_urls, concurrency, revive_after_s)
        self.api_key = api_key or _env(API_KEY_ENVS)
        self._model = model or _env(MODEL_ENVS)
        self.concurrency = concurrency
        self.max_batch = max(self.max_batch, concurrency * len(self.base_urls))
        self.timeout_s = timeout_s
        self.timeout = httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s))
        self.max_retries = max_retries
        self.retry_base_delay_s = retry_base_delay_s
        self.retry_max_delay_s = retry_max_delay_s
        self.extra_body = dict(extra_body or {})
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._model_lock: asyncio.Lock | None = None
        #: HTTP attempts made (first tries and retries), for tests and diagnostics
        self.attempts = 0

    @property
    def structured_output(self) -> str:
        """The structured-output mode in force (see `llm.response_format`)."""
        return self.formats.mode

    # -- model ------------------------------------------------------------------------

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def model(self) -> str:
        """The model name; when none was given, the first the server lists (asked once,
        blocking, the first time it is needed; with several servers, the first that
        answers: they are meant to serve the same model)."""
        if self._model is None:
            error: BackendUnavailableError | None = None
            for url in self.base_urls:
                try:
                    self._model = list_first_model(
                        url, self.api_key, timeout_s=self.timeout.connect or 10.0
                    )
                    break
                except BackendUnavailableError as exc:
                    error = exc
            else:
                assert error is not None
                raise error
        return self._model

    async def _resolve_model(self) -> str:
        if self._model is not None:
            return self._model
        if self._model_lock is None:
            self._model_lock = asyncio.Lock()
        async with self._model_lock:
            for base in self.base_urls:
                if self._model is not None:
                    break
                url = f"{base}/models"
                try:
                    response = await self._http().get(url)
                    response.raise_for_status()
                    payload = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    if base != self.base_urls[-1]:
                        continue
                    raise BackendUnavailableError(
                        f"could not list the models at {url} to pick one ({_describe(exc)}); "
                        "is the server running? Or name the model with --model (model=...) "
                        "or CONCORDIA_OPENAI_MODEL"
                    ) from exc
                self._model = _first_model(payload, url)
        assert self._model is not None
        return self._model

    # -- HTTP -------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers={"Content-Type": "application/json", **_auth_headers(self.api_key)},
                timeout=self.timeout,
                limits=httpx.Limits(
                    max_connections=self.concurrency * len(self.base_urls),
                    max_keepalive_connections=self.concurrency * len(self.base_urls),
                ),
                transport=self._transport,
            )
        return self._client

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.retry_base_delay_s * (2**attempt)
        delay = min(delay, self.retry_max_delay_s) * (1.0 + random.uniform(0.0, 0.1))
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(retry_after), self.retry_max_delay_s))
        return delay

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST one chat completion to the least-loaded server; a server that does not
        answer is taken out and the request goes to another at once; 429, 5xx and a
        request no server took are retried with backoff (see `llm.routing`)."""
        last = "no attempt made"
        attempts = self.max_retries + 1
        attempt = 0
        tried: set[Server] = set()
        deadline = time.monotonic() + self.timeout_s
        while True:
            retry_after: str | None = None
            server = await self.pool.acquire(tried)
            chat_url = f"{server.url}/chat/completions"
            answered = False
            try:
                self.attempts += 1
                try:
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        response = await self._http().post(chat_url, json=body)
                except (httpx.TimeoutException, TimeoutError) as exc:
                    last = f"{chat_url} timed out ({type(exc).__name__})"
                except httpx.TransportError as exc:
                    last = f"{chat_url}: {_describe(exc)}"
                else:
                    answered = True
                    status = response.status_code
                    if status < 300:
                        try:
                            return response.json()
                        except ValueError:
                            last = f"HTTP {status}, body not JSON: {response.text[:200]!r}"
                    else:
                        text = response.text
                        self._raise_if_final(chat_url, status, text, body)
                        last = f"{chat_url}: HTTP {status}: {text[:200]}"
                        retry_after = response.headers.get("retry-after")
            finally:
                await self.pool.release(server, answered=answered)
            if not answered:
                self.pool.take_out(server, last)
                tried.add(server)
                if len(tried) < len(self.pool.servers):
                    # failover: on to a server not tried in this round (one that is in, if
                    # any is), at once; a round over every server spends one retry
                    continue
            attempt += 1
            if attempt >= attempts:
                break
            delay = self._delay(attempt - 1, retry_after)
            if time.monotonic() + delay >= deadline:
                raise BackendUnavailableError(
                    f"no answer from {chat_url} within the request deadline of "
                    f"{self.timeout_s:g} s (--request-timeout) after {attempt} attempt(s); "
                    f"last error: {last}"
                )
            log.debug("openai backend: %s; retrying in %.2fs", last, delay)
            await asyncio.sleep(delay)
            tried.clear()
        if len(self.base_urls) == 1:
            raise BackendUnavailableError(
                f"the OpenAI-compatible server at {self.chat_url} kept failing: {attempts} "
                f"attempt(s), {self.max_retries} retries spent; last error: {last}"
            )
        raise BackendUnavailableError(
            f"none of the {len(self.base_urls)} OpenAI-compatible servers "
            f"({self.pool.describe()}) answered: {self.max_retries} retries spent after "
            f"every server was taken out; last error: {last}"
        )

    def _raise_if_final(self, chat_url: str, status: int, text: str, body: dict[str, Any]) -> None:
        """Raise for an error answer that asking again cannot mend."""
        if looks_like_response_format_rejection(status, text) and body.get("response_format"):
            raise _RequestRejected(
                f"{chat_url} rejected the response_format (HTTP {status}): {text[:300]}",
                status,
                text,
            )
        if status in (401, 403):
            raise BackendUnavailableError(
                f"{chat_url} refused the request (HTTP {status}: {text[:200]}); check the "
                "API key (--api-key or OPENAI_API_KEY)"
            )
        if status == 404:
            raise BackendUnavailableError(
                f"{chat_url} answered HTTP 404 ({text[:200]}); check the base URL (it "
                f"usually ends in /v1) and the model name {body.get('model')!r}"
            )
        if status not in _RETRY_STATUS:
            raise _RequestRejected(
                f"{chat_url} rejected the request (HTTP {status}): {text[:300]}", status, text
            )

    # -- requests ---------------------------------------------------------------------

    def build_body(self, request: LLMRequest, model: str, mode: str) -> dict[str, Any]:
        s = request.sampling
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "seed": s.seed,
            "stream": False,
        }
        if s.stop:
            body["stop"] = list(s.stop)
        if s.repeat_penalty != 1.0:
            # the one repetition control every OpenAI-compatible server takes (vLLM,
            # llama.cpp's server, Ollama, hosted APIs); `repetition_penalty` is not
            # standard and some servers refuse unknown fields
            body["frequency_penalty"] = round(s.repeat_penalty - 1.0, 3)
        response_format = self.formats.response_format(request, mode)
        if response_format is not None:
            body["response_format"] = response_format
        body.update(self.extra_body)
        return body

    async def _one(self, request: LLMRequest, model: str) -> RawCompletion:
        form = self.formats.first()
        try:
            payload = await self._post(self.build_body(request, model, form))
        except _RequestRejected as exc:
            if not self.formats.falls_back(request, form, exc.status, exc.body, self.base_url):
                raise LLMError(str(exc)) from None
            try:
                payload = await self._post(self.build_body(request, model, "json_object"))
            except _RequestRejected as exc2:
                raise SchemaRefusedError(str(exc2)) from None
        return self._parse(payload, request)

    def _parse(self, payload: dict[str, Any], request: LLMRequest) -> RawCompletion:
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not choices or not isinstance(choices, list):
            raise LLMError(f"{self.chat_url} answered without choices: {str(payload)[:300]}")
        choice = choices[0]
        message = choice.get("message") or {}
        text = message.get("content")
        if text is None:
            text = choice.get("text") or ""
        if not isinstance(text, str):
            text = json.dumps(text)
        usage = payload.get("usage") or {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        return RawCompletion(
            text=text,
            prompt_tokens=int(prompt_tokens)
            if prompt_tokens is not None
            else sum(estimate_tokens(m.content) for m in request.messages),
            completion_tokens=int(completion_tokens)
            if completion_tokens is not None
            else estimate_tokens(text),
            finish_reason=map_finish_reason(choice.get("finish_reason")),
        )

    async def generate_batch(self, requests: list[LLMRequest]) -> list[RawCompletion | Exception]:
        model = await self._resolve_model()
        return await fan_out(requests, lambda r: self._one(r, model))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
