"""Drawing a population from a spec: people, their households and their names.

Every draw comes from one `random.Random(seed)` in a fixed order, so the same spec,
size and seed give the same people. A person's fields are drawn from their marginals,
or two at a time from a joint table; households are sized from theirs, each headed by
an adult (`ADULT_AGE`), the rest of the people dealt to them at random; a household
shares a family name, and a full name is never used twice (a clash draws another
given name, then adds a middle initial).

The tables are drawn stratified (`Weighted.stratified`): each value comes up within
about one of its share of the population, where independent draws would stray by the
square root of it (at 1,000 residents, two points of a 12% occupation). So a city of
1,000 is the spec's city in small, as one of 10,000 is, and the two compare like for
like; who gets which value is still random.
"""

from __future__ import annotations

import bisect
import itertools
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from concordia_like.errors import ConfigError
from concordia_like.generate.spec import ADULT_AGE, HOUSEHOLD_FIELD, PopulationSpec

T = TypeVar("T")
NAME_TRIES = 12


@dataclass
class Person:
    """One resident before the city places them: what the spec drew."""

    index: int
    pronouns: str
    age_band: str
    age: int
    occupation: str
    speaking_style: str
    traits: list[str]
    values: list[str]
    goals: list[str]
    household: int = -1
    name: str = ""


@dataclass
class Population:
    """People in household order, households as lists of people's indices (head first)."""

    spec: PopulationSpec
    seed: int
    people: list[Person]
    households: list[list[int]] = field(default_factory=list)


class Weighted(Generic[T]):
    """Values with weights, drawn by one uniform number each (the same every Python)."""

    def __init__(self, weights: dict[T, float] | Sequence[tuple[T, float]]) -> None:
        pairs = list(weights.items()) if isinstance(weights, dict) else list(weights)
        pairs = [(v, w) for v, w in pairs if w > 0]
        self.values = [v for v, _ in pairs]
        self.cumulative = list(itertools.accumulate(w for _, w in pairs))
        self.total = self.cumulative[-1]

    def draw(self, rng: random.Random) -> T:
        return self._at(rng.random())

    def stratified(self, rng: random.Random, k: int) -> list[T]:
        """`k` draws, one from each of `k` equal slices of the weights, in random order."""
        out = [self._at((j + rng.random()) / k) for j in range(k)]
        rng.shuffle(out)
        return out

    def _at(self, u: float) -> T:
        i = bisect.bisect_right(self.cumulative, u * self.total)
        return self.values[min(i, len(self.values) - 1)]

    def probabilities(self) -> dict[T, float]:
        out: dict[T, float] = {}
        previous = 0.0
        for v, c in zip(self.values, self.cumulative, strict=True):
            out[v] = out.get(v, 0.0) + (c - previous) / self.total
            previous = c
        return out


def person_draws(spec: PopulationSpec) -> list[tuple[tuple[str, ...], Weighted[tuple[str, ...]]]]:
    """The draws of one person in order: (the fields it sets, its weights over values
    of those fields as tuples)."""
    draws: list[tuple[tuple[str, ...], Weighted[tuple[str, ...]]]] = []
    for joint in spec.joint:
        cells = [((str(a), str(b)), w) for a, row in joint.table.items() for b, w in row.items()]
        draws.append((tuple(joint.fields), Weighted(cells)))
    for name, weights in spec.distributions.items():
        if name != HOUSEHOLD_FIELD:
            draws.append(((name,), Weighted([((str(v),), w) for v, w in weights.items()])))
    return draws


def household_sizes(spec: PopulationSpec) -> Weighted[int]:
    return Weighted([(int(v), w) for v, w in spec.distributions[HOUSEHOLD_FIELD].items()])


def _pick(rng: random.Random, pool: list[str], each: tuple[int, int]) -> list[str]:
    k = min(rng.randint(each[0], each[1]), len(pool))
    return rng.sample(pool, k)


def draw_population(
    spec: PopulationSpec, names: dict[str, list[str]], n: int, seed: int
) -> Population:
    """`n` people of `spec` in households, named from `names` (list -> names)."""
    if n < 1:
        raise ConfigError(f"--n must be at least 1, not {n}")
    rng = random.Random(seed)
    columns = [(fields, weights.stratified(rng, n)) for fields, weights in person_draws(spec)]
    people = []
    for i in range(n):
        drawn: dict[str, str] = {}
        for fields, column in columns:
            drawn.update(zip(fields, column[i], strict=True))
        low, high = spec.age_bands[drawn["age_band"]]
        occupation = spec.occupations[drawn["occupation"]]
        goals = [rng.choice(occupation.goals)] if occupation.goals else []
        people.append(
            Person(
                index=i,
                pronouns=drawn["pronouns"],
                age_band=drawn["age_band"],
                age=rng.randint(low, high),
                occupation=drawn["occupation"],
                speaking_style=drawn.get("speaking_style", ""),
                traits=_pick(rng, spec.traits.pool, spec.traits.each),
                values=_pick(rng, spec.values.pool, spec.values.each),
                goals=goals,
            )
        )
    households = _households(rng, people, household_sizes(spec))
    order = [i for members in households for i in members]
    renumber = {old: new for new, old in enumerate(order)}
    people = [people[i] for i in order]
    households = [[renumber[i] for i in members] for members in households]
    for h, members in enumerate(households):
        for i in members:
            people[i].index = i
            people[i].household = h
    _name(rng, spec, names, people, households)
    return Population(spec, seed, people, households)


def _households(rng: random.Random, people: list[Person], sizes: Weighted[int]) -> list[list[int]]:
    """Household sizes drawn stratified for as many households as the mean size gives,
    then more while people are left, dropping the last while everyone has a place
    without it and cutting the last to fit; each headed by an adult; with fewer adults
    than households, the two smallest merge."""
    mean = sum(v * p for v, p in sizes.probabilities().items())
    wanted = sizes.stratified(rng, max(1, round(len(people) / mean)))
    while sum(wanted) < len(people):
        wanted.append(sizes.draw(rng))
    while sum(wanted) - wanted[-1] >= len(people):
        wanted.pop()
    wanted[-1] -= sum(wanted) - len(people)
    adults = [p.index for p in people if p.age >= ADULT_AGE]
    if not adults:  # a small draw of children only: the eldest heads the one home
        adults = [max(people, key=lambda p: (p.age, -p.index)).index]
    while len(wanted) > len(adults):
        wanted.sort()
        wanted[:2] = [wanted[0] + wanted[1]]
    rng.shuffle(adults)
    heads = adults[: len(wanted)]
    taken = set(heads)
    rest = [p.index for p in people if p.index not in taken]
    rng.shuffle(rest)
    households = []
    at = 0
    for head, size in zip(heads, wanted, strict=True):
        households.append([head, *rest[at : at + size - 1]])
        at += size - 1
    return households


def _name(
    rng: random.Random,
    spec: PopulationSpec,
    names: dict[str, list[str]],
    people: list[Person],
    households: list[list[int]],
) -> None:
    family = [n for ref in spec.names.family for n in names[ref]]
    given = {p: [n for ref in refs for n in names[ref]] for p, refs in spec.names.given.items()}
    used: set[str] = set()
    for members in households:
        surname = rng.choice(family)
        for i in members:
            person = people[i]
            pool = given[person.pronouns]
            name = ""
            for _ in range(NAME_TRIES):
                name = f"{rng.choice(pool)} {surname}"
                if name not in used:
                    break
            first = name[: -len(surname) - 1]
            n = 0
            while name in used:
                letter = string.ascii_uppercase[n % 26]
                extra = "" if n < 26 else str(n // 26 + 1)
                name = f"{first} {letter}{extra}. {surname}"
                n += 1
            used.add(name)
            person.name = name
