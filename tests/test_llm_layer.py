"""The language-model layer on the scripted model: batching, parsing, cache, accounting."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from concordia_like.errors import ConfigError
from concordia_like.llm import (
    BackendOptions,
    CacheMissError,
    LanguageModel,
    LLMRequest,
    ResponseCache,
    ScriptedBackend,
    StructuredOutputError,
    UnknownBackendError,
    make_backend,
    open_model,
    run_models,
)
from concordia_like.llm.backend import Backend
from concordia_like.llm.faults import FaultInjectingBackend


class Act(BaseModel):
    kind: Literal["move", "say", "wait"]
    target: str = Field(max_length=20)


class CountingBackend(ScriptedBackend):
    """Scripted, but records each batch it is handed."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.batches: list[int] = []

    async def generate_batch(self, requests):
        self.batches.append(len(requests))
        await asyncio.sleep(0.01)  # a decode takes time; requests pile up meanwhile
        return await super().generate_batch(requests)


def req(text: str, **kw) -> LLMRequest:
    return LLMRequest.chat(text, **kw)


async def test_concurrent_requests_meet_in_one_batch():
    backend = CountingBackend()
    lm = LanguageModel(backend)
    results = await lm.complete_many([req(f"agent {i}", agent=f"a{i}") for i in range(10)])
    assert backend.batches == [10]
    assert [r.text for r in results] == [
        f"a{i} considers the situation and carries on." for i in range(10)
    ]


async def test_requests_after_an_await_still_join_the_batch():
    backend = CountingBackend()
    lm = LanguageModel(backend)

    async def agent(i: int) -> str:
        await asyncio.sleep(0)  # e.g. a retrieval before the model call
        return (await lm.complete(req(f"agent {i}"))).text

    await asyncio.gather(*(agent(i) for i in range(6)))
    assert backend.batches == [6]


async def test_sequential_requests_are_not_batched_and_big_batches_split():
    backend = CountingBackend()
    backend.max_batch = 4
    lm = LanguageModel(backend)
    for i in range(3):
        await lm.complete(req(f"one {i}"))
    assert backend.batches == [1, 1, 1]
    backend.batches.clear()
    await lm.complete_many([req(f"many {i}") for i in range(10)])
    assert backend.batches == [4, 4, 2]


async def test_requests_arriving_during_a_decode_form_the_next_batch():
    backend = CountingBackend()
    lm = LanguageModel(backend)
    first = asyncio.ensure_future(lm.complete_many([req(f"x{i}") for i in range(3)]))
    await asyncio.sleep(0.005)  # the first batch is decoding now
    second = asyncio.ensure_future(lm.complete_many([req(f"y{i}") for i in range(5)]))
    await asyncio.gather(first, second)
    assert backend.batches == [3, 5]


async def test_one_failing_request_does_not_sink_its_batch():
    class HalfBroken(ScriptedBackend):
        async def generate_batch(self, requests):
            out = await super().generate_batch(requests)
            return [
                RuntimeError("boom") if "bad" in r.messages[-1].content else o
                for r, o in zip(requests, out, strict=True)
            ]

    lm = LanguageModel(HalfBroken())
    results = await lm.complete_many(
        [req("good"), req("bad"), req("good too")], return_exceptions=True
    )
    assert isinstance(results[1], RuntimeError)
    assert results[0].text and results[2].text


async def test_schema_output_is_validated_and_parsed():
    backend = ScriptedBackend()
    backend.add_rule("bakery", json.dumps({"kind": "move", "target": "bakery"}))
    lm = LanguageModel(backend)
    done = await lm.complete(req("go to the bakery", schema=Act))
    assert done.parsed == Act(kind="move", target="bakery")


async def test_invalid_schema_output_raises_with_raw_text_and_counts_as_failed():
    backend = ScriptedBackend()
    backend.add_rule("fly", json.dumps({"kind": "fly", "target": "moon"}))
    lm = LanguageModel(backend)
    with pytest.raises(StructuredOutputError) as info:
        await lm.complete(req("fly away", schema=Act, purpose="act", agent="ada"))
    assert info.value.raw_text == '{"kind": "fly", "target": "moon"}'
    assert "kind" in info.value.reason
    assert lm.usage.total.failed == 1 and lm.usage.by_agent["ada"].calls == 1


async def test_fenced_json_is_accepted_and_truncated_json_is_not():
    backend = ScriptedBackend()
    backend.add_rule("fenced", '```json\n{"kind": "wait", "target": "here"}\n```')
    backend.add_rule("cut", '{"kind": "wait", "tar')
    lm = LanguageModel(backend)
    assert (await lm.complete(req("fenced", schema=Act))).parsed.kind == "wait"
    with pytest.raises(StructuredOutputError):
        await lm.complete(req("cut", schema=Act))


async def test_choices_are_enforced():
    backend = ScriptedBackend()
    backend.add_rule("color", '"red"')
    backend.add_rule("mood", "furious")
    lm = LanguageModel(backend)
    assert (await lm.complete(req("color?", choices=["red", "blue"]))).parsed == "red"
    with pytest.raises(StructuredOutputError, match="not one of the 2 choices"):
        await lm.complete(req("mood?", choices=["calm", "happy"]))
    unruled = await lm.complete(req("anything", choices=["a", "b", "c"]))
    assert unruled.parsed in ("a", "b", "c")


def test_a_request_takes_schema_or_choices_not_both():
    with pytest.raises(ValueError, match="not both"):
        req("x", schema=Act, choices=["a"])


async def test_scripted_model_answers_any_schema_validly():
    class Effect(BaseModel):
        kind: Literal["move", "transfer"]
        quantity: int = Field(ge=1, le=5)

    class Resolution(BaseModel):
        success: bool
        outcome: str = Field(max_length=50)
        effects: list[Effect] = Field(max_length=3)
        observers: list[str]
        note: str | None = None

    lm = LanguageModel(ScriptedBackend())
    for i in range(20):
        done = await lm.complete(req(f"resolve {i}", schema=Resolution))
        assert isinstance(done.parsed, Resolution)
        assert all(1 <= e.quantity <= 5 for e in done.parsed.effects)


async def test_cache_serves_repeats_and_distinguishes_seeds(tmp_path):
    backend = CountingBackend()
    lm = LanguageModel(backend, cache=ResponseCache(tmp_path / "c.sqlite"))
    a = await lm.complete(req("hello", seed=1))
    b = await lm.complete(req("hello", seed=1))
    c = await lm.complete(req("hello", seed=2))
    assert backend.batches == [1, 1]  # the repeat never reached the backend
    assert not a.cached and b.cached and not c.cached
    assert a.text == b.text
    assert lm.usage.total.calls == 3 and lm.usage.total.cached == 1


async def test_replay_reproduces_a_run_and_fails_loudly_on_a_miss(tmp_path):
    path = tmp_path / "run.sqlite"
    recorder = LanguageModel(ScriptedBackend(), cache=ResponseCache(path))
    first = await recorder.complete_many([req(f"step {i}", schema=Act) for i in range(5)])
    await recorder.aclose()

    class Refuses(Backend):
        name = "scripted"
        model = "scripted-v1"

        async def generate_batch(self, requests):
            raise AssertionError("replay must not call the model")

    replay = LanguageModel(Refuses(), cache=ResponseCache(path, "replay"))
    again = await replay.complete_many([req(f"step {i}", schema=Act) for i in range(5)])
    assert [a.parsed for a in again] == [f.parsed for f in first]
    with pytest.raises(CacheMissError, match="has no response"):
        await replay.complete(req("a step never recorded"))


def test_replay_of_a_missing_cache_is_an_error(tmp_path):
    with pytest.raises(CacheMissError, match="does not exist"):
        ResponseCache(tmp_path / "nope.sqlite", "replay")


async def test_usage_is_counted_by_purpose_and_agent():
    lm = LanguageModel(ScriptedBackend())
    await lm.complete_many(
        [
            req("a", purpose="act", agent="ada"),
            req("b", purpose="act", agent="bo"),
            req("c", purpose="importance", agent="ada"),
        ]
    )
    summary = lm.usage.summary()
    assert summary["by_purpose"]["act"]["calls"] == 2
    assert summary["by_purpose"]["importance"]["calls"] == 1
    assert summary["by_agent"]["ada"]["calls"] == 2
    assert summary["total"]["prompt_tokens"] > 0
    assert lm.usage.prompt_tokens_percentile(95) > 0


def test_unknown_backend_names_the_choices():
    with pytest.raises(UnknownBackendError, match="embedded, openai, vllm, langchain, scripted"):
        make_backend("gpt5")


async def test_fault_injection_hits_the_set_fraction_with_every_kind():
    from concordia_like.llm.faults import HOSTILE_TEXT

    class Note(BaseModel):
        text: str = Field(max_length=200)
        count: int

    faulty = FaultInjectingBackend(ScriptedBackend(), rate=0.3, seed=3)
    lm = LanguageModel(faulty)
    results = await lm.complete_many(
        [req(f"note {i}", schema=Note) for i in range(400)], return_exceptions=True
    )
    injected = sum(faulty.injected.values())
    assert 90 <= injected <= 150  # 30% of 400, give or take chance
    assert set(faulty.injected) == {"malformed", "truncated", "off_schema", "hostile"}
    failures = [r for r in results if isinstance(r, StructuredOutputError)]
    hostile = [r for r in results if not isinstance(r, Exception) and r.parsed.text == HOSTILE_TEXT]
    # malformed, truncated and off-schema outputs never parse; hostile ones do
    assert len(failures) == injected - len(hostile)
    assert len(hostile) == faulty.injected["hostile"]
    # the same seed injects the same faults
    again = FaultInjectingBackend(ScriptedBackend(), rate=0.3, seed=3)
    await LanguageModel(again).complete_many(
        [req(f"note {i}", schema=Note) for i in range(400)], return_exceptions=True
    )
    assert again.injected == faulty.injected


# -- owning and borrowing ----------------------------------------------------------------


class ClosingBackend(CountingBackend):
    """Counting, and counts its closes."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


async def test_borrowed_models_share_the_lenders_batches_and_leave_its_backend_open(tmp_path):
    backend = ClosingBackend()
    lender = open_model(backend)
    runs = [lender.borrow(cache=ResponseCache(tmp_path / f"{i}.sqlite")) for i in range(3)]
    await asyncio.gather(*(m.complete_many([req(f"run {i} ask {k}") for k in range(2)])
                           for i, m in enumerate(runs)))  # fmt: skip
    assert backend.batches == [6]  # the three runs' requests met in one batch
    assert [m.usage.total.calls for m in runs] == [2, 2, 2]  # each counts its own
    assert lender.usage.total.calls == 0
    for m in runs:
        await m.aclose()
    assert backend.closed == 0 and all(m.cache._closed for m in runs)  # their own caches
    async with lender:
        pass
    assert backend.closed == 1


async def test_run_models_give_each_run_its_own_cache_in_its_folder(tmp_path):
    backend = ClosingBackend()
    async with open_model(backend) as lender:
        factory = run_models(lender, "readwrite")
        a, b = factory(tmp_path / "a"), factory(tmp_path / "b")
        assert a.cache.path == tmp_path / "a" / "cache.sqlite" != b.cache.path
        assert run_models(lender, "off")(tmp_path / "c").cache is None
        await a.aclose()
        await b.aclose()
        assert backend.closed == 0
    assert backend.closed == 1


def test_open_model_from_options_and_faults():
    lm = open_model(BackendOptions("scripted"), faults=0.5, fault_seed=2)
    assert isinstance(lm.backend, FaultInjectingBackend) and lm.owns_backend
    assert lm.name == "scripted:scripted-v1+faults0.5/2"
    assert open_model("scripted").name == "scripted:scripted-v1"


def test_backend_options_take_what_a_run_recorded_unless_given():
    recorded = BackendOptions("openai", "m1", ["http://a", "http://b"], "key").recorded()
    assert "key" not in json.dumps(recorded) and recorded["backend"] == "openai"
    again = BackendOptions().or_recorded(recorded)
    assert (again.name, again.model, again.base_url, again.api_key) == (
        "openai", "m1", ["http://a", "http://b"], None,
    )  # fmt: skip
    other = BackendOptions(model="m2", api_key="k2").or_recorded(recorded)
    assert (other.name, other.model, other.api_key) == ("openai", "m2", "k2")
    assert BackendOptions().name == "embedded"
    assert other.kwargs() == {"base_url": ["http://a", "http://b"], "model": "m2", "api_key": "k2"}
    assert BackendOptions("embedded", model_path="m.gguf").kwargs() == {
        "model_path": Path("m.gguf")
    }
    with pytest.raises(ConfigError, match="one --base-url"):
        BackendOptions("langchain", base_url=["http://a", "http://b"]).kwargs()
