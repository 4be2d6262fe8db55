"""The fishery commons: the regrow code rule by hand (doubling, cap, collapse below the
threshold, once per round, exactly the same after a resume), what residents' actions
may do to a regrowing stock, the silence rule, bad code rules refused at their line,
the harvest measurements on crafted ledgers, and the shipped fishery scenario end to
end on the scripted model."""

from __future__ import annotations

import pytest

from concordia_like.agents.actions import Say
from concordia_like.engine.events import Event
from concordia_like.engine.runs import resume_run, start_run
from concordia_like.experiments.measures import gini, harvest_value, new_harvest, note_harvest
from concordia_like.experiments.scenario import load_scenario
from concordia_like.gm.master import GameMaster
from concordia_like.llm import LanguageModel
from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.world import load_world
from concordia_like.world.code_rules import RegrowRule, SilenceRule, apply_code_rules
from concordia_like.world.invariants import check_invariants
from concordia_like.world.rules import apply_effects
from concordia_like.yaml_loader import ConfigFileError

from support.engine import REPO, close, force, lm_factory, run_steps, timeline
from support.experiment import run, values, write_scenario

LAKE = REPO / "worlds" / "lake.yaml"
FISHERY = REPO / "worlds" / "scenarios" / "fishery.yaml"
FISHERS = ["Ada Brenn", "Cal Moray", "Esme Tarn", "Ruth Oake", "Silas Wren"]


def lake_state():
    return load_world(LAKE).state


def catch(state, who: str, n: int) -> None:
    result = apply_effects(
        state, [{"kind": "transfer", "item": "fish", "from": "lake", "to": who, "quantity": n}],
        actor=who,
    )  # fmt: skip
    assert result.ok, result.reason


# -- the rule by hand ------------------------------------------------------------------


def test_regrow_doubles_what_is_left_up_to_the_cap():
    s = lake_state()
    catch(s, "Ada Brenn", 30)
    catch(s, "Cal Moray", 40)
    (out,) = apply_code_rules(s, 1)
    assert s.count("fish", "lake") == 60  # 30 left, doubled
    assert out.data == {
        "rule": "regrow", "item": "fish", "place": "lake", "round": 1,
        "before": 30, "after": 60, "collapsed": False, "ok": True,
    }  # fmt: skip
    apply_code_rules(s, 2)
    assert s.count("fish", "lake") == 100  # 120 capped at 100
    apply_code_rules(s, 3)
    assert s.count("fish", "lake") == 100  # a full stock stays full
    assert check_invariants(s) == []  # the growth went through the ledger


def test_a_stock_below_the_threshold_collapses_for_good():
    s = lake_state()
    catch(s, "Ada Brenn", 96)  # 4 left, under 5
    (out,) = apply_code_rules(s, 1)
    assert out.data["collapsed"] and out.data["after"] == 0
    assert "collapsed" in out.text
    assert s.count("fish", "lake") == 0
    apply_code_rules(s, 2)
    assert s.count("fish", "lake") == 0
    assert check_invariants(s) == []
    s = lake_state()
    catch(s, "Ada Brenn", 95)  # exactly 5 left: not below the threshold
    (out,) = apply_code_rules(s, 1)
    assert not out.data["collapsed"] and s.count("fish", "lake") == 10


def test_regrow_happens_once_per_round_of_several_steps():
    rule = RegrowRule(item="fish", place="lake", factor=2, cap=100, collapse_below=5, every_steps=3)
    s = lake_state()
    s.code_rules = [rule]
    catch(s, "Ada Brenn", 60)
    grown = []
    for step in range(1, 7):
        grown += [o.data["round"] for o in apply_code_rules(s, step)]
    assert grown == [1, 2]  # at the end of steps 3 and 6 only
    assert s.count("fish", "lake") == 100  # 40 -> 80 -> 100


def test_the_regrowth_arithmetic():
    rule = RegrowRule(item="fish", place="lake", factor=2, cap=100, collapse_below=5)
    assert rule.regrown(37) == (74, False)
    assert rule.regrown(4) == (0, True)
    assert rule.regrown(150) == (150, False)  # above the cap: not cut back
    assert rule.sustainable_take(100) == 50  # GovSim's threshold at a full lake
    assert rule.sustainable_take(8) == 3  # keeps 5, the threshold, not 4
    assert rule.sustainable_take(4) == 0


def test_a_resident_may_take_fish_but_never_make_them():
    s = lake_state()
    made = apply_effects(
        s, [{"kind": "create", "item": "fish", "holder": "Cal Moray", "quantity": 10}],
        actor="Cal Moray",
    )  # fmt: skip
    assert not made.ok
    assert "fish come only from lake" in made.reason
    # the world itself (a restocking intervention) may
    assert apply_effects(s, [{"kind": "create", "item": "fish", "holder": "lake"}]).ok


def test_silence_refuses_speech_to_others_but_not_thinking_aloud():
    world = load_world(LAKE)
    gm = GameMaster(world, LanguageModel(ScriptedBackend()))
    said = Say(kind="say", to="Cal Moray", text="Ten each, agreed?")
    assert gm.ground("Ada Brenn", said).success
    world.state.code_rules.append(SilenceRule(places=["lake"]))
    out = gm.ground("Ada Brenn", said)
    assert not out.success and out.said is None
    assert "nobody may speak to anyone at lake" in out.reason
    assert gm.ground("Ada Brenn", Say(kind="say", to="Ada Brenn", text="Hm.")).success


def test_bad_code_rules_are_reported_at_their_line(tmp_path):
    text = LAKE.read_text().replace("../personas/", f"{REPO}/personas/")
    text = text.replace("place: lake, factor: 2, cap: 100,", "place: laek, factor: 2, cap: 5000,")
    path = tmp_path / "lake.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError) as err:
        load_world(path)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "laek" in t)
    message = str(err.value)
    assert f"lake.yaml:{line}: code_rules[0].place: unknown place 'laek'" in message
    assert "code_rules[0].cap: cap 5000 is over the world's max_stack 1000" in message
    path.write_text(
        LAKE.read_text()
        .replace("../personas/", f"{REPO}/personas/")
        .replace("collapse_below: 5", "collapse_below: 500")
    )
    with pytest.raises(ConfigFileError, match="collapse_below 500 is above cap"):
        load_world(path)


async def test_the_engine_regrows_each_step_and_a_resume_goes_on_exactly(tmp_path, runs_root):
    straight = start_run(LAKE, lm_factory(), seed=3, root=runs_root)
    await run_steps(straight, 4)
    regrowths = [e for e in timeline(straight) if (e[7] or {}).get("rule") == "regrow"]
    assert [e[0] for e in regrowths] == [1, 2, 3, 4]  # once per step, after the actions
    assert all(e[3] == "announcement" and e[5] == "lake" for e in regrowths)

    other = tmp_path / "other"
    first = start_run(LAKE, lm_factory(), seed=3, root=other)
    await run_steps(first, 2)
    await close(first)
    resumed = resume_run(first.run_id, lm_factory(), root=other)
    assert resumed.state.code_rules == straight.state.code_rules
    await run_steps(resumed, 2)
    assert timeline(resumed) == timeline(straight)
    assert resumed.state.to_dict() == straight.state.to_dict()
    for sim in (straight, resumed):
        await close(sim)


# -- measurements on crafted ledgers ---------------------------------------------------


def test_gini_against_a_hand_computation():
    assert gini([10, 10, 10]) == 0
    assert gini([0, 0, 0]) == 0
    # pairs' differences: |0-10| four times (0,10 and 10,0 for each zero) = 40; 2*3*10
    assert gini([0, 0, 10]) == pytest.approx(40 / 60)
    # ordered pairs: 2 * (1+2+3+1+2+1) = 20, over 2*4*10
    assert gini([1, 2, 3, 4]) == pytest.approx(20 / 80)


def took(who: str, n: int, *, success: bool = True, place: str = "lake", item: str = "fish"):
    """The event of `who`'s action that took `n` of `item` out of `place`."""
    effects = [{"kind": "transfer", "item": item, "from": place, "to": who, "quantity": n}]
    return Event("action", "", actor=who, data={"success": success, "effects": effects})


def regrow(after: int, collapsed: bool = False) -> Event:
    data = {"rule": "regrow", "item": "fish", "place": "lake", "after": after}
    return Event("announcement", "", place="lake", data={**data, "collapsed": collapsed})


def crafted_ledger():
    """Three rounds of two fishers: 100 fish, they take 30+10 (60 left, 100 again),
    then 50+40 (10 left, 20), then 16+0 (4 left: collapse)."""
    ledger = new_harvest(100)
    failed = took("A", 9, success=False)
    elsewhere = took("B", 7, place="pond")
    note_harvest(ledger, "fish", "lake", [took("A", 30), took("B", 10), failed, elsewhere])
    note_harvest(ledger, "fish", "lake", [regrow(100)])  # a round of two steps
    note_harvest(ledger, "fish", "lake", [took("A", 50), took("B", 40), regrow(20)])
    note_harvest(ledger, "fish", "lake", [took("A", 16), regrow(0, collapsed=True)])
    return ledger


def test_harvest_measurements_on_a_crafted_ledger():
    ledger = crafted_ledger()
    rule = RegrowRule(item="fish", place="lake", factor=2, cap=100, collapse_below=5)
    people = ["A", "B"]

    def value(stat):
        return harvest_value(stat, ledger, rule, people)

    assert value("rounds_survived") == 2  # the third round ended in collapse
    assert value("total") == 30 + 10 + 50 + 40 + 16  # the failure and the pond left out
    # A took 96, B 50: |96-50| twice over 2*2*146
    assert value("gini") == pytest.approx(92 / 584)
    # shares: 100 -> 50/2 = 25 each; again 25 each; 20 -> 10/2 = 5 each
    # beyond: A 5, B 0; A 25, B 15; A 11, B 0
    assert value("overuse") == pytest.approx(5 + 25 + 15 + 11)
    assert value("overuse_share") == pytest.approx(4 / 6)


def test_an_open_round_counts_once_a_step_of_it_was_seen():
    ledger = new_harvest(100)
    rule = RegrowRule(item="fish", place="lake", factor=2, cap=100, collapse_below=5)
    assert harvest_value("overuse_share", ledger, rule, ["A"]) == 0  # no round yet
    note_harvest(ledger, "fish", "lake", [took("A", 60, item="Fish")])
    assert harvest_value("total", ledger, rule, ["A"]) == 60  # item names match loosely
    assert harvest_value("overuse", ledger, rule, ["A"]) == 10
    assert harvest_value("rounds_survived", ledger, rule, ["A"]) == 0


# -- the shipped scenario --------------------------------------------------------------


def test_fishery_scenario_validates_its_harvest_measurements(tmp_path):
    sc = load_scenario(FISHERY)
    assert sc.conditions == ["with_talk", "no_talk"] and sc.steps == {"silence": 1}
    assert set(sc.world.personas) == set(FISHERS)
    assert sc.world.state.count("fish", "lake") == 100
    text = FISHERY.read_text().replace("../lake.yaml", str(LAKE))
    bad = text.replace("stat: gini}", "stat: gini, of: [Ada Bren]}").replace(
        "kind: harvest, item: fish, place: lake, stat: total",
        "kind: harvest, item: trout, place: lake, stat: total",
    )
    with pytest.raises(ConfigFileError) as err:
        load_scenario(write_scenario(tmp_path, bad, "fishery.yaml"))
    found = [str(i).split(": ", 1)[1] for i in err.value.issues]
    assert "measurements[2].item: no regrow rule grows 'trout' at 'lake'" in found
    assert "measurements[3].of[0]: 'Ada Bren' is not a resident of the cast" in found


def fishing_model() -> ScriptedBackend:
    """Every fisher fishes, Cal Moray 30 a round and the others 10, except Esme Tarn,
    who talks to Ada Brenn: 60 a round out of the lake."""
    backend = ScriptedBackend()

    def act(req):
        if req.agent == "Esme Tarn":
            return {"kind": "say", "to": "Ada Brenn"}
        return {"kind": "use", "item": "fish", "text": "casts a net"}

    def resolve(req):
        take = {"kind": "transfer", "item": "fish", "from": "lake", "to": req.agent}
        n = 3 if req.agent == "Cal Moray" else 1
        effects = [{**take, "quantity": 10}] * n
        return {"success": True, "outcome": "Fish come up.", "effects": effects}

    force(backend, "act", act)
    force(backend, "resolve", resolve)
    backend.add_rule(".", "Ten each a round, Ada, no more.", "speech")
    return backend


def test_fishery_runs_end_to_end_on_the_scripted_model(tmp_path, fast_embedder):
    text = FISHERY.read_text().replace("../lake.yaml", str(LAKE))
    path = write_scenario(tmp_path, text.replace("steps: 12", "steps: 5"), "fishery.yaml")
    rep = run(path, tmp_path / "out", seeds=(0,), backend=fishing_model())
    rule = RegrowRule(item="fish", place="lake", factor=2, cap=100, collapse_below=5)
    for cond in ("with_talk", "no_talk"):
        fish = values(rep.rows, "fish_in_lake", cond)
        total = values(rep.rows, "total_catch", cond)
        # 100 - 60 = 40, doubled to 80; 80 - 60 = 20 -> 40; then the lake cannot feed
        # 60 (takes it can no longer meet are refused) and soon collapses: the run
        # stops at the collapse, before its fifth step
        assert fish[:2] == [80, 40] and total[:2] == [60, 120]
        assert 3 <= len(fish) < 5 and fish[-1] == 0
        survived = values(rep.rows, "rounds_survived", cond)
        assert survived == [*range(1, len(fish)), len(fish) - 1]
        before, taken = 100, 0.0
        for now, so_far in zip(fish, total, strict=True):
            assert now == rule.regrown(int(before - (so_far - taken)))[0]
            before, taken = now, so_far
        # shares: 100 -> 10 each, 80 -> 8, 40 -> 4: Cal always over, the others from
        # the second round on
        assert values(rep.rows, "overuse_share", cond)[1] == pytest.approx(5 / 10)
        assert values(rep.rows, "catch_gini", cond)[0] == pytest.approx(gini([10, 30, 0, 10, 10]))
        assert values(rep.rows, "ledger_sound", cond) == [1.0] * len(fish)
    assert values(rep.rows, "talk", "with_talk")[-1] >= 1  # Esme (a repeat is dropped)
    assert values(rep.rows, "talk", "no_talk")[-1] == 0  # every say refused
    assert {r["measurement"] for r in rep.summary} >= {"total_catch", "overuse", "catch_gini"}
