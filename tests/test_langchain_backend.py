"""The langchain backend: ChatOpenAI on the real local server (llama-cpp-python's server on
SmolLM2-135M), and the generic path on LangChain's fake chat models."""

from __future__ import annotations

import sys
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from concordia_like.llm import BackendUnavailableError, LanguageModel, LLMRequest, make_backend
from concordia_like.llm.langchain_backend import LangChainBackend, instruction_for, match_choice


class Mood(BaseModel):
    mood: Literal["happy", "sad", "tired"]
    reason: str = Field(max_length=30)


@pytest.mark.server
async def test_chatopenai_text_and_schema(openai_server):
    pytest.importorskip("langchain_openai")
    backend = make_backend("langchain", base_url=openai_server)
    assert isinstance(backend, LangChainBackend)
    assert backend.openai_family and backend.concurrent_batches
    # settled once when built: llama-cpp-python's server takes json_object + schema
    assert backend.structured_output == "json_object"
    assert backend.model.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    lm = LanguageModel(backend)
    text, mood, pick = await lm.complete_many(
        [
            LLMRequest.chat("Greet your neighbour Ana in one sentence.", max_tokens=20),
            LLMRequest.chat("How do you feel this morning? Say why.", schema=Mood, max_tokens=48),
            LLMRequest.chat("Where do you buy bread?", choices=["bakery", "park"], max_tokens=6),
        ]
    )
    await lm.aclose()
    assert text.text.strip() and text.prompt_tokens > 0 and text.completion_tokens > 0
    assert text.completion_tokens <= 20  # max_tokens reached the server
    assert text.backend == "langchain"
    assert isinstance(mood.parsed, Mood) and len(mood.parsed.reason) <= 30
    assert pick.parsed in ("bakery", "park")


@pytest.mark.server
async def test_chatopenai_given_directly_falls_back_to_the_servers_schema_form(openai_server):
    ChatOpenAI = pytest.importorskip("langchain_openai").ChatOpenAI

    chat = ChatOpenAI(base_url=openai_server, model="smollm2", api_key="none", max_retries=0)
    backend = LangChainBackend(chat)
    assert backend.structured_output == "auto" and backend.model == "smollm2"
    lm = LanguageModel(backend)
    c = await lm.complete(LLMRequest.chat("How do you feel? Say why.", schema=Mood, max_tokens=48))
    assert isinstance(c.parsed, Mood)
    assert backend.structured_output == "json_object"


# -- the generic path, on fake models (no server) -----------------------------------------


async def test_generic_model_is_instructed_and_choices_are_matched():
    fakes = pytest.importorskip("langchain_core.language_models.fake_chat_models")
    chat = fakes.FakeListChatModel(responses=['{"mood": "sad", "reason": "rain"}', "Park."])

    backend = LangChainBackend(chat)
    assert not backend.openai_family
    lm = LanguageModel(backend)
    mood = await lm.complete(LLMRequest.chat("How do you feel?", schema=Mood))
    pick = await lm.complete(LLMRequest.chat("Where?", choices=["bakery", "park"]))
    assert mood.parsed == Mood(mood="sad", reason="rain")
    assert pick.parsed == "park"
    assert mood.prompt_tokens > 0 and mood.completion_tokens > 0  # estimated


def test_helpers():
    assert match_choice(' "Bakery". ', ("bakery", "park")) == "bakery"
    assert match_choice("the park", ("bakery", "park")) == "the park"
    req = LLMRequest.chat("x", choices=["a", "b"])
    assert '"a", "b"' in (instruction_for(req) or "")
    assert "JSON schema" in (instruction_for(LLMRequest.chat("x", schema=Mood)) or "")
    assert instruction_for(LLMRequest.chat("x")) is None


def test_rejects_what_is_not_a_chat_model():
    pytest.importorskip("langchain_core")
    with pytest.raises(TypeError, match="BaseChatModel"):
        LangChainBackend(object())


def test_missing_extra_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_core", None)
    with pytest.raises(BackendUnavailableError, match=r"concordia-like\[langchain\]"):
        LangChainBackend(object())
