"""Cross-reference checks of a world file that passed its schema.

What pydantic cannot see from one field: that a connection names a real place, that a
resident's persona file exists and loads, that an initial value sits within its
attribute's bounds. Every problem becomes an Issue at its own file and line (a bad
`home` in a persona card is reported at the card's line), all collected before any
is raised, so an author fixes a file in one pass rather than one error per run.
"""

from __future__ import annotations

import difflib
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concordia_like.world.apps import app_problems
from concordia_like.world.card_lines import load_card_lines
from concordia_like.world.code_rules import rule_problems
from concordia_like.world.effects import (
    CreateEffect,
    DestroyEffect,
    MoveEffect,
    SetEffect,
    TransferEffect,
)
from concordia_like.world.persona import PersonaCard, load_persona_doc
from concordia_like.world.spec import WorldSpec
from concordia_like.world.state import name_key, slug
from concordia_like.yaml_loader import ConfigFileError, Issue, ReadBudget, YamlDoc, display_path

PLACE_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class CheckedResident:
    """A resident as checked: card, its parsed file, and resolved home, start, attributes;
    `index` in the world's `residents` (-1: a line of its card file)."""

    name: str
    card: PersonaCard
    doc: YamlDoc
    index: int
    home: str
    start: str
    attributes: dict[str, Any]


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class WorldChecker:
    """Cross-reference checks of a schema-valid world, collecting Issues and warnings."""

    def __init__(self, doc: YamlDoc, spec: WorldSpec, budget: ReadBudget | None = None) -> None:
        self.doc = doc
        self.spec = spec
        #: what the load may still read; each card is read once (by its real path)
        self.budget = budget or ReadBudget()
        self._cards: dict[str, tuple[PersonaCard, YamlDoc] | None] = {}
        self.issues: list[Issue] = []
        self.warnings: list[str] = []
        self.residents: list[CheckedResident] = []
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
        self.check_code_rules()
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
            if not path.exists():
                self.err(
                    (*loc, "persona"),
                    f"persona file {r.persona!r} not found ({display_path(path)})",
                )
                self.personas_ok = False
                continue
            loaded = self.card(path)
            if loaded is None:
                self.personas_ok = False
                continue
            card, pdoc = loaded
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
                self.residents.append(CheckedResident(card.name, card, pdoc, i, home, start, attrs))
        if self.spec.personas is not None:
            self.check_card_file(
                self.spec.personas, {n: f"residents[{i}]" for n, i in seen.items()}
            )
        names = {r.name for r in self.residents}
        starting = Counter(r.start for r in self.residents)
        for c in self.residents:
            capacity = self.spec.places[c.start].capacity
            if capacity is not None and starting[c.start] > capacity:
                message = f"{starting[c.start]} residents start at {c.start}, capacity {capacity}"
                if c.index < 0:
                    self.err(("home",), message, c.doc)
                else:
                    self.err(("residents", c.index, "start"), message)
            for other in c.card.relationships:
                if self.personas_ok and other not in names:
                    self.warnings.append(
                        f"{c.doc.name}: relationship to {other!r}, who is not a resident"
                    )

    def check_card_file(self, name: str, seen: dict[str, str]) -> None:
        """The residents of the world's card file (`card_lines`): each starts at its
        card's home, with the attributes' initial values; `seen`: names already taken."""
        path = Path(name)
        if not path.is_absolute():
            path = self.doc.path.parent / path
        try:
            loaded = load_card_lines(path, self.budget)
        except ConfigFileError as exc:
            self.issues.extend(exc.issues)
            self.personas_ok = False
            return
        attrs = {n: a.initial for n, a in self.spec.attributes.items()}
        for card, doc in loaded:
            if card.name in seen:
                self.err(("name",), f"{card.name!r} is already {seen[card.name]}", doc)
                continue
            if card.name in self.spec.places:
                self.err(("name",), f"resident name {card.name!r} is also a place id", doc)
            for j, item in enumerate(card.routine):
                if item.place is not None:
                    self.place_ref(("routine", j, "place"), item.place, doc)
            if self.place_ref(("home",), card.home, doc):
                self.residents.append(
                    CheckedResident(card.name, card, doc, -1, card.home, card.home, dict(attrs))
                )

    def card(self, path: Path) -> tuple[PersonaCard, YamlDoc] | None:
        """The card at `path` and its file, read once however often the world names it;
        None when it is refused (its problems are reported the first time only)."""
        key = os.path.realpath(path)
        if key not in self._cards:
            try:
                self._cards[key] = load_persona_doc(path, self.budget)
            except ConfigFileError as exc:
                self.issues.extend(exc.issues)
                self._cards[key] = None
        return self._cards[key]

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
        seen: dict[tuple[str, str], int] = {}
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
            key = (item.holder, name_key(item.name))
            if key in seen:
                self.err(
                    (*loc, "name"),
                    f"{item.holder} already has {item.name!r} (items[{seen[key]}]); a holder has "
                    "one stack per name: add the quantities, or name them apart",
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

    def check_code_rules(self) -> None:
        for i, rule in enumerate(self.spec.code_rules):
            for where, message in rule_problems(rule, self.spec.places, self.spec.max_stack):
                self.err(("code_rules", i, *where), message)
        if self.spec.apps is not None:
            conserved = {n: a.conserved for n, a in self.spec.attributes.items()}
            items = {name_key(i.name) for i in self.spec.items}
            for where, message in app_problems(self.spec.apps, conserved, items):
                self.err(("apps", *where), message)

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
