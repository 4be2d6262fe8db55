"""Loading a world file into a `World`: its schema, its cross-references, its state.

Everything wrong with a world and its personas is collected and reported at once, each
problem at its file and line, and nothing is built from a file with any problem.
Decisions a world author should know:

- connections are symmetric: `a: {connections: [b]}` also connects b to a;
- persona paths are relative to the world file's folder (`../personas/ines.yaml`);
- `personas: cards.jsonl` adds the residents of a card file, one card a line
  (`world.card_lines`: thousands of residents without thousands of files), each
  starting at home with the attributes' initial values;
- a resident's home is the card's `home` unless the world overrides it, their start
  is their home unless given, and residents of a home are its keyholders;
- place ids are lower-case slugs and must differ from every resident's name, because
  an item's holder is either; an item's id defaults to its name made a slug, and a
  holder has one stack per item name (two letters at the post office need two names);
- a persona naming someone who is not a resident, or a place no path leads to, is a
  warning (`World.warnings`), not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from concordia_like.text import clip, squash
from concordia_like.world.apps import AppState
from concordia_like.world.checks import WorldChecker
from concordia_like.world.persona import PersonaCard
from concordia_like.world.spec import WorldSpec
from concordia_like.world.state import (
    AttributeDef,
    Clock,
    Item,
    Place,
    Resident,
    ScheduledEvent,
    WorldState,
)
from concordia_like.yaml_loader import ConfigFileError, ReadBudget, read_yaml, validate_doc


@dataclass
class World:
    """A loaded world: its spec, its residents' cards and its initial state.

    `state` is the live state a run mutates; `new_state()` gives a fresh initial one
    (for another seed or run) without reading the files again."""

    path: Path
    spec: WorldSpec
    personas: dict[str, PersonaCard]
    state: WorldState
    warnings: list[str] = field(default_factory=list)
    _initial: dict[str, Any] = field(default_factory=dict, repr=False)
    #: how this world was built from its file beyond loading it (such as
    #: {"replicate_residents": 100}): recorded with a run, so that a resume rebuilds it
    built: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def rules(self) -> list[str]:
        return list(self.spec.rules)

    def new_state(self) -> WorldState:
        return WorldState.from_dict(self._initial)

    def rules_text(self, max_chars: int = 1500) -> str:
        """The world and its rules as the stable prefix of the Game Master's prompts."""
        lines = [f"World: {self.name}. {squash(self.description)}"]
        lines += [f"- {squash(r)}" for r in self.rules]
        return clip("\n".join(lines), max_chars)


def load_world(path: str | Path, budget: ReadBudget | None = None) -> World:
    """Load, check and build the world at `path`; ConfigFileError lists every problem.
    The world file and every card it names are read once each, within `budget` (by
    default, `yaml_loader.MAX_LOAD_BYTES` in all)."""
    budget = budget or ReadBudget()
    doc = read_yaml(path, budget=budget)
    spec = validate_doc(doc, WorldSpec)
    checker = WorldChecker(doc, spec, budget)
    checker.run()
    if checker.issues:
        raise ConfigFileError(checker.issues)
    state = _build_state(spec, checker)
    return World(
        path=Path(path),
        spec=spec,
        personas={r.name: r.card for r in checker.residents},
        state=state,
        warnings=checker.warnings,
        _initial=state.to_dict(),
    )


def _build_state(spec: WorldSpec, ck: WorldChecker) -> WorldState:
    homes: dict[str, set[str]] = {}
    for r in ck.residents:
        homes.setdefault(r.home, set()).add(r.name)
    places = {
        pid: Place(
            id=pid,
            name=p.name or pid.replace("_", " ").title(),
            kind=p.kind,
            description=squash(p.description),
            connections=tuple(ck.connections.get(pid, ())),
            hours=p.opening_hours(),
            capacity=p.capacity,
            keyholders=frozenset(p.keyholders) | frozenset(homes.get(pid, ())),
        )
        for pid, p in spec.places.items()
    }
    attributes = {
        n: AttributeDef(n, a.min, a.max, a.initial, a.integer, a.conserved, a.description)
        for n, a in spec.attributes.items()
    }
    agents = {
        r.name: Resident(
            r.name,
            r.start,
            r.home,
            {n: int(v) if attributes[n].integer else float(v) for n, v in r.attributes.items()},
        )
        for r in ck.residents
    }
    items = {
        iid: Item(iid, s.name, s.holder, s.quantity, dict(s.properties))
        for iid, s in zip(ck.item_ids, spec.items, strict=True)
    }
    events = [
        ScheduledEvent(
            e.id or f"event-{i + 1}", e.at, e.text, e.place, e.repeat, e.until, tuple(e.effects)
        )
        for i, e in enumerate(spec.events)
    ]
    return WorldState(
        name=spec.name,
        clock=Clock(spec.start, timedelta(minutes=spec.step_minutes)),
        places=places,
        attributes=attributes,
        agents=agents,
        items=items,
        events=events,
        max_stack=spec.max_stack,
        code_rules=spec.code_rules,
        apps=AppState(spec.apps) if spec.apps is not None else None,
    )
