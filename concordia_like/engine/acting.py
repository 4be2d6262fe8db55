"""How a step's residents act: who is asked (attention), their act calls under either
engine, the words of what they say, and the plans of those who follow them by code.

A mixin of `engine.simulation.Simulation`, apart so that each module keeps one job:
the simulation runs and commits a step, this decides what its residents do in it."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from concordia_like.agents.actions import ActionBase, to_action
from concordia_like.agents.attention import AttentionPolicy, attend, is_social, why_text
from concordia_like.agents.autopilot import follow_plan, pilot
from concordia_like.agents.speech import write_speech
from concordia_like.gm.master import GameMaster, Outcome
from concordia_like.llm.sampling import derive_seed
from concordia_like.llm.triage import triage

if TYPE_CHECKING:
    from concordia_like.agents.agent import Agent
    from concordia_like.llm import LanguageModel
    from concordia_like.world.state import WorldState


class Acting:
    """The acting part of a step (see the module's text)."""

    agents: dict[str, Agent]
    lm: LanguageModel
    gm: GameMaster
    seed: int
    attention: AttentionPolicy

    @property
    def state(self) -> WorldState:  # the simulation's
        raise NotImplementedError

    def _perceivers(self, out: Outcome) -> set[str]:  # the simulation's
        raise NotImplementedError

    def _attend(self, awake: list[str], step: int) -> dict[str, list[str]]:
        """Who of the `awake` residents is asked what it does, and why (see
        `agents.attention`); the others follow their plans by code."""
        why: dict[str, list[str]] = {}
        for n in awake:
            reasons = attend(self.agents[n], self.state, step, self.attention)
            if reasons:
                why[n] = reasons
                self.agents[n].attention.asked(step)
        return why

    def _act_request(self, n: str, step: int, why: dict[str, list[str]]) -> Any:
        request = self.agents[n].act_request(
            self.state, derive_seed(self.seed, step, n), social=is_social(self.attention, why[n])
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
        requests = [self._act_request(n, step, why) for n in names]
        answers = await self.lm.complete_many(requests, return_exceptions=True)
        actions, failures = await self._decide(names, answers, step)
        chosen = list(zip(names, actions, strict=True))
        for n in piloted:  # against the state as the step began, as everyone acts
            action = pilot(self.agents[n], self.state)
            if action is not None:
                chosen.append((n, action))
        outcomes = await self.gm.resolve(chosen, rng, step_seed=derive_seed(self.seed, step))
        return self._mark_undecided(outcomes, failures)

    async def _sequential(
        self,
        names: list[str],
        piloted: list[str],
        step: int,
        rng: random.Random,
        why: dict[str, list[str]],
    ) -> list[Outcome]:
        order = names + piloted
        rng.shuffle(order)
        outcomes = []
        for n in order:
            failures: dict[str, str] = {}
            if n in why:
                answers = await self.lm.complete_many(
                    [self._act_request(n, step, why)], return_exceptions=True
                )
                actions, failures = await self._decide([n], answers, step)
                action = actions[0]
            else:  # on the state as the residents before it left it
                action = pilot(self.agents[n], self.state)
                if action is None:
                    continue
            # the same seed as the simultaneous engine's (the request's agent tells
            # one actor's resolution from another's)
            out = await self.gm.resolve_one(n, action, step_seed=derive_seed(self.seed, step))
            self._mark_undecided([out], failures)
            for name in self._perceivers(out):
                if name != n:
                    self.agents[name].perceive(out.text)
            outcomes.append(out)
        return outcomes

    async def _decide(
        self, names: list[str], answers: list[Any], step: int
    ) -> tuple[list[Any], dict[str, str]]:
        """The actions of the act answers: decisions made full, the words of every
        `say` written in one batch of speech calls (`agents.speech`). A speaker whose
        words come out degenerate twice hesitates, with the reason in its event."""
        decisions, failures = self._read_actions(names, answers)
        wants = [
            (n, d.to)
            for n, d in zip(names, decisions, strict=True)
            if d is not None and d.kind == "say" and not isinstance(d, ActionBase)
        ]
        spoken = (
            await write_speech(
                self.lm, self.agents, wants, lambda n, k: derive_seed(self.seed, step, n, k)
            )
            if wants
            else {}
        )
        actions = []
        for n, d in zip(names, decisions, strict=True):
            if d is None or isinstance(d, ActionBase):
                actions.append(d)
            elif d.kind == "say":
                words = spoken[n]
                if words.text is None:
                    actions.append(None)
                    failures[n] = f"speech dropped: {words.reason}"
                else:
                    self.agents[n].last_said.append(words.text)
                    actions.append(to_action(d, words.text))
            elif d.kind == "continue":  # carrying on with the plan: on its way, or at it
                actions.append(follow_plan(self.agents[n], self.state))
            else:
                actions.append(to_action(d, self.agents[n].activity or "a moment"))
        return actions, failures

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
