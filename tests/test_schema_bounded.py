"""The schemas a model decodes under name only what its prompt names: an agent that
holds or stands beside dozens of stacks is offered the first few (as its prompt lists
them, "and N more"), so neither its prompt nor its schema grows with the world. A town
left running accumulates things (every creation a new stack), and the cached schemas
would otherwise grow with it."""

from __future__ import annotations

import pytest

from concordia_like.agents.actions import Other
from concordia_like.agents.agent import Agent
from concordia_like.gm.master import LIST_MAX, GameMaster, _Pending
from concordia_like.llm import LanguageModel
from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.world import CreateEffect, apply_effects, load_world
from concordia_like.world.describe import LIST_MAX as SHOWN

from support.engine import MINI

ANN = "Ann Reed"


@pytest.fixture
def crowded():
    world = load_world(MINI)
    here = world.state.location(ANN)
    made = [CreateEffect(holder=ANN, item=f"pebble {i:02d}", quantity=1) for i in range(20)]
    made += [CreateEffect(holder=here, item=f"leaf {i:02d}", quantity=1) for i in range(20)]
    assert apply_effects(world.state, made).ok
    return world, here


def _enum(schema: dict, model: str, field: str) -> list[str]:
    return schema["$defs"][model]["properties"][field]["enum"]


def test_an_agents_schema_offers_only_the_things_its_prompt_names(crowded):
    world, _ = crowded
    agent = Agent.create(world.personas[ANN], world.name, world.rules)
    request = agent.act_request(world.state, seed=0)
    prompt = request.messages[-1].content
    held = _enum(request.json_schema, "UseItem", "item")
    assert len(held) <= 2 * SHOWN  # before: all 40 and more
    assert all(name in prompt for name in held)  # every choice is one the prompt lists
    assert "pebble 00" in held and "pebble 19" not in held
    assert "more" in prompt  # the prompt says there is more than it lists


def test_the_game_masters_schema_offers_only_the_things_its_prompt_names(crowded):
    world, here = crowded
    gm = GameMaster(world, LanguageModel(ScriptedBackend()))
    request = gm._request(_Pending(ANN, Other(kind="other", text="tidies up"), here), 0)
    items = _enum(request.json_schema, "TransferOut", "item")
    assert len(items) <= 2 * LIST_MAX
    assert all(name in request.messages[-1].content for name in items)
    assert "leaf 00" in items and "leaf 19" not in items
