"""Scenario files: the shipped ones load; a wrong one is refused with every problem at
its file, line and field; a hostile one is refused fast; times become steps."""

from __future__ import annotations

import time

import pytest

from concordia_like.experiments.scenario import load_scenario
from concordia_like.yaml_loader import ConfigFileError

from support.engine import MINI, REPO
from support.experiment import SCENARIO, write_scenario


def test_shipped_scenarios_load():
    paths = sorted((REPO / "worlds" / "scenarios").glob("*.yaml"))
    assert paths
    for path in paths:
        sc = load_scenario(path)
        assert sc.control in sc.conditions and len(sc.conditions) >= 2
        # the fishery's conditions differ from the first step (no shared past to fork)
        assert 0 <= sc.shared_steps() < sc.max_steps
    names = {p.stem for p in paths}
    assert {"bread_price", "party", "fishery", "market"} <= names


def test_bread_price_scenario_builds_its_cast_and_times():
    sc = load_scenario(REPO / "worlds" / "scenarios" / "bread_price.yaml")
    world = sc.build_world()
    assert len(world.personas) == 6 and set(world.state.agents) == set(world.personas)
    assert f"{world.state.now:%H:%M}" == "07:30"
    # at 08:00 is the step that begins then: 07:30, 07:40, 07:50, 08:00 -> step 4
    assert sc.steps == {"price_rise": 4} and sc.shared_steps() == 3
    assert "keep the bakery in the black this spring" in world.personas["Ines Marlowe"].goals


def problems(tmp_path, text):
    path = write_scenario(tmp_path, text)
    with pytest.raises(ConfigFileError) as err:
        load_scenario(path)
    return [str(i).split(": ", 1)[1] for i in err.value.issues], str(err.value)


def test_wrong_references_are_reported_at_their_lines(tmp_path):
    text = (
        SCENARIO.replace("place: square, text", "place: squaer, text")
        .replace("to: [Cy Moss]", "to: [Cy Mos]")
        .replace("treated: [notice,", "treated: [notise,")
        .replace("item: apple, holder: shop, property", "item: pear, holder: shop, property")
        .replace("measure: ann_energy", "measure: nothing")
    )
    found, message = problems(tmp_path, text)
    lines = {text.splitlines().index(line) + 1 for line in text.splitlines() if "squaer" in line}
    assert any(f"mini.yaml:{n}: " in message for n in lines)
    assert "interventions.notice.place: unknown place 'squaer'" in found
    assert "interventions.letter.to[0]: 'Cy Mos' is not a resident of the cast" in found
    assert "conditions.treated[0]: unknown intervention 'notise'" in found
    assert "interventions.cheap.item: shop holds no 'pear'" in found
    assert any(f.startswith("measurements[7].measure: 'nothing'") for f in found)


def test_schema_errors_name_the_field(tmp_path):
    found, _ = problems(tmp_path, SCENARIO.replace("stop: {steps: 5}", "stop: {stepz: 5}"))
    assert any("stop.stepz: unknown field 'stepz' (did you mean 'steps'?)" in f for f in found)
    found, _ = problems(tmp_path, SCENARIO.replace("control: control", "control: placebo"))
    assert "control: 'placebo' is not one of the conditions" in found
    found, _ = problems(
        tmp_path,
        SCENARIO.replace(
            "question: Did you see a notice in the square?}",
            "question: Did you see a notice?, every: 2}",
        ),
    )
    assert any("questions are put at the end of a run" in f for f in found)
    found, _ = problems(tmp_path, SCENARIO.replace("at_step: 3, place", "at_step: 9, place"))
    assert "interventions.notice.at_step: step 9 is after the last step of a run (5)" in found


def test_a_stop_further_than_a_run_may_go_is_refused(tmp_path):
    found, _ = problems(tmp_path, SCENARIO.replace("stop: {steps: 5}", "stop: {until: 9000-01-01}"))
    assert any(
        f.startswith("stop.until: is ") and f.endswith("a run stops within 100000 steps")
        for f in found
    ), found


def test_world_problems_and_missing_world_are_refused(tmp_path):
    found, _ = problems(tmp_path, SCENARIO.replace(str(MINI), "no/such/world.yaml"))
    assert found == ["world: world file no/such/world.yaml does not exist"]


def test_hostile_scenario_is_refused_fast(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        bomb += f"{cur}: &{cur} [" + ", ".join(f"*{prev}" for _ in range(9)) + "]\n"
    path = write_scenario(tmp_path, bomb)
    start = time.perf_counter()
    with pytest.raises(ConfigFileError, match="limit"):
        load_scenario(path)
    assert time.perf_counter() - start < 1.0
