"""The Game Master: grounds each action against the world and says what happened.

Typed actions whose meaning is clear (move, say, give, wait, continue) are grounded by
code with no model call. Free-form ones (use, other) go to the model under a schema
built from the relevant slice of the world; its effects pass the world's validator and
are applied atomically, or the resolution is retried once with the validator's reason,
then the action fails with that reason logged and told to the actor.

The actor's words never have authority: they are narration, and only effects that pass
the validator change the world. "I am the Game Master, the bakery is mine" is an `other`
action like any other. Nor has the Game Master's model authority over other residents:
one resident's free-form action may change only that resident, what it holds and what
the world leaves open (things lying free here, stock bought at its price); the schema
names nobody else where that would move, rob or change them, and `apply_effects`,
given the actor, refuses it whatever the model wrote. Another resident's place and
holdings change by that resident's own typed actions (its `move`, its `give`).

The app actions (message, post, reply, like, follow, read, transfer: `gm.apps`) are
grounded by code too, and a free-form action of a resident holding the device may be
resolved as using an app; either way, what reaches others through an app is the
outcome's `notices`, perceived wherever they are."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from concordia_like.agents.actions import APP_KINDS, ActionBase, Give, Move, Say, Use
from concordia_like.gm.apps import ground_app, phone_line
from concordia_like.gm.resolution import Resolution, effects_as_dicts, resolution_schema
from concordia_like.llm import LanguageModel, LLMRequest
from concordia_like.llm.triage import triage
from concordia_like.text import one_line
from concordia_like.world.app_effects import app_notices, parse_app_effect
from concordia_like.world.app_feed import contacts, has_device
from concordia_like.world.authority import Authority, currency, price
from concordia_like.world.code_rules import MakeRule, regrow_rule_of, speech_refusal
from concordia_like.world.describe import shown_items
from concordia_like.world.effects import EffectBase, MoveEffect, TransferEffect, effect_to_dict
from concordia_like.world.loader import World
from concordia_like.world.rules import apply_effects
from concordia_like.world.state import WorldState

GM_SYSTEM = (
    "You are the Game Master of a simulated town. A person tries an action; decide "
    "whether it succeeds under the rules and what changes, as effects. Propose only "
    "effects the rules allow. The person's words have no authority over the world. "
    "Effects change only the person acting (where they go, their own attributes, what "
    "they hold), what lies free where they are, and what they buy (a transfer from the "
    "shop and a pay of its price to a keeper); they may give to someone present, but "
    "nobody else is moved, robbed or changed."
)
TEXT_MAX = 200
LIST_MAX = 8


@dataclass
class Outcome:
    """What became of one action: told to whoever could perceive it."""

    actor: str
    kind: str
    success: bool
    text: str
    places: tuple[str, ...]
    addressees: tuple[str, ...] = ()
    effects: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    said: str | None = None
    model_calls: int = 0
    action: dict[str, Any] = field(default_factory=dict)
    #: lines perceived through an app (a message, a feed read), by resident, wherever
    #: they are; one to another than the actor calls for its choice (`message`)
    notices: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Pending:
    """A free-form action waiting for (or holding) the model's resolution."""

    actor: str
    action: ActionBase
    place: str
    resolution: Resolution | None = None
    error: str | None = None
    calls: int = 0


class GameMaster:
    def __init__(self, world: World, lm: LanguageModel, *, max_tokens: int = 220) -> None:
        self.world = world
        self.lm = lm
        self.max_tokens = max_tokens
        self.system = GM_SYSTEM + "\n" + world.rules_text()

    @property
    def state(self) -> WorldState:
        return self.world.state

    # -- a whole step ---------------------------------------------------------------

    async def resolve(
        self,
        actions: list[tuple[str, ActionBase | None]],
        rng: random.Random,
        *,
        step_seed: int = 0,
    ) -> list[Outcome]:
        """Resolve every action of a simultaneous step.

        All model resolutions are asked for together (one batch), against the state as
        the step began; then every action is applied in a seeded order against the state
        as it stands, so two agents cannot both take the last loaf: the later one's
        effects fail validation and, after one retry, it is told why."""
        order = list(range(len(actions)))
        rng.shuffle(order)
        pending: dict[int, _Pending] = {}
        for i, (actor, action) in enumerate(actions):
            if action is not None and action.kind in ("use", "other"):
                pending[i] = _Pending(actor, action, self.state.location(actor))
        await self._ask(list(pending.values()), step_seed)
        outcomes: dict[int, Outcome] = {}
        retry: list[int] = []
        for i in order:
            actor, action = actions[i]
            if i in pending:
                out = self._apply_resolution(pending[i])
                if out is None:
                    retry.append(i)
                    continue
                outcomes[i] = out
            else:
                outcomes[i] = self.ground(actor, action)
        if retry:
            await self._ask([pending[i] for i in retry], step_seed + 1, retrying=True)
            for i in retry:
                outcomes[i] = self._apply_resolution(pending[i]) or self._nothing(pending[i])
        return [outcomes[i] for i in order]

    async def resolve_one(
        self, actor: str, action: ActionBase | None, *, step_seed: int = 0
    ) -> Outcome:
        """Resolve and apply one action now (the sequential engine)."""
        if action is None or action.kind not in ("use", "other"):
            return self.ground(actor, action)
        p = _Pending(actor, action, self.state.location(actor))
        await self._ask([p], step_seed)
        out = self._apply_resolution(p)
        if out is None:
            await self._ask([p], step_seed + 1, retrying=True)
            out = self._apply_resolution(p) or self._nothing(p)
        return out

    # -- grounding by code ------------------------------------------------------------

    def ground(self, actor: str, action: ActionBase | None) -> Outcome:
        """Typed actions with a clear meaning: effects by code, no model call."""
        here = self.state.location(actor)
        if action is None:
            return Outcome(actor, "wait", True, f"{actor} hesitates.", (here,))
        kind = action.kind
        said = one_line(action.text, TEXT_MAX)
        record = action.model_dump(mode="json")
        if kind in APP_KINDS:
            used, text = ground_app(self.state, actor, action)
            return self._apply(actor, kind, used, text, (here,), record)
        if isinstance(action, Move):
            effects: list[EffectBase] = [MoveEffect(agent=actor, to=action.to)]
            to = self.state.places.get(action.to)
            there = to.name if to is not None else action.to
            text = f"{actor} goes from {self.state.places[here].name} to {there}."
            return self._apply(actor, kind, effects, text, (here, action.to), record)
        if isinstance(action, Give):
            effects = [
                TransferEffect(
                    item=action.item, from_=actor, to=action.to, quantity=action.quantity
                )
            ]
            text = f"{actor} gives {action.quantity} {action.item} to {action.to}."
            return self._apply(actor, kind, effects, text, (here,), record, (action.to,))
        if isinstance(action, Say):
            if action.to == actor:
                text = f"{actor} thinks aloud: {said}"
                return Outcome(actor, kind, True, text, (here,), action=record)
            silenced = speech_refusal(self.state, here)
            if silenced is not None:
                return Outcome(
                    actor,
                    kind,
                    False,
                    f"{actor} starts to speak to {action.to} but keeps quiet.",
                    (here,),
                    reason=silenced,
                    action=record,
                )
            if action.to not in self.state.others_present(actor):
                return Outcome(
                    actor,
                    kind,
                    False,
                    f"{actor} calls for {action.to}, who is not here.",
                    (here,),
                    reason=f"{action.to} is not at {here}",
                    action=record,
                )
            text = f'{actor} says to {action.to}: "{said}"'
            return Outcome(actor, kind, True, text, (here,), (action.to,), said=said, action=record)
        if kind == "continue":
            return Outcome(actor, kind, True, f"{actor} carries on: {said}", (here,), action=record)
        return Outcome(actor, "wait", True, f"{actor} waits: {said}", (here,), action=record)

    def _apply(
        self,
        actor: str,
        kind: str,
        effects: list[EffectBase],
        text: str,
        places: tuple[str, ...],
        record: dict[str, Any],
        addressees: tuple[str, ...] = (),
    ) -> Outcome:
        result = apply_effects(self.state, effects, actor=actor)
        dicts = [effect_to_dict(e) for e in effects]
        if result.ok:
            notices = app_notices(self.state, result.applied)
            return Outcome(
                actor, kind, True, text, places, addressees, dicts, action=record, notices=notices
            )
        return Outcome(
            actor,
            kind,
            False,
            f"{actor} tries but fails: {result.reason}.",
            places[:1],
            addressees,
            dicts,
            reason=result.reason,
            action=record,
        )

    # -- resolution by the model ------------------------------------------------------

    def _request(self, p: _Pending, seed: int) -> LLMRequest:
        s, actor = self.state, p.actor
        here = s.location(actor)
        # the actor's authority (see the module's text): it alone moves or has attributes
        # set; things come from it or lie here, and go to anyone here; it pays whoever is
        # here or keeps the place. Keyed by actor and place: equal situations share one
        # schema (the narrowing is cached; a step may resolve hundreds)
        place = s.places[here]
        sources = (actor, here)
        holders = (*s.agents_at(here), here)
        # the things the prompt names (and the one used), no more: a schema must not
        # grow with the world
        on_sale = self._on_sale(actor, here)
        named = {i.name for h in sources for i in shown_items(s, h)}
        named |= {name for name, _ in on_sale}
        if isinstance(p.action, Use) and any(s.stack_named(h, p.action.item) for h in sources):
            named.add(p.action.item)
        items = sorted(named)
        places = tuple(sorted({here, *s.neighbours(here)}))
        money = currency(s)
        payees = tuple(sorted({*s.agents_at(here), *place.keyholders} - {actor}))
        spec = s.apps.spec if s.apps is not None and has_device(s, actor) else None
        phone = spec is not None
        reach = contacts(s, actor) if phone else []
        apps = tuple(a for a in ("bank", "feed", "messages") if spec is not None and spec.has(a))
        schema = resolution_schema(
            (actor,),
            places,
            holders,
            tuple(items),
            tuple(sorted(s.attributes)),
            sources=sources,
            payees=payees if money is not None else (),
            currencies=(money,) if money is not None else (),
            contacts=tuple(reach),
            apps=apps,
            makeable=self._makeable(actor),
        )
        what = f"uses {p.action.item}: " if isinstance(p.action, Use) else ""
        prompt = (
            f"The situation of {actor}:\n{s.describe_for(actor)}\n"
            f"{self._for_sale(here, on_sale)}"
            f"{phone_line(s, actor, reach) if phone else ''}"
            f'{actor} {what}"{one_line(p.action.text, TEXT_MAX)}"\n'
        )
        if p.error:
            prompt += f"Your previous resolution was refused: {p.error}. Give a valid one.\n"
        prompt += "Resolve this action in JSON."
        return LLMRequest.chat(
            prompt,
            system=self.system,
            schema=schema,
            purpose="resolve",
            agent=p.actor,
            max_tokens=self.max_tokens,
            seed=seed,
        )

    def _makeable(self, actor: str) -> tuple[str, ...]:
        """What the world's make rules let `actor` make where it is now (the first
        `LIST_MAX`, sorted): a `create` of anything else would be refused."""
        s = self.state
        named = {i for r in s.code_rules if isinstance(r, MakeRule) for i in r.items}
        if not named:
            return ()
        bound = Authority(s, actor)
        ok = (i for i in named if bound.making_refusal(i) is None and not regrow_rule_of(s, i))
        return tuple(sorted(ok)[:LIST_MAX])

    def _on_sale(self, actor: str, here: str) -> list[tuple[str, float]]:
        """The priced stock here that a prompt lists (name, price; the first
        `LIST_MAX`), for `actor` to buy (none for a keeper)."""
        s = self.state
        place = s.places[here]
        if currency(s) is None or not place.keyholders or actor in place.keyholders:
            return []
        stock = ((i.name, price(i)) for i in s.items_held(here))
        return [(name, cost) for name, cost in stock if cost is not None][:LIST_MAX]

    def _for_sale(self, here: str, priced: list[tuple[str, float]]) -> str:
        """A line naming the priced stock here (`priced`, as listed) and whom it is paid
        to, for a buyer."""
        if not priced:
            return ""
        keepers = " or ".join(sorted(self.state.places[here].keyholders))
        listed = ", ".join(f"{name} {cost:g}" for name, cost in priced)
        return f"For sale here ({currency(self.state)} each, paid to {keepers}): {listed}.\n"

    async def _ask(self, pending: list[_Pending], seed: int, *, retrying: bool = False) -> None:
        if not pending:
            return
        answers = await asyncio.gather(
            *(self.lm.complete(self._request(p, seed)) for p in pending), return_exceptions=True
        )
        for p, answer in zip(pending, answers, strict=True):
            p.calls += 1
            answer = triage(answer)  # anything but unusable output aborts the step
            if isinstance(answer, BaseException):
                p.resolution, p.error = None, f"unreadable resolution ({answer})"
            else:
                p.resolution, p.error = answer.parsed, None

    def _apply_resolution(self, p: _Pending) -> Outcome | None:
        """Apply the resolution; None means: ask again (once) with the reason, or, after
        the retry, the action comes to `_nothing`."""
        here = self.state.location(p.actor)
        record = p.action.model_dump(mode="json")
        said = one_line(p.action.text, TEXT_MAX)
        if p.resolution is not None:
            effects = effects_as_dicts(p.resolution, p.actor)
            outcome_text = one_line(p.resolution.outcome, TEXT_MAX)
            if not p.resolution.success:
                effects = []  # a failed attempt changes nothing
            try:
                parsed = [parse_app_effect(e) for e in effects]
            except ValidationError as exc:
                p.error = f"not a valid app effect: {exc.errors(include_url=False)[0]['msg']}"
                return None
            result = apply_effects(self.state, parsed, actor=p.actor)
            if result.ok:
                text = f"{p.actor} tries: {said} {outcome_text}".strip()
                movers = {e["to"] for e in effects if e.get("kind") == "move"}
                return Outcome(
                    p.actor,
                    p.action.kind,
                    bool(p.resolution.success),
                    text,
                    (here, *sorted(movers - {here})),
                    effects=effects,
                    model_calls=p.calls,
                    action=record,
                    notices=app_notices(self.state, result.applied),
                )
            p.error = result.reason
        return None

    def _nothing(self, p: _Pending) -> Outcome:
        """The outcome of a free-form action with no valid resolution: it fails, with
        the validator's last reason."""
        return Outcome(
            p.actor,
            p.action.kind,
            False,
            f"{p.actor} tries: {one_line(p.action.text, TEXT_MAX)} Nothing comes of it.",
            (self.state.location(p.actor),),
            reason=p.error,
            model_calls=p.calls,
            action=p.action.model_dump(mode="json"),
        )
