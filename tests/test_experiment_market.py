"""The market: goods kept by a `conserve` code rule, the conservation assertion (sound
states pass, minted money or goods stop the run with an error naming them), the trade
measurements on crafted events, and the shipped market scenario end to end on the
scripted model with money conserved at every step."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from concordia_like.engine.events import Event
from concordia_like.engine.simulation import StepAborted
from concordia_like.experiments.interventions import Interventions
from concordia_like.experiments.measures import (
    ConservationError,
    Measurements,
    list_prices,
    note_trades,
    trades_value,
)
from concordia_like.experiments.scenario import load_scenario
from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.world.rules import apply_effects
from concordia_like.world.state import Item

from support.engine import REPO, force
from support.experiment import run, values, write_scenario

MARKET = REPO / "worlds" / "market.yaml"
SCENARIO = REPO / "worlds" / "scenarios" / "market.yaml"
SELLERS = {"Mira Cole", "Otto Vance"}
BUYERS = {"Lena Hart", "Pim Dorr", "Greta Sallow"}


def scenario_text(steps: int) -> str:
    text = SCENARIO.read_text().replace("../market.yaml", str(MARKET))
    return text.replace("stop: {steps: 8}", f"stop: {{steps: {steps}}}")


def test_conserved_goods_change_hands_but_are_never_made_or_destroyed():
    state = load_scenario(SCENARIO).build_world().state
    made = apply_effects(state, [{"kind": "create", "item": "apples", "holder": "fruit_stall"}])
    assert not made.ok and "apples is conserved here" in made.reason  # not even by the world
    eaten = apply_effects(
        state, [{"kind": "destroy", "item": "Cheese", "holder": "Otto Vance"}], actor="Otto Vance"
    )
    assert not eaten.ok and "it is not destroyed" in eaten.reason
    given = apply_effects(
        state,
        [{"kind": "transfer", "item": "apples", "from": "fruit_stall", "to": "Mira Cole"}],
        actor="Mira Cole",
    )
    assert given.ok  # a keeper takes from her own stall


def measure_conservation(state, step: int = 3) -> float:
    sc = load_scenario(SCENARIO)
    (m,) = [m for m in sc.spec.measurements if m.kind == "conservation"]
    return Measurements(sc).value(SimpleNamespace(state=state, step=step), m)


def test_conservation_passes_a_sound_state_and_names_what_broke():
    state = load_scenario(SCENARIO).build_world().state
    assert measure_conservation(state) == 1.0
    state.set_attribute("Lena Hart", "money", 45)  # 5 coins out of nowhere
    with pytest.raises(ConservationError, match=r"step 3.*conserved money: total 145 != 140"):
        measure_conservation(state)

    state = load_scenario(SCENARIO).build_world().state
    state.add_item(Item("pears-9", "pears", "Greta Sallow", 2))  # not in the ledger
    with pytest.raises(ConservationError, match="item 'pears': 22 in the world, ledger says 20"):
        measure_conservation(state)

    state = load_scenario(SCENARIO).build_world().state
    state.record(state.created, "butter", 1)  # ledgered, but butter may not be made
    state.set_quantity("butter", 11)
    with pytest.raises(ConservationError, match="item 'butter': 11 in the world, 10 at the start"):
        measure_conservation(state)


def test_a_run_whose_money_is_minted_stops_loudly(tmp_path, fast_embedder, monkeypatch):
    """A bug that writes the state behind the rules' back (here: an intervention that
    mints coins at step 2) fails the experiment at that step, naming the money."""
    real = Interventions.before_acting

    async def minting(self, sim, step):
        if step == 2:
            sim.state.set_attribute(
                "Pim Dorr", "money", sim.state.attribute("Pim Dorr", "money") + 7
            )
        return await real(self, sim, step)

    monkeypatch.setattr(Interventions, "before_acting", minting)
    path = write_scenario(tmp_path, scenario_text(3), "market.yaml")
    with pytest.raises(StepAborted, match=r"step 2 .*conserved money: total 147 != 140"):
        run(path, tmp_path / "out", seeds=(0,))


# -- trade measurements on crafted events ----------------------------------------------


def acted(actor: str, *effects: dict, success: bool = True) -> Event:
    return Event("action", "", actor=actor, data={"success": success, "effects": list(effects)})


def pay(buyer: str, seller: str, amount: int) -> list[dict]:
    return [
        {"kind": "set", "agent": buyer, "attribute": "money", "delta": -amount},
        {"kind": "set", "agent": seller, "attribute": "money", "delta": amount},
    ]


def test_trades_on_crafted_events():
    state = load_scenario(SCENARIO).build_world().state
    prices = list_prices(state)
    assert prices["apples"] == 2 and prices["cheese"] == 8 and prices["butter"] == 5
    ledger = {"count": 0, "units": 0, "paid": 0, "list_value": 0}
    from_stall = {"kind": "transfer", "item": "apples", "from": "fruit_stall", "to": "Lena Hart",
                  "quantity": 3}  # fmt: skip
    handed = {"kind": "transfer", "item": "cheese", "from": "Otto Vance", "to": "Pim Dorr"}
    events = [
        acted("Lena Hart", from_stall, *pay("Lena Hart", "Mira Cole", 6)),  # at list price
        acted("Otto Vance", handed),  # a cheese handed over after haggling...
        acted("Pim Dorr", *pay("Pim Dorr", "Otto Vance", 6)),  # ...paid 6, not 8
        acted("Greta Sallow", from_stall, *pay("Greta Sallow", "Mira Cole", 6), success=False),
        acted("Lena Hart", {**handed, "from": "Lena Hart", "to": "Greta Sallow"}),  # not a sale
        acted("Mira Cole", *pay("Mira Cole", "Otto Vance", 3)),  # a seller paying: not counted
    ]
    note_trades(ledger, state, events, SELLERS, BUYERS, prices)
    assert ledger == {"count": 2, "units": 4, "paid": 12, "list_value": 3 * 2 + 8}
    assert trades_value("price_ratio", ledger) == pytest.approx(12 / 14)
    assert trades_value("count", ledger) == 2.0
    assert trades_value("price_ratio", dict.fromkeys(ledger, 0)) == 0.0


# -- the shipped scenario --------------------------------------------------------------


def trading_model() -> ScriptedBackend:
    """Buyers walk to the fruit stall and buy two apples at the list price; Mira hands
    an apple to whoever is with her (a gift: goods at no price)."""
    backend = ScriptedBackend()

    def act(req):
        prompt = req.messages[-1].content
        if req.agent == "Mira Cole" and "With you: nobody" not in prompt:
            to = next(b for b in sorted(BUYERS) if b in prompt.split("With you:")[1][:200])
            return {"kind": "give", "item": "apples", "to": to, "quantity": 1}
        if req.agent in BUYERS and "(market_square" in prompt:
            return {"kind": "move", "to": "fruit_stall"}
        if req.agent in BUYERS:
            return {"kind": "other", "text": "buys two apples"}
        return {"kind": "wait"}

    def resolve(req):
        take = {"kind": "transfer", "item": "apples", "from": "fruit_stall", "to": req.agent,
                "quantity": 2}  # fmt: skip
        paid = {"kind": "pay", "to": "Mira Cole", "attribute": "money", "amount": 4}
        return {"success": True, "outcome": "Two apples change hands.", "effects": [take, paid]}

    force(backend, "act", act)
    force(backend, "resolve", resolve)
    return backend


def test_market_runs_end_to_end_with_money_and_goods_conserved(tmp_path, fast_embedder):
    path = write_scenario(tmp_path, scenario_text(4), "market.yaml")
    rep = run(path, tmp_path / "out", seeds=(0,), backend=trading_model())
    for cond in ("list_prices", "offers_taken"):
        sellers = values(rep.rows, "sellers_money", cond)
        buyers = values(rep.rows, "buyers_money", cond)
        assert len(sellers) == 4
        assert [s + b for s, b in zip(sellers, buyers, strict=True)] == [140.0] * 4
        assert values(rep.rows, "conserved", cond) == [1.0] * 4
        paid, listed = values(rep.rows, "paid", cond), values(rep.rows, "list_value", cond)
        units = values(rep.rows, "units_sold", cond)
        assert paid[-1] == sellers[-1] - 20  # only buyers paid sellers
        assert paid[-1] >= 4 and units[-1] == listed[-1] / 2  # apples, 2 each
        # stall purchases at list price, gifts at none: at most the list price overall
        ratio = values(rep.rows, "price_vs_list", cond)[-1]
        assert ratio == pytest.approx(paid[-1] / listed[-1]) and ratio <= 1
        assert values(rep.rows, "trades", cond)[-1] >= 2
