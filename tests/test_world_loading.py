"""Loading worlds: the shipped town, and every kind of invalid file refused with file,
field and line. Each bad fixture states what it expects in its header comments
(`# expect-field:`, `# expect-message:`, optionally `# expect-file:` and
`# expect-line:`) and marks the offending line with `# <-- error`."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from concordia_like.errors import ConfigError
from concordia_like.world import load_world
from concordia_like.yaml_loader import ConfigFileError

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOWN = ROOT / "worlds" / "town.yaml"


def expectations(path: Path) -> tuple[Path, int, str, str]:
    """(file the error is in, line, field, message fragment) declared by a fixture."""
    header: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("# expect-"):
            key, _, value = line[len("# expect-") :].partition(":")
            header[key] = value.strip()
    target = (path.parent / header["file"]).resolve() if "file" in header else path
    if "line" in header:
        line_no = int(header["line"])
    else:
        marked = [
            i for i, text in enumerate(target.read_text().splitlines(), 1) if "# <-- error" in text
        ]
        assert len(marked) == 1, f"{target} must mark exactly one line"
        line_no = marked[0]
    return target, line_no, header["field"], header["message"]


BAD_WORLDS = sorted((FIXTURES / "bad_worlds").glob("*.yaml"))


def test_town_loads_quickly_and_is_rich() -> None:
    t0 = time.perf_counter()
    world = load_world(TOWN)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, f"town took {elapsed:.2f}s to load"
    s = world.state
    assert world.name == "Larkspur Ford"
    assert len(s.places) >= 12
    assert len(s.agents) >= 10
    assert set(world.personas) == set(s.agents)
    kinds = {p.kind for p in s.places.values()}
    assert {"home", "shop", "public", "street"} <= kinds
    for needed in ("bakery", "cafe", "market_square", "library", "town_hall", "clinic", "pub"):
        assert needed in s.places
    assert 6 <= len(world.rules) <= 10
    assert {"money", "energy"} <= set(s.attributes)
    assert s.attributes["money"].conserved
    assert len(s.events) >= 3
    assert world.warnings == []
    # every resident starts in an existing place and has a home there
    for agent in s.agents.values():
        assert agent.location in s.places and agent.home in s.places
        assert agent.name in s.places[agent.home].keyholders


def test_town_personas_are_rich_and_related() -> None:
    world = load_world(TOWN)
    names = set(world.personas)
    for card in world.personas.values():
        assert card.traits and card.values and card.goals and card.routine
        assert card.backstory and card.speaking_style
        assert len(card.seed_memories) >= 3
        assert any(other in names for other in card.relationships), card.name
        assert len(card.prompt_text()) <= 1600


def test_connections_are_symmetric() -> None:
    s = load_world(TOWN).state
    for pid, place in s.places.items():
        for other in place.connections:
            assert pid in s.places[other].connections, (pid, other)


def test_new_state_is_fresh_and_equal() -> None:
    world = load_world(TOWN)
    fresh = world.new_state()
    assert fresh is not world.state
    assert fresh.to_dict() == world.state.to_dict()


@pytest.mark.parametrize("path", BAD_WORLDS, ids=[p.stem for p in BAD_WORLDS])
def test_bad_world_refused_with_file_field_and_line(path: Path, tmp_path: Path) -> None:
    target, line, field, fragment = expectations(path)
    before = sorted(os.listdir(path.parent))
    with pytest.raises(ConfigFileError) as info:
        load_world(path)
    issues = info.value.issues
    assert len(issues) == 1, str(info.value)
    issue = issues[0]
    assert Path(issue.file).resolve() == target.resolve(), str(info.value)
    assert issue.line == line, str(info.value)
    assert issue.field == field, str(info.value)
    assert fragment in issue.message, str(info.value)
    message = str(info.value)
    assert f"{target.name}:{line}:" in message
    assert fragment in message
    assert isinstance(info.value, ConfigError)  # what the CLI prints as one error
    assert sorted(os.listdir(path.parent)) == before  # nothing written


def test_missing_world_file() -> None:
    with pytest.raises(ConfigFileError, match="file not found"):
        load_world(FIXTURES / "bad_worlds" / "no_such_world.yaml")


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(
        "name: Many\n"
        "start: 2025-04-14 08:00\n"
        "places:\n"
        "  a: {connections: [b, zz]}\n"
        "  b: {connections: [yy]}\n"
        "attributes:\n"
        "  energy: {min: 0, max: 10, initial: 11}\n"
    )
    with pytest.raises(ConfigFileError) as info:
        load_world(tmp_path / "w.yaml")
    got = [(i.line, i.field) for i in info.value.issues]
    assert got == [
        (4, "places.a.connections[1]"),
        (5, "places.b.connections[0]"),
        (7, "attributes.energy.initial"),
    ]


def test_persona_paths_are_relative_to_the_world_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the working folder does not matter
    world = load_world(FIXTURES / "worlds" / "mini.yaml")
    assert set(world.personas) == {"Ann Reed", "Bob Vale", "Cy Moss"}


def test_resident_name_may_not_be_a_place_id(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("name: square\nage: 3\noccupation: x\nhome: square\n")
    (tmp_path / "w.yaml").write_text(
        "name: Clash\nstart: 2025-04-14 08:00\nplaces:\n  square: {}\n"
        "residents:\n  - persona: p.yaml\n"
    )
    with pytest.raises(
        ConfigFileError, match=r"w.yaml:6: residents\[0\].persona: .*also a place id"
    ):
        load_world(tmp_path / "w.yaml")


def test_warnings_for_unknown_relationships_and_unreachable_places(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "name: Solo One\nage: 30\noccupation: x\nhome: a\n"
        "relationships: {Ghost Person: late husband}\n"
    )
    (tmp_path / "w.yaml").write_text(
        "name: Lonely\nstart: 2025-04-14 08:00\nplaces:\n  a: {}\n  island: {}\n"
        "residents:\n  - persona: p.yaml\n"
    )
    world = load_world(tmp_path / "w.yaml")
    assert any("Ghost Person" in w for w in world.warnings)
    assert any("island" in w for w in world.warnings)


def test_unknown_field_inside_an_event_effect(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(
        "name: X\nstart: 2025-04-14 08:00\nplaces:\n  a: {}\nevents:\n"
        "  - at: 2025-04-14 09:00\n    text: t\n    effects:\n"
        "      - {kind: move, agent: Z, to: a, by: magic}\n"
    )
    with pytest.raises(ConfigFileError) as info:
        load_world(tmp_path / "w.yaml")
    issue = info.value.first
    assert (issue.line, issue.field) == (9, "events[0].effects[0].by")
    assert issue.message == "unknown field 'by'; allowed: kind, agent, to"


def test_rules_text_is_bounded() -> None:
    world = load_world(TOWN)
    text = world.rules_text()
    assert text.startswith("World: Larkspur Ford.") and len(text) <= 1500
    assert not text.endswith("…")  # the town's rules fit whole
    assert len(world.rules_text(max_chars=200)) <= 200
