"""Both engines give an agent the same kinds of observation: scheduled announcements and
its own outcomes reach its recent observations under the sequential engine too."""

from __future__ import annotations

import shutil

import pytest

from concordia_like.engine.runs import start_run
from concordia_like.engine.simulation import ENGINES

from support.engine import REPO, close, lm_factory, run_steps

WORLD = """
name: Lone
start: 2025-04-14 09:00
step_minutes: 10
places:
  square: {connections: [shop, home_ann]}
  shop: {}
  home_ann: {}
residents:
  - {persona: ann.yaml, start: square}
events:
  - {id: bell, at: 2025-04-14 09:00, text: The church bell rings nine.}
  - {id: cart, at: 2025-04-14 09:10, place: square, text: A cart rattles across the square.}
"""


@pytest.fixture
def lone_world(tmp_path):
    shutil.copy(REPO / "tests" / "fixtures" / "personas" / "ann.yaml", tmp_path / "ann.yaml")
    path = tmp_path / "lone.yaml"
    path.write_text(WORLD)
    return path


async def observed(world, root, engine: str) -> list[tuple[list[str], str]]:
    """Ann's recent observations after each of two steps, and where she then is."""
    sim = start_run(world, lm_factory(), engine=engine, seed=3, root=root)
    seen = []
    for _ in range(2):
        await run_steps(sim, 1)
        where = sim.world.state.location("Ann Reed")
        seen.append((list(sim.agents["Ann Reed"].observations), where))
    await close(sim)
    return seen


async def test_an_agent_perceives_the_same_under_both_engines(tmp_path, runs_root, lone_world):
    simultaneous, sequential = [
        await observed(lone_world, tmp_path / engine, engine) for engine in ENGINES
    ]
    assert sequential == simultaneous
    (first, where), (second, _) = simultaneous
    assert "The church bell rings nine." in first  # a world-wide announcement
    assert any(line.startswith("Ann Reed") for line in first)  # her own outcome
    # an announcement at the square reaches her if she was still there when it came
    # (she may have left by a move or by what the Game Master made of a free action)
    assert ("A cart rattles across the square." in second) is (where == "square")
