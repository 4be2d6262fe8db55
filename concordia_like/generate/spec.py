"""The population and city spec: what `concordia-like population` and `city` read.

One YAML file says who lives in a place (age bands, occupations, households, traits,
values, speaking styles, pronouns and names, as weights) and how the place is laid out
(districts, homes, workplaces and amenities with their hours). Pydantic checks each
field here; `generate.checks` checks what needs the whole file (a routine naming a
place kind the plan lacks, a weight for an unknown occupation), every problem at its
line. `worlds/city/city.yaml` is the example; docs/scale.md describes it.

    name: Wendmouth
    age_bands: {child: [5, 17], adult: [18, 64], senior: [65, 90]}
    distributions:                 # a field's marginal: value -> weight (any scale)
      pronouns: {she/her: 49, he/him: 48, they/them: 3}
      household_size: {1: 28, 2: 35, 3: 16, 4: 14, 5: 7}
      speaking_style: {plainly: 2, "with long stories": 1}
    joint:                         # optional: two fields drawn together, cells as weights
      - fields: [age_band, occupation]
        table: {child: {pupil: 16}, adult: {nurse: 3, clerk: 20}, senior: {retired: 18}}
    occupations:
      nurse: {workplace: clinic, routine: shift}
    routines:                      # place: home, work, or a place kind of the plan
      shift: [{at: "07:00", activity: works a shift at {place}, place: work}, ...]
    traits: {pool: [curious, blunt, ...], each: [2, 3]}
    values: {pool: [family, ...], each: [1, 2]}
    city:
      name: Wendmouth
      start: 2025-04-14 06:00
      district_size: 500
      places:
        clinic: {kind: public, per_city: 1, staff: 30, hours: "08:00-18:00", capacity: 40}
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from concordia_like.strict import Strict
from concordia_like.world.persona import parse_hhmm
from concordia_like.world.spec import AttributeSpec, HoursText, Opening

#: the fields a person is drawn on, each from a marginal or from one joint table
PERSON_FIELDS = ("pronouns", "age_band", "occupation", "speaking_style")
#: drawn per household, from its marginal
HOUSEHOLD_FIELD: Literal["household_size"] = "household_size"
FieldName = Literal["pronouns", "age_band", "occupation", "speaking_style", "household_size"]
JointField = Literal["pronouns", "age_band", "occupation", "speaking_style"]
#: a routine's place that is the resident's own, not a place kind of the plan
HOME, WORK = "home", "work"
#: a household is headed by someone at least this old
ADULT_AGE = 18

Weight = Annotated[float, Field(ge=0)]


def _age_range(v: tuple[int, int]) -> tuple[int, int]:
    if not 0 <= v[0] <= v[1] <= 130:
        raise ValueError("ages are [youngest, oldest] within 0..130")
    return v


AgeRange = Annotated[tuple[int, int], AfterValidator(_age_range)]


class Step(Strict):
    """One entry of a routine template: `place` is `home`, `work` or a place kind of the
    plan (the resident's nearest); `{place}` in the activity becomes that place's name."""

    at: str
    activity: str = Field(min_length=1, max_length=200)
    place: str = Field(min_length=1, max_length=40)

    @field_validator("at")
    @classmethod
    def _time(cls, v: str) -> str:
        minutes = parse_hhmm(v)
        return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Occupation(Strict):
    """What a person does: the words on the card, where (a place kind of the plan, or
    none), whether they hold its keys, their day (a routine template) and goals."""

    title: str | None = Field(None, max_length=80, description="default: the key's words")
    workplace: str | None = None
    keys: bool = True
    routine: str
    goals: list[str] = Field(default_factory=list, max_length=20)


class Pool(Strict):
    """Words a person gets `each` (at least, at most) of, drawn evenly without repeats."""

    pool: list[str] = Field(min_length=1, max_length=500)
    each: tuple[int, int] = (1, 3)

    @field_validator("each")
    @classmethod
    def _each(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= v[0] <= v[1] <= 12:
            raise ValueError("each is [least, most] with 0 <= least <= most <= 12")
        return v


class Joint(Strict):
    """Two fields drawn together: `table[a][b]` is the weight of (a, b)."""

    fields: tuple[JointField, JointField]
    table: dict[str | int, dict[str | int, Weight]] = Field(min_length=1)


class Names(Strict):
    """Name lists: a shipped list's name (`concordia_like/generate/names/<name>.txt`) or
    a file relative to the spec; given names per pronouns, family names shared by a
    household."""

    given: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "she/her": ["feminine"],
            "he/him": ["masculine"],
            "they/them": ["neutral", "feminine", "masculine"],
        }
    )
    family: list[str] = Field(default_factory=lambda: ["family"], min_length=1)
    districts: list[str] = Field(default_factory=lambda: ["districts"], min_length=1)
    streets: list[str] = Field(default_factory=lambda: ["streets"], min_length=1)


class PlaceKind(Opening):
    """A kind of place the city has: how many (per district, per residents of a
    district, per city; more where its workers need them), named how, open when."""

    kind: str = Field("public", max_length=40, description="the world's place kind")
    names: list[str] = Field(min_length=1, max_length=200, description="{district}, {n}")
    description: str = Field("", max_length=1000)
    per_district: int = Field(0, ge=0, le=50)
    per_residents: int | None = Field(None, ge=1)
    per_city: int = Field(0, ge=0, le=10_000)
    staff: int = Field(20, ge=1, le=10_000, description="most workers one site employs")
    capacity: int | None = Field(None, ge=1, description="visitors, besides its staff")


class CityPlan(Strict):
    """How the city is laid out; the world file's own fields pass through."""

    name: str = Field(min_length=1, max_length=80)
    description: str = Field("", max_length=2000)
    start: datetime
    step_minutes: int = Field(10, ge=1, le=1440)
    district_size: int = Field(500, ge=10, le=100_000, description="residents a district")
    homes_per_street: int = Field(16, ge=2, le=60)
    streets_per_hub: int = Field(6, ge=1, le=20, description="the rest branch off streets")
    home_hours: HoursText = "07:00-22:00"
    home_guests: int = Field(2, ge=0, le=50, description="a home's capacity over its household")
    places: dict[str, PlaceKind] = Field(min_length=1)
    rules: list[str] = Field(default_factory=list, max_length=30)
    attributes: dict[str, AttributeSpec] = Field(default_factory=dict)


class PopulationSpec(Strict):
    """The whole spec: who lives in the city, and the city's plan."""

    name: str = Field(min_length=1, max_length=80)
    age_bands: dict[str, AgeRange] = Field(min_length=1)
    distributions: dict[FieldName, dict[str | int, Weight]] = Field(default_factory=dict)
    joint: list[Joint] = Field(default_factory=list, max_length=4)
    occupations: dict[str, Occupation] = Field(min_length=1)
    routines: dict[str, list[Step]] = Field(min_length=1)
    traits: Pool
    values: Pool
    names: Names = Field(default_factory=Names)
    #: each resident's day shifted by up to this many minutes (in fives), either way
    routine_jitter: int = Field(0, ge=0, le=120)
    city: CityPlan
