"""The scripted OpenAI-compatible server (a test double for routing benchmarks) and the
`openai` backend spreading calls over several of them, as `bench_servers.py` measures."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Literal

from pydantic import BaseModel

from concordia_like.llm import LanguageModel, LLMRequest
from concordia_like.llm.openai_compat import OpenAIBackend
from concordia_like.llm.scripted_server import MODEL, ScriptedOpenAIServer, completion_for


class Move(BaseModel):
    kind: Literal["stay", "go"]
    where: str


def requests(n: int) -> list[LLMRequest]:
    return [
        LLMRequest.chat(f"resident {i}: what now?", schema=Move, agent=f"r{i}") for i in range(n)
    ]


async def test_calls_spread_over_two_servers_each_held_to_its_limit():
    async with (
        ScriptedOpenAIServer(latency_s=0.02, limit=4) as a,
        ScriptedOpenAIServer(latency_s=0.02, limit=4) as b,
    ):
        backend = OpenAIBackend(base_url=[a.base_url, b.base_url], model=MODEL, concurrency=4)
        lm = LanguageModel(backend)
        try:
            answers = await lm.complete_many(requests(40))
        finally:
            await lm.aclose()
    assert all(isinstance(x.parsed, Move) for x in answers)  # every answer fits its schema
    assert a.requests + b.requests == 40
    assert 12 <= a.requests <= 28 and 12 <= b.requests <= 28
    assert a.peak <= 4 and b.peak <= 4


async def test_choices_and_plain_text_are_answered():
    async with ScriptedOpenAIServer() as server:
        lm = LanguageModel(OpenAIBackend(base_url=server.base_url, model=MODEL))
        try:
            pick = await lm.complete(LLMRequest.chat("pick", choices=["tea", "coffee"]))
            text = await lm.complete(LLMRequest.chat("say something"))
        finally:
            await lm.aclose()
    assert pick.parsed in ("tea", "coffee")
    assert text.text.strip()


def test_the_same_request_gets_the_same_answer():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    body = {"messages": [{"role": "user", "content": "hi"}]}
    raw = json.dumps({**body, "response_format": {"type": "json_object", "schema": schema}})
    raw = raw.encode()
    first, second = completion_for(raw), completion_for(raw)
    assert first["choices"] == second["choices"]
    assert '"n"' in first["choices"][0]["message"]["content"]


def test_the_command_prints_its_urls_and_what_each_answered():
    proc = subprocess.Popen(
        [sys.executable, "-m", "concordia_like.llm.scripted_server", "--servers", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    out, _ = proc.communicate(timeout=30)
    assert first.count("http://127.0.0.1:") == 2
    assert out.strip().splitlines()[-1] == '{"requests": [0, 0], "peak": [0, 0]}'
