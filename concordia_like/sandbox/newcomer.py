"""`play --new CARD.yaml`: a persona card of one's own, checked against the running
world, and where its newcomer arrives.

The card is read with the project's persona loader and then checked as a world file's
residents are (a free name that is no place id, routine places of this world), so a
card refused here would be refused in a world file too, and the other way round. A bad
card is one `error:` line naming file, line, field and what is wrong (the first problem,
and how many more), and nothing is changed: every check runs before anything is
written.

Where the newcomer arrives: its card's home when that is a place of the world (and it
then holds the home's keys, as residents of a home do); otherwise the first public place
(`kind: public`) in the world file's order that is open and has room, else the first
place that is open and has room. That place becomes its home (the card's own `home`
names a place this world does not have). The chosen place is recorded with the card
(engine/newcomers.py), so a reopened or forked town puts it back where it was."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from concordia_like.engine.newcomers import Newcomer
from concordia_like.engine.simulation import Simulation
from concordia_like.errors import ConfigError
from concordia_like.text import squash
from concordia_like.world.persona import load_persona_doc
from concordia_like.world.state import WorldState
from concordia_like.yaml_loader import ConfigFileError, Issue, YamlDoc

PUBLIC = "public"


@dataclass(frozen=True)
class Arrival:
    """A checked newcomer, and why it arrives where it does (for the screen)."""

    newcomer: Newcomer
    note: str


def read_newcomer(sim: Simulation, path: Path) -> Arrival:
    """The newcomer `path`'s card makes in `sim`'s world, or ConfigError with one line."""
    try:
        card, doc = load_persona_doc(path)
    except ConfigFileError as exc:
        raise ConfigError(_one_line(exc.issues)) from None
    state = sim.state
    issues: list[Issue] = []
    if card.name in sim.agents or card.name in state.agents:
        issues.append(doc.issue(("name",), f"{card.name!r} already lives in {sim.world.name}"))
    if card.name in state.places:
        issues.append(doc.issue(("name",), f"{card.name!r} is a place id of {sim.world.name}"))
    for j, item in enumerate(card.routine):
        if item.place is not None and item.place not in state.places:
            issues.append(_unknown_place(doc, ("routine", j, "place"), item.place, sim))
    if issues:
        raise ConfigError(_one_line(issues))
    if card.home in state.places:
        if _full(state, card.home):
            raise ConfigError(
                _one_line([doc.issue(("home",), f"{card.home} is full, nobody more fits")])
            )
        newcomer = Newcomer(card, card.home, True, sim.step)
        return Arrival(newcomer, f"at home, {state.places[card.home].name}")
    place = _public_place(state)
    if place is None:
        raise ConfigError(
            _one_line([doc.issue(("home",), "no place of this world is open and has room now")])
        )
    settled = card.model_copy(update={"home": place})
    name = state.places[place].name
    note = f"at {name} (home {card.home!r} is no place of {sim.world.name}; {name} is home now)"
    return Arrival(Newcomer(settled, place, False, sim.step), note)


def _public_place(state: WorldState) -> str | None:
    """The first public place that is open and has room, else any such place."""
    welcoming = [
        pid for pid, p in state.places.items() if state.is_open(pid) and not _full(state, pid)
    ]
    public = [pid for pid in welcoming if state.places[pid].kind == PUBLIC]
    return next(iter(public or welcoming), None)


def _full(state: WorldState, pid: str) -> bool:
    capacity = state.places[pid].capacity
    return capacity is not None and len(state.agents_at(pid)) >= capacity


def _unknown_place(doc: YamlDoc, loc: tuple[str | int, ...], place: str, sim: Simulation) -> Issue:
    close = difflib.get_close_matches(place, list(sim.state.places), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return doc.issue(loc, f"unknown place {place!r} of {sim.world.name}{hint}")


def _one_line(issues: list[Issue]) -> str:
    """The first problem, and how many more: the screen gets one line."""
    more = len(issues) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    return f"{squash(str(issues[0]))}{tail}"
