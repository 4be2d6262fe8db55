"""The simulation loop: one step, as data (see DESIGN.md), for either engine.

- simultaneous: every agent acts on the state as the step began; all act calls go to
  the model together, then all free-form resolutions together; actions are applied in
  a seeded order against the state as it stands.
- sequential: agents act one at a time in a seeded order, each on the state the
  previous one left, and each outcome is perceived at once.

Every step ends in one transaction (events, utterances, memories, checkpoint), so a run
killed at any moment resumes after its last committed step with no gap and no
duplicate. A step that fails in process (a server gone, a replay miss, a bug, Ctrl-C)
commits nothing and puts the simulation back as it was at the last commit, so the same
step can simply be run again. All randomness of a step derives from (seed, step), model
sampling included: a resumed run goes on exactly as an uninterrupted one would have."""

from __future__ import annotations

import asyncio
import copy
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from concordia_like.agents.agent import Agent
from concordia_like.agents.attention import AttentionPolicy
from concordia_like.engine.acting import Acting
from concordia_like.engine.events import Event, Utterance
from concordia_like.engine.hooks import (
    HOOKS_KEY,
    Announcement,
    StepHook,
    gather_inputs,
    hook_states,
    notify_committed,
    notify_observed,
    restore_hooks,
)
from concordia_like.engine.recorder import RunRecorder
from concordia_like.engine.upkeep import Upkeep, plan_places
from concordia_like.errors import ConcordiaError
from concordia_like.gm.master import GameMaster, Outcome
from concordia_like.llm import LanguageModel
from concordia_like.llm.sampling import derive_seed, step_scope
from concordia_like.llm.usage import merge_usage
from concordia_like.memory.importance import heuristic_importance
from concordia_like.memory.records import (
    MemoryRecord,
    NewMemory,
    RetrievalQuery,
    ScoredMemory,
)
from concordia_like.memory.stream import MemoryStore
from concordia_like.memory.writes import MemoryWrites
from concordia_like.store.leases import RunBusyError
from concordia_like.world.code_rules import apply_code_rules
from concordia_like.world.loader import World
from concordia_like.world.rules import apply_effects
from concordia_like.world.schedule import events_due
from concordia_like.world.state import WorldState

EngineKind = Literal["simultaneous", "sequential"]
ENGINES: tuple[str, ...] = ("simultaneous", "sequential")
RETRIEVE_K = 4
#: an observation memory's length: what a crowded place saw in one step is cut here (the
#: act prompt shows the latest lines whole); embedding cost grows with it
OBSERVATION_MAX = 600


@dataclass
class StepReport:
    """What the CLI shows of a step."""

    step: int
    sim_time: datetime
    events: list[Event]
    wall_s: float
    #: the residents awake in the step (asked or not), and why those asked were asked
    awake: list[str] = field(default_factory=list)
    asked: dict[str, list[str]] = field(default_factory=dict)


class StepDeadlineError(ConcordiaError):
    """A step ran past its deadline (`Simulation.step_timeout_s`)."""


class StepAborted(ConcordiaError):
    """A step failed for a reason that is not the model's wording: nothing of it was
    committed, and the simulation is as it was after `last_committed`."""

    def __init__(self, step: int, sim_time: datetime, last_committed: int, cause: BaseException):
        if isinstance(cause, ConcordiaError):
            what = str(cause)
        elif isinstance(cause, SQLAlchemyError):  # the driver's reason, never the SQL dump
            reason = str(getattr(cause, "orig", None) or type(cause).__name__).splitlines()
            what = f"the store failed: {reason[0] if reason else type(cause).__name__}"
        else:
            what = f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"step {step} ({sim_time:%a %H:%M}) aborted, nothing of it committed: {what}"
        )
        self.step = step
        self.last_committed = last_committed
        self.cause = cause


@dataclass
class _Committed:
    """The simulation's in-memory state as of its last commit, to go back to."""

    step: int
    world: dict[str, Any]
    agents: dict[str, dict[str, Any]]
    hooks: dict[str, Any] = field(default_factory=dict)


@dataclass
class Simulation(Acting):
    world: World
    lm: LanguageModel
    recorder: RunRecorder
    memory: MemoryStore
    run_id: str
    engine: EngineKind
    seed: int
    agents: dict[str, Agent]
    step: int = 0
    #: step hooks (engine/hooks.py), called in order at fixed points of each step
    hooks: list[StepHook] = field(default_factory=list)
    #: who is asked what they do each step (`agents.attention`)
    attention: AttentionPolicy = field(default_factory=AttentionPolicy)
    #: the most seconds a step may take, all its model calls together (None: no bound);
    #: past it the step aborts like any failed step
    step_timeout_s: float | None = None
    upkeep: Upkeep = field(init=False)
    gm: GameMaster = field(init=False)
    _usage_base: dict[str, Any] = field(default_factory=dict)
    _committed: _Committed | None = None
    #: reasons for attention perceived during the step under way, for the next one
    _noted: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.gm = GameMaster(self.world, self.lm)
        self.upkeep = Upkeep(self.lm, self.memory, self.agents)
        self.upkeep.place_names = {pid: p.name for pid, p in self.state.places.items()}
        self.upkeep.places_of = lambda n: plan_places(
            self.state, n, (r.place for r in self.agents[n].persona.routine if r.place)
        )
        self.upkeep.routine_plans = lambda: self.attention.mode == "events"

    @property
    def state(self) -> WorldState:
        return self.world.state

    def add_resident(self, agent: Agent) -> None:
        """A resident who joins between steps (the world state already holds it): it acts,
        plans and is checkpointed from the next step on, and the state a failed step goes
        back to includes it."""
        self.world.personas[agent.name] = agent.persona
        self.agents[agent.name] = agent  # the upkeep shares this dict
        self.upkeep.add_resident(agent)
        self._committed = None

    # -- one step -------------------------------------------------------------------

    async def run_step(self) -> StepReport:
        """Run and commit the next step. On any failure nothing of it is committed, the
        simulation goes back to its last commit, and `StepAborted` names the cause (an
        interrupt is put back the same way and passes through)."""
        if self._committed is None or self._committed.step != self.step:
            self._committed = self._snapshot()
        step, now = self.step + 1, self.state.clock.now
        deadline = asyncio.timeout(self.step_timeout_s)
        try:
            with step_scope(self.seed, step):
                async with deadline:
                    return await self._step(step, now)
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, RunBusyError):  # another writer has the run: no retry can work
                raise
            if isinstance(exc, TimeoutError) and deadline.expired():
                exc = StepDeadlineError(
                    f"the step did not finish within its deadline of {self.step_timeout_s:g} s "
                    "(--step-timeout)"
                )
            if isinstance(exc, Exception):
                raise StepAborted(step, now, self.step, exc) from exc
            raise

    async def _step(self, step: int, now: datetime) -> StepReport:
        start = time.perf_counter()
        rng = random.Random(derive_seed(self.seed, step, "order"))
        events: list[Event] = []
        perceived: dict[str, list[str]] = {name: [] for name in self.agents}
        self._noted = {}
        self._scheduled(now, events, perceived)
        given = await gather_inputs(self.hooks, self, step)
        for ann in given.announcements:
            self._announce(ann, {"injected": True}, events, perceived)
        events += await self.upkeep.before_acting(now)
        awake = [
            n
            for n, a in self.agents.items()
            if n not in given.actions and not self.upkeep.asleep(a, self.state.location(n))
        ]
        why = self._attend(awake, step)
        names = [n for n in awake if n in why]  # asked what they do
        piloted = [n for n in awake if n not in why]  # follow their plans by code
        touched = self._retrieve(names, now)
        if self.engine == "simultaneous":
            outcomes = await self._simultaneous(names, piloted, step, rng, why)
        else:
            outcomes = await self._sequential(names, piloted, step, rng, why)
        for n, action in given.actions.items():  # a hook's action, grounded like any
            outcomes.append(
                await self.gm.resolve_one(n, action, step_seed=derive_seed(self.seed, step))
            )
            why[n] = ["player"]
        utterances: list[Utterance] = []
        routine: set[str] = set()
        for out in outcomes:
            events.append(self._event(out, why.get(out.actor)))
            if out.actor not in why or out.actor in self._kept_to_plan:
                routine.add(out.text)
            self._route(out, perceived, utterances, now)
        self._code_rules(step, events, perceived)
        memories = self._observations(perceived, now, routine)
        for name, reasons in self._noted.items():  # perceived now, acted on next step
            for reason in sorted(reasons):
                self.agents[name].attention.note(reason)
        notify_observed(self.hooks, self, step, events, perceived)
        memories = await self.upkeep.score(memories)
        self.state.clock.advance()
        self.step = step
        events += await self.upkeep.after_step(now, memories)

        writes = MemoryWrites()
        writes.touch(*touched)
        writes.add(memories)
        writes.extend(self.upkeep.take_writes())

        def in_transaction(session: Session) -> None:
            writes.write(self.memory, now, session=session)

        wall = time.perf_counter() - start
        committed = _Committed(
            step,
            self.state.to_dict(),
            {n: a.to_dict() for n, a in self.agents.items()},
            hook_states(self.hooks),
        )
        self.recorder.commit_step(
            self.run_id,
            step,
            now,
            events,
            utterances,
            world=committed.world,
            agents={**committed.agents, HOOKS_KEY: committed.hooks}
            if committed.hooks
            else committed.agents,
            usage=self.usage(),
            wall_s=wall,
            extra=in_transaction,
        )
        self._committed = committed
        report = StepReport(step, now, events, wall, awake, why)
        notify_committed(self.hooks, self, report)
        return report

    def _snapshot(self) -> _Committed:
        return _Committed(
            self.step,
            self.state.to_dict(),
            {n: a.to_dict() for n, a in self.agents.items()},
            hook_states(self.hooks),
        )

    def _rollback(self) -> None:
        """Back to the last commit: world, clock, step, agents, upkeep's pending writes."""
        c = self._committed
        assert c is not None
        self.world.state = WorldState.from_dict(copy.deepcopy(c.world))
        for name, data in c.agents.items():
            self.agents[name].restore(copy.deepcopy(data))
        restore_hooks(self.hooks, copy.deepcopy(c.hooks))
        self.step = c.step
        self.upkeep.discard()

    # -- the world talking back -------------------------------------------------------

    def _announce(
        self,
        ann: Announcement,
        data: dict[str, Any],
        events: list[Event],
        perceived: dict[str, list[str]],
    ) -> None:
        """The one way something is announced, whoever brings it (the world's schedule,
        its code rules, a hook): an event in the log, and a line perceived by everyone
        at its place (everyone, with no place; only its addressees, with `to`)."""
        if ann.to is not None:
            data = {**data, "to": list(ann.to)}
        events.append(Event("announcement", ann.text, place=ann.place, data=data))
        if ann.to is not None:
            hearers = [n for n in dict.fromkeys(ann.to) if n in self.agents]
        elif ann.place is None:
            hearers = list(self.agents)
        else:  # by the state's index of who is where, not a scan of the residents
            hearers = [n for n in self.state.agents_at(ann.place) if n in self.agents]
        # something from outside the world, or the world's own news: either calls for
        # a choice at the resident's next step
        reason = "intervention" if data.get("injected") else "news"
        for name in hearers:
            perceived[name].append(ann.text)
            self._noted.setdefault(name, set()).add(reason)

    def _scheduled(
        self, now: datetime, events: list[Event], perceived: dict[str, list[str]]
    ) -> None:
        for occ in events_due(self.state.events, now, now + self.state.clock.step):
            result = apply_effects(self.state, list(occ.effects))
            text = occ.text if result.ok else f"{occ.text} (could not happen: {result.reason})"
            ann = Announcement(text, occ.place)
            self._announce(ann, {"event": occ.event.id}, events, perceived)

    def _code_rules(self, step: int, events: list[Event], perceived: dict[str, list[str]]) -> None:
        """The world's code rules due at the end of this step (a commons regrowing),
        after everyone acted: applied to the state the step commits, logged and
        perceived at their place like a scheduled event."""
        for out in apply_code_rules(self.state, step):
            self._announce(Announcement(out.text, out.place), out.data, events, perceived)

    def _perceivers(self, out: Outcome) -> set[str]:
        who = {a for p in out.places for a in self.state.agents_at(p)}
        return who | set(out.addressees) | {out.actor}

    def _route(
        self,
        out: Outcome,
        perceived: dict[str, list[str]],
        utterances: list[Utterance],
        now: datetime,
    ) -> None:
        for name in self._perceivers(out):
            perceived[name].append(out.text)
        for name, lines in out.notices.items():  # through an app, wherever they are
            perceived[name].extend(lines)
            if name != out.actor:
                self._noted.setdefault(name, set()).add("message")
        actor = self.agents[out.actor]
        if not out.success and out.reason:
            actor.perceive(f"You could not do that: {out.reason}")
        if out.success and out.said is None:  # given something: news for the receiver
            for to in out.addressees:
                if to != out.actor:
                    self._noted.setdefault(to, set()).add("news")
        if out.said is not None and out.success:
            for to in self._unanswered(out):  # not answered in the same conversation
                self.agents[to].reply_to = f'{out.actor} said to you: "{out.said}"'
            pair = sorted([out.actor, *out.addressees])
            utterances.append(
                Utterance(
                    conversation=f"{'|'.join(pair)}@{now:%Y-%m-%d}",
                    speaker=out.actor,
                    addressees=list(out.addressees),
                    place=out.places[0],
                    text=out.said,
                )
            )

    def _observations(
        self, perceived: dict[str, list[str]], now: datetime, routine: set[str]
    ) -> list[NewMemory]:
        """One observation memory per agent and step. Agents at one place perceive the
        same lines in the same order, so their memories share one text: embedded once,
        rated once, however many perceive it. A memory of nothing but residents following
        their plans (`routine`: by code, or asked and choosing to carry on, which
        follows the plan by the same code) is rated by rule, with no call: a quiet step
        costs nothing, and a resident keeping to its plan is no news to replan for."""
        memories = []
        for name, lines in perceived.items():
            if not lines:
                continue
            text = " ".join(dict.fromkeys(lines))[:OBSERVATION_MAX]
            rated = heuristic_importance(text) if routine.issuperset(lines) else None
            memories.append(NewMemory(agent=name, text=text, created=now, importance=rated))
            self.agents[name].news = text
            # the sequential engine told others at once; announcements and one's own
            # outcome reach the recent observations here under both engines
            for line in lines:
                if line not in self.agents[name].observations:
                    self.agents[name].perceive(line)
        return memories

    def _retrieve(
        self, names: list[str], now: datetime
    ) -> tuple[list[RetrievalQuery], list[list[ScoredMemory]]]:
        """Memories for the agents about to act, in one batched retrieval. An agent
        whose query has not changed since it last retrieved keeps what it found: the
        query changes with its activity and its latest news, and memories it made
        meanwhile (plans, insights) come up at the next change.
        Retrieval times are moved in the step's transaction."""
        queries = []
        for n in names:
            parts = self.agents[n].new_query()
            if parts is not None:
                queries.append(RetrievalQuery(n, " | ".join(parts), now, RETRIEVE_K, parts))
        results = self.memory.retrieve_many(queries, touch=False)
        for q, found in zip(queries, results, strict=True):
            self.agents[q.agent].memories = [m.record.text for m in found]
        return queries, results

    @staticmethod
    def _event(out: Outcome, why: list[str] | None) -> Event:
        """The outcome's event; its data says why the actor was asked (`why`), or that
        it followed its plan by code (`autopilot`)."""
        kind = "speech" if out.said is not None and out.success else "action"
        if not out.success and out.reason:
            kind = "failure"
        data: dict[str, Any] = {
            "action": out.action,
            "effects": out.effects,
            "success": out.success,
        }
        if why is not None:
            data["why"] = why
        else:
            data["autopilot"] = True
        if out.reason:
            data["reason"] = out.reason
        text = out.text if not out.reason else f"{out.text} [{out.reason}]"
        return Event(kind, text, actor=out.actor, place=out.places[0], data=data)

    # -- from outside the world ---------------------------------------------------------

    def plant_memory(self, agent: str, text: str) -> MemoryRecord:
        """A memory given to a resident between steps (the sandbox's whisper), committed
        now. Its next retrieval is asked afresh so that it can come to mind from the next
        step on, and the state a failed step goes back to includes that."""
        with self.recorder.writing(self.run_id) as session:  # only while this run is ours
            [record] = self.memory.add_many(
                [NewMemory(agent=agent, text=text, created=self.state.now)], session=session
            )
        self.agents[agent].query_key = None
        self.agents[agent].attention.note("whisper")  # it has something new on its mind
        self._committed = None  # snapshot again at the next step
        return record

    # -- lifetime -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the model, the memory store (its index buffer flushed) and the recorder."""
        try:
            await self.lm.aclose()
        finally:
            self.memory.close()
            self.recorder.close()

    async def __aenter__(self) -> Simulation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- accounting -------------------------------------------------------------------

    def usage(self) -> dict[str, Any]:
        """Usage of the whole run, including what earlier sessions of it spent."""
        now = self.lm.usage.summary()
        return merge_usage(self._usage_base, now)


RUN_FOLDER = Path("memory")
