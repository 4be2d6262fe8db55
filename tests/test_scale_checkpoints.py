"""Checkpoints as parts (engine/checkpoints.py): a step writes the parts of the state
that changed, a run reopened from such a checkpoint goes on exactly as an uninterrupted
one, and what a step writes does not grow with residents who do nothing."""

from __future__ import annotations

import json
import sqlite3

from sqlalchemy import event

from concordia_like.engine import checkpoints
from concordia_like.engine.hooks import HOOKS_KEY
from concordia_like.engine.runs import resume_run, start_run
from concordia_like.world import load_world, replicate_residents

from support.engine import TOWN, close, lm_factory, memories, run_steps, store_path, timeline


def canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True)


async def test_parts_join_back_to_the_state_and_usage_they_were_split_from(runs_root):
    sim = start_run(TOWN, lm_factory(), seed=2, root=runs_root, start_time="09:00")
    await run_steps(sim, 3)
    world = sim.state.to_dict()
    agents = {n: a.to_dict() for n, a in sim.agents.items()}
    agents[HOOKS_KEY] = {"seat": {"pending": []}, "empty": {}}
    parts = checkpoints.split(world, agents)
    assert any(k.startswith("m:plan:") for k in parts)  # plans apart from the rest
    back_world, back_agents = checkpoints.join(parts)
    assert canonical(back_world) == canonical(world)
    assert canonical(back_agents) == canonical(agents)
    usage = sim.usage()
    assert usage["by_agent"]  # each resident's usage a part of its own
    parts = checkpoints.split_usage(usage)
    assert len(parts) == 1 + len(usage["by_agent"])
    assert canonical(checkpoints.join_usage(parts)) == canonical(usage)
    await close(sim)


def test_a_text_that_residents_share_is_stored_once_and_dropped_when_unused():
    news = "Ann Reed goes from the square to the bakery. " * 3  # long: stored apart
    mind = {"news": news, "memories": [news, "@short"], "plan": {"note": news}}
    parts = checkpoints.split({}, {"Ann": mind, "Bob": {"news": news}, "Cy": {"news": "@"}})
    texts = [k for k in parts if k.startswith("t:")]
    assert len(texts) == 1 and parts[texts[0]] == news  # once, for three places it is
    assert len(parts["m:news:Ann"]) < 40  # the field holds a reference
    _, agents = checkpoints.join(parts)
    assert agents == {"Ann": mind, "Bob": {"news": news}, "Cy": {"news": "@"}}
    stored = {k: checkpoints.digest(t) for k, t in parts.items()}
    later = checkpoints.split({}, {"Ann": {"news": "quiet"}, "Bob": {"news": news}})
    write, gone, _ = checkpoints.changes(later, stored)
    assert not any(k.startswith("t:") for k in write)  # still referred to: not rewritten
    later = checkpoints.split({}, {"Ann": {"news": "quiet"}})
    _, gone, _ = checkpoints.changes(later, stored)
    assert texts[0] in gone  # nobody refers to it any more


def test_a_list_that_residents_share_is_stored_once_and_a_plans_blocks_apart_from_its_progress():
    seen = ["Ann Reed goes from the square to the bakery.", "Bob Hale says hello."]
    blocks = [["07:00", "08:00", "breakfast at home", "home"], ["08:00", "17:00", "work", "shop"]]
    plan = {"blocks": blocks, "steps": [["08:00", 60, "work"]], "revision": 0}
    crowd = {n: {"observations": seen, "plan": plan} for n in ("Ann", "Bob", "Cy")}
    crowd["Cy"]["said"] = ["@[not a reference", "@@twice", "["]  # short: as typed
    parts = checkpoints.split({}, crowd)
    lists = [t for k, t in parts.items() if k.startswith("t:") and t.startswith("[")]
    assert sorted(lists) == sorted([checkpoints.encode(seen), checkpoints.encode(blocks)])
    assert all(len(parts[f"m:observations:{n}"]) < 40 for n in crowd)  # references
    _, agents = checkpoints.join(parts)
    assert canonical(agents) == canonical(crowd)
    stored = {k: checkpoints.digest(t) for k, t in parts.items()}
    moved_on = {**plan, "steps": [["09:00", 60, "work"]]}
    write, _, _ = checkpoints.changes(
        checkpoints.split({}, {**crowd, "Ann": {"observations": seen, "plan": moved_on}}), stored
    )
    assert list(write) == ["m:plan:Ann"] and len(write["m:plan:Ann"]) < 100  # no blocks


def test_parts_written_before_texts_were_stored_once_are_read_as_they_were():
    parts = {"a:Ann": "1", "m:news:Ann": json.dumps("@home, as typed")}
    _, agents = checkpoints.join(parts, 1)
    assert agents == {"Ann": {"news": "@home, as typed"}}
    parts = {"a:Ann": "1", "m:news:Ann": json.dumps("@@[home"), "m:seen:Ann": '["a"]'}
    _, agents = checkpoints.join(parts, 2)  # format 2 doubled a short "@": still read so
    assert agents == {"Ann": {"news": "@[home", "seen": ["a"]}}


async def test_a_step_rewrites_only_the_parts_that_changed(runs_root):
    """Most parts of a town in its working hours keep the step they were first written
    at (places, plans, residents at work): the checkpoint holds deltas."""
    sim = start_run(TOWN, lm_factory(), seed=3, root=runs_root, start_time="10:00")
    await run_steps(sim, 6)
    with sqlite3.connect(store_path(runs_root, sim.run_id)) as db:
        steps = dict(
            db.execute("select key, step from checkpoint_parts where run_id = ?", (sim.run_id,))
        )
    assert steps["world:clock"] == 6  # the clock moves every step
    assert steps["world:places"] == 1  # the places never change
    older = [k for k, s in steps.items() if s < 6]
    assert len(older) > len(steps) / 2
    await close(sim)


async def test_a_run_reopened_from_delta_checkpoints_equals_an_uninterrupted_run(
    tmp_path, runs_root
):
    """Killed after step 4 (its recorder closed with nothing more written) and reopened,
    a run under `attention: events` with cloned residents has the events, memories and
    final state of a run that was never stopped."""
    town = load_world(TOWN)

    def world():
        return replicate_residents(town, 22)

    straight = start_run(world(), lm_factory(), seed=9, root=runs_root, start_time="08:00")
    await run_steps(straight, 9)

    other = tmp_path / "other"
    first = start_run(world(), lm_factory(), seed=9, root=other, start_time="08:00")
    await run_steps(first, 4)
    await close(first)
    with sqlite3.connect(store_path(other, first.run_id)) as db:
        written = {s for (s,) in db.execute("select distinct step from checkpoint_parts")}
    assert len(written) > 1  # parts from several steps: a checkpoint made of deltas
    resumed = resume_run(first.run_id, lm_factory(), root=other)
    assert resumed.step == 4
    await run_steps(resumed, 5)

    assert timeline(resumed) == timeline(straight)
    a = memories(store_path(runs_root, straight.run_id), straight.run_id)
    b = memories(store_path(other, resumed.run_id), resumed.run_id)
    assert b == a
    assert canonical(resumed.state.to_dict()) == canonical(straight.state.to_dict())
    minds = {n: a.to_dict() for n, a in straight.agents.items()}
    assert canonical({n: a.to_dict() for n, a in resumed.agents.items()}) == canonical(minds)
    for sim in (straight, resumed):
        await close(sim)


async def test_store_bytes_per_step_do_not_grow_with_residents_asleep(tmp_path, runs_root):
    """The town's first nine residents at night, and three times as many of them (all
    in bed, as Rafael Quint, up at night, is left out): a step writes about as much
    either way (the clock, the checkpoint's head), not a share per resident."""
    nine = replicate_residents(load_world(TOWN), 9)
    written = {}
    for n in (9, 27):
        world = replicate_residents(nine, n)
        sim = start_run(world, lm_factory(), seed=1, root=tmp_path / str(n), start_time="02:00")
        await run_steps(sim, 4)  # plans made, everyone in bed
        sizes: list[int] = []

        def count(_c, _cur, statement, parameters, _ctx, _many, sizes=sizes):
            if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
                sizes.append(len(repr(parameters)))

        event.listen(sim.recorder.engine, "before_cursor_execute", count)
        reports = [await sim.run_step() for _ in range(4)]
        assert not any(r.awake for r in reports)
        written[n] = sum(sizes) / 4
        await close(sim)
    assert written[27] < 1.3 * written[9], written
