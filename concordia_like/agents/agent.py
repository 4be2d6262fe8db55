"""An agent: a persona, what it has just perceived, and its one model call per step.

The agent holds only what a prompt needs between steps (recent observations, who is
waiting for its answer, the memories last retrieved, its plan); memories themselves
live in the memory store. Everything it holds round-trips through `to_dict`, so a
checkpoint restores an agent exactly."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from concordia_like.agents.actions import schema_for
from concordia_like.agents.persona import PersonaCard
from concordia_like.agents.prompt import MAX_OBSERVATIONS, situation, stable_prefix
from concordia_like.llm import LLMRequest
from concordia_like.memory.plans import DayPlan
from concordia_like.world.state import WorldState

ACT_MAX_TOKENS = 96


@dataclass
class Agent:
    persona: PersonaCard
    prefix: str
    observations: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_OBSERVATIONS))
    reply_to: str | None = None
    memories: list[str] = field(default_factory=list)
    #: the query those memories were retrieved for
    last_query: str | None = None
    activity: str | None = None
    #: the text of the agent's latest observation memory: what it last perceived
    news: str | None = None
    plan: DayPlan | None = None
    #: the gist of yesterday's plan, which today's is made from
    yesterday: str = ""

    @classmethod
    def create(cls, persona: PersonaCard, world_name: str, rules: list[str]) -> Agent:
        return cls(persona=persona, prefix=stable_prefix(persona, world_name, rules))

    @property
    def name(self) -> str:
        return self.persona.name

    def retrieval_parts(self) -> tuple[str, ...]:
        """What the agent's memory is asked about, in parts embedded apart (see
        RetrievalQuery): its activity, which lasts, and the latest news, which is the
        text of its latest observation memory: everyone at a place shares it, and it was
        embedded when it was stored, so the news costs a query no embedding at all."""
        activity = self.activity or "my day"
        return (activity, self.news) if self.news else (activity,)

    def act_request(self, state: WorldState, seed: int) -> LLMRequest:
        """The step's one model call: a typed action under this agent's schema."""
        here = state.location(self.name)
        held = sorted({i.name for i in state.items_held(self.name)})
        usable = sorted(set(held) | {i.name for i in state.items_held(here)})
        schema = schema_for(
            state.reachable(self.name), state.others_present(self.name), held, usable, self.name
        )
        prompt = situation(
            here=state.describe_for(self.name),
            activity=self.activity,
            memories=self.memories,
            observations=list(self.observations),
            reply_to=self.reply_to,
        )
        return LLMRequest.chat(
            prompt,
            system=self.prefix,
            schema=schema,
            purpose="act",
            agent=self.name,
            max_tokens=ACT_MAX_TOKENS,
            seed=seed,
        )

    def perceive(self, text: str) -> None:
        self.observations.append(text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "observations": list(self.observations),
            "reply_to": self.reply_to,
            "memories": list(self.memories),
            "last_query": self.last_query,
            "activity": self.activity,
            "news": self.news,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "yesterday": self.yesterday,
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.observations = deque(data.get("observations", []), maxlen=MAX_OBSERVATIONS)
        self.reply_to = data.get("reply_to")
        self.memories = list(data.get("memories", []))
        self.last_query = data.get("last_query")
        self.activity = data.get("activity")
        self.news = data.get("news")
        plan = data.get("plan")
        self.plan = DayPlan.from_dict(plan) if plan else None
        self.yesterday = data.get("yesterday", "")
