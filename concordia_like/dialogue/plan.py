"""What conversations to have: who, where, when and about what, drawn from the world.

A conversation's plan (`ConversationSpec`) is a pure function of (world, job seed,
index), so a job killed and run again plans the very same conversations, and the
conversation at index i is the same whatever N is. Groups are pairs mostly, sometimes
three or four residents (never more than the world has); a pair with a relationship on
either card is preferred. The place is one that none of them lives in, open for the
whole conversation and large enough; the time a ten-minute mark of the world's first
day between 08:00 and 19:00. The topic comes from the members' cards: a goal of the
one who opens the conversation, what its card says of another member, or one of its
seed memories."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from concordia_like.llm.sampling import derive_seed
from concordia_like.world.loader import World

MAX_GROUP = 4
#: (size, weight) of a group, cut to the residents a world has
GROUP_SIZES = ((2, 0.7), (3, 0.2), (4, 0.1))
FIRST_HOUR, LAST_HOUR = 8, 19


@dataclass(frozen=True)
class ConversationSpec:
    """One conversation to generate: `members[0]` opens it, speaking to `members[1]`."""

    index: int
    members: tuple[str, ...]
    place: str
    start: str  # HH:MM of the world's first day
    topic: str
    topic_source: str  # "goal", "relationship", "memory"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["members"] = list(self.members)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConversationSpec:
        return cls(**{**d, "members": tuple(d["members"])})


def _group(world: World, rng: random.Random) -> tuple[str, ...]:
    names = sorted(world.personas)
    sizes = [(s, w) for s, w in GROUP_SIZES if s <= len(names)]
    size = rng.choices([s for s, _ in sizes], [w for _, w in sizes])[0]
    opener = rng.choice(names)
    card = world.personas[opener]
    known = [n for n in sorted(card.relationships) if n in world.personas and n != opener]
    others = [n for n in names if n != opener]
    first = rng.choice(known) if known and rng.random() < 0.8 else rng.choice(others)
    rest = [n for n in others if n != first]
    return (opener, first, *rng.sample(rest, size - 2))


def _topic(world: World, members: tuple[str, ...], rng: random.Random) -> tuple[str, str]:
    card = world.personas[members[0]]
    options: list[tuple[str, str]] = [(g, "goal") for g in card.goals]
    options += [
        (f"{other}: {card.relationships[other]}", "relationship")
        for other in members[1:]
        if other in card.relationships
    ]
    options += [(m.text, "memory") for m in card.seed_memories]
    if not options:
        return ("what is going on in town today", "default")
    return rng.choice(options)


def _place_and_time(
    world: World, members: tuple[str, ...], turns: int, rng: random.Random
) -> tuple[str, str] | None:
    state = world.state
    homes = {world.personas[m].home for m in members}
    step = state.clock.step
    day = state.clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
    places = sorted(
        pid
        for pid, p in state.places.items()
        if pid not in homes
        and (p.capacity is None or p.capacity >= len(members))
        and not p.kind.lower().startswith("home")
    )
    slots = [
        day + timedelta(hours=h, minutes=m)
        for h in range(FIRST_HOUR, LAST_HOUR)
        for m in range(0, 60, 10)
    ]
    if not places:
        return None
    for _ in range(50):
        place, at = rng.choice(places), rng.choice(slots)
        end: datetime = at + step * (turns + turns // 2)
        if all(state.places[place].hours.is_open(at + step * i) for i in range(turns + 1)) and (
            state.places[place].hours.is_open(end) or end.day != at.day
        ):
            return place, f"{at:%H:%M}"
    return None


def plan_conversation(world: World, seed: int, index: int, turns: int) -> ConversationSpec:
    """The plan of conversation `index` of a job with `seed` (see the module's text)."""
    rng = random.Random(derive_seed(seed, index, "dialogue-plan"))
    for _ in range(20):
        members = _group(world, rng)
        where = _place_and_time(world, members, turns, rng)
        if where is not None:
            topic, source = _topic(world, members, rng)
            return ConversationSpec(index, members, where[0], where[1], topic, source)
    raise ValueError(f"world {world.name!r} has no open place for a conversation of {turns} turns")
