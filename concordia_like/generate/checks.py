"""Cross-reference checks of a population spec that passed its schema.

What one field cannot see: that every person field is drawn from exactly one
distribution, that a weight names a real band, occupation or pronoun, that a routine
goes only to places the plan has (and at hours they are open), that name lists exist.
Each problem is an Issue at its own line, all collected before any is raised.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from concordia_like.errors import ConfigError
from concordia_like.generate.names import read_list
from concordia_like.generate.spec import (
    HOME,
    HOUSEHOLD_FIELD,
    PERSON_FIELDS,
    WORK,
    PlaceKind,
    PopulationSpec,
    Step,
)
from concordia_like.world.persona import parse_hhmm
from concordia_like.yaml_loader import Issue, Loc, YamlDoc

#: what a card allows (`PersonaCard`): a name's words, with room for two names and an
#: initial; pronouns
NAME_WORDS = re.compile(r"[^\s:,;\[\]{}]+(?: [^\s:,;\[\]{}]+)*")
NAME_MAX, PRONOUNS_MAX = 28, 20
#: a Monday, for asking whether a place is open at a routine's hour
_MONDAY = datetime(2025, 4, 14)  # noqa: DTZ001 (a local time of day)
MAX_HOUSEHOLD = 20


def _open_day(kind: PlaceKind) -> datetime:
    """The first day of the week the place kind opens at all."""
    hours = kind.opening_hours()
    for d in range(7):
        if d not in hours.closed_days:
            return _MONDAY + timedelta(days=d)
    return _MONDAY


def in_order(steps: list[Step]) -> bool:
    """The persona card's rule: in time order, the day passing midnight at most once."""
    times = [parse_hhmm(s.at) for s in steps]
    wraps = sum(1 for a, b in itertools.pairwise(times) if b < a)
    return wraps == 0 or (wraps == 1 and times[-1] <= times[0])


class SpecChecker:
    """Checks of a schema-valid spec, collecting Issues; `names` the lists it read."""

    def __init__(self, doc: YamlDoc, spec: PopulationSpec) -> None:
        self.doc = doc
        self.spec = spec
        self.issues: list[Issue] = []
        self.names: dict[str, list[str]] = {}

    def err(self, loc: Loc, message: str) -> None:
        self.issues.append(self.doc.issue(loc, message))

    def run(self) -> list[Issue]:
        self.check_coverage()
        self.check_values()
        self.check_occupations()
        self.check_routines()
        self.check_names()
        return self.issues

    def options(self, field: str) -> Iterable[str]:
        s = self.spec
        if field == "age_band":
            return s.age_bands
        if field == "occupation":
            return s.occupations
        if field == "pronouns":
            return s.names.given
        return []

    def value_ok(self, loc: Loc, field: str, value: str | int) -> None:
        if field == HOUSEHOLD_FIELD:
            if not str(value).isdigit() or not 1 <= int(value) <= MAX_HOUSEHOLD:
                self.err(loc, f"a household size is a whole number 1..{MAX_HOUSEHOLD}")
            return
        if field == "speaking_style":
            return
        options = list(self.options(field))
        if str(value) not in options:
            what = {"pronouns": "pronouns of names.given"}.get(field, field.replace("_", " "))
            self.err(loc, f"unknown {what} {str(value)!r}; known: {', '.join(options)}")

    def check_coverage(self) -> None:
        where: dict[str, list[Loc]] = {}
        for field in self.spec.distributions:
            where.setdefault(field, []).append(("distributions", field))
        for i, joint in enumerate(self.spec.joint):
            if joint.fields[0] == joint.fields[1]:
                self.err(("joint", i, "fields"), "a joint table draws two different fields")
            for field in set(joint.fields):
                where.setdefault(field, []).append(("joint", i, "fields"))
        for name in (*PERSON_FIELDS, HOUSEHOLD_FIELD):
            locs = where.get(name, [])
            if len(locs) > 1:
                self.err(locs[1], f"{name} is drawn twice: from one distribution or joint only")
            elif not locs and name != "speaking_style":
                self.err(("distributions",), f"no distribution for {name}")

    def check_values(self) -> None:
        for field, weights in self.spec.distributions.items():
            if not any(w > 0 for w in weights.values()):
                self.err(("distributions", field), "the weights must not all be 0")
            for value in weights:
                self.value_ok(("distributions", field, str(value)), field, value)
        for i, joint in enumerate(self.spec.joint):
            a, b = joint.fields
            if not any(w > 0 for row in joint.table.values() for w in row.values()):
                self.err(("joint", i, "table"), "the weights must not all be 0")
            for row, cells in joint.table.items():
                self.value_ok(("joint", i, "table", str(row)), a, row)
                for col in cells:
                    self.value_ok(("joint", i, "table", str(row), str(col)), b, col)

    def check_occupations(self) -> None:
        plan = self.spec.city.places
        for key, occ in self.spec.occupations.items():
            loc = ("occupations", key)
            if occ.routine not in self.spec.routines:
                known = ", ".join(self.spec.routines)
                self.err((*loc, "routine"), f"unknown routine {occ.routine!r}; known: {known}")
            elif occ.workplace is None and any(
                s.place == WORK for s in self.spec.routines[occ.routine]
            ):
                self.err((*loc, "routine"), f"routine {occ.routine!r} goes to work: no workplace")
            if occ.workplace is not None and occ.workplace not in plan:
                known = ", ".join(plan)
                self.err(
                    (*loc, "workplace"),
                    f"unknown place kind {occ.workplace!r}; city.places: {known}",
                )
        for key, occ in self.spec.occupations.items():
            steps = self.spec.routines.get(occ.routine, [])
            kind = plan.get(occ.workplace) if occ.workplace else None
            if kind is None or occ.keys:
                continue
            for j, step in enumerate(steps):
                if step.place == WORK and not self._open(kind, step.at):
                    self.err(
                        ("routines", occ.routine, j, "at"),
                        f"{occ.workplace} is closed at {step.at} and {key} holds no keys",
                    )

    def _open(self, kind: PlaceKind, at: str) -> bool:
        minutes = parse_hhmm(at)
        return kind.opening_hours().is_open(_open_day(kind) + timedelta(minutes=minutes))

    def check_routines(self) -> None:
        plan = self.spec.city.places
        for name, steps in self.spec.routines.items():
            if not steps:
                self.err(("routines", name), "a routine has at least one step")
                continue
            if not in_order(steps):
                self.err(
                    ("routines", name),
                    "steps must be in time order (the day may pass midnight once)",
                )
            for j, step in enumerate(steps):
                loc = ("routines", name, j, "place")
                if step.place in (HOME, WORK):
                    continue
                kind = plan.get(step.place)
                if kind is None:
                    known = ", ".join([HOME, WORK, *plan])
                    self.err(loc, f"unknown place {step.place!r}; a routine goes to: {known}")
                elif not (kind.per_district or kind.per_residents or kind.per_city):
                    self.err(
                        loc,
                        f"city.places.{step.place} is not built anywhere: give it per_district, "
                        "per_residents or per_city",
                    )
                elif not self._open(kind, step.at):
                    self.err(
                        ("routines", name, j, "at"),
                        f"{step.place} is closed at {step.at} ({kind.hours})",
                    )

    def check_names(self) -> None:
        base = self.doc.path.parent
        lists = self.spec.names
        refs: list[tuple[Loc, str]] = [
            (("names", "given", p, i), ref)
            for p, refs_ in lists.given.items()
            for i, ref in enumerate(refs_)
        ]
        for field in ("family", "districts", "streets"):
            refs += [(("names", field, i), ref) for i, ref in enumerate(getattr(lists, field))]
        for loc, ref in refs:
            if ref in self.names:
                continue
            try:
                self.names[ref] = read_list(ref, base)
            except ConfigError as exc:
                self.err(loc, str(exc))
        for pronouns, refs_ in lists.given.items():
            if not refs_:
                self.err(("names", "given", pronouns), "at least one list of given names")
            if len(pronouns) > PRONOUNS_MAX:
                self.err(
                    ("names", "given", pronouns), f"pronouns of {PRONOUNS_MAX} characters at most"
                )
        for loc, ref in refs:
            bad = [
                n
                for n in self.names.get(ref, [])
                if not NAME_WORDS.fullmatch(n) or len(n) > NAME_MAX
            ]
            if bad:
                self.err(
                    loc,
                    f"name list {ref!r}: {bad[0]!r} is not a name (words of at most "
                    f"{NAME_MAX} characters in all, without :,;[]{{}})",
                )
