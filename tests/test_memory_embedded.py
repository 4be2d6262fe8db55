"""Memory upkeep on the real embedded model (SmolLM2-135M under grammars): importance,
reflection and planning all yield valid results, whatever the small model says."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from concordia_like.agents.planning import PlanContext, Planner
from concordia_like.llm import LanguageModel
from concordia_like.memory import (
    DayPlan,
    ImportanceScorer,
    NewMemory,
    ReflectionConfig,
    Reflector,
)

pytestmark = pytest.mark.embedded

T0 = datetime(2024, 2, 13, 8)


@pytest.fixture(scope="module")
def lm():
    from concordia_like.llm.embedded import EmbeddedBackend

    backend = EmbeddedBackend(n_parallel=4, n_ctx=2048)
    yield LanguageModel(backend)
    backend.close()


async def test_importance_reflection_and_planning_on_the_real_model(lm, memory_store):
    scorer = ImportanceScorer(lm, per_call=4)
    texts = [
        "Isabella invites Klaus to her Valentine's Day party",
        "The bakery on Main Street burns down",
        "Klaus eats a sandwich",
        "Maria tells Klaus she loves him",
        "Klaus is waiting",
    ]
    memories = await scorer.fill([NewMemory("Klaus", t, "observation", T0) for t in texts])
    assert all(1 <= m.importance <= 10 for m in memories)
    assert memories[-1].importance == 1  # trivial: no call
    records = memory_store.add_many(memories)

    reflector = Reflector(lm, memory_store, ReflectionConfig(threshold=1))
    [outcome] = await reflector.reflect_due(["Klaus"], T0 + timedelta(hours=1))
    ids = {r.id for r in records}
    for insight in outcome.insights:  # the model may find none; those it finds cite real ids
        assert insight.kind == "reflection" and set(insight.evidence) <= ids

    planner = Planner(lm, memory_store)
    plans: dict[str, DayPlan] = {}
    ctx = PlanContext("Klaus", persona="Klaus is a sociology student who loves research.")
    doing = await planner.step([ctx], plans, T0 + timedelta(hours=1))
    plan = plans["Klaus"]
    assert plan.blocks[0].start == plan.wake and plan.blocks[-1].end == plan.bedtime
    assert doing["Klaus"].description and 5 <= doing["Klaus"].minutes <= 60
