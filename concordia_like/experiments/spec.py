"""The scenario file's schema: what `worlds/scenarios/<name>.yaml` may contain.

A scenario names a world and may override its start, step length and rules; it picks
the cast and gives some residents goals or secrets; it names interventions (something
that happens at a step or a time) and the conditions to compare (each a set of
interventions, one of them the control); it names measurements, a stop condition, the
seeds and the model. Pydantic checks each field here (`extra="forbid"` refuses typos);
`experiments.scenario` checks what needs the world (residents, places, items, times) and
reports it at its file and line just the same.

    name: Bread price rise
    world: ../town.yaml               # relative to this file
    start: "07:00"                    # optional: this time of the world's first day
    step_minutes: 10                  # optional
    rules: [an extra rule]            # optional: added to the world's rules
    code_rules: [{kind: silence}]     # optional: added to the world's code rules
    cast: [Ines Marlowe, Margo Vell]  # optional: these residents only
    residents:                        # optional: goals and secrets of some residents
      Margo Vell: {goals: [find out who...], memories: [Tobias owes Ines money]}
    seeds: 3                          # seeds 0, 1, 2 (or a list: [4, 7])
    stop: {steps: 12}                 # or until: 2025-04-14 09:00; and when: {measure, op, value}
    model: {backend: embedded}        # optional; the command's flags override it
    sampling: {act: {temperature: 0.9}}
    interventions:
      rumour: {kind: announce, at_step: 4, place: cafe, text: ...}
    control: control
    conditions: {control: [], rumour: [rumour]}
    measurements:
      - {name: at_bakery, kind: residents_at, place: bakery}   # every step by default

The apps' interventions and measurements (a post, a feed ranking, an outage; posts,
messages, likes, money moved, reach) are in `experiments.app_spec`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from concordia_like.experiments.app_spec import (
    APP_KINDS,
    FeedRanking,
    InjectPost,
    LikeCount,
    MessagesSent,
    MoneyMoved,
    Outage,
    PostCount,
    PostReach,
)
from concordia_like.experiments.spec_base import MeasureBase as _Measure
from concordia_like.experiments.spec_base import Name
from concordia_like.experiments.spec_base import Timed as _Timed
from concordia_like.llm.sampling import SamplingOverrides
from concordia_like.strict import Strict, naive
from concordia_like.world.code_rules import CodeRule
from concordia_like.world.effects import Effect, PropertyValue
from concordia_like.world.persona import SeedMemory, parse_hhmm

MAX_SEEDS = 1000


class ResidentOverride(Strict):
    """What a scenario gives one resident on top of its persona card."""

    goals: list[str] = Field(default_factory=list, max_length=10)
    #: a plain string is a memory of importance 5, as on a persona card
    memories: list[SeedMemory | Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=20
    )


# -- interventions ----------------------------------------------------------------------


class Announce(_Timed):
    """Something happens at a place (perceived by whoever is there) or everywhere."""

    kind: Literal["announce"] = "announce"
    text: str = Field(min_length=1, max_length=500)
    place: str | None = None


class Message(_Timed):
    """A message that only some residents perceive (a letter, a word in the ear)."""

    kind: Literal["message"] = "message"
    text: str = Field(min_length=1, max_length=500)
    to: list[str] = Field(min_length=1, max_length=100)


class PlantMemory(_Timed):
    """A memory given to some residents between steps, as the sandbox's whisper."""

    kind: Literal["memory"] = "memory"
    text: str = Field(min_length=1, max_length=500)
    to: list[str] = Field(min_length=1, max_length=100)


class Effects(_Timed):
    """Changes of the world in its effect language (attributes, items, positions),
    applied atomically and validated like a scheduled event's; `text` announced."""

    kind: Literal["effects"] = "effects"
    effects: list[Effect] = Field(min_length=1, max_length=20)
    text: str | None = Field(None, max_length=500)
    place: str | None = None


class SetProperty(_Timed):
    """An item's property changes (a price chalked anew); `text` announced."""

    kind: Literal["property"] = "property"
    item: str = Field(min_length=1, max_length=80)
    holder: str = Field(min_length=1, max_length=80)
    property: str = Field(min_length=1, max_length=40)
    value: PropertyValue
    text: str | None = Field(None, max_length=500)
    place: str | None = None


class AddCodeRule(_Timed):
    """A code rule of the world (`world.code_rules`) holds from this step on: a ban on
    speech, a stock that starts to regrow; `text` announced."""

    kind: Literal["code_rule"] = "code_rule"
    rule: CodeRule
    text: str | None = Field(None, max_length=500)
    place: str | None = None


Intervention = Annotated[
    Announce
    | Message
    | PlantMemory
    | Effects
    | SetProperty
    | AddCodeRule
    | InjectPost
    | FeedRanking
    | Outage,
    Field(discriminator="kind"),
]


# -- measurements ------------------------------------------------------------------------


class ResidentsAt(_Measure):
    """How many residents are at a place."""

    kind: Literal["residents_at"] = "residents_at"
    place: str


class AttributeStat(_Measure):
    """The total, mean, least or most of an attribute over residents (default: all)."""

    kind: Literal["attribute"] = "attribute"
    attribute: str
    stat: Literal["sum", "mean", "min", "max"] = "sum"
    of: list[str] = Field(default_factory=list)


class ItemCount(_Measure):
    """How many of an item (by name) there are, with one holder or in all."""

    kind: Literal["items"] = "items"
    item: str = Field(min_length=1, max_length=80)
    holder: str | None = None


class Holder(_Measure):
    """Who or where holds an item (its id or name); "" if it is gone."""

    kind: Literal["holder"] = "holder"
    item: str = Field(min_length=1, max_length=80)


EventKind = Literal["action", "speech", "failure", "announcement"]


class EventCount(_Measure):
    """How many events of some kinds (default: all four) the run has logged so far,
    optionally only those whose text contains a word (case-insensitive), of one actor
    or at one place. Planning and reflection are not counted."""

    kind: Literal["events"] = "events"
    kinds: list[EventKind] = Field(default_factory=list)
    contains: str | None = Field(None, min_length=1, max_length=80)
    actor: str | None = None
    place: str | None = None


class Harvest(_Measure):
    """A commons under a regrow rule (`world.code_rules`) and what residents take from
    it, round by round (a round ends with each regrowth). `stat`:

    - total: all they took (transfers of `item` out of `place` in successful actions);
    - gini: the Gini coefficient of what each of `of` took (0: equal shares);
    - overuse: the quantity taken beyond each one's sustainable share, summed over
      residents and rounds (the share: what the round's opening stock can lose and
      still regrow to itself, split evenly over `of`, as GovSim's threshold);
    - overuse_share: the share of (resident, round) pairs that took beyond it;
    - rounds_survived: the rounds ended before the stock first collapsed.

    `of`: the harvesters (default: the whole cast)."""

    kind: Literal["harvest"] = "harvest"
    item: str = Field(min_length=1, max_length=80)
    place: str
    stat: Literal["total", "gini", "overuse", "overuse_share", "rounds_survived"]
    of: list[str] = Field(default_factory=list)


class Trades(_Measure):
    """Trade between `sellers` and `buyers` (default: the rest of the cast), read
    from the effects of successful actions. Goods are the items the world lists with a
    `price`, which is their list price. `stat`:

    - count: actions that pass goods from a seller (or a stall a seller keeps) to a
      buyer; units: how many goods so passed;
    - paid: money paid by buyers to sellers; list_value: the goods' worth at list price;
    - price_ratio: paid / list_value (1: list price, below: haggled down; 0 when
      nothing changed hands)."""

    kind: Literal["trades"] = "trades"
    stat: Literal["count", "units", "paid", "list_value", "price_ratio"]
    sellers: list[str] = Field(min_length=1)
    buyers: list[str] = Field(default_factory=list)


class Conservation(_Measure):
    """An assertion, not a statistic: the world's ledger and conserved attributes hold
    (`world.invariants.check_invariants`) and every item a `conserve` rule keeps, with any
    named in `items`, is exactly as many as at the start. Its value is 1; a violation
    stops the run with an error naming what broke."""

    kind: Literal["conservation"] = "conservation"
    items: list[str] = Field(default_factory=list, max_length=100)


Op = Literal["lt", "le", "gt", "ge", "eq", "ne"]


class Check(_Measure):
    """Whether another code measurement compares so with a value: 1 or 0."""

    kind: Literal["check"] = "check"
    measure: Name
    op: Op
    value: float


Answer = Literal["yes_no", "number", "choice"]


class _Question(_Measure):
    question: str = Field(min_length=1, max_length=500)
    answer: Answer = "yes_no"
    choices: list[str] = Field(default_factory=list, max_length=20)
    #: for `choice`, the answer whose share is measured
    counts: str | None = None
    min: int = 0
    max: int = 100

    @model_validator(mode="after")
    def _answer_fits(self) -> _Question:
        if self.answer == "choice":
            if len(self.choices) < 2:
                raise ValueError("a choice answer needs at least two choices")
            if self.counts not in self.choices:
                raise ValueError("counts: name the choice whose share is measured")
        elif self.choices or self.counts is not None:
            raise ValueError(f"choices and counts are for answer: choice, not {self.answer}")
        if self.answer == "number" and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.every is not None or self.at_steps or self.at:
            raise ValueError("questions are put at the end of a run (no every, at_steps, at)")
        return self


class Ask(_Question):
    """A question put to residents (default: the whole cast), answered in character
    under a constrained answer; asking changes nothing in the run. The value is the
    share answering yes (or `counts`), or the mean number."""

    kind: Literal["ask"] = "ask"
    of: list[str] = Field(default_factory=list)


class Judge(_Question):
    """A question put to the model about the log of the last `last_steps` steps (all
    if none), of some event kinds (default speech, action, announcement)."""

    kind: Literal["judge"] = "judge"
    last_steps: int | None = Field(None, ge=1)
    kinds: list[str] = Field(default_factory=lambda: ["speech", "action", "announcement"])


Measurement = Annotated[
    ResidentsAt
    | AttributeStat
    | ItemCount
    | Holder
    | EventCount
    | Harvest
    | Trades
    | Conservation
    | Check
    | PostCount
    | MessagesSent
    | LikeCount
    | MoneyMoved
    | PostReach
    | Ask
    | Judge,
    Field(discriminator="kind"),
]
CODE_KINDS = (
    "residents_at",
    "attribute",
    "items",
    "holder",
    "events",
    "harvest",
    "trades",
    "conservation",
    "check",
    *APP_KINDS,
)


# -- the rest --------------------------------------------------------------------------


class Predicate(Strict):
    """A code measurement compared with a value, e.g. {measure: bread, op: lt, value: 5}."""

    measure: Name
    op: Op
    value: float


#: the most steps a scenario's run may take, by `steps` or by `until`
MAX_STEPS = 100_000


class Stop(Strict):
    """When a run ends: after `steps` steps, at time `until`, or once `when` holds
    (checked after each step), whichever comes first; `steps` or `until` is needed."""

    steps: int | None = Field(None, ge=1, le=MAX_STEPS)
    until: datetime | None = None
    when: Predicate | None = None

    @field_validator("until")
    @classmethod
    def _local(cls, v: datetime | None) -> datetime | None:
        return naive(v)

    @model_validator(mode="after")
    def _bounded(self) -> Stop:
        if self.steps is None and self.until is None:
            raise ValueError("give steps or until (when alone could run forever)")
        return self


class ModelSpec(Strict):
    backend: Literal["embedded", "openai", "langchain", "vllm", "scripted"] = "embedded"
    model: str | None = None
    base_url: str | None = None


class ScenarioSpec(Strict):
    name: str = Field(min_length=1, max_length=80)
    description: str = Field("", max_length=2000)
    reference: str = Field("", max_length=1000)
    world: str = Field(min_length=1, description="world file, relative to this file")
    start: str | None = Field(None, description="HH:MM of the world's first day")
    step_minutes: int | None = Field(None, ge=1, le=1440)
    rules: list[str] = Field(default_factory=list, max_length=20)
    code_rules: list[CodeRule] = Field(default_factory=list, max_length=20)
    cast: list[str] = Field(default_factory=list)
    residents: dict[str, ResidentOverride] = Field(default_factory=dict)
    seeds: int | list[int] = 3
    stop: Stop
    model: ModelSpec = ModelSpec()
    engine: Literal["simultaneous", "sequential"] = "simultaneous"
    sampling: SamplingOverrides = Field(default_factory=dict)
    interventions: dict[Name, Intervention] = Field(default_factory=dict)
    control: Name = "control"
    conditions: dict[Name, list[Name]] = Field(min_length=2)
    measurements: list[Measurement] = Field(min_length=1, max_length=100)

    @field_validator("start")
    @classmethod
    def _hhmm(cls, v: str | None) -> str | None:
        if v is not None:
            parse_hhmm(v)
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int]) -> int | list[int]:
        if isinstance(v, int) and not 1 <= v <= MAX_SEEDS:
            raise ValueError(f"seeds: from 1 to {MAX_SEEDS} seeds")
        if isinstance(v, list) and (not v or len(set(v)) != len(v) or len(v) > MAX_SEEDS):
            raise ValueError("seeds: a list of distinct seeds, at least one")
        return v

    def seed_list(self, k: int | None = None) -> list[int]:
        """The seeds to run: `k` of them (0..k-1) when given, else the file's."""
        if k is not None:
            return list(range(k))
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)
