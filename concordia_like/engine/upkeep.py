"""Memory upkeep around the agents' actions: plans, importance of new memories,
reflection when due.

Every model call here is batched across agents, like the act calls, and amortised: a
day plan per agent per day, a decomposition per agent per hour, importance per distinct
text, reflection only past its threshold, replanning only for important news. Nothing
is written to the store while the step is under way: plan and reflection memories,
reflection marks and retrieval times wait for `write`, which runs inside the step's
transaction, so a step re-run after a crash sees the store exactly as the first attempt
did."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from concordia_like.agents.agent import Agent
from concordia_like.agents.planning import PlanContext, Planner, PlanningConfig
from concordia_like.engine.events import Event
from concordia_like.llm import LanguageModel
from concordia_like.memory.importance import ImportanceScorer
from concordia_like.memory.records import MemoryRecord, NewMemory
from concordia_like.memory.reflection import ReflectionConfig, Reflector
from concordia_like.memory.stream import MemoryStore
from concordia_like.memory.writes import MemoryWrites
from concordia_like.world.persona import PersonaCard
from concordia_like.world.state import WorldState

SLEEPING = "sleeping"
PLAN_PERSONA_CHARS = 400
#: the most places a resident's plan may name: a plan call's schema and prompt must not
#: grow with the world (a city has thousands; a town offers all of its own)
PLAN_PLACES = 24


@dataclass(frozen=True)
class UpkeepConfig:
    planning: PlanningConfig = field(default_factory=PlanningConfig)
    reflection: ReflectionConfig = field(default_factory=ReflectionConfig)
    bedtime_hour: int = 23


def planning_persona(card: PersonaCard) -> str:
    """Who plans: the card's gist and its usual day, which a plan should resemble."""
    usual = "; ".join(f"{r.at} {r.activity}" for r in sorted(card.routine, key=lambda r: r.minutes))
    text = card.prompt_text(PLAN_PERSONA_CHARS - min(len(usual), 200) - 12)
    return f"{text} Usual day: {usual[:200]}" if usual else text


def wake_hour(card: PersonaCard) -> int:
    """The hour of the first entry of the routine (7 without one)."""
    if not card.routine:
        return 7
    return min(r.minutes for r in card.routine) // 60


class Upkeep:
    def __init__(
        self,
        lm: LanguageModel,
        memory: MemoryStore,
        agents: dict[str, Agent],
        config: UpkeepConfig = UpkeepConfig(),
    ) -> None:
        self.lm = lm
        self.memory = memory
        self.agents = agents
        self.config = config
        self.scorer = ImportanceScorer(lm)
        #: what planning and reflection made this step for the store, written by the
        #: engine in the step's transaction (see `take_writes`)
        self._planned = MemoryWrites()
        self._reflected = MemoryWrites()
        self.planner = Planner(lm, memory, config.planning, writes=self._planned)
        self.reflector = Reflector(lm, memory, config.reflection)
        self._personas = {n: planning_persona(a.persona) for n, a in agents.items()}
        #: place id -> name, for the places plans name (the engine sets it)
        self.place_names: dict[str, str] = {}
        #: a resident's name -> ids of the places its plans may name (the engine sets
        #: it: `plan_places`; unset, every place)
        self.places_of: Callable[[str], tuple[str, ...]] = lambda _: tuple(self.place_names)
        #: a resident's name -> its plan places' names -> their ids (`_plan_places`)
        self._places: dict[str, dict[str, str]] = {}
        #: whether a resident with nothing new since its last plan keeps its routine
        #: with no plan call (the engine's attention policy says: `events`)
        self.routine_plans: Callable[[], bool] = lambda: False

    def add_resident(self, agent: Agent) -> None:
        """Plan and reflect for a resident who joined (the agents dict is shared)."""
        self._personas[agent.name] = planning_persona(agent.persona)

    async def before_acting(self, now: datetime) -> list[Event]:
        """Reflect where due (on what earlier steps committed), then bring every plan up
        to `now` and set each agent's current activity."""
        events = await self._reflect(now)
        plans = {n: a.plan for n, a in self.agents.items() if a.plan is not None}
        before = dict(plans)
        contexts = list(self._contexts().values())
        activities = await self.planner.step(contexts, plans, now)
        for name, agent in self.agents.items():
            plan, old = plans.get(name), before.get(name)
            if plan is not None and (old is None or old.day != plan.day):
                if old is not None:
                    agent.yesterday = old.describe()
                events.append(Event("plan", f"{name} plans the day: {plan.describe()}", actor=name))
            agent.plan = plan
            agent.activity = activities[name].description
        return events

    def _contexts(self) -> dict[str, PlanContext]:
        """What each agent plans from."""
        return {
            n: PlanContext(
                agent=n,
                persona=self._personas[n],
                yesterday=a.yesterday,
                wake_hour=wake_hour(a.persona),
                bedtime_hour=self.config.bedtime_hour,
                routine=self._routine(a.persona),
                places=tuple(self._plan_places(n)),
                place_ids=self._plan_places(n),
                prefix=a.prefix,
                news=tuple(sorted(a.attention.since_plan)) if self.routine_plans() else None,
            )
            for n, a in self.agents.items()
        }

    def _plan_places(self, name: str) -> dict[str, str]:
        """The names of the places `name`'s plans may name, with their ids, found once
        (the map does not change, nor does a resident's home). A name that several
        places bear (a street of each district) stands for the first of them here,
        which is the resident's own or the nearest to its home (`plan_places`)."""
        found = self._places.get(name)
        if found is None:
            found = {}
            for pid in self.places_of(name):
                found.setdefault(self.place_names.get(pid, pid), pid)
            self._places[name] = found
        return found

    def _routine(self, card: PersonaCard) -> tuple[tuple[int, str, str | None], ...]:
        """The card's usual day as a plan's skeleton, places by name."""
        return tuple(
            (r.minutes, r.activity, self.place_names.get(r.place, r.place) if r.place else None)
            for r in sorted(card.routine, key=lambda r: r.minutes)
        )

    async def _reflect(self, now: datetime) -> list[Event]:
        due = self.reflector.due(list(self.agents))
        if not due:
            return []
        pending = await self.reflector.prepare(due, now, self._personas)
        self._reflected.extend(pending.writes)
        return [
            Event("reflection", f"{m.agent} concludes: {m.text}", actor=m.agent)
            for m in pending.insights
        ]

    async def score(self, memories: list[NewMemory]) -> list[NewMemory]:
        return await self.scorer.fill(memories)

    async def after_step(self, now: datetime, memories: list[NewMemory]) -> list[Event]:
        """Let agents whose news is important enough change the rest of their day."""
        plans = {n: a.plan for n, a in self.agents.items() if a.plan is not None}
        news = [
            MemoryRecord(0, m.agent, m.text, m.kind, now, now, m.importance or 1) for m in memories
        ]
        changed = await self.planner.react(news, plans, now, self._contexts())
        events = []
        for name, did in changed.items():
            if did:
                plan = plans[name]
                self.agents[name].plan = plan
                events.append(
                    Event("plan", f"{name} changes plans: {plan.describe(now)}", actor=name)
                )
        return events

    def take_writes(self) -> MemoryWrites:
        """What upkeep made this step for the store (plan notes, then reflections),
        handed over once, for the step's transaction."""
        writes = self._planned.take()
        writes.extend(self._reflected.take())
        return writes

    def discard(self) -> None:
        """Forget what an aborted step made: nothing of it is to be written."""
        self.take_writes()

    def asleep(self, agent: Agent, location: str) -> bool:
        """In bed at home: such an agent needs no model call this step, unless spoken to."""
        return (
            agent.activity == SLEEPING and location == agent.persona.home and agent.reply_to is None
        )


def plan_places(state: WorldState, name: str, usual: Iterable[str]) -> tuple[str, ...]:
    """Ids of the places `name`'s plans may name: every place of a world with no more
    than `PLAN_PLACES`; else its `usual` places (its routine's), its home, and the
    places nearest its home on the map, others' homes left out, up to `PLAN_PLACES`."""
    if len(state.places) <= PLAN_PLACES:
        return tuple(state.places)
    home = state.agents[name].home
    chosen = dict.fromkeys([p for p in usual if p in state.places] + [home])
    seen, queue = {home}, deque([home])
    while queue and len(chosen) < PLAN_PLACES:
        place = queue.popleft()
        if state.places[place].kind != "home":
            chosen[place] = None
        for nxt in state.neighbours(place):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return tuple(chosen)
