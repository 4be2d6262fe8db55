"""Sampling that makes seeds matter: a policy per purpose, seeds from (run seed, step,
agent, purpose), recorded with the run, settable in the world file and from the CLI."""

from __future__ import annotations

import pytest

from concordia_like.engine.runs import start_run
from concordia_like.llm import LanguageModel, LLMRequest, ScriptedBackend
from concordia_like.llm.sampling import SamplingPolicy, parse_overrides, step_scope

from support.engine import TOWN, close, lm_factory, run_steps


async def sampled(policy, requests, seed=1, step=1):
    backend = ScriptedBackend()
    lm = LanguageModel(backend, sampling=policy)
    with step_scope(seed, step):
        await lm.complete_many(requests)
    return [r.sampling for r in backend.requests_seen]


async def test_the_policy_sets_each_purposes_sampling():
    policy = SamplingPolicy()
    reqs = [LLMRequest.chat("x", purpose=p, agent="Ann") for p in ("act", "importance", "check")]
    act, importance, other = await sampled(policy, reqs)
    assert act.temperature == policy.act.temperature > 0.5
    assert importance.temperature == 0.0
    assert other.temperature == 0.0  # a purpose the policy does not name keeps its own


async def test_seeds_derive_from_run_seed_step_agent_and_purpose():
    policy = SamplingPolicy()

    def reqs():
        return [
            LLMRequest.chat("x", purpose=p, agent=a)
            for p in ("act", "plan")
            for a in ("Ann", "Bob")
        ]

    one = [s.seed for s in await sampled(policy, reqs(), seed=1, step=1)]
    again = [s.seed for s in await sampled(policy, reqs(), seed=1, step=1)]
    other_seed = [s.seed for s in await sampled(policy, reqs(), seed=2, step=1)]
    other_step = [s.seed for s in await sampled(policy, reqs(), seed=1, step=2)]
    assert one == again
    assert len(set(one)) == 4  # every (agent, purpose) its own
    assert set(one).isdisjoint(other_seed) and set(one).isdisjoint(other_step)


def test_overrides_parse_and_validate():
    assert parse_overrides(["act=1.1", "plan.top_p=0.5"]) == {
        "act": {"temperature": 1.1},
        "plan": {"top_p": 0.5},
    }
    for bad in ["act", "dance=0.5", "act.heat=1", "act=warm"]:
        with pytest.raises(ValueError, match="--sampling"):
            parse_overrides([bad])
    with pytest.raises(ValueError):
        SamplingPolicy().with_overrides({"act": {"temperature": 5}})


async def test_a_run_records_its_policy_from_world_file_and_overrides(tmp_path, runs_root):
    text = TOWN.read_text().replace(
        "\nplaces:", "\nsampling:\n  act: {temperature: 1.2}\nplaces:", 1
    )
    world = TOWN.parent / "_sampling_test_town.yaml"
    world.write_text(text)
    try:
        sim = start_run(
            world,
            lm_factory(),
            root=runs_root,
            sampling={"plan": {"top_p": 0.5}},
            attention={"mode": "always"},  # everyone acts in step 1
        )
    finally:
        world.unlink()
    config = sim.recorder.run(sim.run_id).config["sampling"]
    assert config["act"] == {"temperature": 1.2, "top_p": 0.95}
    assert config["plan"]["top_p"] == 0.5
    await run_steps(sim, 1)
    acts = [r for r in sim.lm.backend.requests_seen if r.purpose == "act"]
    assert acts and all(r.sampling.temperature == 1.2 for r in acts)
    await close(sim)


def test_a_bad_sampling_section_is_refused_naming_the_field(tmp_path):
    from concordia_like.world import load_world

    text = TOWN.read_text().replace("\nplaces:", "\nsampling:\n  act: {temperature: 9}\nplaces:", 1)
    world = TOWN.parent / "_bad_sampling_town.yaml"
    world.write_text(text)
    try:
        with pytest.raises(Exception, match=r"sampling\.act\.temperature"):
            load_world(world)
    finally:
        world.unlink()
