"""Reflection: agents turn what happened to them into higher-level insights.

As in Generative Agents: when the summed importance of an agent's experiences since its
last reflection reaches a threshold, the agent asks itself the most salient questions
its recent memories raise, retrieves memories for each, and infers insights that cite
the memories they rest on. Insights are stored as `reflection` memories with those ids
as evidence, and are retrieved like any other memory.

Every agent due in a step reflects in the same three rounds: one batch of question
calls, one batched retrieval, one batch of insight calls. Prompts quote a bounded number
of memories, so they do not grow with the run. A model answer that is unusable skips
that agent's reflection (logged) and still moves its mark, so a model that keeps failing
costs no more calls than one that succeeds."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, create_model
from sqlalchemy.orm import Session

from concordia_like.llm.client import LanguageModel
from concordia_like.llm.triage import triage
from concordia_like.llm.types import LLMRequest
from concordia_like.memory.constraints import int_enum
from concordia_like.memory.records import (
    MAX_IMPORTANCE,
    MIN_IMPORTANCE,
    MemoryRecord,
    NewMemory,
    RetrievalQuery,
)
from concordia_like.memory.stream import MemoryStore
from concordia_like.memory.writes import MemoryWrites
from concordia_like.text import squash

log = logging.getLogger(__name__)

SYSTEM = "You help a person reflect on their memories. Answer with JSON only."


@dataclass(frozen=True)
class ReflectionConfig:
    #: summed importance of experiences since the last reflection that triggers one
    threshold: int = 150
    #: newest memories quoted when asking for questions
    recent_quoted: int = 15
    questions: int = 3
    #: memories retrieved per question
    per_question: int = 5
    #: memories quoted (numbered) when asking for insights, all questions together
    statements: int = 12
    insights: int = 3
    max_chars: int = 160


@lru_cache(maxsize=8)
def questions_schema(n_questions: int) -> type[BaseModel]:
    """Up to n short questions."""
    question = Annotated[str, StringConstraints(min_length=3, max_length=100)]
    return create_model(
        f"Questions{n_questions}",
        questions=(Annotated[list[question], Field(min_length=1, max_length=n_questions)], ...),
    )


@lru_cache(maxsize=32)
def insights_schema(n_statements: int, n_insights: int, max_chars: int) -> type[BaseModel]:
    """Insights citing statements 1..n: the schema bounds the citations to real numbers."""
    cite: Any = int_enum(1, max(1, n_statements))
    insight = create_model(
        "Insight",
        text=(Annotated[str, StringConstraints(min_length=3, max_length=max_chars)], ...),
        because=(Annotated[list[cite], Field(min_length=1, max_length=5)], ...),
        importance=(int_enum(MIN_IMPORTANCE, MAX_IMPORTANCE), ...),
    )
    return create_model(
        f"Insights{n_statements}",
        insights=(Annotated[list[insight], Field(min_length=1, max_length=n_insights)], ...),
    )


@dataclass
class ReflectionOutcome:
    agent: str
    questions: list[str] = field(default_factory=list)
    insights: list[MemoryRecord] = field(default_factory=list)
    #: why no insights were written, when none were
    skipped: str | None = None


@dataclass
class PendingReflection:
    """Reflections thought out but not yet stored: the insights, the agents' marks and
    the last-retrieved times of what the questions retrieved, as memory writes."""

    outcomes: list[ReflectionOutcome]
    writes: MemoryWrites

    @property
    def insights(self) -> list[NewMemory]:
        return self.writes.memories


def _clean(text: str) -> str:
    """Model text without the list numbering or bullets it tends to copy from prompts."""
    return re.sub(r"^\s*(?:\d+[.)]|[-*•])\s*", "", squash(text)).strip()


def _numbered(records: Sequence[MemoryRecord], max_chars: int) -> str:
    return "\n".join(f"{i}. {r.text[:max_chars]}" for i, r in enumerate(records, 1))


def _about(agent: str, persona: str | None, max_chars: int) -> str:
    return f"About {agent}: {persona[: max_chars * 2]}\n" if persona else ""


class Reflector:
    def __init__(
        self, lm: LanguageModel, store: MemoryStore, config: ReflectionConfig = ReflectionConfig()
    ) -> None:
        self.lm = lm
        self.store = store
        self.config = config

    def due(self, agents: Sequence[str]) -> list[str]:
        """Agents whose experiences since their last reflection reach the threshold."""
        totals = self.store.importance_since_reflection(agents)
        return [a for a in agents if totals[a][0] >= self.config.threshold]

    async def reflect_due(
        self, agents: Sequence[str], now: datetime, personas: Mapping[str, str] | None = None
    ) -> list[ReflectionOutcome]:
        """Reflect for every agent among `agents` that is due (all in one batch)."""
        due = self.due(agents)
        return await self.reflect(due, now, personas) if due else []

    async def reflect(
        self, agents: Sequence[str], now: datetime, personas: Mapping[str, str] | None = None
    ) -> list[ReflectionOutcome]:
        """Reflect now for each agent given, due or not, and store the insights."""
        return self.commit(await self.prepare(agents, now, personas), now)

    async def prepare(
        self, agents: Sequence[str], now: datetime, personas: Mapping[str, str] | None = None
    ) -> PendingReflection:
        """The model's part of reflecting (questions, retrieval, insights) with nothing
        written: its writes wait in the result, for `commit` or an engine's step
        transaction."""
        cfg = self.config
        personas = personas or {}
        marks = {
            a: newest for a, (_, newest) in self.store.importance_since_reflection(agents).items()
        }
        outcomes = {a: ReflectionOutcome(a) for a in agents}

        # 1. questions from each agent's newest memories
        recent = {
            a: self.store.recent(
                a, cfg.recent_quoted, kinds=("observation", "action", "dialogue", "reflection")
            )
            for a in agents
        }
        asking = [a for a in agents if recent[a]]
        for a in agents:
            if not recent[a]:
                outcomes[a].skipped = "no memories to reflect on"
        answers = await self.lm.complete_many(
            [self._questions_request(a, recent[a][::-1], personas.get(a)) for a in asking],
            return_exceptions=True,
        )
        questions: dict[str, list[str]] = {}
        for a, answer in zip(asking, answers, strict=True):
            parsed = self._parsed(answer, a, "questions", outcomes[a])
            if parsed is not None:
                asked = [_clean(q) for q in parsed.questions[: cfg.questions]]
                questions[a] = [q for q in dict.fromkeys(asked) if q]
                outcomes[a].questions = questions[a]

        # 2. one batched retrieval for every question of every agent
        queries = [
            RetrievalQuery(a, q, now, cfg.per_question) for a, qs in questions.items() for q in qs
        ]
        # touched at `commit`, in the caller's transaction: a step re-run after a crash
        # must score recency as its first attempt did
        found = self.store.retrieve_many(queries, touch=False) if queries else []
        statements: dict[str, list[MemoryRecord]] = {a: [] for a in questions}
        seen: dict[str, set[int]] = {a: set() for a in questions}
        for rank in range(cfg.per_question):  # interleave questions: each gets its best first
            for q, result in zip(queries, found, strict=True):
                if rank < len(result) and len(statements[q.agent]) < cfg.statements:
                    rec = result[rank].record
                    if rec.id not in seen[q.agent]:
                        seen[q.agent].add(rec.id)
                        statements[q.agent].append(rec)

        # 3. insights citing the numbered statements
        inferring = [a for a in questions if statements[a]]
        for a in questions:
            if not statements[a]:
                outcomes[a].skipped = "retrieval found nothing for the questions"
        answers = await self.lm.complete_many(
            [self._insights_request(a, statements[a], personas.get(a)) for a in inferring],
            return_exceptions=True,
        )
        new: list[NewMemory] = []
        for a, answer in zip(inferring, answers, strict=True):
            parsed = self._parsed(answer, a, "insights", outcomes[a])
            if parsed is None:
                continue
            for ins in parsed.insights[: cfg.insights]:
                cited = [
                    statements[a][i - 1].id for i in ins.because if 1 <= i <= len(statements[a])
                ]
                cited = list(dict.fromkeys(cited))
                text = _clean(ins.text)
                if not cited or not text:
                    continue  # an insight that rests on nothing real is not kept
                if any(m.agent == a and m.text == text for m in new):
                    continue  # small models repeat themselves
                new.append(NewMemory(a, text, "reflection", now, ins.importance, tuple(cited)))
            if not any(m.agent == a for m in new):
                outcomes[a].skipped = "no insight cited a real memory"

        for o in outcomes.values():
            if o.skipped:
                log.info("reflection of %s skipped: %s", o.agent, o.skipped)
        writes = MemoryWrites()
        writes.touch(queries, found)
        writes.add(new)
        writes.mark(marks)
        return PendingReflection([outcomes[a] for a in agents], writes)

    def commit(
        self, pending: PendingReflection, now: datetime, *, session: Session | None = None
    ) -> list[ReflectionOutcome]:
        """Store prepared insights and move the agents' marks (in `session`'s
        transaction when given). The marks move even where no insight was kept."""
        outcomes = {o.agent: o for o in pending.outcomes}
        for record in pending.writes.write(self.store, now, session=session):
            outcomes[record.agent].insights.append(record)
        return pending.outcomes

    def _parsed(self, answer: Any, agent: str, what: str, outcome: ReflectionOutcome) -> Any:
        answer = triage(answer)  # anything but unusable output aborts the step
        if isinstance(answer, BaseException):
            outcome.skipped = f"unusable {what} from the model: {answer}"
            log.warning("reflection of %s: %s", agent, outcome.skipped)
            return None
        return answer.parsed

    def _questions_request(
        self, agent: str, records: Sequence[MemoryRecord], persona: str | None
    ) -> LLMRequest:
        n = self.config.questions
        prompt = (
            f"{_about(agent, persona, self.config.max_chars)}"
            f"Statements about {agent}:\n{_numbered(records, self.config.max_chars)}\n\n"
            f"Given only the statements above, what are the {n} most salient high-level "
            f"questions we can answer about the subjects in the statements?\n"
            f'Answer as JSON: "questions", a list of at most {n} short questions.'
        )
        return LLMRequest.chat(
            prompt,
            system=SYSTEM,
            schema=questions_schema(n),
            purpose="reflect",
            agent=agent,
            max_tokens=40 * n + 16,
        )

    def _insights_request(
        self, agent: str, records: Sequence[MemoryRecord], persona: str | None
    ) -> LLMRequest:
        cfg = self.config
        prompt = (
            f"{_about(agent, persona, cfg.max_chars)}"
            f"Statements about {agent}:\n{_numbered(records, cfg.max_chars)}\n\n"
            f"What {cfg.insights} high-level insights about {agent} can you infer from the "
            f"statements above? For each, cite the numbers of the statements it rests on "
            f"and rate its importance from 1 to 10.\n"
            'Answer as JSON: "insights", a list of {"text", "because" (statement numbers), '
            '"importance"}.'
        )
        return LLMRequest.chat(
            prompt,
            system=SYSTEM,
            schema=insights_schema(len(records), cfg.insights, cfg.max_chars),
            purpose="reflect",
            agent=agent,
            max_tokens=(cfg.max_chars // 3 + 30) * cfg.insights + 16,
        )
