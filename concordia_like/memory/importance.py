"""How much a memory matters (1-10), as Generative Agents asks the model to rate it.

Many memories go in one call (a numbered list in, a list of integers out, its length and
bounds fixed by the schema), all agents' calls of a step go to the model together, and
trivial observations (waiting, idling, nothing new) score 1 without a call at all. When
the model's answer is unusable the memory gets a heuristic score: importance steers
retrieval and reflection, and a rough score is better than a crashed simulation."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, Field, create_model

from concordia_like.llm.client import LanguageModel
from concordia_like.llm.triage import triage
from concordia_like.llm.types import LLMRequest
from concordia_like.memory.constraints import int_enum
from concordia_like.memory.records import MAX_IMPORTANCE, MIN_IMPORTANCE, NewMemory

log = logging.getLogger(__name__)

_TRIVIAL = re.compile(
    r"\b(wait(s|ing|ed)?|idl(e|es|ing)|loiter(s|ing)?|sleep(s|ing)?|asleep|"
    r"nothing (new|happens|happened|much|changes|changed|of note|to report)|"
    r"does nothing|did nothing|no change)\b",
    re.I,
)
_TRIVIAL_MAX_WORDS = 10

_STRONG = re.compile(
    r"\b(die[sd]?|death|dead|kill\w*|fire|burn\w*|attack\w*|fight\w*|injur\w*|hospital|"
    r"accident|arrest\w*|stole|stolen|thie[fv]\w*|marr\w*|wedding|divorce\w*|pregnan\w*|"
    r"love[sd]?|broke up|break ?up|fired|promot\w*|elect\w*|funeral|emergency|secret)\b",
    re.I,
)
_BASE = {"observation": 3, "action": 3, "dialogue": 4, "reflection": 6, "plan": 4}

#: longest memory text quoted in a prompt (the prompt must not grow with the run)
MAX_QUOTED_CHARS = 200

SYSTEM = "You rate how much memories matter to a person. Answer with JSON only."


def is_trivial(text: str) -> bool:
    """Short statements of waiting, idling or nothing happening: importance 1, no call."""
    return len(text.split()) <= _TRIVIAL_MAX_WORDS and _TRIVIAL.search(text) is not None


def heuristic_importance(text: str, kind: str = "observation") -> int:
    """A rough score with no model: 1 for trivia, more for kinds that tend to matter,
    more again for words of life events and danger."""
    if is_trivial(text):
        return MIN_IMPORTANCE
    score = _BASE.get(kind, 3)
    if _STRONG.search(text):
        score += 4
    if "!" in text:
        score += 1
    return max(MIN_IMPORTANCE, min(MAX_IMPORTANCE, score))


Score: Any = int_enum(MIN_IMPORTANCE, MAX_IMPORTANCE)


@lru_cache(maxsize=64)
def importance_schema(n: int) -> type[BaseModel]:
    """{"scores": [exactly n integers in 1..10]}: the grammar fixes count and range."""
    return create_model(
        f"ImportanceScores{n}",
        scores=(Annotated[list[Score], Field(min_length=n, max_length=n)], ...),
    )


def importance_prompt(texts: Sequence[str], agent: str | None, persona: str | None) -> str:
    who = f" for {agent}" if agent else ""
    lines = [
        (
            "On a scale of 1 to 10, where 1 is purely mundane (e.g., brushing teeth, making "
            "the bed) and 10 is extremely poignant (e.g., a break up, college acceptance), "
            f"rate the likely poignancy of each memory{who}."
        )
    ]
    if persona:
        lines.append(f"About {agent or 'them'}: {persona[:MAX_QUOTED_CHARS]}")
    lines.append("Memories:")
    # bullets, not numbers: a small model copies list numbers into its scores
    lines += [f"- {t[:MAX_QUOTED_CHARS]}" for t in texts]
    lines.append(
        f'Answer as JSON: "scores", a list of {len(texts)} ratings from 1 to 10, one per '
        "memory, in order."
    )
    return "\n".join(lines)


class ImportanceScorer:
    """Scores the importance of many memories of many agents in one round of calls.

    With `share_across_agents` (the default), a text perceived by several agents is
    rated once for all of them with no persona in the prompt: the same event seen by
    a crowd costs one rating, which is what keeps the model budget per agent-step.
    Without it, each agent's memories are rated in its own calls, with its persona."""

    def __init__(
        self,
        lm: LanguageModel,
        *,
        per_call: int = 8,
        share_across_agents: bool = True,
        max_tokens_per_score: int = 4,
    ) -> None:
        if per_call < 1:
            raise ValueError("per_call must be at least 1")
        self.lm = lm
        self.per_call = per_call
        self.share_across_agents = share_across_agents
        self.max_tokens_per_score = max_tokens_per_score
        #: how many memories fell back to the heuristic, and why (last reasons kept)
        self.fallbacks = 0
        self.fallback_reasons: list[str] = []

    async def score(
        self, memories: Sequence[NewMemory], personas: Mapping[str, str] | None = None
    ) -> list[int]:
        """A score for each memory, in order (given importances are kept as they are)."""
        scores: list[int | None] = [m.importance for m in memories]
        # groups: (agent or None, [texts]); each distinct (group, text) rated once
        groups: dict[str | None, dict[str, list[int]]] = {}
        for i, m in enumerate(memories):
            if scores[i] is not None:
                continue
            if is_trivial(m.text):
                scores[i] = MIN_IMPORTANCE
                continue
            key = None if self.share_across_agents else m.agent
            groups.setdefault(key, {}).setdefault(m.text, []).append(i)
        jobs: list[tuple[str | None, list[str]]] = []
        for key, by_text in groups.items():
            distinct = list(by_text)
            for start in range(0, len(distinct), self.per_call):
                jobs.append((key, distinct[start : start + self.per_call]))
        if jobs:
            requests = [self._request(key, texts, personas) for key, texts in jobs]
            answers = await self.lm.complete_many(requests, return_exceptions=True)
            for (key, texts), answer in zip(jobs, answers, strict=True):
                rated = self._read(answer, texts)
                for text, value in zip(texts, rated, strict=True):
                    for i in groups[key][text]:
                        scores[i] = (
                            value
                            if value is not None
                            else heuristic_importance(text, memories[i].kind)
                        )
        return [int(s) for s in scores]  # type: ignore[arg-type]

    async def fill(
        self, memories: Sequence[NewMemory], personas: Mapping[str, str] | None = None
    ) -> list[NewMemory]:
        """The memories with every missing importance scored."""
        scores = await self.score(memories, personas)
        return [
            m if m.importance == s else replace(m, importance=s)
            for m, s in zip(memories, scores, strict=True)
        ]

    def _request(
        self, agent: str | None, texts: list[str], personas: Mapping[str, str] | None
    ) -> LLMRequest:
        persona = personas.get(agent) if personas is not None and agent is not None else None
        return LLMRequest.chat(
            importance_prompt(texts, agent, persona),
            system=SYSTEM,
            schema=importance_schema(len(texts)),
            purpose="importance",
            agent=agent,
            max_tokens=16 + self.max_tokens_per_score * len(texts),
        )

    def _read(self, answer: Any, texts: list[str]) -> list[int | None]:
        answer = triage(answer)  # anything but unusable output aborts the step
        if isinstance(answer, BaseException):
            self._fallback(f"importance of {len(texts)} memories: {answer}", len(texts))
            return [None] * len(texts)
        return [int(v) for v in answer.parsed.scores]

    def _fallback(self, reason: str, n: int) -> None:
        self.fallbacks += n
        self.fallback_reasons = [*self.fallback_reasons[-19:], reason]
        log.warning("%s; using the heuristic score", reason)
