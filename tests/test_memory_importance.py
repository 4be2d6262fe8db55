"""Importance scoring on the scripted model: batching, trivia, sharing, fallbacks."""

from __future__ import annotations

import json
import re
from datetime import datetime

from concordia_like.llm import LanguageModel, ScriptedBackend
from concordia_like.memory.importance import (
    ImportanceScorer,
    heuristic_importance,
    importance_schema,
    is_trivial,
)
from concordia_like.memory.records import NewMemory

T0 = datetime(2024, 2, 13, 8)


def rate_by_words(request) -> str:
    """Scores the numbered memories of a prompt: 9 for a party, 2 otherwise."""
    items = re.findall(r"^- (.*)$", request.messages[-1].content, re.M)
    return json.dumps({"scores": [9 if "party" in t else 2 for t in items]})


def scripted(*rules):
    backend = ScriptedBackend()
    for pattern, response in rules:
        backend.add_rule(pattern, response, purpose="importance")
    return backend, LanguageModel(backend)


def mem(agent: str, text: str, importance: int | None = None) -> NewMemory:
    return NewMemory(agent, text, "observation", T0, importance)


async def test_trivial_observations_score_one_without_a_call():
    backend, lm = scripted((r".", rate_by_words))
    scorer = ImportanceScorer(lm)
    texts = ["Klaus is waiting", "Maria is idle at the cafe", "Nothing new happens", "Tom sleeps"]
    assert all(is_trivial(t) for t in texts)
    assert not is_trivial("Klaus is waiting for the biopsy results from the hospital today")
    assert await scorer.score([mem("Klaus", t) for t in texts]) == [1, 1, 1, 1]
    assert backend.requests_seen == []


async def test_many_memories_of_many_agents_in_one_batch_of_calls():
    backend, lm = scripted((r".", rate_by_words))
    scorer = ImportanceScorer(lm, per_call=8)
    memories = [
        mem(
            f"agent{i % 3}",
            f"agent{i % 3} sees event {i}" + (" at the party" if i % 5 == 0 else ""),
        )
        for i in range(20)
    ]
    scores = await scorer.score(memories)
    assert scores == [9 if i % 5 == 0 else 2 for i in range(20)]
    assert [
        len(re.findall(r"^- ", r.messages[-1].content, re.M)) for r in backend.requests_seen
    ] == [8, 8, 4]
    assert lm.batcher.batch_sizes == [3]  # the three calls went to the model together
    assert all(r.purpose == "importance" for r in backend.requests_seen)
    assert lm.usage.by_purpose["importance"].calls == 3


async def test_a_text_perceived_by_many_agents_is_rated_once():
    backend, lm = scripted((r".", rate_by_words))
    scorer = ImportanceScorer(lm)
    memories = [mem(f"agent{i}", "Isabella announces a party tonight") for i in range(30)]
    assert await scorer.score(memories) == [9] * 30
    assert len(backend.requests_seen) == 1
    assert "- Isabella announces a party tonight" in backend.requests_seen[0].messages[-1].content


async def test_per_agent_scoring_names_the_agent_and_its_persona():
    backend, lm = scripted((r".", rate_by_words))
    scorer = ImportanceScorer(lm, share_across_agents=False)
    memories = [
        mem("Klaus", "Isabella announces a party"),
        mem("Maria", "Isabella announces a party"),
    ]
    await scorer.score(memories, personas={"Klaus": "Klaus is a shy sociology student."})
    assert sorted(r.agent for r in backend.requests_seen) == ["Klaus", "Maria"]
    klaus = next(r for r in backend.requests_seen if r.agent == "Klaus").messages[-1].content
    assert "shy sociology student" in klaus and "for Klaus" in klaus


async def test_unusable_output_falls_back_to_the_heuristic(caplog):
    _backend, lm = scripted(
        (r"fire", "the house is on fire, I'd say 10"), (r".", '{"scores": [11]}')
    )
    scorer = ImportanceScorer(lm, per_call=1)
    memories = [mem("Klaus", "The bakery is on fire!"), mem("Klaus", "Klaus reads a novel")]
    scores = await scorer.score(memories)
    assert scores == [heuristic_importance("The bakery is on fire!"), 3]
    assert scores[0] >= 8
    assert scorer.fallbacks == 2 and "heuristic" in caplog.text
    assert lm.usage.by_purpose["importance"].failed == 2


async def test_fill_keeps_given_scores_and_fills_the_rest():
    backend, lm = scripted((r".", rate_by_words))
    scorer = ImportanceScorer(lm)
    filled = await scorer.fill([mem("Klaus", "a party", 4), mem("Klaus", "a party is planned")])
    assert [m.importance for m in filled] == [4, 9]
    assert len(backend.requests_seen) == 1


def test_schema_fixes_the_count_and_range():
    schema = importance_schema(3).model_json_schema()
    scores = schema["properties"]["scores"]
    assert scores["minItems"] == scores["maxItems"] == 3
    assert scores["items"]["enum"] == list(range(1, 11))  # bounds the grammar enforces


async def test_schema_valid_answers_from_an_unscripted_model_are_accepted():
    backend = ScriptedBackend()  # answers every schema with a random valid instance
    scorer = ImportanceScorer(LanguageModel(backend), per_call=5)
    scores = await scorer.score([mem("Klaus", f"Klaus notices thing {i}") for i in range(12)])
    assert len(scores) == 12 and all(1 <= s <= 10 for s in scores)
    assert scorer.fallbacks == 0
