"""Autopilot: a resident with nothing to react to follows its plan, by code.

A plan item names the place it happens at; a resident not there takes one move along
the shortest open path to it, the way a person walks to work without deciding at
every corner. The path is searched over the world's connections with the world's own
rule for entering a place (`WorldState.entry_refusal`: hours, closed days, keys,
capacity), as it stands now, so the move it proposes is one the Game Master grounds
like any typed move. Where no open path leads there, the resident says so (once, the
engine keeps track) and waits.

Pure code: no model call, no randomness (neighbours are searched in the world's own
order), so a resumed run walks the same way."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from concordia_like.agents.actions import ActionBase, Continue, Move, Wait
from concordia_like.text import clip, one_line
from concordia_like.world.state import WorldState

if TYPE_CHECKING:
    from concordia_like.agents.agent import Agent

TEXT_MAX = 100
#: the activity outside a plan's waking day (the upkeep's word for it)
ASLEEP = "sleeping"


@dataclass(frozen=True)
class Route:
    """The way from where a resident is to `target`: `path` (without the start) when
    there is one, else `refusal`, why not."""

    target: str
    path: tuple[str, ...] = ()
    refusal: str | None = None

    @property
    def arrived(self) -> bool:
        return not self.path and self.refusal is None

    @property
    def next(self) -> str | None:
        return self.path[0] if self.path else None


def route(state: WorldState, agent: str, target: str) -> Route:
    """The shortest path `agent` may walk to `target` now: every place on it (the
    target included) one it may enter at this moment. Breadth first, neighbours in
    the world's order, so ties always break the same way."""
    here = state.location(agent)
    if target == here:
        return Route(target)
    if target not in state.places:
        return Route(target, refusal=f"there is no place {target!r}")
    refusal = state.entry_refusal(agent, target)
    if refusal is not None:
        return Route(target, refusal=refusal)
    # dead ends (homes off a street) discover nothing: searched without them first, the
    # same path is found; only a failed search looks at them, for its reason
    found = _search(state, agent, here, target, through=True)
    return found if found.refusal is None else _search(state, agent, here, target, through=False)


def _search(state: WorldState, agent: str, here: str, target: str, *, through: bool) -> Route:
    """`route`'s breadth-first search; `through`: past no dead end but the target."""
    hangs_off = state.only_way(target) if through else None
    came_from: dict[str, str] = {here: here}
    todo = deque([here])
    blocked: str | None = None
    while todo:
        at = todo.popleft()
        if at == hangs_off and target not in came_from:  # the target is a dead end here
            came_from[target] = at
            return Route(target, _walk_back(came_from, here, target))
        for nxt in state.through(at) if through else state.neighbours(at):
            if nxt in came_from:
                continue
            why = state.entry_refusal(agent, nxt)
            if why is not None:
                blocked = blocked or why
                came_from[nxt] = ""  # seen, not walkable
                continue
            came_from[nxt] = at
            if nxt == target:
                return Route(target, _walk_back(came_from, here, target))
            todo.append(nxt)
    name = state.places[target].name
    why = f"no open way to {name}" + (f" ({blocked})" if blocked else "")
    return Route(target, refusal=why)


def _walk_back(came_from: dict[str, str], start: str, end: str) -> tuple[str, ...]:
    path = [end]
    while came_from[path[-1]] != start:
        path.append(came_from[path[-1]])
    return tuple(reversed(path))


def move_toward(state: WorldState, agent: str, target: str, doing: str | None = None) -> Move:
    """The typed move one step along an open `route` (which must have a next place)."""
    way = route(state, agent, target)
    if way.next is None:
        raise ValueError(f"{agent} has no move to make toward {target}: {way.refusal}")
    name = state.places[target].name
    text = f"on the way to {name}" + (f" to {doing}" if doing else "")
    return Move(kind="move", to=way.next, text=clip(text, TEXT_MAX))


def stuck(target_name: str, refusal: str) -> Wait:
    """What a resident says, once, when no open path leads where its plan is."""
    return Wait(kind="wait", text=clip(f"cannot get to {target_name}: {refusal}", TEXT_MAX))


def carry_on(doing: str) -> Continue:
    """What a resident at its plan's place does: its activity (shown as it begins)."""
    return Continue(kind="continue", text=one_line(doing, TEXT_MAX) or "a moment")


# -- a resident's plan, followed ---------------------------------------------------------


@dataclass(frozen=True)
class PlanItem:
    """What a resident's plan has it doing now: `key` tells one item from the next (its
    start and words), `place` where it happens (None: free time, it chooses where)."""

    key: str
    place: str | None
    doing: str


def plan_item(agent: Agent, now: datetime) -> PlanItem:
    """The item of `agent`'s plan under way at `now`; outside its plan's day (before
    waking, after bedtime, no plan yet) it is asleep, at home."""
    plan = agent.plan
    block = plan.block_at(now) if plan is not None and plan.day == now.date() else None
    if block is None:
        return PlanItem(ASLEEP, agent.persona.home, ASLEEP)
    key = f"{block.start:%Y-%m-%dT%H:%M} {block.description}"
    return PlanItem(key, block.place, agent.activity or block.description)


def pilot(agent: Agent, state: WorldState) -> ActionBase | None:
    """What `agent` does with nothing to react to: a move along its way to the plan's
    place; there, its activity, once as it begins; no way there, why not, once; else
    nothing (no event: it simply goes on)."""
    item = plan_item(agent, state.now)
    att = agent.attention
    if item.place is None:
        return None
    way = route(state, agent.name, item.place)
    if way.next is not None:
        return move_toward(state, agent.name, item.place, item.doing)
    if way.refusal is not None:
        if att.stuck == item.key:
            return None
        att.stuck = item.key
        return stuck(
            state.places[item.place].name if item.place in state.places else item.place, way.refusal
        )
    if att.shown == item.key or item.key == ASLEEP:
        return None
    att.shown = item.key
    return carry_on(item.doing)


def follow_plan(agent: Agent, state: WorldState) -> ActionBase:
    """An attentive resident's choice to carry on with its plan: on its way where the
    plan is elsewhere (and open), else its activity here."""
    item = plan_item(agent, state.now)
    if item.place is not None and route(state, agent.name, item.place).next is not None:
        return move_toward(state, agent.name, item.place, item.doing)
    agent.attention.shown = item.key
    return carry_on(item.doing)


def plan_hint(agent: Agent, state: WorldState) -> str:
    """What its act prompt says of carrying on with the plan, a choice like any other:
    where the plan is, and what `continue` does there."""
    item = plan_item(agent, state.now)
    if item.place is None or item.key == ASLEEP:
        return ""
    if item.place == state.location(agent.name):
        return "(you are there: continue carries on with it)"
    name = state.places[item.place].name if item.place in state.places else item.place
    way = route(state, agent.name, item.place)
    if way.next is None:
        return f"(at {name}, which you cannot reach now: {way.refusal})"
    steps = len(way.path)
    far = "next door" if steps == 1 else f"{steps} places away"
    return f"(at {name}, {far}: continue takes you on your way)"
