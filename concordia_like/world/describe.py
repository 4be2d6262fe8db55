"""What an agent perceives of the world now, as a few short lines for its prompt.

The prompt's variable part must not grow with the run or the world, so every list is
capped and the whole text is cut to `max_chars`; the most decision-relevant lines (time
and place, who is here, where one can go) come first so that a cut loses the least.
Place ids appear as written in the world file, since they are what a move names.
"""

from __future__ import annotations

from concordia_like.text import clip
from concordia_like.world.state import Item, WorldState

LIST_MAX = 8
DESCRIPTION_MAX = 160


def _listing(entries: list[str], limit: int = LIST_MAX) -> str:
    if len(entries) <= limit:
        return ", ".join(entries)
    return ", ".join(entries[:limit]) + f" and {len(entries) - limit} more"


def shown_items(state: WorldState, holder: str) -> list[Item]:
    """The stacks of `holder` that a prompt names (the first `LIST_MAX` by name): what a
    narrowed schema lets a model pick, so that neither grows with the world."""
    return state.items_held(holder)[:LIST_MAX]


def _items(state: WorldState, holder: str) -> str:
    return _listing(
        [i.name if i.quantity == 1 else f"{i.name} x{i.quantity}" for i in state.items_held(holder)]
    )


def describe_for(state: WorldState, agent: str, max_chars: int = 700) -> str:
    """Time, place, company, things here and carried, own attributes, ways out."""
    lines = _lines(state, agent)
    order = ("company", "here", "carried", "attributes", "ways", "shut")
    first = f"{lines['time']} {lines['at']}"
    return clip("\n".join([first, *(lines[k] for k in order if k in lines)]), max_chars)


def describe_parts(state: WorldState, agent: str, max_chars: int = 700) -> tuple[str, str]:
    """What `describe_for` says, in two parts: the standing (the place, what lies here,
    what one carries and has, the ways out), which lasts while nothing there changes,
    and the moment (the time, the company), which changes every step. An agent's
    prompt opens with the standing, so that a backend keeping prefixes decodes it once
    for the steps an agent spends at a place."""
    lines = _lines(state, agent)
    order = ("at", "here", "carried", "attributes", "ways", "shut")
    standing = clip("\n".join(lines[k] for k in order if k in lines), max_chars)
    return standing, f"{lines['time']} {lines['company']}"


def _lines(state: WorldState, agent: str) -> dict[str, str]:
    a = state.agents[agent]
    place = state.places[a.location]
    now = state.clock.now
    if place.id == a.home:
        status = "your home"
    elif agent in place.keyholders and not place.hours.is_open(now):
        status = "closed, but you have a key"
    else:
        status = place.hours.next_change(now)
    where = f"{place.name} ({place.id}, {status}): {clip(place.description, DESCRIPTION_MAX)}"
    lines = {"time": f"It is {now:%A %d %B %Y, %H:%M}."}
    lines["at"] = f"You are at {where}"
    others = state.others_present(agent)
    lines["company"] = "With you: " + (_listing(others) if others else "nobody") + "."
    here = _items(state, place.id)
    if here:
        lines["here"] = f"Here: {here}."
    carried = _items(state, agent)
    lines["carried"] = "You carry: " + (carried or "nothing") + "."
    if a.attributes:
        attrs = []
        # sorted, as a checkpoint stores them: a resumed run's prompts must be the same
        for name, value in sorted(a.attributes.items()):
            bound = state.attributes[name]
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            attrs.append(f"{name} {shown}" + ("" if bound.conserved else f"/{bound.max:g}"))
        lines["attributes"] = "You have: " + ", ".join(attrs) + "."
    reachable = state.reachable(agent)
    lines["ways"] = "You can go to: " + (_listing(reachable) if reachable else "nowhere now") + "."
    shut = [p for p in place.connections if p not in reachable]
    if shut:
        lines["shut"] = (
            "Not now: " + _listing([f"{p} ({_why_not(state, p)})" for p in shut], 4) + "."
        )
    return lines


def _why_not(state: WorldState, place: str) -> str:
    p = state.places[place]
    return p.hours.next_change(state.clock.now) if not p.hours.is_open(state.clock.now) else "full"
