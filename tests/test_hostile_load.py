"""Hostile configuration files and hostile effects: whatever a world, a card or a
scenario holds, loading ends in a world or in ConfigError (never another exception),
costs at most one read of each file and a bounded total, and refuses numbers and times
a run cannot use; whatever effects a model proposes, the world's conservation and
invariants hold, and nothing is made from nothing unless a rule of the world lets it."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from concordia_like.errors import ConfigError
from concordia_like.experiments.spec import Stop
from concordia_like.world import apply_effects, check_invariants, load_world
from concordia_like.world.code_rules import MakeRule
from concordia_like.world.state import WorldState
from concordia_like.yaml_loader import MAX_LOAD_BYTES, ConfigFileError, read_yaml

from support.engine import MINI

ANN, BOB, CY = "Ann Reed", "Bob Vale", "Cy Moss"
PERSONAS = MINI.parent.parent / "personas"
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def mini_data() -> dict[str, Any]:
    """The mini world's fields, its cards named by absolute path (to be written anywhere)."""
    data = yaml.safe_load(MINI.read_text())
    for r in data["residents"]:
        r["persona"] = str(PERSONAS / Path(r["persona"]).name)
    return data


def write_world(folder: Path, data: dict[str, Any], name: str = "w.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ConfigFileError) as info:
        load_world(path)
    return str(info.value)


# -- 7. what one load reads ----------------------------------------------------------------


def test_a_card_named_many_times_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concordia_like.world import checks

    reads: list[Path] = []
    real = checks.load_persona_doc

    def counted(path: Path, *args: Any) -> Any:
        reads.append(path)
        return real(path, *args)

    monkeypatch.setattr(checks, "load_persona_doc", counted)
    data = mini_data()
    ann = data["residents"][0]["persona"]
    data["residents"] += [{"persona": ann}] * 300
    message = refusal(write_world(tmp_path, data))
    assert "'Ann Reed' is already residents[0]" in message
    assert "more problems" in message  # reported, each at its line, but shown clipped
    assert sum(1 for p in reads if Path(p).name == "ann.yaml") == 1


def test_a_bad_card_named_many_times_is_reported_once(tmp_path: Path) -> None:
    card = tmp_path / "bad.yaml"
    card.write_text("name: X\nage: many\n")
    data = mini_data()
    data["residents"] += [{"persona": str(card)}] * 200
    with pytest.raises(ConfigFileError) as info:
        load_world(write_world(tmp_path, data))
    problems = [i for i in info.value.issues if i.file.endswith("bad.yaml")]
    assert problems and len(problems) == len({(i.line, i.field) for i in problems})


def test_the_bytes_of_one_load_are_bounded_over_all_its_files(tmp_path: Path) -> None:
    pad = "# " + "x" * 1000 + "\n"
    body = (PERSONAS / "ann.yaml").read_text()
    data = mini_data()
    cards = 20
    for i in range(cards):  # 20 distinct valid cards of almost 1 MiB each
        card = tmp_path / f"card{i}.yaml"
        card.write_text(body.replace("Ann Reed", f"Ann Reed{i}") + pad * 950)
        data["residents"].append({"persona": str(card), "start": "square"})
    assert cards * 950 * 1000 > MAX_LOAD_BYTES
    assert "over the limit of what one load reads" in refusal(write_world(tmp_path, data))


# -- 10. numbers and times a run cannot use, and error lines of hostile keys ---------------


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_infinite_or_nan_bounds_are_refused_at_load(tmp_path: Path, value: str) -> None:
    text = MINI.read_text().replace("max: 1000, initial: 20", f"max: {value}, initial: 20")
    path = MINI.parent / f"_hostile_{tmp_path.name}.yaml"  # beside the cards it names
    try:
        path.write_text(text)
        assert "finite number" in refusal(path)
    finally:
        path.unlink(missing_ok=True)


def test_a_nan_stop_predicate_is_refused() -> None:
    with pytest.raises(ValidationError, match="finite number"):
        Stop.model_validate({"steps": 3, "when": {"measure": "m", "op": "lt", "value": math.nan}})
    assert Stop.model_validate({"steps": 3, "when": {"measure": "m", "op": "lt", "value": 1}})


def test_a_start_the_clock_cannot_run_from_is_refused_at_load(tmp_path: Path) -> None:
    data = mini_data()
    data["start"] = "9999-12-31 08:00"
    assert "leaves the clock no room to run" in refusal(write_world(tmp_path, data))
    data["start"] = "9899-01-01 08:00"
    assert load_world(write_world(tmp_path, data)).state.now.year == 9899


def test_error_lines_echoing_a_hostile_key_are_clipped(tmp_path: Path) -> None:
    data = mini_data()
    data["k" * 200_000] = 1
    data["places"]["square"]["p" * 100_000] = 2
    message = refusal(write_world(tmp_path, data))
    assert "unknown field" in message
    assert max(len(line) for line in message.splitlines()) < 1500


def cli(*args: str) -> Any:
    from concordia_like.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_a_negative_log_limit_is_refused(tmp_path: Path) -> None:
    result = cli("log", "anyrun", "--limit", "-3", "--root", str(tmp_path))
    assert result.exit_code == 1 and "--limit must be 0 (all) or a number" in result.output


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", ":memory:"])
def test_an_in_memory_store_is_refused(tmp_path: Path, url: str) -> None:
    for command in (
        ("log", "anyrun"),
        ("run", str(MINI), "--steps", "1", "-b", "scripted"),
    ):
        result = cli(*command, "--store", url, "--root", str(tmp_path))
        assert result.exit_code == 1, result.output
        assert "in-memory database keeps nothing" in result.output
    assert not any(tmp_path.iterdir())


def test_a_negative_max_attempts_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    result = cli(
        "dialogues", "--world", str(MINI), "--conversations", "1", "--max-attempts", "-5",
        "-b", "scripted", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 1 and "--max-attempts must be at least 1" in result.output
    assert not any(tmp_path.iterdir())


# -- 10. nothing is made from nothing unless a rule of the world lets it ------------------


@pytest.fixture
def s() -> WorldState:
    return load_world(MINI).state


def create(item: str, holder: str, quantity: int = 1) -> dict[str, Any]:
    return {"kind": "create", "item": item, "holder": holder, "quantity": quantity}


def test_a_resident_mints_no_coin_and_forges_no_copy(s: WorldState) -> None:
    coins = apply_effects(s, [create("gold coin", ANN, 10)], actor=ANN)
    assert not coins.ok and "no rule of the world lets residents make it" in coins.reason
    s.set_location(ANN, "home_ann")
    forged = apply_effects(s, [create("note for Bob", "home_ann")], actor=ANN)
    assert not forged.ok and "note for Bob" in forged.reason
    assert s.count("gold coin", ANN) == 0 and s.count("note for Bob") == 1


def test_a_shop_is_stocked_by_its_keeper_only(s: WorldState) -> None:
    s.code_rules.append(MakeRule(items=["apple"], places=["shop"]))
    s.set_location(BOB, "shop")
    stolen = apply_effects(s, [create("apple", "shop", 5)], actor=BOB)
    assert not stolen.ok and "made only by the keepers of shop" in stolen.reason
    s.set_location(ANN, "shop")
    assert apply_effects(s, [create("apple", "shop", 5)], actor=ANN).ok
    assert s.count("apple", "shop") == 15
    s.set_location(ANN, "square")  # the keeper, but not at the shop
    assert not apply_effects(s, [create("apple", ANN)], actor=ANN).ok


def test_what_anyone_may_make_is_made_anywhere_and_the_world_is_not_bound(
    s: WorldState,
) -> None:
    s.code_rules.append(MakeRule(items=["letter"]))
    assert apply_effects(s, [create("Letter", BOB)], actor=BOB).ok
    assert apply_effects(s, [create("gold coin", "square", 3)]).ok  # the world's own event
    assert check_invariants(s) == []


def test_a_make_rule_at_an_unknown_place_is_refused_at_load(tmp_path: Path) -> None:
    data = mini_data()
    data["code_rules"] = [{"kind": "make", "items": ["pie"], "places": ["bakeryy"]}]
    assert "unknown place 'bakeryy'" in refusal(write_world(tmp_path, data))
    data["code_rules"] = [{"kind": "make", "items": ["pie"], "places": ["shop"]}]
    assert load_world(write_world(tmp_path, data)).state.code_rules


# -- property-based: the loaders ----------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["square", "shop", ANN, "2025-04-14 08:00", "09:00-17:00", "apple", ""]),
)
structures = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def loads_or_refuses(path: Path) -> None:
    with contextlib.suppress(ConfigError):
        load_world(path)


@FUZZ
@given(doc=structures)
def test_any_yaml_structure_loads_or_is_refused(tmp_path: Path, doc: Any) -> None:
    path = tmp_path / "any.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    loads_or_refuses(path)


@FUZZ
@given(raw=st.binary(max_size=400))
def test_any_bytes_parse_or_are_refused(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "raw.yaml"
    path.write_bytes(raw)
    with contextlib.suppress(ConfigFileError):
        read_yaml(path)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


MINI_PATHS = [p for p in _paths(mini_data()) if p]


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(MINI_PATHS), structures), min_size=1, max_size=3))
def test_a_valid_world_with_any_field_replaced_loads_or_is_refused(
    tmp_path: Path, edits: list[tuple[tuple[Any, ...], Any]]
) -> None:
    data = mini_data()
    for path, value in edits:
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit took that path away
    loads_or_refuses(write_world(tmp_path, data))


# -- property-based: the effect validator -------------------------------------------------

WORLD = load_world(MINI)
NAMES = [ANN, BOB, CY, "Ghost"]
HOLDERS = [*NAMES, *WORLD.state.places, "nowhere"]
ITEMS = ["apple", "spade", "note", "note for Bob", "gold coin", "letter"]
quantities = st.one_of(st.integers(min_value=-3, max_value=1200), st.sampled_from([0, 1, 2]))
numbers = st.one_of(
    st.integers(min_value=-2000, max_value=2000), st.floats(allow_nan=True, allow_infinity=True)
)
effects = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.just("move"), "agent": st.sampled_from(NAMES), "to": st.sampled_from(HOLDERS)}
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("transfer"),
            "item": st.sampled_from(ITEMS),
            "from": st.sampled_from(HOLDERS),
            "to": st.sampled_from(HOLDERS),
            "quantity": quantities,
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("set"),
            "agent": st.sampled_from(NAMES),
            "attribute": st.sampled_from(["money", "energy", "mood", "charm"]),
        },
        optional={"value": numbers, "delta": numbers},
    ),
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["create", "destroy"]),
            "item": st.sampled_from(ITEMS),
            "holder": st.sampled_from(HOLDERS),
            "quantity": quantities,
        }
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from([None, ANN, BOB, CY]), st.lists(effects, max_size=4)),
        min_size=1,
        max_size=6,
    ),
    rules=st.lists(
        st.builds(
            MakeRule,
            items=st.lists(st.sampled_from(ITEMS), min_size=1, max_size=2),
            places=st.lists(st.sampled_from(list(WORLD.state.places)), max_size=2),
        ),
        max_size=2,
    ),
)
def test_random_effects_never_break_conservation_or_invariants(
    steps: list[tuple[str | None, list[dict[str, Any]]]], rules: list[MakeRule]
) -> None:
    s = WORLD.new_state()
    s.code_rules.extend(rules)
    for actor, batch in steps:
        before = s.to_dict()
        held = {a: [(i.name, i.quantity) for i in s.items_held(a)] for a in s.agents}
        result = apply_effects(s, batch, actor=actor)
        if not result.ok:
            assert s.to_dict() == before, result.reason
        assert check_invariants(s) == [], (actor, batch)
        if result.ok and actor is not None:  # nobody else lost a thing
            for other in set(s.agents) - {actor}:
                now = {i.name: i.quantity for i in s.items_held(other)}
                for name, quantity in held[other]:
                    assert now.get(name, 0) >= quantity, (actor, other, batch)
