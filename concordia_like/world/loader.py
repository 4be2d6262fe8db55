"""Loading a world file into a `World`: its schema, its cross-references, its state.

Everything wrong with a world and its personas is collected and reported at once, each
problem at its file and line, and nothing is built from a file with any problem.
Decisions a world author should know:

- connections are symmetric: `a: {connections: [b]}` also connects b to a;
- persona paths are relative to the world file's folder (`../personas/ines.yaml`);
- a resident's home is the card's `home` unless the world overrides it, their start
  is their home unless given, and residents of a home are its keyholders;
- place ids are lower-case slugs and must differ from every resident's name, because
  an item's holder is either; an item's id defaults to its name made a slug;
- a persona naming someone who is not a resident, or a place no path leads to, is a
  warning (`World.warnings`), not an error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from concordia_like.agents.persona import PersonaCard, clip, load_persona_doc
from concordia_like.world.effects import (
    CreateEffect,
    DestroyEffect,
    MoveEffect,
    SetEffect,
    TransferEffect,
)
from concordia_like.world.spec import WorldSpec
from concordia_like.world.state import (
    Agent,
    AttributeDef,
    Clock,
    Item,
    Place,
    ScheduledEvent,
    WorldState,
    slug,
)
from concordia_like.yaml_loader import (
    ConfigFileError,
    Issue,
    YamlDoc,
    display_path,
    read_yaml,
    validate_doc,
)

PLACE_ID = re.compile(r"^[a-z][a-z0-9_]*$")


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
        lines = [f"World: {self.name}. {' '.join(self.description.split())}"]
        lines += [f"- {' '.join(r.split())}" for r in self.rules]
        return clip("\n".join(lines), max_chars)


@dataclass
class _Resident:
    name: str
    card: PersonaCard
    doc: YamlDoc
    index: int
    home: str
    start: str
    attributes: dict[str, Any]


def load_world(path: str | Path) -> World:
    """Load, check and build the world at `path`; ConfigFileError lists every problem."""
    doc = read_yaml(path)
    spec = validate_doc(doc, WorldSpec)
    checker = _Checker(doc, spec)
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


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Checker:
    """Cross-reference checks of a schema-valid world, collecting Issues and warnings."""

    def __init__(self, doc: YamlDoc, spec: WorldSpec) -> None:
        self.doc = doc
        self.spec = spec
        self.issues: list[Issue] = []
        self.warnings: list[str] = []
        self.residents: list[_Resident] = []
        self.personas_ok = True
        self.connections: dict[str, list[str]] = {}
        self.item_ids: list[str] = []

    def err(self, loc: tuple[str | int, ...], message: str, doc: YamlDoc | None = None) -> None:
        self.issues.append((doc or self.doc).issue(loc, message))

    def place_ref(self, loc: tuple[str | int, ...], place: str, doc: YamlDoc | None = None) -> bool:
        if place in self.spec.places:
            return True
        where = "" if doc is None else f" of {self.doc.name}"
        self.err(loc, f"unknown place {place!r}{where}{_suggest(place, self.spec.places)}", doc)
        return False

    def run(self) -> None:
        self.check_places()
        self.check_attributes()
        self.check_residents()
        names = {r.name for r in self.residents}
        if self.personas_ok:
            self.check_keyholders(names)
        self.check_items(names)
        self.check_events(names)
        self.check_reachability()

    def check_places(self) -> None:
        for pid, place in self.spec.places.items():
            if not PLACE_ID.match(pid):
                self.err(
                    ("places", pid), f"place id {pid!r} must be lower-case letters, digits and _"
                )
            self.connections.setdefault(pid, [])
            for i, other in enumerate(place.connections):
                loc = ("places", pid, "connections", i)
                if other == pid:
                    self.err(loc, "a place cannot connect to itself")
                elif self.place_ref(loc, other):
                    for a, b in ((pid, other), (other, pid)):
                        if b not in self.connections.setdefault(a, []):
                            self.connections[a].append(b)

    def check_attributes(self) -> None:
        for name, a in self.spec.attributes.items():
            loc = ("attributes", name)
            if a.min > a.max:
                self.err((*loc, "max"), f"max {a.max} is below min {a.min}")
            if a.integer and any(
                isinstance(v, float) and not v.is_integer() for v in (a.min, a.max, a.initial)
            ):
                self.err(
                    loc,
                    "an integer attribute needs whole bounds and initial value (or integer: false)",
                )
            self.check_value((*loc, "initial"), name, a.initial)

    def check_value(self, loc: tuple[str | int, ...], name: str, value: Any) -> None:
        a = self.spec.attributes[name]
        if not a.min <= value <= a.max:
            self.err(loc, f"{name} {value} is outside its bounds {a.min}..{a.max}")
        elif a.integer and isinstance(value, float) and not value.is_integer():
            self.err(loc, f"{name} is a whole number, got {value}")

    def check_residents(self) -> None:
        seen: dict[str, int] = {}
        for i, r in enumerate(self.spec.residents):
            loc = ("residents", i)
            path = Path(r.persona)
            if not path.is_absolute():
                path = self.doc.path.parent / path
            if not path.is_file():
                self.err(
                    (*loc, "persona"),
                    f"persona file {r.persona!r} not found ({display_path(path)})",
                )
                self.personas_ok = False
                continue
            try:
                card, pdoc = load_persona_doc(path)
            except ConfigFileError as exc:
                self.issues.extend(exc.issues)
                self.personas_ok = False
                continue
            if card.name in seen:
                self.err(
                    (*loc, "persona"), f"{card.name!r} is already residents[{seen[card.name]}]"
                )
                continue
            seen[card.name] = i
            if card.name in self.spec.places:
                self.err((*loc, "persona"), f"resident name {card.name!r} is also a place id")
            home = r.home or card.home
            home_ok = (
                self.place_ref((*loc, "home"), home)
                if r.home
                else self.place_ref(("home",), home, pdoc)
            )
            start = r.start or home
            start_ok = self.place_ref((*loc, "start"), start) if r.start else home_ok
            for j, item in enumerate(card.routine):
                if item.place is not None:
                    self.place_ref(("routine", j, "place"), item.place, pdoc)
            attrs = {n: a.initial for n, a in self.spec.attributes.items()}
            for name, value in r.attributes.items():
                if name not in self.spec.attributes:
                    self.err(
                        (*loc, "attributes", name),
                        f"unknown attribute {name!r}{_suggest(name, self.spec.attributes)}",
                    )
                    continue
                self.check_value((*loc, "attributes", name), name, value)
                attrs[name] = value
            if home_ok and start_ok:
                self.residents.append(_Resident(card.name, card, pdoc, i, home, start, attrs))
        names = {r.name for r in self.residents}
        for r in self.residents:
            capacity = self.spec.places[r.start].capacity
            starting = sum(1 for o in self.residents if o.start == r.start)
            if capacity is not None and starting > capacity:
                self.err(
                    ("residents", r.index, "start"),
                    f"{starting} residents start at {r.start}, capacity {capacity}",
                )
            for other in r.card.relationships:
                if self.personas_ok and other not in names:
                    self.warnings.append(
                        f"{r.doc.name}: relationship to {other!r}, who is not a resident"
                    )

    def check_keyholders(self, names: set[str]) -> None:
        for pid, place in self.spec.places.items():
            for i, person in enumerate(place.keyholders):
                if person not in names:
                    self.err(
                        ("places", pid, "keyholders", i),
                        f"unknown resident {person!r}{_suggest(person, names)}",
                    )

    def check_items(self, names: set[str]) -> None:
        taken = set()
        seen: dict[tuple[str, str, str], int] = {}
        for i, item in enumerate(self.spec.items):
            loc = ("items", i)
            known = item.holder in self.spec.places or item.holder in names
            if not known and self.personas_ok:  # a card that failed to load may be its holder
                options = [*self.spec.places, *names]
                self.err(
                    (*loc, "holder"),
                    f"unknown holder {item.holder!r}{_suggest(item.holder, options)}",
                )
            if item.quantity > self.spec.max_stack:
                self.err(
                    (*loc, "quantity"),
                    f"quantity {item.quantity} is over max_stack {self.spec.max_stack}",
                )
            key = (item.holder, item.name, repr(sorted(item.properties.items())))
            if key in seen:
                self.err(
                    loc,
                    f"same item, holder and properties as items[{seen[key]}]: give one quantity",
                )
            seen[key] = i
            if item.id is not None:
                if item.id in taken:
                    self.err((*loc, "id"), f"item id {item.id!r} is used twice")
                item_id = item.id
            else:
                item_id, n = slug(item.name), 1
                explicit = {x.id for x in self.spec.items if x.id}
                while item_id in taken or item_id in explicit:
                    n += 1
                    item_id = f"{slug(item.name)}-{n}"
            taken.add(item_id)
            self.item_ids.append(item_id)

    def check_events(self, names: set[str]) -> None:
        for i, event in enumerate(self.spec.events):
            loc = ("events", i)
            if event.place is not None:
                self.place_ref((*loc, "place"), event.place)
            if event.until is not None and event.until < event.at:
                self.err((*loc, "until"), "until is before at")
            for j, effect in enumerate(event.effects):
                self.check_effect((*loc, "effects", j), effect, names)

    def check_effect(self, loc: tuple[str | int, ...], e: Any, names: set[str]) -> None:
        holders = set(self.spec.places) | names

        def ref(field_name: str, value: str, options: set[str] | dict[str, Any], what: str) -> None:
            if value not in options and (self.personas_ok or what == "place"):
                self.err((*loc, field_name), f"unknown {what} {value!r}{_suggest(value, options)}")

        if isinstance(e, MoveEffect):
            ref("agent", e.agent, names, "resident")
            ref("to", e.to, self.spec.places, "place")
        elif isinstance(e, TransferEffect):
            ref("from", e.from_, holders, "holder")
            ref("to", e.to, holders, "holder")
        elif isinstance(e, SetEffect):
            ref("agent", e.agent, names, "resident")
            ref("attribute", e.attribute, self.spec.attributes, "attribute")
            if (e.value is None) == (e.delta is None):
                self.err(loc, "a set effect takes exactly one of value and delta")
        elif isinstance(e, CreateEffect | DestroyEffect):
            ref("holder", e.holder, holders, "holder")

    def check_reachability(self) -> None:
        if not self.connections:
            return
        first = next(iter(self.spec.places))
        seen, todo = {first}, [first]
        while todo:
            for nxt in self.connections.get(todo.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        lost = [p for p in self.spec.places if p not in seen]
        if lost:
            self.warnings.append(f"{self.doc.name}: no path from {first} to {', '.join(lost)}")


def _build_state(spec: WorldSpec, ck: _Checker) -> WorldState:
    homes: dict[str, set[str]] = {}
    for r in ck.residents:
        homes.setdefault(r.home, set()).add(r.name)
    places = {
        pid: Place(
            id=pid,
            name=p.name or pid.replace("_", " ").title(),
            kind=p.kind,
            description=" ".join(p.description.split()),
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
        r.name: Agent(
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
    )
