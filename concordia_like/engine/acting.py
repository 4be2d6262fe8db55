"""How a step's residents act: who is asked (attention), their act calls under either
engine, the words of what they say, the conversations of those who meet, and the plans
of those who follow them by code.

Under the `events` policy, residents asked only because they met someone here
(`company`) take no act call: the residents at their place have one conversation, one
`converse` call (`agents.conversation`), and a resident whose act call decides to speak
to someone opens one the same way, where the people here answer within the step. A
resident who speaks in a conversation spends its step on it; one addressed who did not
answer within the step (spoke to by a player, or in a conversation it had no say in) is
asked in the next (`addressed`). Under `always`,
every awake resident takes its act call and each `say` its speech call, as before
conversations existed.

A mixin of `engine.simulation.Simulation`, apart so that each module keeps one job:
the simulation runs and commits a step, this decides what its residents do in it."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from concordia_like.agents.actions import WORDED, ActionBase, Say, to_action, written_ask
from concordia_like.agents.attention import (
    AttentionPolicy,
    arrivals,
    attend,
    choices_for,
    watched,
    why_text,
)
from concordia_like.agents.autopilot import follow_plan, pilot
from concordia_like.agents.conversation import (
    CAST_MAX,
    Exchange,
    Written,
    converse_request,
    read_exchange,
)
from concordia_like.agents.speech import write_speech
from concordia_like.gm.master import GameMaster, Outcome
from concordia_like.llm.sampling import derive_seed
from concordia_like.llm.triage import triage

if TYPE_CHECKING:
    from concordia_like.agents.agent import Agent
    from concordia_like.llm import LanguageModel
    from concordia_like.world.state import WorldState

#: the one reason that, alone, makes a resident a party to a conversation rather than
#: an act call (under `events`)
MEETING = frozenset({"company"})


class Acting:
    """The acting part of a step (see the module's text)."""

    agents: dict[str, Agent]
    lm: LanguageModel
    gm: GameMaster
    seed: int
    attention: AttentionPolicy
    #: per outcome of a conversation turn (by id, for the step under way): those of its
    #: addressees who had their say in the same conversation (spoke in it)
    _answered: dict[int, set[str]]
    #: the residents asked what they do who chose to carry on with their plans (for the
    #: step under way): their actions are their plans' by code, as if they were not asked
    _kept_to_plan: set[str]

    @property
    def state(self) -> WorldState:  # the simulation's
        raise NotImplementedError

    def _perceivers(self, out: Outcome) -> set[str]:  # the simulation's
        raise NotImplementedError

    def _attend(self, awake: list[str], step: int) -> dict[str, list[str]]:
        """Who of the `awake` residents is asked what it does, and why (see
        `agents.attention`); the others follow their plans by code."""
        why: dict[str, list[str]] = {}
        arrived = arrivals(self.agents, self.state)
        for n in awake:
            reasons = attend(self.agents[n], self.state, step, self.attention, arrived)
            if reasons:
                why[n] = reasons
                self.agents[n].attention.asked(step)
        watched(self.agents, self.state, set(awake))
        return why

    def _unanswered(self, out: Outcome) -> list[str]:
        """The addressees of a speech outcome still waiting to answer after the step:
        all of them, but those who had their say in the same conversation."""
        answered = getattr(self, "_answered", {}).get(id(out), set())
        return [to for to in out.addressees if to not in answered]

    def _split(
        self, names: list[str], why: dict[str, list[str]]
    ) -> tuple[list[str], list[str], set[str] | None]:
        """The residents asked who take an act call, those who only met someone here
        (parties to a conversation, under `events`), and the residents free to speak in
        a conversation (not deciding for themselves; None under `always`)."""
        if self.attention.mode != "events":
            return names, [], None
        meeting = [n for n in names if set(why[n]) == MEETING]
        return [n for n in names if n not in meeting], meeting, set()

    # -- conversations ------------------------------------------------------------------

    def _meetings(self, meeting: list[str], free: set[str], step: int) -> list[Exchange]:
        """One conversation at each place where residents met: a seeded opener turns
        to another who met someone, or else to whoever is here; a few more free
        residents here may join."""
        by_place: dict[str, list[str]] = {}
        for n in meeting:
            by_place.setdefault(self.state.location(n), []).append(n)
        exchanges = []
        for place, here in sorted(by_place.items()):
            rng = random.Random(derive_seed(self.seed, step, place, "converse"))
            order = sorted(here)
            rng.shuffle(order)  # the one who met the most opens (who arrived), ties seeded
            opener = max(order, key=lambda n: len(self.agents[n].attention.fresh))
            present = sorted(self.state.others_present(opener))
            new = sorted(self.agents[opener].attention.fresh & set(present))
            pool = new or [n for n in present if n in free] or present
            if not pool:
                continue
            to = rng.choice(pool)
            exchanges.append(self._exchange(opener, to, free, rng, "company", None))
        return exchanges

    def _exchange(
        self,
        opener: str,
        to: str,
        free: set[str],
        rng: random.Random,
        why: str,
        heard: str | None,
    ) -> Exchange:
        """`opener`'s conversation with `to`, and up to `CAST_MAX` people here in all;
        those free to speak (and the opener) may speak in it."""
        extras = sorted(n for n in self.state.others_present(opener) if n in free and n != to)
        rng.shuffle(extras)
        cast = (opener, to, *extras[: CAST_MAX - 2])
        speakers = (opener, *(n for n in cast[1:] if n in free))
        place = self.state.location(opener)
        fresh = {n: self.agents[n].attention.fresh for n in cast}
        return Exchange(place, opener, to, cast, speakers, why, heard, fresh)

    def _converse_request(self, ex: Exchange, step: int) -> Any:
        seed = derive_seed(self.seed, step, ex.opener, "converse")
        return converse_request(self.agents, self.state, ex, self.state.name, seed)

    async def _converse(self, exchanges: list[Exchange], step: int) -> list[Written]:
        answers = await self.lm.complete_many(
            [self._converse_request(ex, step) for ex in exchanges], return_exceptions=True
        )
        return [read_exchange(a, ex, self.agents) for a, ex in zip(answers, exchanges, strict=True)]

    def _talk(
        self, written: list[Written], why: dict[str, list[str]], step: int, free: set[str]
    ) -> list[Outcome]:
        """The outcomes of written conversations, turn by turn: a kept turn is a `say`
        grounded by the Game Master, a dropped one its speaker hesitating, with the
        reason. Who spoke spends its step on it (no longer free) and is recorded as
        asked (`addressed` where spoken to before it spoke, else `company`)."""
        outcomes: list[Outcome] = []
        for w in written:
            turns: list[Outcome] = []
            spoken_to: set[str] = set()
            for t in w.turns:
                if t.text is None:
                    here = (self.state.location(t.speaker),)
                    reason = f"speech dropped: {t.reason}"
                    out = Outcome(t.speaker, "wait", False, f"{t.speaker} hesitates.", here)
                    out.reason = reason
                else:
                    out = self.gm.ground(t.speaker, Say(kind="say", to=t.to, text=t.text))
                if t.speaker not in why:
                    why[t.speaker] = ["addressed" if t.speaker in spoken_to else "company"]
                    self.agents[t.speaker].attention.asked(step)
                free.discard(t.speaker)
                spoken_to.add(t.to)
                turns.append(out)
            had_a_say = {o.actor for o in turns if o.said is not None and o.success}
            for out in turns:
                self._answered[id(out)] = set(out.addressees) & had_a_say
            outcomes += turns
        return outcomes

    # -- the two engines ----------------------------------------------------------------

    def _act_request(self, n: str, step: int, why: dict[str, list[str]]) -> Any:
        request = self.agents[n].act_request(
            self.state,
            derive_seed(self.seed, step, n),
            choices=choices_for(self.attention, why[n]),
        )
        return request.model_copy(update={"why": why_text(why[n])})

    async def _simultaneous(
        self,
        names: list[str],
        piloted: list[str],
        step: int,
        rng: random.Random,
        why: dict[str, list[str]],
    ) -> list[Outcome]:
        self._answered, self._kept_to_plan = {}, set()
        asked, meeting, free = self._split(names, why)
        free_now = set(meeting) | set(piloted) if free is not None else set()
        meetings = self._meetings(meeting, free_now, step) if meeting else []
        requests = [self._act_request(n, step, why) for n in asked]
        requests += [self._converse_request(ex, step) for ex in meetings]
        answers = await self.lm.complete_many(requests, return_exceptions=True)
        met = [
            read_exchange(a, ex, self.agents)
            for a, ex in zip(answers[len(asked) :], meetings, strict=True)
        ]
        talk = self._talk(met, why, step, free_now)
        actions, failures, said = await self._decide(
            asked, answers[: len(asked)], step, why, free_now if free is not None else None
        )
        talk += self._talk(said, why, step, free_now)
        openers = {w.exchange.opener for w in said}
        chosen = [(n, a) for n, a in zip(asked, actions, strict=True) if n not in openers]
        for n in piloted + meeting:  # against the state as the step began, as everyone acts
            if free is not None and n not in free_now:
                continue  # spent its step talking
            action = pilot(self.agents[n], self.state)
            if action is not None:
                chosen.append((n, action))
        outcomes = await self.gm.resolve(chosen, rng, step_seed=derive_seed(self.seed, step))
        return talk + self._mark_undecided(outcomes, failures)

    async def _sequential(
        self,
        names: list[str],
        piloted: list[str],
        step: int,
        rng: random.Random,
        why: dict[str, list[str]],
    ) -> list[Outcome]:
        self._answered, self._kept_to_plan = {}, set()
        asked, meeting, free = self._split(names, why)
        free_now = set(meeting) | set(piloted) if free is not None else set()
        outcomes: list[Outcome] = []
        if meeting:  # those who met talk first, on the state as the step began
            talk = self._talk(
                await self._converse(self._meetings(meeting, free_now, step), step),
                why,
                step,
                free_now,
            )
            self._tell(talk)
            outcomes += talk
        order = asked + [n for n in piloted + meeting if free is None or n in free_now]
        rng.shuffle(order)
        for n in order:
            failures: dict[str, str] = {}
            if n in asked:
                answers = await self.lm.complete_many(
                    [self._act_request(n, step, why)], return_exceptions=True
                )
                actions, failures, said = await self._decide(
                    [n], answers, step, why, free_now if free is not None else None
                )
                if said:  # it opened a conversation: its turn is spoken
                    talk = self._talk(said, why, step, free_now)
                    self._tell(talk)
                    outcomes += talk
                    continue
                action = actions[0]
            else:  # on the state as the residents before it left it
                if free is not None and n not in free_now:
                    continue  # spent its step talking, in a conversation opened before
                action = pilot(self.agents[n], self.state)
                if action is None:
                    continue
            # the same seed as the simultaneous engine's (the request's agent tells
            # one actor's resolution from another's)
            out = await self.gm.resolve_one(n, action, step_seed=derive_seed(self.seed, step))
            self._mark_undecided([out], failures)
            self._tell([out])
            outcomes.append(out)
        return outcomes

    def _tell(self, outcomes: list[Outcome]) -> None:
        """The sequential engine: what happened is perceived at once."""
        for out in outcomes:
            for name in self._perceivers(out):
                if name != out.actor:
                    self.agents[name].perceive(out.text)

    async def _decide(
        self,
        names: list[str],
        answers: list[Any],
        step: int,
        why: dict[str, list[str]],
        free: set[str] | None = None,
    ) -> tuple[list[Any], dict[str, str], list[Written]]:
        """The actions of the act answers: decisions made full, the words of every
        `say` (and message, post or reply) written in one batch of speech calls
        (`agents.speech`). A speaker whose
        words come out degenerate twice hesitates, with the reason in its event.
        With `free` (under `events`), a `say` to someone else opens a conversation
        instead, in which those free here may answer: its written turns are returned,
        and the speaker's action is left to them."""
        heard = {n: self.agents[n].reply_to for n in names}
        decisions, failures = self._read_actions(names, answers)
        wants: list[tuple[str, str]] = []
        exchanges: list[Exchange] = []
        for n, d in zip(names, decisions, strict=True):
            if d is None or d.kind not in WORDED or isinstance(d, ActionBase):
                continue
            if d.kind != "say":  # words written on its phone: asked for like speech
                self.agents[n].writing = written_ask(d, self.state)
                wants.append((n, getattr(d, "to", n)))
                continue
            if free is None or d.to == n:
                wants.append((n, d.to))
                continue
            rng = random.Random(derive_seed(self.seed, step, n, "converse"))
            said = heard[n]
            line = said.replace("said to you", f"said to {n}") if said else None
            exchanges.append(self._exchange(n, d.to, free, rng, why_text(why[n]), line))
        spoken, written = await asyncio.gather(
            write_speech(
                self.lm, self.agents, wants, lambda n, k: derive_seed(self.seed, step, n, k)
            )
            if wants
            else _nothing({}),
            self._converse(exchanges, step) if exchanges else _nothing([]),
        )
        actions = []
        for n, d in zip(names, decisions, strict=True):
            if d is None or isinstance(d, ActionBase):
                actions.append(d)
            elif d.kind in WORDED:
                if n not in spoken:  # its conversation stands for it
                    actions.append(None)
                    continue
                words = spoken[n]
                if words.text is None:
                    actions.append(None)
                    failures[n] = f"speech dropped: {words.reason}"
                else:
                    self.agents[n].last_said.append(words.text)
                    actions.append(to_action(d, words.text))
            elif d.kind == "continue":  # carrying on with the plan: on its way, or at it
                actions.append(follow_plan(self.agents[n], self.state))
                self._kept_to_plan.add(n)
            else:
                actions.append(to_action(d, self.agents[n].activity or "a moment"))
        return actions, failures, written

    def _read_actions(
        self, names: list[str], answers: list[Any]
    ) -> tuple[list[Any], dict[str, str]]:
        actions: list[Any] = []
        failures: dict[str, str] = {}
        for n, answer in zip(names, answers, strict=True):
            answer = triage(answer)  # anything but unusable output aborts the step
            if isinstance(answer, BaseException):
                actions.append(None)
                failures[n] = f"could not decide: {answer}"
            else:
                actions.append(answer.parsed)
            self.agents[n].reply_to = None  # answered, or let it pass
        return actions, failures

    @staticmethod
    def _mark_undecided(outcomes: list[Outcome], failures: dict[str, str]) -> list[Outcome]:
        for out in outcomes:
            if out.actor in failures:
                out.success, out.reason = False, failures[out.actor]
        return outcomes


async def _nothing(value: Any) -> Any:
    return value
