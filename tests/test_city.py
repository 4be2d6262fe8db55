"""Cities laid out from a spec (`concordia-like city`) and the world format that holds
their residents (`personas: cards.jsonl`): the world loads, everyone has a home and
every worker a workplace they can open, every routine names a real place, the streets
form one walkable graph, and a short scripted run steps through it."""

from __future__ import annotations

import json
import os
from collections import deque
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

from concordia_like.cli.main import app
from concordia_like.engine.runs import start_run
from concordia_like.engine.upkeep import PLAN_PLACES, plan_places
from concordia_like.generate.write import CARDS, WORLD, cards_text, generate, write_city
from concordia_like.sandbox.commands import Hint, resolve, resolve_place
from concordia_like.sandbox.seat import parse_action
from concordia_like.world.loader import load_world
from concordia_like.yaml_loader import ConfigFileError

from support.engine import TOWN, close, lm_factory, run_steps, timeline

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "worlds" / "city" / "city.yaml"
SHIPPED = REPO / "worlds" / "city" / "wendmouth-1000"
runner = CliRunner()


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    g = generate(SPEC, 600, 4)
    out = tmp_path_factory.mktemp("city") / "c"
    world = write_city(out, g)
    return g, world, out


def test_everyone_has_a_home_sized_for_the_household(city):
    g, world, _ = city
    state = world.state
    assert len(world.personas) == 600
    for members in g.population.households:
        home = g.city.cards[members[0]].home
        assert state.places[home].kind == "home"
        assert state.places[home].capacity >= len(members)
        for i in members:
            name = g.city.cards[i].name
            assert state.agents[name].home == home == state.agents[name].location
            assert name in state.places[home].keyholders


def test_workers_have_a_workplace_they_hold_the_keys_of(city):
    g, world, _ = city
    spec = g.spec
    workers = 0
    for person in g.population.people:
        occupation = spec.occupations[person.occupation]
        site = g.city.workplace.get(person.index)
        assert (site is None) == (occupation.workplace is None)
        if site is None:
            continue
        workers += 1
        place = world.state.places[site]
        assert place.kind == spec.city.places[occupation.workplace].kind
        assert (person.name in place.keyholders) == occupation.keys
        assert site in {r.place for r in world.personas[person.name].routine}
    assert workers > 200
    staff: dict[str, int] = {}
    for site in g.city.workplace.values():
        staff[site] = staff.get(site, 0) + 1
    for site, count in staff.items():
        capacity = world.state.places[site].capacity
        assert capacity is None or capacity >= count


def test_every_routine_place_exists_and_the_graph_is_connected_and_bounded(city):
    _, world, _ = city
    places = world.state.places
    for card in world.personas.values():
        assert card.routine
        assert all(r.place in places for r in card.routine)
    start = next(iter(places))
    seen, todo = {start}, deque([start])
    while todo:
        for nxt in places[todo.popleft()].connections:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(places)
    assert max(len(p.connections) for p in places.values()) <= 30
    assert world.warnings == []


def test_a_place_visited_from_work_is_by_the_workplace_not_back_in_the_home_district(city):
    """Lunch at a café by the office: an amenity in a routine is the one nearest where
    the routine has the resident before it, so a worker whose site is in another
    district does not walk home across the city for lunch and back."""
    g, world, _ = city
    district_of = {}
    for d in g.city.districts:
        for pid in world.state.places:
            if pid.startswith(f"{d.slug}_"):
                district_of[pid] = d.index
    commuters = 0
    for person in g.population.people:
        work = g.city.workplace.get(person.index)
        card = g.city.cards[person.index]
        if work is None or district_of[work] == district_of[card.home]:
            continue
        places = [r.place for r in card.routine]
        for before, after in pairwise(places):
            if before == work and after not in (work, card.home):
                commuters += 1
                assert district_of[after] == district_of[work], (person.name, after)
    assert commuters >= 10


def test_kinds_of_place_a_city_has(city):
    _, world, _ = city
    kinds = {p.kind for p in world.state.places.values()}
    names = " ".join(p.name for p in world.state.places.values())
    assert {"home", "street", "public", "shop", "office", "workshop"} <= kinds
    assert "Clinic" in names and "School" in names and "Park" in names and "Café" in names


def test_a_city_resident_plans_among_a_bounded_set_of_places_near_its_own(city):
    """A plan call's schema names the resident's own places and those nearest its home,
    not the city's hundreds (nor others' homes); a town offers all of its own."""
    _, world, _ = city
    state = world.state
    assert len(state.places) > 10 * PLAN_PLACES
    for card in list(world.personas.values())[:50]:
        usual = {r.place for r in card.routine}
        found = plan_places(state, card.name, (r.place for r in card.routine))
        assert usual | {card.home} <= set(found)
        assert len(found) <= PLAN_PLACES + len(usual)
        others_homes = [p for p in found if state.places[p].kind == "home" and p != card.home]
        assert others_homes == []
        assert len(found) >= PLAN_PLACES  # filled from the map around its home,
        assert set(state.neighbours(card.home)) <= set(found)  # nearest first
    town = load_world(REPO / "worlds" / "town.yaml").state
    anyone = next(iter(town.agents))
    assert set(plan_places(town, anyone, ())) == set(town.places)


async def test_a_plan_goes_to_the_residents_own_place_where_other_districts_share_its_name(
    city, runs_root
):
    """Districts repeat street names (an Alder Row in each), so homes repeat names too;
    a plan names places by name, and each must be the resident's own or nearest place
    of that name, never a stranger's home across the city."""
    _, world, _ = city
    state = world.state
    names = [p.name for p in state.places.values()]
    shared = {n for n in names if names.count(n) > 1}
    homes = [c for c in world.personas.values() if state.places[c.home].name in shared]
    assert homes  # the city has residents whose home's name another home bears
    sim = start_run(world, lm_factory(), seed=1, root=runs_root, start_time="07:00")
    await run_steps(sim, 1)
    planned = [c for c in world.personas.values() if sim.agents[c.name].plan is not None]
    assert {c.name for c in homes} & {c.name for c in planned}
    for card in planned:
        own = set(plan_places(state, card.name, (r.place for r in card.routine)))
        plan = sim.agents[card.name].plan
        assert {b.place for b in plan.blocks if b.place} <= own, card.name
    await close(sim)


def test_the_sandbox_asks_which_place_a_name_means_where_a_city_repeats_it(city):
    """Typed in the sandbox (`look`, `inject at`, `go`), a name that several places of
    the city bear is refused with their ids; an id or a name borne once is the place;
    a mistyped name among hundreds is answered with the nearest, not all of them."""
    _, world, _ = city
    names = {pid: p.name for pid, p in world.state.places.items()}
    counts: dict[str, list[str]] = {}
    for pid, name in names.items():
        counts.setdefault(name, []).append(pid)
    shared = next(n for n, ids in counts.items() if len(ids) > 1)
    once = next(n for n, ids in counts.items() if len(ids) == 1 and n not in names)
    with pytest.raises(Hint) as refused:
        resolve_place(f"{shared} now", names)
    assert all(pid in str(refused.value) for pid in counts[shared])
    assert resolve_place(f"{counts[shared][1]} now", names) == (counts[shared][1], "now")
    assert resolve_place(once, names) == (counts[once][0], "")
    residents = list(world.personas)
    first, family = residents[7].split(" ", 1)
    typo = f"{first[:-1]}q {family}"  # neither a name nor a first name
    with pytest.raises(Hint) as unknown:
        resolve(typo, residents, "resident")
    hint = str(unknown.value)
    assert residents[7] in hint and f"({len(residents)} in all)" in hint and len(hint) < 400


def test_a_player_going_to_a_name_two_neighbours_bear_is_asked_which_by_id():
    state = load_world(TOWN).state
    player = "Ines Marlowe"
    near = sorted(state.reachable(player))
    assert len(near) >= 2
    a, b = near[:2]
    state.places[b].name = state.places[a].name  # as a city repeats a street's name
    with pytest.raises(Hint, match="is the name of 2 places: name one of ") as asked:
        parse_action(state, player, f"go to {state.places[a].name}")
    assert a in str(asked.value) and b in str(asked.value)
    assert parse_action(state, player, f"go {b}").to == b
    with pytest.raises(Hint, match="you can go to: "):  # a name no neighbour bears
        parse_action(state, player, "go to the moon")


def test_the_same_seed_gives_the_same_world_and_the_population_command_its_cards(tmp_path):
    args = ["--n", "80", "--seed", "9"]
    for out in ("a", "b"):
        res = runner.invoke(
            app, ["city", str(SPEC), *args, "--out", str(tmp_path / out), "--quiet"]
        )
        assert res.exit_code == 0, res.output
    assert "80 residents" in res.output
    for name in (WORLD, CARDS):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    res = runner.invoke(app, ["population", str(SPEC), *args, "--out", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p" / CARDS).read_bytes() == (tmp_path / "a" / CARDS).read_bytes()


def test_the_shipped_city_is_what_the_spec_generates():
    """worlds/city/wendmouth-1000 is `make city`'s output: regenerate it after changing
    the spec or the generator."""
    g = generate(SPEC, 1000, 1)
    assert (SHIPPED / CARDS).read_text() == cards_text(g.city)
    world = load_world(SHIPPED / WORLD)
    assert len(world.personas) == 1000


def _world_with_cards(tmp_path: Path, lines: list[str]) -> Path:
    (tmp_path / "cards.jsonl").write_text("\n".join(lines) + "\n")
    world = tmp_path / "w.yaml"
    world.write_text(
        "name: W\nstart: 2025-04-14 06:00\npersonas: cards.jsonl\n"
        "places:\n  home_a: {kind: home, connections: [square]}\n  square: {}\n"
    )
    return world


def _card(**fields: object) -> str:
    card = {"name": "Ann Reed", "age": 30, "occupation": "clerk", "home": "home_a"}
    card.update(fields)
    return json.dumps(card)


def test_a_card_file_is_checked_line_by_line_at_file_line_and_field(tmp_path):
    world = _world_with_cards(
        tmp_path,
        [
            _card(),
            "",
            _card(name="Bo Vale", age=-3),
            _card(name="Cy Moss", home="home_b"),
            _card(name="Di Lamb", routine=[{"at": "07:00", "activity": "x", "place": "squre"}]),
            _card(),
            '{"name": "Ed", "name": "Ed"}',
            "not json",
        ],
    )
    with pytest.raises(ConfigFileError) as info:
        load_world(world)
    found = {(i.file.rsplit("/", 1)[-1], i.line, i.field) for i in info.value.issues}
    assert ("cards.jsonl", 3, "age") in found
    assert ("cards.jsonl", 6, "name") in found  # Ann Reed again
    assert ("cards.jsonl", 7, "") in found  # a duplicate key
    assert ("cards.jsonl", 8, "") in found
    text = str(info.value)
    assert "cards.jsonl:6: name: name 'Ann Reed' is also used at line 1" in text


def test_a_card_file_naming_places_the_world_lacks_is_refused_at_its_line(tmp_path):
    world = _world_with_cards(
        tmp_path,
        [
            _card(),
            _card(name="Cy Moss", home="home_b"),
            _card(name="Di Lamb", routine=[{"at": "07:00", "activity": "x", "place": "squre"}]),
        ],
    )
    with pytest.raises(ConfigFileError) as info:
        load_world(world)
    text = str(info.value)
    assert "cards.jsonl:2: home: unknown place 'home_b'" in text
    assert "cards.jsonl:3: routine[0].place: unknown place 'squre'" in text
    assert "did you mean 'square'" in text


def test_a_card_file_resident_starts_at_home(tmp_path):
    world = load_world(_world_with_cards(tmp_path, [_card(), _card(name="Bo Vale")]))
    assert world.state.agents["Bo Vale"].location == "home_a"
    assert world.state.places["home_a"].keyholders == {"Ann Reed", "Bo Vale"}


def test_a_city_that_cannot_be_written_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.read_text().replace("district_size: 500", "district_size: 5"))
    out = tmp_path / "out"
    res = runner.invoke(app, ["city", str(bad), "--n", "20", "--out", str(out)])
    assert res.exit_code == 1
    assert "city.district_size" in res.output
    assert not out.exists()


async def test_a_generated_city_of_50_steps_on_the_scripted_model(tmp_path, runs_root):
    write_city(tmp_path / "c", generate(SPEC, 50, 2))
    sim = start_run(tmp_path / "c" / WORLD, lm_factory(), root=runs_root, start_time="07:30")
    await run_steps(sim, 4)
    events = timeline(sim)
    moved = [e for e in events if (e[7] or {}).get("autopilot") and " goes from " in e[6]]
    assert moved  # residents walk their routines by code
    assert not [e for e in events if e[3] == "failure" and "no place" in e[6]]
    assert sim.state.clock.step_index == 4
    await close(sim)


def test_an_output_folder_holding_a_users_files_is_refused_and_kept(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for command in ("city", "population"):
        res = runner.invoke(app, [command, str(SPEC), "--n", "5", "--out", str(mine)])
        assert res.exit_code != 0
        assert "mine: holds notes.txt, which this command does not write" in res.output
    assert os.listdir(mine) == ["notes.txt"]
    monkeypatch.chdir(mine)
    res = runner.invoke(app, ["city", str(SPEC), "--n", "5", "--out", "."])
    assert res.exit_code != 0 and "is the folder this command runs in" in res.output
    assert os.listdir(mine) == ["notes.txt"]
