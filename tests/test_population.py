"""Populations drawn from a spec (`concordia-like population`): the same seed gives the
same cards, the realised distributions fit the spec's, a bad spec is refused at its
file, line and field with nothing written."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from concordia_like.cli.main import app
from concordia_like.generate.fit import chi2_sf, fits
from concordia_like.generate.names import read_list, shipped_lists
from concordia_like.generate.population import draw_population, household_sizes, person_draws
from concordia_like.generate.spec import ADULT_AGE
from concordia_like.generate.write import CARDS, cards_text, generate, load_spec
from concordia_like.world.card_lines import load_card_lines
from concordia_like.world.persona import load_personas
from concordia_like.yaml_loader import ConfigFileError

SPEC = Path(__file__).resolve().parent.parent / "worlds" / "city" / "city.yaml"
runner = CliRunner()


def test_the_same_seed_gives_byte_identical_cards(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        res = runner.invoke(
            app, ["population", str(SPEC), "--n", "120", "--seed", "7", "--out", str(out)]
        )
        assert res.exit_code == 0, res.output
    assert (a / CARDS).read_bytes() == (b / CARDS).read_bytes()
    assert (a / "population.txt").read_bytes() == (b / "population.txt").read_bytes()
    assert "120 residents" in res.output and "TVD" in res.output


def test_different_seeds_give_different_people():
    one = generate(SPEC, 80, 1).city.cards
    two = generate(SPEC, 80, 2).city.cards
    assert [c.name for c in one] != [c.name for c in two]
    assert len({c.name for c in one}) == 80  # names are unique within a population


def test_every_card_loads_as_the_persona_loader_reads_it(tmp_path):
    res = runner.invoke(
        app,
        [
            "population",
            str(SPEC),
            "--n",
            "40",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "p"),
            "--yaml",
        ],
    )
    assert res.exit_code == 0, res.output
    cards = load_personas(tmp_path / "p" / "personas")
    assert sorted(cards) == sorted(c.name for c in generate(SPEC, 40, 3).city.cards)
    lines = tmp_path / "lines.jsonl"
    lines.write_text(cards_text(generate(SPEC, 40, 3).city))
    assert [c for c, _ in load_card_lines(lines)] == generate(SPEC, 40, 3).city.cards


def test_households_are_headed_by_adults_and_share_a_home_and_family_name():
    g = generate(SPEC, 300, 5)
    people, cards = g.population.people, g.city.cards
    assert sum(len(h) for h in g.population.households) == 300
    for members in g.population.households:
        assert people[members[0]].age >= ADULT_AGE
        assert len({cards[i].home for i in members}) == 1
        assert len({people[i].name.split()[-1] for i in members}) == 1
        for i in members:
            assert set(cards[i].relationships) == {people[j].name for j in members if j != i}


def test_realised_distributions_fit_the_spec_at_2000():
    for f in fits(generate(SPEC, 2000, 11).population):
        assert f.tvd < 0.1, (f.field, f.tvd)
        assert f.p_value > 1e-4, (f.field, f.chi2)


def test_tables_are_drawn_stratified_each_value_within_two_of_its_share():
    # independent draws would stray by about ten people from a 12% share of 1,000
    spec, names = load_spec(SPEC)
    for n, seed in ((1000, 1), (333, 4), (50, 7)):
        pop = draw_population(spec, names, n, seed)
        for fields, weights in person_draws(spec):  # each table's own cells
            counts = Counter(tuple(getattr(p, f) for f in fields) for p in pop.people)
            for value, share in weights.probabilities().items():
                assert abs(counts[value] - share * n) < 2, (n, fields, value, counts[value])
        sizes = household_sizes(spec).probabilities()
        counts = Counter(len(h) for h in pop.households)
        for size, share in sizes.items():
            assert abs(counts[size] - share * len(pop.households)) < 2, (n, size)
        mean = sum(size * share for size, share in sizes.items())
        assert abs(len(pop.households) - n / mean) < 2


def test_chi_square_tail_matches_known_values():
    assert chi2_sf(3.841, 1) == pytest.approx(0.05, abs=1e-3)
    assert chi2_sf(18.307, 10) == pytest.approx(0.05, abs=1e-3)
    assert chi2_sf(0.0, 4) == 1.0
    assert chi2_sf(200.0, 3) < 1e-30


def test_the_name_lists_ship_with_the_package():
    assert {"feminine", "masculine", "neutral", "family", "districts", "streets"} <= set(
        shipped_lists()
    )
    assert len(read_list("family", SPEC.parent)) > 100


def _bad(tmp_path: Path, old: str, new: str) -> Path:
    text = SPEC.read_text()
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "needle", "field", "message"),
    [
        (
            "child: {pupil: 15}",
            "child: {pupill: 15}",
            "pupill",
            "joint[0].table.child.pupill",
            "unknown occupation",
        ),
        (
            "routine_jitter: 15",
            "routine_jiter: 15",
            "routine_jiter",
            "routine_jiter",
            "did you mean 'routine_jitter'",
        ),
        (
            "place: park}",
            "place: parkk}",
            "parkk",
            "routines.school_day[2].place",
            "unknown place 'parkk'",
        ),
        (
            "household_size: {1: 29",
            "household_size: {0: 29",
            "household_size",
            "distributions.household_size.0",
            "whole number",
        ),
        (
            "student: {title: university student, routine: student_day",
            "student: {title: university student, routine: student_dya",
            "student_dya",
            "occupations.student.routine",
            "unknown routine",
        ),
        (
            "  senior: [65, 92]",
            "  senior: [95, 92]",
            "senior: [95",
            "age_bands.senior",
            "youngest, oldest",
        ),
    ],
)
def test_a_bad_spec_is_refused_at_file_line_and_field(tmp_path, old, new, needle, field, message):
    path = _bad(tmp_path, old, new)
    with pytest.raises(ConfigFileError) as info:
        load_spec(path)
    issue = info.value.first
    assert issue.file.endswith("bad.yaml")
    assert issue.line == _line_of(path, needle)
    assert issue.field == field
    assert message in issue.message
    out = tmp_path / "out"
    res = runner.invoke(app, ["population", str(path), "--n", "10", "--out", str(out)])
    assert res.exit_code == 1
    assert re.search(rf"bad\.yaml:{issue.line}: ", res.output)
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_a_field_drawn_twice_or_not_at_all_is_refused(tmp_path):
    twice = _bad(tmp_path, "  pronouns: {she/her", "  occupation: {clerk: 1}\n  pronouns: {she/her")
    with pytest.raises(ConfigFileError, match="occupation is drawn twice"):
        load_spec(twice)
    none = _bad(tmp_path, "  pronouns: {she/her: 49, he/him: 48, they/them: 3}\n", "")
    with pytest.raises(ConfigFileError, match="no distribution for pronouns"):
        load_spec(none)


def test_a_routine_at_a_closed_place_is_refused(tmp_path):
    path = _bad(
        tmp_path,
        '{at: "10:00", activity: "a slow walk around {place}", place: park}',
        '{at: "10:00", activity: "a slow walk around {place}", place: pub}',
    )
    with pytest.raises(ConfigFileError, match="pub is closed at 10:00"):
        load_spec(path)


def test_a_name_list_beside_the_spec_is_read_and_checked(tmp_path):
    (tmp_path / "ours.txt").write_text("# family names\nQuill\nMarsh\n")
    good = _bad(tmp_path, "routine_jitter: 15", "routine_jitter: 15\nnames: {family: [ours.txt]}")
    cards = generate(good, 30, 1).city.cards
    assert {c.name.split()[-1] for c in cards} <= {"Quill", "Marsh"}
    (tmp_path / "ours.txt").write_text("Quill\nde la Marsh: Jr\n")
    with pytest.raises(ConfigFileError, match="'de la Marsh: Jr' is not a name") as info:
        load_spec(good)
    assert info.value.first.field == "names.family[0]"
    assert info.value.first.line == _line_of(good, "names: {family")


async def test_backstories_are_written_for_every_card_and_a_failed_answer_leaves_one_empty():
    from concordia_like.generate.backstories import PURPOSE, write_backstories
    from concordia_like.llm import LanguageModel, ScriptedBackend

    from support.engine import force

    cards = generate(SPEC, 12, 4).city.cards
    backend = ScriptedBackend()
    seen: list[tuple[str | None, int]] = []

    def answer(req):
        seen.append((req.agent, req.sampling.seed))
        if req.agent == cards[3].name:
            return {"backstory": "short"}  # under the schema's least: refused
        return {"backstory": f"{req.agent} grew up by the river and  misses it."}

    force(backend, PURPOSE, answer)
    async with LanguageModel(backend) as lm:
        written = await write_backstories(lm, cards, 4, "Wendmouth")
    assert written.failed == 1
    assert written.cards[3].backstory == ""
    for before, after in zip(cards, written.cards, strict=True):
        assert after.model_copy(update={"backstory": ""}) == before
    assert written.cards[0].backstory == f"{cards[0].name} grew up by the river and misses it."
    assert len({s for _, s in seen}) == len(cards)  # a seed of its own for each card


def test_population_backstories_on_the_scripted_model(tmp_path):
    out = tmp_path / "p"
    args = ["population", str(SPEC), "--n", "15", "--seed", "2", "--out", str(out)]
    res = runner.invoke(app, [*args, "--backstories", "--backend", "scripted"])
    assert res.exit_code == 0, res.output
    assert "backstories: 15 written by scripted" in res.output
    assert all(c.backstory for c, _ in load_card_lines(out / CARDS))
