"""The openai backend: end to end on a real OpenAI-compatible server (llama-cpp-python's
server on SmolLM2-135M), and its failure paths on a scripted local HTTP server."""

from __future__ import annotations

import json
import time
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from concordia_like.llm import (
    BackendUnavailableError,
    LanguageModel,
    LLMError,
    LLMRequest,
    make_backend,
)
from concordia_like.llm.openai_compat import OpenAIBackend, resolve_base_url
from concordia_like.llm.response_format import response_format_for
from concordia_like.local_server import free_port

from support.scripted_http import CHAT_OK, scripted_server

pytestmark = pytest.mark.server

FAST = {"retry_base_delay_s": 0.01, "retry_max_delay_s": 0.05}


class Mood(BaseModel):
    mood: Literal["happy", "sad", "tired"]
    reason: str = Field(max_length=30)


# -- on the real server -----------------------------------------------------------------


async def test_text_completion_and_model_discovery(openai_server):
    lm = LanguageModel(OpenAIBackend(base_url=openai_server))
    try:
        c = await lm.complete(
            LLMRequest.chat("Greet your neighbour Ana in one sentence.", max_tokens=24)
        )
    finally:
        await lm.aclose()
    assert c.text.strip()
    assert c.prompt_tokens > 0 and c.completion_tokens > 0
    assert c.finish_reason in ("stop", "length")
    assert c.backend == "openai"
    assert c.model.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")  # the server's first model
    assert lm.usage.total.calls == 1
    assert lm.usage.total.completion_tokens == c.completion_tokens


async def test_schema_request_is_constrained_and_validated(openai_server):
    backend = OpenAIBackend(base_url=openai_server)
    lm = LanguageModel(backend)
    try:
        c = await lm.complete(
            LLMRequest.chat(
                "How do you feel this morning? Say why.", schema=Mood, max_tokens=48, seed=3
            )
        )
    finally:
        await lm.aclose()
    assert isinstance(c.parsed, Mood)
    assert c.parsed.mood in ("happy", "sad", "tired")
    assert len(c.parsed.reason) <= 30
    # llama-cpp-python's server rejects OpenAI's json_schema form and constrains with
    # its own json_object + schema form; "auto" found that out and kept it
    assert backend.structured_output == "json_object"


async def test_choices_request_returns_a_choice(openai_server):
    lm = LanguageModel(OpenAIBackend(base_url=openai_server, structured_output="json_object"))
    choices = ["bakery", "library", "park"]
    try:
        c = await lm.complete(
            LLMRequest.chat("Where do you buy bread?", choices=choices, max_tokens=8)
        )
    finally:
        await lm.aclose()
    assert c.parsed in choices
    assert lm.backend.attempts == 1  # no detour through the json_schema form


async def test_concurrent_requests_all_succeed(openai_server):
    backend = OpenAIBackend(base_url=openai_server, concurrency=4)
    lm = LanguageModel(backend)
    requests = [
        LLMRequest.chat(f"Name one thing person {i} might carry.", max_tokens=12, seed=i)
        for i in range(5)
    ] + [LLMRequest.chat("Pick one.", choices=["yes", "no"], max_tokens=4)]
    try:
        out = await lm.complete_many(requests)
    finally:
        await lm.aclose()
    assert len(out) == 6
    assert all(c.text.strip() for c in out)
    assert out[-1].parsed in ("yes", "no")
    assert lm.batcher.batch_sizes == [6]  # one batch, sent as concurrent requests


async def test_bare_host_url_gets_v1_and_json_schema_mode_is_not_retried(openai_server):
    bare = openai_server.removesuffix("/v1")
    backend = OpenAIBackend(base_url=bare, structured_output="json_schema", **FAST)
    assert backend.base_url == openai_server
    lm = LanguageModel(backend)
    try:
        with pytest.raises(LLMError, match="response_format"):
            await lm.complete(LLMRequest.chat("Mood?", schema=Mood, max_tokens=8))
    finally:
        await lm.aclose()
    assert backend.attempts == 1  # a rejection is not something to retry


# -- failure paths on a scripted server ---------------------------------------------------


async def test_retries_429_and_503_then_succeeds():
    script = [(429, {"error": "slow down"}), (503, {"error": "busy"}), (200, CHAT_OK)]
    async with scripted_server(script) as server:
        backend = OpenAIBackend(base_url=server.base_url, model="fake-model", **FAST)
        lm = LanguageModel(backend)
        c = await lm.complete(LLMRequest.chat("hi", max_tokens=4, stop=["\n"], seed=7))
        await lm.aclose()
    assert c.text == "fine" and c.prompt_tokens == 5 and c.completion_tokens == 1
    assert backend.attempts == 3
    body = json.loads(server.requests[-1][2])
    assert server.requests[-1][1] == "/v1/chat/completions"
    assert body["model"] == "fake-model"
    assert body["max_tokens"] == 4 and body["stop"] == ["\n"] and body["seed"] == 7
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert "response_format" not in body


async def test_gives_up_after_max_retries_naming_the_url():
    async with scripted_server([(500, {"error": "boom"})]) as server:
        backend = OpenAIBackend(base_url=server.base_url, model="fake-model", max_retries=2, **FAST)
        lm = LanguageModel(backend)
        with pytest.raises(BackendUnavailableError) as info:
            await lm.complete(LLMRequest.chat("hi", max_tokens=4))
        await lm.aclose()
    assert backend.attempts == 3
    message = str(info.value)
    assert f"{server.base_url}/chat/completions" in message
    assert "HTTP 500" in message and "boom" in message


async def test_client_error_is_not_retried():
    async with scripted_server([(400, {"error": "prompt too long"})]) as server:
        backend = OpenAIBackend(base_url=server.base_url, model="fake-model", **FAST)
        with pytest.raises(LLMError, match="prompt too long") as info:
            await LanguageModel(backend).complete(LLMRequest.chat("hi", max_tokens=4))
        await backend.aclose()
    assert not isinstance(info.value, BackendUnavailableError)
    assert backend.attempts == 1


async def test_portable_schema_form_is_sent_first():
    ok = dict(CHAT_OK, choices=[dict(CHAT_OK["choices"][0], message={"content": '"park"'})])
    async with scripted_server([(200, ok)]) as server:
        backend = OpenAIBackend(base_url=server.base_url, model="fake-model", **FAST)
        c = await LanguageModel(backend).complete(
            LLMRequest.chat("where?", choices=["bakery", "park"], max_tokens=4)
        )
        await backend.aclose()
    assert c.parsed == "park"
    body = json.loads(server.requests[-1][2])
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "choice",
            "schema": {"type": "string", "enum": ["bakery", "park"]},
            "strict": True,
        },
    }


async def test_model_is_discovered_from_the_server():
    async with scripted_server([(200, CHAT_OK)]) as server:
        backend = OpenAIBackend(base_url=server.base_url, **FAST)
        await LanguageModel(backend).complete(LLMRequest.chat("hi", max_tokens=4))
        assert backend.model == "fake-model"
        await backend.aclose()
    assert server.requests[0][:2] == ("GET", "/v1/models")


async def test_unreachable_server_fails_fast_and_clearly():
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAIBackend(base_url=url, model="m", max_retries=2, **FAST)
    start = time.perf_counter()
    with pytest.raises(BackendUnavailableError, match=f"{url}/chat/completions"):
        await LanguageModel(backend).complete(LLMRequest.chat("hi", max_tokens=4))
    assert time.perf_counter() - start < 5
    assert backend.attempts == 3
    await backend.aclose()


async def test_unreachable_server_without_model_names_the_fix():
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAIBackend(base_url=url, **FAST)
    with pytest.raises(BackendUnavailableError, match="CONCORDIA_OPENAI_MODEL"):
        await LanguageModel(backend).complete(LLMRequest.chat("hi", max_tokens=4))
    await backend.aclose()


def test_the_schema_sent_is_closed_to_keys_it_does_not_list():
    request = LLMRequest.chat("How do you feel?", schema=Mood)
    for mode in ("json_schema", "json_object"):
        form = response_format_for(request, mode)
        sent = form["json_schema"]["schema"] if mode == "json_schema" else form["schema"]
        # a server's grammar would otherwise let a small model invent keys
        assert sent["additionalProperties"] is False
        assert sent["properties"] == request.json_schema["properties"]
    assert "additionalProperties" not in request.json_schema  # the request's own: untouched
    assert response_format_for(request, "none") is None


def test_missing_base_url_says_what_to_set(monkeypatch):
    for name in ("CONCORDIA_OPENAI_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BackendUnavailableError, match="CONCORDIA_OPENAI_BASE_URL") as info:
        OpenAIBackend()
    assert "--base-url" in str(info.value)


def test_environment_and_registry(monkeypatch):
    monkeypatch.setenv("CONCORDIA_OPENAI_BASE_URL", "http://example.invalid:8000/v1/")
    monkeypatch.setenv("CONCORDIA_OPENAI_MODEL", "some-model")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    backend = make_backend("openai")
    assert isinstance(backend, OpenAIBackend)
    assert backend.base_url == "http://example.invalid:8000/v1"
    assert backend.model == "some-model"
    assert backend.api_key == "sk-test"
    assert backend.concurrent_batches and backend.max_batch >= 32
    assert resolve_base_url("https://api.example.com/openai/v1") == (
        "https://api.example.com/openai/v1"
    )
