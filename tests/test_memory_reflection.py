"""Reflection on the scripted model with real embeddings and Chroma: the threshold, citing
real memories, batching across agents, and bad model output."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

from concordia_like.llm import LanguageModel, ScriptedBackend
from concordia_like.memory.records import NewMemory
from concordia_like.memory.reflection import ReflectionConfig, Reflector

T0 = datetime(2024, 2, 13, 8)
QUESTIONS = {"questions": ["What does {a} care about most?", "Who is {a} close to?"]}


def statements(request) -> list[str]:
    return re.findall(r"^\d+\. (.*)$", request.messages[-1].content, re.M)


def insights(request) -> str:
    """Cites statements 1 and 3 (or 1 alone), and one insight citing nothing real."""
    n = len(statements(request))
    agent = request.agent
    return json.dumps(
        {
            "insights": [
                {
                    "text": f"{agent} is devoted to the research",
                    "because": [1, 3] if n >= 3 else [1],
                    "importance": 7,
                },
                {"text": f"{agent} values friendship", "because": [min(2, n)], "importance": 6},
            ]
        }
    )


def reflective_model(insight_response=insights):
    backend = ScriptedBackend()
    backend.add_rule(
        r"salient high-level questions",
        lambda r: json.dumps({"questions": [q.format(a=r.agent) for q in QUESTIONS["questions"]]}),
        purpose="reflect",
    )
    backend.add_rule(r"high-level insights", insight_response, purpose="reflect")
    return backend, LanguageModel(backend)


def experiences(agent: str, importances: list[int], start: datetime = T0) -> list[NewMemory]:
    topics = ["research paper", "library", "friend Maria", "coffee", "lecture", "gentrification"]
    texts = [
        f"{agent} thinks about the {topics[i % 6]} (moment {i})" for i in range(len(importances))
    ]
    times = [start + timedelta(minutes=10 * i) for i in range(len(importances))]
    return [
        NewMemory(agent, text, "observation", when, imp)
        for text, when, imp in zip(texts, times, importances, strict=True)
    ]


async def test_reflection_fires_exactly_at_the_threshold_and_cites_real_memories(memory_store):
    backend, lm = reflective_model()
    reflector = Reflector(lm, memory_store)  # threshold 150
    memory_store.add_many(experiences("Klaus", [10] * 14 + [9]))  # 149
    memory_store.add(
        NewMemory("Klaus", "Klaus plans his week", "plan", T0, 10)
    )  # plans don't count
    memory_store.add(NewMemory("Maria", "Maria runs a marathon", "action", T0, 10))
    assert memory_store.importance_since_reflection(["Klaus"])["Klaus"][0] == 149
    assert reflector.due(["Klaus", "Maria"]) == []
    assert await reflector.reflect_due(["Klaus", "Maria"], T0 + timedelta(hours=3)) == []
    assert backend.requests_seen == []

    last = memory_store.add(NewMemory("Klaus", "Klaus notices a cat", "observation", T0, 1))
    assert reflector.due(["Klaus", "Maria"]) == ["Klaus"]  # 150: exactly at the threshold
    now = T0 + timedelta(hours=4)
    [outcome] = await reflector.reflect_due(["Klaus", "Maria"], now)
    assert outcome.agent == "Klaus" and outcome.skipped is None
    assert outcome.questions == ["What does Klaus care about most?", "Who is Klaus close to?"]
    assert [i.text for i in outcome.insights] == [
        "Klaus is devoted to the research",
        "Klaus values friendship",
    ]

    # the evidence is the ids of the statements the model cited, as quoted to it
    insight_request = next(r for r in backend.requests_seen if "insights" in r.messages[-1].content)
    quoted = statements(insight_request)
    first = outcome.insights[0]
    cited = memory_store.get(first.evidence)
    assert [c.text for c in cited] == [quoted[0], quoted[2]]
    assert all(c.agent == "Klaus" and c.kind != "reflection" for c in cited)
    assert first.kind == "reflection" and first.importance == 7 and first.created == now

    # the count starts again after the reflection
    totals = memory_store.importance_since_reflection(["Klaus"])
    assert totals["Klaus"] == (0, last.id)
    assert reflector.due(["Klaus"]) == []

    # insights take part in later retrieval
    got = memory_store.retrieve("Klaus", "What is Klaus devoted to?", now + timedelta(hours=1), k=3)
    assert "Klaus is devoted to the research" in [s.record.text for s in got]


async def test_reflections_of_all_agents_due_are_batched(memory_store, monkeypatch):
    _backend, lm = reflective_model()
    reflector = Reflector(lm, memory_store, ReflectionConfig(threshold=30))
    agents = ["Klaus", "Maria", "Isabella", "Tom"]
    for agent in agents[:3]:
        memory_store.add_many(experiences(agent, [10, 10, 10]))
    memory_store.add_many(experiences("Tom", [10, 10]))  # 20: not due
    retrievals = []
    real = memory_store.retrieve_many
    monkeypatch.setattr(
        memory_store, "retrieve_many", lambda qs, **kw: retrievals.append(len(qs)) or real(qs, **kw)
    )
    outcomes = await reflector.reflect_due(agents, T0 + timedelta(hours=1))
    assert [o.agent for o in outcomes] == agents[:3]
    assert all(len(o.insights) == 2 for o in outcomes)
    assert lm.batcher.batch_sizes == [3, 3]  # one batch of questions, one of insights
    assert retrievals == [6]  # every question of every agent in one retrieval
    for o in outcomes:  # each agent's insights rest on its own memories
        for ins in o.insights:
            assert {r.agent for r in memory_store.get(ins.evidence)} == {o.agent}


async def test_unusable_model_output_skips_the_reflection_without_crashing(memory_store, caplog):
    _backend, lm = reflective_model(insight_response=lambda r: '{"insights": [{"text": "oops"')
    reflector = Reflector(lm, memory_store, ReflectionConfig(threshold=20))
    memory_store.add_many(experiences("Klaus", [10, 10]))
    [outcome] = await reflector.reflect_due(["Klaus"], T0 + timedelta(hours=1))
    assert outcome.insights == [] and "unusable insights" in outcome.skipped
    assert memory_store.count("Klaus") == 2  # nothing written
    assert reflector.due(["Klaus"]) == []  # the mark moved: no retry storm every step
    assert "reflection of Klaus" in caplog.text


async def test_citations_outside_the_statements_are_refused_by_the_schema(memory_store):
    _backend, lm = reflective_model(
        insight_response=lambda r: json.dumps(
            {"insights": [{"text": "made up", "because": [99], "importance": 5}]}
        )
    )
    reflector = Reflector(lm, memory_store, ReflectionConfig(threshold=20))
    memory_store.add_many(experiences("Klaus", [10, 10]))
    [outcome] = await reflector.reflect(["Klaus"], T0 + timedelta(hours=1))
    assert outcome.insights == [] and outcome.skipped
    assert memory_store.count("Klaus") == 2


async def test_an_unscripted_model_yields_schema_valid_insights(memory_store):
    lm = LanguageModel(ScriptedBackend())  # random, schema-valid answers
    reflector = Reflector(lm, memory_store, ReflectionConfig(threshold=20))
    memory_store.add_many(experiences("Klaus", [10, 10, 10, 10]))
    [outcome] = await reflector.reflect(["Klaus"], T0 + timedelta(hours=1))
    klaus_ids = {r.id for r in memory_store.recent("Klaus", 10, kinds=("observation",))}
    assert outcome.insights
    for ins in outcome.insights:
        assert ins.evidence and set(ins.evidence) <= klaus_ids
        assert len(ins.text) <= ReflectionConfig().max_chars
