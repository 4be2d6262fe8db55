"""The world file's schema: what `worlds/<name>.yaml` may contain.

Pydantic checks each field's type and range here, `extra="forbid"` refusing typos;
whatever needs the whole file (a connection to an unknown place, a resident's persona
file, an initial value outside its bounds) is checked by `world.loader`, which reports
it at its line just the same.

    name: Larkspur Ford
    description: ...
    start: 2025-04-14 06:00          # simulation start, local time, no timezone
    step_minutes: 10
    max_stack: 1000                  # most of one item one holder may have
    places:
      bakery:                        # a place id: lower-case letters, digits, _
        name: Marlowe's Bakery       # shown name (default: from the id)
        kind: shop                   # free word: home, shop, street, public...
        description: ...
        connections: [market_square] # symmetric: listing one side is enough
        hours: "06:00-17:00"         # or "08:00-12:00,13:00-17:00", "17:00-01:00", "always"
        closed_days: [sunday]
        capacity: 8                  # most people inside at once (default: no limit)
        keyholders: [Ines Marlowe]   # may enter while closed; residents of a home are added
        pos: [120, 80]               # optional: where the viewer's map draws it
    items:
      - {name: bread, holder: bakery, quantity: 24, properties: {price: 3}}
      - {id: letter_for_elias, name: letter, holder: post_office}  # id: default from name
    attributes:
      money: {min: 0, max: 100000, initial: 40, conserved: true}
      energy: {min: 0, max: 100, initial: 80}
    rules: [natural-language rules the Game Master is given]
    code_rules:                      # typed rules the engine applies (world/code_rules.py)
      - {kind: regrow, item: fish, place: lake, factor: 2, cap: 100, collapse_below: 5}
    residents:
      - {persona: ../personas/ines_marlowe.yaml, start: marlowe_house, attributes: {money: 120}}
    personas: cards.jsonl            # optional: many more residents, one card a line
    events:
      - {at: 2025-04-19 08:00, repeat: weekly, place: market_square, text: Market day opens.}
    sampling:                        # optional, over the defaults of llm.sampling
      act: {temperature: 0.9, top_p: 0.95}
    attention: events                # optional: who is asked each step (agents.attention)
    idle_steps: 6                    # optional: under events, most steps without a call
    apps: {device: phone, messages: {}, feed: {ranking: engagement}}  # optional: world/apps.py
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from concordia_like.llm.sampling import SamplingOverrides
from concordia_like.strict import Strict, naive
from concordia_like.world.apps import AppsSpec
from concordia_like.world.code_rules import CodeRule
from concordia_like.world.effects import Effect, PropertyValue
from concordia_like.world.hours import OpeningHours

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
Number = int | float


#: a world's clock must be able to run this long from its start (a century of steps)
RUN_SPAN = timedelta(days=36525)
LATEST_START = datetime.max - RUN_SPAN  # noqa: DTZ901 (simulation times are local)


def _opening_hours(text: str | None) -> str | None:
    OpeningHours.parse(text)
    return text


#: an opening-hours field of a spec (`world/hours.py`'s format; None: always open),
#: refused as read when it does not parse
HoursText = Annotated[str | None, AfterValidator(_opening_hours)]


class Opening(Strict):
    """When a place opens: a world's place, and a kind of place a population spec's
    city builds."""

    hours: HoursText = None
    closed_days: list[Weekday] = Field(default_factory=list)

    def opening_hours(self) -> OpeningHours:
        return OpeningHours.parse(self.hours, self.closed_days)


class PlaceSpec(Opening):
    name: str | None = Field(None, max_length=80)
    kind: str = Field("place", max_length=40)
    description: str = Field("", max_length=1000)
    connections: list[str] = Field(default_factory=list)
    capacity: int | None = Field(None, ge=1)
    keyholders: list[str] = Field(default_factory=list)
    #: where the viewer's map draws the place (any units; laid out when absent)
    pos: tuple[float, float] | None = None


class ItemSpec(Strict):
    id: str | None = Field(None, pattern=r"^[a-z][a-z0-9_\-]*$", max_length=80)
    name: str = Field(min_length=1, max_length=80)
    holder: str = Field(min_length=1, description="an agent's name or a place id")
    quantity: int = Field(1, ge=1)
    properties: dict[str, PropertyValue] = Field(default_factory=dict, max_length=16)


class AttributeSpec(Strict):
    min: Number
    max: Number
    initial: Number
    integer: bool = True
    conserved: bool = False
    description: str = Field("", max_length=200)


class ResidentSpec(Strict):
    persona: str = Field(min_length=1, description="path of the card, relative to this file")
    start: str | None = Field(None, description="starting place id (default: home)")
    home: str | None = Field(None, description="overrides the card's home")
    attributes: dict[str, Number] = Field(default_factory=dict)


class ScheduledEventSpec(Strict):
    id: str | None = Field(None, max_length=80)
    at: datetime
    text: str = Field(min_length=1, max_length=500)
    place: str | None = Field(None, description="where it is perceived; none: everyone")
    repeat: Literal["none", "daily", "weekly"] = "none"
    until: datetime | None = None
    effects: list[Effect] = Field(default_factory=list, max_length=20)

    @field_validator("at", "until")
    @classmethod
    def _local(cls, v: datetime | None) -> datetime | None:
        return naive(v)


class WorldSpec(Strict):
    name: str = Field(min_length=1, max_length=80)
    description: str = Field("", max_length=2000)
    start: datetime
    step_minutes: int = Field(10, ge=1, le=1440)
    max_stack: int = Field(1000, ge=1, le=1_000_000)
    places: dict[str, PlaceSpec] = Field(min_length=1)
    items: list[ItemSpec] = Field(default_factory=list)
    attributes: dict[str, AttributeSpec] = Field(default_factory=dict)
    rules: list[str] = Field(default_factory=list, max_length=30)
    code_rules: list[CodeRule] = Field(default_factory=list, max_length=20)
    residents: list[ResidentSpec] = Field(default_factory=list)
    #: a JSON Lines file of persona cards (relative to this file), each line one more
    #: resident, who starts at home with the attributes' initial values (`card_lines`)
    personas: str | None = Field(None, min_length=1)
    events: list[ScheduledEventSpec] = Field(default_factory=list)
    #: the model's sampling per purpose, over the defaults (see `llm.sampling`)
    sampling: SamplingOverrides = Field(default_factory=dict)
    #: who is asked what they do each step (see `agents.attention`): `events`, only
    #: where something calls for a choice, or `always`; unset: the default, `events`
    attention: Literal["events", "always"] | None = None
    #: under `events`, the most steps a resident goes without being asked (unset: the
    #: default)
    idle_steps: int | None = Field(None, ge=1, le=10_000)
    #: phones and their apps: messages, a feed, a bank (see `world.apps`); none: no apps
    apps: AppsSpec | None = None

    @field_validator("start")
    @classmethod
    def _local(cls, v: datetime) -> datetime:
        v = naive(v)
        if v > LATEST_START:
            raise ValueError(
                f"{v} leaves the clock no room to run: a start must be {LATEST_START:%Y-%m-%d} "
                "or earlier"
            )
        return v
