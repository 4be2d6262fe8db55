"""The memory record and the small value types that travel with it.

Plain dataclasses: the SQL rows (store/memory_tables.py) and the Chroma entries are
storage details; everything above the store (scoring, reflection, planning, agents) sees
only these, so that the storage can change without touching them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

MemoryKind = Literal["observation", "action", "dialogue", "reflection", "plan"]
MEMORY_KINDS: tuple[str, ...] = get_args(MemoryKind)

#: kinds whose importance counts toward the next reflection (an agent's own reflections
#: and plans are derived from memories, so counting them would make reflection feed itself)
EXPERIENCE_KINDS: tuple[str, ...] = ("observation", "action", "dialogue")

MIN_IMPORTANCE = 1
MAX_IMPORTANCE = 10


@dataclass(frozen=True)
class NewMemory:
    """A memory about to be stored. `importance` may be left None for the importance
    scorer to fill; `evidence` names the memory ids a reflection rests on."""

    agent: str
    text: str
    kind: MemoryKind = "observation"
    created: datetime | None = None
    importance: int | None = None
    evidence: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in MEMORY_KINDS:
            raise ValueError(f"memory kind {self.kind!r} is not one of {MEMORY_KINDS}")
        if not self.agent:
            raise ValueError("a memory needs an owner (agent)")
        if not self.text.strip():
            raise ValueError(f"empty memory text for agent {self.agent!r}")
        if self.importance is not None and not (
            MIN_IMPORTANCE <= self.importance <= MAX_IMPORTANCE
        ):
            raise ValueError(f"importance {self.importance} is outside 1..10")


@dataclass(frozen=True)
class MemoryRecord:
    """A stored memory. `last_retrieved` starts equal to `created`: recency decays from
    the last time the memory came to mind, and a new memory has just come to mind."""

    id: int
    agent: str
    text: str
    kind: MemoryKind
    created: datetime
    last_retrieved: datetime
    importance: int
    evidence: tuple[int, ...] = ()


@dataclass(frozen=True)
class RetrievalQuery:
    """One retrieval: the `k` memories of `agent` that best answer `text` at sim time `now`.

    With `parts`, the query is about each part at once (an activity and the latest
    news): its vector is the normalised sum of the parts' vectors, so a memory's
    relevance is its mean similarity to the parts, and `text` only names the query. The
    parts are embedded once each and cached by text, so queries made of an agent's
    activity (which lasts an hour) and of news seen by everyone at a place cost a
    fraction of a query text distinct per agent and step."""

    agent: str
    text: str
    now: datetime
    k: int = 5
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoredMemory:
    """A retrieved memory with its score and the normalised parts the score is made of
    (kept so that prompts, logs and tests can show why a memory came up)."""

    record: MemoryRecord
    score: float
    recency: float
    importance: float
    relevance: float
    raw_relevance: float = field(default=0.0)
