"""Laying out a city for a population: districts, streets, homes, workplaces, amenities.

Households fill districts in turn (`district_size` residents each). A district is a hub
(its square) with streets off it, the first `streets_per_hub` on the square and the
rest branching off earlier streets, each street holding up to `homes_per_street`
homes; its workplaces and amenities open onto the square, and squares join their
neighbours on a grid. So every place has a bounded number of neighbours and a walk
across a district is a few steps. A home holds its household and `home_guests` more.

Each place kind of the plan is built `per_district` times in every district, once per
`per_residents` of a district's residents, and `per_city` times spread over the
districts; where its workers need more (`staff` each at most), more are added where
those workers live. A worker is given a site in their own district while one has room,
else the nearest. A routine's `home` and `work` are the resident's own; any other
place kind is the one nearest where the routine has the resident before it (lunch at a
café by the office, a park by the school; their district's, else the nearest
district's), chosen by household so that neighbours share a café.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from concordia_like.generate.checks import in_order
from concordia_like.generate.population import Population
from concordia_like.generate.spec import HOME, WORK, PlaceKind, Step
from concordia_like.text import clip
from concordia_like.world.persona import PersonaCard, RoutineItem, parse_hhmm
from concordia_like.world.state import slug

#: what a card holds at most (`PersonaCard`, `RoutineItem`)
OCCUPATION_MAX, ACTIVITY_MAX = 120, 200

#: the map's units between two districts' squares
CELL = 1000.0


@dataclass
class Site:
    """A place that is not a home: a workplace or amenity of kind `key`."""

    id: str
    key: str
    district: int
    name: str
    staff: list[int] = field(default_factory=list)


@dataclass
class District:
    index: int
    name: str
    slug: str
    row: int
    col: int
    households: list[int]
    hub: str = ""
    streets: list[str] = field(default_factory=list)


@dataclass
class City:
    """A laid out city: place id -> the world file's place fields, in file order; the
    home of each household; the cards, in the population's order."""

    population: Population
    districts: list[District]
    places: dict[str, dict[str, object]]
    homes: list[str]
    workplace: dict[int, str]
    cards: list[PersonaCard]


def _numbered(names: list[str], count: int) -> list[str]:
    """`count` names from `names`, cycling with " 2", " 3"... once they run out."""
    return [
        names[i % len(names)] + ("" if i < len(names) else f" {i // len(names) + 1}")
        for i in range(count)
    ]


def _id(text: str) -> str:
    """A place id from a name: a slug that starts with a letter."""
    s = slug(text)
    return s if s[0].isalpha() else f"p_{s}"


def _distance(a: District, b: District) -> int:
    return abs(a.row - b.row) + abs(a.col - b.col)


class CityBuilder:
    """Builds a `City` from a population, its spec's plan and the name lists."""

    def __init__(self, population: Population, names: dict[str, list[str]]) -> None:
        self.pop = population
        self.spec = population.spec
        self.plan = population.spec.city
        self.names = names
        self.rng = random.Random(f"city:{population.seed}")
        self.places: dict[str, dict[str, object]] = {}
        self.pos: dict[str, tuple[float, float]] = {}
        self.sites: dict[str, list[Site]] = {}
        self.homes: list[str] = []
        self.home_name: dict[str, str] = {}

    def build(self) -> City:
        districts = self.districts()
        self.lay_streets(districts)
        self.lay_sites(districts)
        workplace = self.assign_work(districts)
        self.connect(districts)
        cards = self.cards(districts, workplace)
        ordered = self.ordered(districts)
        return City(self.pop, districts, ordered, self.homes, workplace, cards)

    # -- layout ---------------------------------------------------------------------------

    def districts(self) -> list[District]:
        households = self.pop.households
        count = max(
            1, min(len(households), math.ceil(len(self.pop.people) / self.plan.district_size))
        )
        cols = math.ceil(math.sqrt(count))
        names = _numbered([n for r in self.spec.names.districts for n in self.names[r]], count)
        out = [District(d, names[d], _id(names[d]), d // cols, d % cols, []) for d in range(count)]
        for h in range(len(households)):
            out[h * count // len(households)].households.append(h)
        return out

    def add(self, pid: str, fields: dict[str, object], at: tuple[float, float]) -> str:
        while pid in self.places:
            pid += "_2"
        self.places[pid] = fields
        self.pos[pid] = at
        return pid

    def lay_streets(self, districts: list[District]) -> None:
        per = self.plan.homes_per_street
        street_names = _numbered(
            [n for r in self.spec.names.streets for n in self.names[r]],
            max(math.ceil(len(d.households) / per) for d in districts),
        )
        hours = self.plan.home_hours
        for d in districts:
            cx, cy = (d.col + 0.5) * CELL, (d.row + 0.5) * CELL
            d.hub = self.add(
                f"{d.slug}_square",
                {"name": f"{d.name} Square", "kind": "public", "connections": []},
                (cx, cy),
            )
            count = math.ceil(len(d.households) / per)
            fan = self.plan.streets_per_hub
            for k in range(count):
                angle = 2 * math.pi * (k % fan) / fan + 0.3 * (k // fan)
                radius = 0.18 * CELL + 0.1 * CELL * (k // fan)
                at = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
                name = street_names[k]
                sid = self.add(
                    f"{d.slug}_{slug(name)}",
                    {"name": name, "kind": "street", "connections": []},
                    at,
                )
                d.streets.append(sid)
                for j, h in enumerate(d.households[k * per : (k + 1) * per]):
                    size = len(self.pop.households[h])
                    fields: dict[str, object] = {"name": f"{j + 1} {name}", "kind": "home"}
                    if hours is not None:
                        fields["hours"] = hours
                    fields["capacity"] = size + self.plan.home_guests
                    step = 0.012 * CELL * (j // 2 + 1)
                    side = 1 if j % 2 else -1
                    home_at = (
                        at[0] + step * math.cos(angle) - side * 0.01 * CELL * math.sin(angle),
                        at[1] + step * math.sin(angle) + side * 0.01 * CELL * math.cos(angle),
                    )
                    hid = self.add(f"{sid}_{j + 1}", fields, home_at)
                    self.homes.append(hid)
                    self.home_name[hid] = str(fields["name"])
                    self.places[sid]["connections"].append(hid)  # type: ignore[attr-defined]

    def site_counts(self, districts: list[District]) -> dict[str, list[int]]:
        """Sites of each place kind per district, before its workers are counted."""
        out = {}
        for key, kind in self.plan.places.items():
            counts = []
            for d in districts:
                residents = sum(len(self.pop.households[h]) for h in d.households)
                extra = math.ceil(residents / kind.per_residents) if kind.per_residents else 0
                counts.append(kind.per_district + extra)
            for j in range(kind.per_city):
                counts[j * len(districts) // max(kind.per_city, 1) % len(districts)] += 1
            out[key] = counts
        return out

    def workers_by_district(self, districts: list[District]) -> dict[str, list[list[int]]]:
        """Each place kind's workers (people's indices) by the district they live in."""
        district_of = {h: d.index for d in districts for h in d.households}
        out: dict[str, list[list[int]]] = {k: [[] for _ in districts] for k in self.plan.places}
        for p in self.pop.people:
            where = self.spec.occupations[p.occupation].workplace
            if where is not None:
                out[where][district_of[p.household]].append(p.index)
        return out

    def lay_sites(self, districts: list[District]) -> None:
        counts = self.site_counts(districts)
        self.workers = self.workers_by_district(districts)
        for key, kind in self.plan.places.items():
            per_district = counts[key]
            workers = [len(w) for w in self.workers[key]]
            while sum(per_district) * kind.staff < sum(workers):
                # one more where the most workers are per site
                most = max(range(len(districts)), key=lambda i: workers[i] / (per_district[i] + 1))
                per_district[most] += 1
            self.sites[key] = []
            made = 0
            for d in districts:
                for k in range(per_district[d.index]):
                    self.sites[key].append(self.site(key, kind, d, k, per_district[d.index], made))
                    made += 1

    def site(self, key: str, kind: PlaceKind, d: District, k: int, count: int, made: int) -> Site:
        pattern = kind.names[made % len(kind.names)]
        name = pattern.replace("{district}", d.name).replace("{n}", str(k + 1))
        fields: dict[str, object] = {"name": name, "kind": kind.kind}
        if kind.description:
            fields["description"] = kind.description.replace("{district}", d.name)
        if kind.hours is not None:
            fields["hours"] = kind.hours
        if kind.closed_days:
            fields["closed_days"] = list(kind.closed_days)
        cx, cy = (d.col + 0.5) * CELL, (d.row + 0.5) * CELL
        angle = 2 * math.pi * (made * 0.618 % 1.0)
        radius = 0.08 * CELL
        at = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
        pid = f"{d.slug}_{slug(key)}" + (f"_{k + 1}" if count > 1 else "")
        return Site(self.add(pid, fields, at), key, d.index, name)

    def assign_work(self, districts: list[District]) -> dict[int, str]:
        """Each worker's site: one in their district with room (the emptiest), else the
        nearest with room."""
        out: dict[int, str] = {}
        for key, kind in self.plan.places.items():
            sites = self.sites[key]
            leftover = []
            for d in districts:
                own = [s for s in sites if s.district == d.index]
                for person in self.workers[key][d.index]:
                    free = [s for s in own if len(s.staff) < kind.staff]
                    if free:
                        site = min(free, key=lambda s: len(s.staff))
                        site.staff.append(person)
                        out[person] = site.id
                    else:
                        leftover.append((d, person))
            for d, person in leftover:
                free = [s for s in sites if len(s.staff) < kind.staff]
                site = min(free, key=lambda s: (_distance(d, districts[s.district]), len(s.staff)))
                site.staff.append(person)
                out[person] = site.id
        for sites in self.sites.values():
            for s in sites:
                kind = self.plan.places[s.key]
                fields = self.places[s.id]
                if kind.capacity is not None:
                    fields["capacity"] = kind.capacity + len(s.staff)
                keys = [
                    self.pop.people[i].name
                    for i in s.staff
                    if self.spec.occupations[self.pop.people[i].occupation].keys
                ]
                if keys:
                    fields["keyholders"] = keys
        return out

    def connect(self, districts: list[District]) -> None:
        fan = self.plan.streets_per_hub
        cols = math.ceil(math.sqrt(len(districts)))
        for d in districts:
            hub = self.places[d.hub]["connections"]
            assert isinstance(hub, list)
            for k, sid in enumerate(d.streets):
                parent = d.hub if k < fan else d.streets[k - fan]
                self.places[parent]["connections"].append(sid)  # type: ignore[attr-defined]
            hub.extend(
                s.id for sites in self.sites.values() for s in sites if s.district == d.index
            )
            for other in (d.index + 1, d.index + cols):
                if other < len(districts) and (other != d.index + 1 or d.col + 1 < cols):
                    hub.append(districts[other].hub)

    def ordered(self, districts: list[District]) -> dict[str, dict[str, object]]:
        """Places as the world file has them: in the order laid out, each with its map
        position last and without empty connections."""
        out = {}
        for pid, fields in self.places.items():
            f = {k: v for k, v in fields.items() if v != []}
            x, y = self.pos[pid]
            f["pos"] = [round(x, 1), round(y, 1)]
            out[pid] = f
        return out

    # -- residents -----------------------------------------------------------------------

    def nearest(
        self, key: str, district: District, household: int, districts: list[District]
    ) -> Site:
        sites = self.sites[key]
        best = min(_distance(district, districts[s.district]) for s in sites)
        near = [s for s in sites if _distance(district, districts[s.district]) == best]
        return near[household % len(near)]

    def cards(self, districts: list[District], workplace: dict[int, str]) -> list[PersonaCard]:
        district_of = {h: d for d in districts for h in d.households}
        site_district = {s.id: districts[s.district] for v in self.sites.values() for s in v}
        out = []
        jitter = self.spec.routine_jitter // 5
        for p in self.pop.people:
            occ = self.spec.occupations[p.occupation]
            home = self.homes[p.household]
            d = district_of[p.household]
            work = workplace.get(p.index)
            title = occ.title or p.occupation.replace("_", " ")
            if work is not None:
                title = clip(f"{title} at {self.places[work]['name']}", OCCUPATION_MAX)
            offset = 5 * self.rng.randint(-jitter, jitter) if jitter else 0
            works = None if work is None else (work, site_district[work])
            routine = self.routine(
                self.spec.routines[occ.routine], home, works, d, p.household, districts, offset
            )
            housemates = {
                self.pop.people[i].name: f"lives in the same home, {self.home_name[home]}"
                for i in self.pop.households[p.household]
                if i != p.index
            }
            out.append(
                PersonaCard(
                    name=p.name,
                    age=p.age,
                    pronouns=p.pronouns,
                    occupation=title,
                    traits=p.traits,
                    values=p.values,
                    speaking_style=p.speaking_style,
                    relationships=housemates,
                    goals=p.goals,
                    routine=routine,
                    home=home,
                )
            )
        return out

    def routine(
        self,
        steps: list[Step],
        home: str,
        work: tuple[str, District] | None,
        d: District,
        household: int,
        districts: list[District],
        offset: int,
    ) -> list[RoutineItem]:
        """`steps` for one resident: `work` is its site and the site's district; any
        other place is the nearest to the district the routine has it in before."""
        if offset:
            shifted = [s.model_copy(update={"at": _shift(s.at, offset)}) for s in steps]
            steps = shifted if in_order(shifted) else steps
        out = []
        here = d
        for s in steps:
            if s.place == HOME:
                pid, here = home, d
            elif s.place == WORK and work is not None:
                pid, here = work
            else:
                site = self.nearest(s.place, here, household, districts)
                pid, here = site.id, districts[site.district]
            name = str(self.places[pid]["name"])
            out.append(
                RoutineItem(
                    at=s.at,
                    activity=clip(s.activity.replace("{place}", name), ACTIVITY_MAX),
                    place=pid,
                )
            )
        return out


def _shift(at: str, minutes: int) -> str:
    m = (parse_hhmm(at) + minutes) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def build_city(population: Population, names: dict[str, list[str]]) -> City:
    """The city of `population`, laid out by its spec's plan."""
    return CityBuilder(population, names).build()
