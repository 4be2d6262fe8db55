"""Persona cards: every shipped card loads; invalid cards are refused with file, field
and line (expectations are declared in each fixture's header, see test_world_loading)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_world_loading import FIXTURES, ROOT, expectations

from concordia_like.world.persona import PersonaCard, clip, load_persona, load_personas
from concordia_like.yaml_loader import ConfigFileError

BAD = sorted((FIXTURES / "bad_personas").glob("*.yaml"))
BAD = [p for p in BAD if "# expect-field:" in p.read_text()]


def test_every_shipped_persona_loads() -> None:
    cards = load_personas(ROOT / "personas")
    assert len(cards) >= 10
    for name, card in cards.items():
        assert card.name == name
        assert card.home


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_persona_refused_with_file_field_and_line(path: Path) -> None:
    target, line, field, fragment = expectations(path)
    with pytest.raises(ConfigFileError) as info:
        load_persona(path)
    issue = info.value.first
    assert Path(issue.file).resolve() == target.resolve()
    assert (issue.line, issue.field) == (line, field), str(info.value)
    assert fragment in issue.message, str(info.value)
    assert f"{target.name}:{line}:" in str(info.value)


def test_load_personas_reports_every_bad_card(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: A One\nage: x\noccupation: o\nhome: h\n")
    (tmp_path / "b.yaml").write_text("name: B Two\nage: 3\noccupation: o\nhome: h\nmood: sad\n")
    with pytest.raises(ConfigFileError) as info:
        load_personas(tmp_path)
    assert [(Path(i.file).name, i.line, i.field) for i in info.value.issues] == [
        ("a.yaml", 2, "age"),
        ("b.yaml", 5, "mood"),
    ]


def test_duplicate_names_refused(tmp_path: Path) -> None:
    for f in ("a.yaml", "b.yaml"):
        (tmp_path / f).write_text("name: Same Name\nage: 3\noccupation: o\nhome: h\n")
    with pytest.raises(ConfigFileError, match=r"b.yaml:1: name: name 'Same Name' is also used by"):
        load_personas(tmp_path)


def test_seed_memories_accept_plain_strings() -> None:
    card = load_persona(FIXTURES / "personas" / "ann.yaml")
    assert [(m.text, m.importance) for m in card.seed_memories] == [
        ("The shop sells apples.", 5),
        ("Bob owes me 5 coins.", 7),
    ]


def test_unquoted_times_stay_times(tmp_path: Path) -> None:
    # YAML 1.1 reads 5:30 as the base-60 integer 330; cards must not
    (tmp_path / "p.yaml").write_text(
        "name: Early Bird\nage: 3\noccupation: o\nhome: h\n"
        "routine:\n  - {at: 5:30, activity: wakes}\n  - {at: 17:45, activity: sleeps}\n"
    )
    card = load_persona(tmp_path / "p.yaml")
    assert [r.at for r in card.routine] == ["05:30", "17:45"]


def test_routine_may_pass_midnight_once() -> None:
    cards = load_personas(ROOT / "personas")
    rafael = cards["Rafael Quint"]
    assert rafael.routine_at(60).activity.startswith("locks up")  # 01:00
    assert rafael.routine_at(23 * 60).place == "pub"
    with pytest.raises(ValueError, match="time order"):
        PersonaCard(
            name="X Y",
            age=1,
            occupation="o",
            home="h",
            routine=[
                {"at": "09:00", "activity": "a"},
                {"at": "08:00", "activity": "b"},
                {"at": "10:00", "activity": "c"},
            ],
        )


def test_prompt_text_is_bounded_and_starts_with_identity() -> None:
    card = load_personas(ROOT / "personas")["Ines Marlowe"]
    text = card.prompt_text(max_chars=300)
    assert len(text) <= 300
    assert text.startswith("You are Ines Marlowe (she/her), 52, baker")
    assert text.endswith("…")


def test_clip() -> None:
    assert clip("short", 10) == "short"
    out = clip("one two three four five six", 12)
    assert len(out) <= 12 and out.endswith("…")


def test_names_must_be_plain_words() -> None:
    with pytest.raises(ValueError):
        PersonaCard(name="Bad: Name", age=1, occupation="o", home="h")
    with pytest.raises(ValueError):
        PersonaCard(name="Two  Spaces", age=1, occupation="o", home="h")
