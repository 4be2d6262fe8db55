"""Persona cards: who a resident is, as one YAML file per person in `personas/`.

A card is the stable part of every prompt an agent sends (who I am, how I speak, what I
want), so it is validated strictly (`extra="forbid"`: a typo such as `speking_style` is
refused, not silently dropped) and rendered to a bounded text once, not per step.
Cards name places of the world (`home`, routine `place`); those names are checked when
a world loads its residents, since a card alone does not know its world.

File format (all fields but `name`, `age`, `occupation` and `home` optional):

    name: Ines Marlowe            # unique in a world; how others address her
    age: 52
    pronouns: she/her
    occupation: baker
    traits: [early riser, blunt]
    values: [honest work]
    speaking_style: short sentences, calls everyone "love"
    backstory: ...
    relationships: {Tobias Marlowe: her son, ...}   # other person's name -> how they relate
    goals: [...]
    routine:                      # a typical day; `place` is a place id of the world
      - {at: "05:00", activity: bakes the day's bread, place: bakery}
    home: marlowe_house           # a place id of the world
    seed_memories:                # inserted as memories at the start of a run
      - The flood of '09 took the old mill.          # a plain string: importance 5
      - {text: Tobias has been hiding letters, importance: 8}
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from concordia_like.strict import Strict
from concordia_like.text import clip, squash
from concordia_like.yaml_loader import ConfigFileError, ReadBudget, YamlDoc, load_model

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
PROMPT_MAX_CHARS = 1600


def parse_hhmm(text: str) -> int:
    """'07:30' -> minutes after midnight; ValueError with the reason otherwise."""
    m = _HHMM.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"expected a time as HH:MM (00:00 to 23:59), got {text!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


class RoutineItem(Strict):
    """One entry of a typical day: from `at` on, the person does `activity` (at `place`)."""

    at: str = Field(description="start time, HH:MM")
    activity: str = Field(min_length=1, max_length=200)
    place: str | None = Field(None, description="a place id of the world")

    @field_validator("at")
    @classmethod
    def _time(cls, v: str) -> str:
        minutes = parse_hhmm(v)
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    @property
    def minutes(self) -> int:
        return parse_hhmm(self.at)


class SeedMemory(Strict):
    """A memory the person starts with; importance on the 1-10 scale memories use."""

    text: str = Field(min_length=1, max_length=500)
    importance: int = Field(5, ge=1, le=10)


class PersonaCard(Strict):
    """One resident, as written in `personas/<name>.yaml`."""

    name: str = Field(min_length=1, max_length=60)
    age: int = Field(ge=0, le=130)
    pronouns: str = Field("they/them", max_length=20)
    occupation: str = Field(min_length=1, max_length=120)
    traits: list[str] = Field(default_factory=list, max_length=12)
    values: list[str] = Field(default_factory=list, max_length=12)
    speaking_style: str = Field("", max_length=400)
    backstory: str = Field("", max_length=2000)
    relationships: dict[str, str] = Field(default_factory=dict)
    goals: list[str] = Field(default_factory=list, max_length=10)
    routine: list[RoutineItem] = Field(default_factory=list, max_length=24)
    home: str = Field(min_length=1, description="a place id of the world")
    seed_memories: list[SeedMemory] = Field(default_factory=list, max_length=50)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[^\s:,;\[\]{}]+(?: [^\s:,;\[\]{}]+)*", v):
            raise ValueError("a name is words separated by single spaces, without :,;[]{}")
        return v

    @field_validator("traits", "values", "goals")
    @classmethod
    def _nonempty_entries(cls, v: list[str]) -> list[str]:
        if any(not s.strip() for s in v):
            raise ValueError("entries must not be empty")
        return [s.strip() for s in v]

    @field_validator("seed_memories", mode="before")
    @classmethod
    def _plain_strings(cls, v: Any) -> Any:
        """A plain string is a memory of importance 5: most seed memories need no more."""
        if isinstance(v, list):
            return [{"text": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("routine")
    @classmethod
    def _ordered(cls, v: list[RoutineItem]) -> list[RoutineItem]:
        """In time order, except that the day may run past midnight once (a publican
        locking up at 00:30 writes that last)."""
        times = [r.minutes for r in v]
        wraps = sum(1 for a, b in itertools.pairwise(times) if b < a)
        if wraps > 1 or (wraps == 1 and times[-1] > times[0]):
            raise ValueError(
                "routine entries must be in time order (the day may pass midnight once)"
            )
        return v

    def routine_at(self, minutes: int) -> RoutineItem | None:
        """The routine entry in force at `minutes` after midnight (the day wraps)."""
        if not self.routine:
            return None
        ordered = sorted(self.routine, key=lambda r: r.minutes)
        current = ordered[-1]
        for item in ordered:
            if item.minutes <= minutes:
                current = item
        return current

    def prompt_text(self, max_chars: int = PROMPT_MAX_CHARS) -> str:
        """The card as the stable prefix of this person's prompts, at most `max_chars`.

        Most telling first (identity, manner, goals), backstory last, since it is what
        gets cut when the card is long."""
        parts = [f"You are {self.name} ({self.pronouns}), {self.age}, {self.occupation}."]
        if self.traits:
            parts.append("Traits: " + ", ".join(self.traits) + ".")
        if self.values:
            parts.append("You value " + ", ".join(self.values) + ".")
        if self.speaking_style:
            parts.append("You speak: " + self.speaking_style)
        if self.goals:
            parts.append("Goals: " + "; ".join(self.goals) + ".")
        if self.relationships:
            rel = "; ".join(f"{k}: {v}" for k, v in self.relationships.items())
            parts.append("People: " + rel + ".")
        if self.backstory:
            parts.append("Background: " + squash(self.backstory))
        return clip(" ".join(parts), max_chars)


def load_persona_doc(
    path: str | Path, budget: ReadBudget | None = None
) -> tuple[PersonaCard, YamlDoc]:
    """A card and its parsed file (for errors a world finds later, at the card's lines);
    `budget`: what the load reading it may still read (a world's, over all its cards)."""
    return load_model(path, PersonaCard, budget=budget)


def load_persona(path: str | Path) -> PersonaCard:
    """Load one card; an invalid card raises ConfigFileError with file, line and field."""
    return load_persona_doc(path)[0]


def load_personas(folder: str | Path) -> dict[str, PersonaCard]:
    """Every `*.yaml` card in `folder` by name; all problems of all cards reported at once,
    and two cards with the same name refused."""
    cards: dict[str, PersonaCard] = {}
    docs: dict[str, YamlDoc] = {}
    issues = []
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            card, doc = load_persona_doc(path)
        except ConfigFileError as exc:
            issues.extend(exc.issues)
            continue
        if card.name in cards:
            issues.append(
                doc.issue(("name",), f"name {card.name!r} is also used by {docs[card.name].name}")
            )
            continue
        cards[card.name] = card
        docs[card.name] = doc
    if issues:
        raise ConfigFileError(issues)
    return cards
