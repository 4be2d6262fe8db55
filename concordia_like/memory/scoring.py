"""The retrieval score of Generative Agents (Park et al., 2023), as pure functions.

score = w_rec * recency + w_imp * importance + w_rel * relevance, each part min-max
normalised over the candidates of one query. Recency is `decay ** hours`, with hours of
*simulation* time since the memory was last retrieved. (The published code ranks
memories by their order in the stream and decays by rank, so a memory retrieved a
minute ago and one retrieved a week ago differ by one step; elapsed time is what the
paper describes, and it is what is computed here.)

Kept free of storage and models so that the numbers can be checked by hand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from concordia_like.memory.records import MemoryRecord, ScoredMemory


@dataclass(frozen=True)
class ScoringWeights:
    """Weights of the three parts, and the recency decay per simulation hour."""

    recency: float = 1.0
    importance: float = 1.0
    relevance: float = 1.0
    decay_per_hour: float = 0.995

    def __post_init__(self) -> None:
        if min(self.recency, self.importance, self.relevance) < 0:
            raise ValueError("scoring weights must not be negative")
        if not 0.0 < self.decay_per_hour <= 1.0:
            raise ValueError("decay_per_hour must be in (0, 1]")


@dataclass(frozen=True)
class Candidate:
    """A memory considered for a query, with its cosine similarity to the query."""

    record: MemoryRecord
    relevance: float


def hours_between(earlier: datetime, later: datetime) -> float:
    """Simulation hours from `earlier` to `later`, never negative (a clock that was set
    back, or a memory stamped in the future, counts as just now)."""
    return max(0.0, (later - earlier).total_seconds() / 3600.0)


def recency(last_retrieved: datetime, now: datetime, decay_per_hour: float = 0.995) -> float:
    return decay_per_hour ** hours_between(last_retrieved, now)


def min_max(values: Sequence[float]) -> list[float]:
    """Scale to [0, 1]. When all values are equal the part cannot tell candidates apart;
    each gets 0.5 (as in the reference implementation), so it shifts every score alike."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    span = hi - lo
    if span <= 1e-12:
        return [0.5] * len(values)
    return [(v - lo) / span for v in values]


def score_candidates(
    candidates: Sequence[Candidate],
    now: datetime,
    weights: ScoringWeights = ScoringWeights(),
    k: int | None = None,
) -> list[ScoredMemory]:
    """Score every candidate and return the best `k` (all if None), best first.

    Ties are broken by the newer memory (higher id) so results are deterministic."""
    if not candidates:
        return []
    rec = min_max(
        [recency(c.record.last_retrieved, now, weights.decay_per_hour) for c in candidates]
    )
    imp = min_max([float(c.record.importance) for c in candidates])
    rel = min_max([c.relevance for c in candidates])
    w_rec, w_imp, w_rel = weights.recency, weights.importance, weights.relevance
    scores = [w_rec * r + w_imp * i + w_rel * v for r, i, v in zip(rec, imp, rel, strict=True)]
    order = sorted(range(len(candidates)), key=lambda j: (-scores[j], -candidates[j].record.id))
    return [  # only the kept ones are made: a retrieval scores dozens and keeps a few
        ScoredMemory(
            record=candidates[j].record,
            score=scores[j],
            recency=rec[j],
            importance=imp[j],
            relevance=rel[j],
            raw_relevance=candidates[j].relevance,
        )
        for j in (order if k is None else order[:k])
    ]
