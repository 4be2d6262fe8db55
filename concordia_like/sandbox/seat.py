"""The player's seat: a person at the prompt acts for one resident.

A step hook (engine/hooks.py): the resident's action for the step is the one typed,
not its model's, and the Game Master grounds it under the same rules as everyone's.
What the seat shows is what that resident perceived in the step, and nothing else:
the screen while playing is built from the seat's lines only.

Typed text becomes a typed action (agents/actions.py) where its meaning is plain (go,
say, give, use, wait, and with a phone the app forms of sandbox/phone.py), checked
against the world first so that an impossible one gets a hint and costs no step; any
other text is an `other` action, which the Game Master's model resolves, like a
resident's own free-form action."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from concordia_like.agents.actions import TEXT_MAX, WORDS_MAX, Give, Move, Other, Say, Use, Wait
from concordia_like.engine.hooks import StepHook, StepInput
from concordia_like.sandbox.commands import AmbiguousPlace, Hint, resolve, resolve_place
from concordia_like.sandbox.phone import parse_app_action
from concordia_like.text import clip, squash
from concordia_like.world.state import WorldState

if TYPE_CHECKING:
    from concordia_like.engine.events import Event
    from concordia_like.engine.simulation import Simulation, StepReport


class PlayerSeat(StepHook):
    name = "seat"

    def __init__(self) -> None:
        self.resident: str | None = None
        #: the action typed for the next step (None: the resident waits)
        self.queued: Any = None
        #: what the resident perceived in the last committed step
        self.seen: list[str] = []
        self._pending_seen: list[str] = []

    def take(self, resident: str) -> None:
        self.resident, self.queued, self.seen = resident, None, []

    def leave(self) -> str | None:
        was, self.resident, self.queued = self.resident, None, None
        return was

    async def before_acting(self, sim: Simulation, step: int) -> StepInput | None:
        if self.resident is None:
            return None
        action = self.queued or Wait(kind="wait", text="waits")
        return StepInput(actions={self.resident: action})

    def after_observing(
        self,
        sim: Simulation,
        step: int,
        events: Sequence[Event],
        perceived: Mapping[str, Sequence[str]],
    ) -> None:
        if self.resident is None:
            return
        lines = list(dict.fromkeys(perceived.get(self.resident, ())))
        for e in events:  # one's own failure, and why, is known to oneself
            if e.actor == self.resident and e.kind == "failure" and e.data.get("reason"):
                lines.append(f"You could not do that: {e.data['reason']}")
        self._pending_seen = lines

    def after_commit(self, sim: Simulation, report: StepReport) -> None:
        self.queued = None
        self.seen, self._pending_seen = self._pending_seen, []


def parse_action(state: WorldState, actor: str, text: str) -> Any:
    """The typed action `text` means for `actor`, or a Hint when it cannot be done."""
    text = squash(text)
    word, _, rest = text.partition(" ")
    verb = word.lower()
    if verb in ("go", "move", "walk"):
        target = rest[3:] if rest.lower().startswith("to ") else rest
        reachable = state.reachable(actor)
        try:
            place, _ = resolve_place(target, {p: state.places[p].name for p in reachable})
        except AmbiguousPlace:
            raise  # it names the ids to choose from
        except Hint:
            here = state.places[state.location(actor)].name
            raise Hint(f"from {here} you can go to: {', '.join(reachable) or 'nowhere'}") from None
        return Move(kind="move", to=place, text=f"go to {state.places[place].name}")
    if verb == "say":
        return parse_say(state, actor, rest)
    if verb == "give":
        held = sorted({i.name for i in state.items_held(actor)})
        item, after = resolve(rest, held, "item you hold") if held else ("", "")
        if not held:
            raise Hint("you hold nothing to give")
        after = after[3:] if after.lower().startswith("to ") else after
        present = state.others_present(actor)
        if not present:
            raise Hint("nobody is here to give it to")
        to, _ = resolve(after, present, "person present")
        return Give(kind="give", item=item, to=to, quantity=1, text=f"give {item} to {to}")
    if verb == "use":
        usable = sorted(
            {i.name for h in (actor, state.location(actor)) for i in state.items_held(h)}
        )
        if not usable:
            raise Hint("there is nothing here or on you to use")
        item, how = resolve(rest, usable, "item here or held")
        return Use(kind="use", item=item, text=clip(how or f"use the {item}", TEXT_MAX))
    app_action = parse_app_action(state, actor, verb, rest)
    if app_action is not None:
        return app_action
    if verb == "wait" and not rest:
        return Wait(kind="wait", text="waits")
    if not text:
        raise Hint("type what you do, or help")
    return Other(kind="other", text=clip(text, TEXT_MAX))


def parse_say(state: WorldState, actor: str, rest: str) -> Say:
    """`say [to NAME] TEXT`: to NAME, or to the one person present."""
    present = state.others_present(actor)
    if not present:
        raise Hint("nobody is here to hear you")
    if rest.lower().startswith("to "):
        to, words = resolve(rest[3:], present, "person present")
    elif len(present) == 1:
        to, words = present[0], rest
    else:
        raise Hint(f"say to whom? say to NAME TEXT ({', '.join(present)} are here)")
    if not words:
        raise Hint("say what? say [to NAME] TEXT")
    return Say(kind="say", to=to, text=clip(words, WORDS_MAX))
