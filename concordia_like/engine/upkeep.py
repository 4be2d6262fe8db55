"""Memory upkeep around the agents' actions: activities from plans, importance of new
memories, reflection when due. Every model call here is batched across agents, like
the act calls, and amortised: plans per day and hour, reflection past a threshold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from concordia_like.agents.agent import Agent
from concordia_like.engine.events import Event
from concordia_like.llm import LanguageModel
from concordia_like.memory.importance import ImportanceScorer
from concordia_like.memory.records import NewMemory
from concordia_like.memory.stream import MemoryStore


class Upkeep:
    def __init__(self, lm: LanguageModel, memory: MemoryStore, agents: dict[str, Agent]) -> None:
        self.lm = lm
        self.memory = memory
        self.agents = agents
        self.scorer = ImportanceScorer(lm)
        self._pending: list[NewMemory] = []

    async def before_acting(self, now: datetime, step: int, seed: int) -> list[Event]:
        """Each agent's current activity: from its plan, or else its routine."""
        minutes = now.hour * 60 + now.minute
        for agent in self.agents.values():
            item = agent.persona.routine_at(minutes)
            agent.activity = item.activity if item is not None else None
        return []

    async def score(self, memories: list[NewMemory]) -> list[NewMemory]:
        return await self.scorer.fill(memories)

    async def after_step(
        self, now: datetime, memories: list[NewMemory], step: int, seed: int
    ) -> list[Event]:
        return []

    def write(self, session: Session, now: datetime) -> None:
        """Memories upkeep made this step (plans, reflections), in the step's transaction."""
        if self._pending:
            self.memory.add_many(self._pending, now=now, session=session)
            self._pending = []

    def state(self) -> dict[str, Any]:
        return {}
