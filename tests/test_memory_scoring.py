"""The retrieval score against hand-computed examples (no model, no storage)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from concordia_like.memory.records import MemoryRecord
from concordia_like.memory.scoring import (
    Candidate,
    ScoringWeights,
    hours_between,
    min_max,
    recency,
    score_candidates,
)

NOW = datetime(2024, 1, 1, 12, 0)


def rec(mid: int, hours_ago: float, importance: int) -> MemoryRecord:
    when = NOW - timedelta(hours=hours_ago)
    return MemoryRecord(mid, "Klaus", f"memory {mid}", "observation", when, when, importance)


def test_recency_decays_with_simulation_hours_since_last_retrieval():
    assert recency(NOW, NOW) == 1.0
    assert recency(NOW - timedelta(hours=10), NOW) == pytest.approx(0.9511101304657719)
    assert recency(NOW - timedelta(hours=24), NOW) == pytest.approx(0.8866535105013078)
    assert recency(NOW - timedelta(hours=2), NOW, decay_per_hour=0.5) == pytest.approx(0.25)
    # a memory stamped after `now` (clock set back) counts as just retrieved
    assert recency(NOW + timedelta(hours=3), NOW) == 1.0
    assert hours_between(NOW - timedelta(minutes=90), NOW) == 1.5


def test_min_max_normalisation_and_the_flat_case():
    assert min_max([2.0, 8.0, 5.0]) == [0.0, 1.0, 0.5]
    assert min_max([3.0, 3.0]) == [0.5, 0.5]  # nothing to tell apart
    assert min_max([]) == []


def test_score_matches_hand_computation():
    # A: just retrieved, dull, very relevant; B: 10 h ago, poignant, half relevant;
    # C: a day ago, middling, barely relevant.
    cands = [
        Candidate(rec(1, 0, 2), 0.9),
        Candidate(rec(2, 10, 8), 0.5),
        Candidate(rec(3, 24, 5), 0.1),
    ]
    out = score_candidates(cands, NOW)
    by_id = {s.record.id: s for s in out}
    # recency 1, 0.95111, 0.88665 -> normalised 1, 0.56867, 0
    assert by_id[1].recency == pytest.approx(1.0)
    assert by_id[2].recency == pytest.approx(0.5686688687893396)
    assert by_id[3].recency == pytest.approx(0.0)
    # importance 2, 8, 5 -> 0, 1, 0.5; relevance 0.9, 0.5, 0.1 -> 1, 0.5, 0
    assert [by_id[i].importance for i in (1, 2, 3)] == pytest.approx([0.0, 1.0, 0.5])
    assert [by_id[i].relevance for i in (1, 2, 3)] == pytest.approx([1.0, 0.5, 0.0])
    assert by_id[1].score == pytest.approx(2.0)
    assert by_id[2].score == pytest.approx(2.0686688687893398)
    assert by_id[3].score == pytest.approx(0.5)
    assert [s.record.id for s in out] == [2, 1, 3]
    assert by_id[1].raw_relevance == 0.9


def test_weights_change_the_ranking():
    cands = [
        Candidate(rec(1, 0, 2), 0.9),
        Candidate(rec(2, 10, 8), 0.5),
        Candidate(rec(3, 24, 5), 0.1),
    ]
    out = score_candidates(cands, NOW, ScoringWeights(recency=2.0), k=2)
    assert [s.record.id for s in out] == [1, 2]
    assert out[0].score == pytest.approx(3.0)
    assert out[1].score == pytest.approx(2.6373377375786795)


def test_recency_is_elapsed_time_not_rank():
    # Two memories an hour apart and one a week old: ranking by order would space them
    # evenly; elapsed time puts the two recent ones close together, far from the old one.
    cands = [
        Candidate(rec(1, 0, 5), 0.5),
        Candidate(rec(2, 1, 5), 0.5),
        Candidate(rec(3, 24 * 7, 5), 0.5),
    ]
    by_id = {s.record.id: s for s in score_candidates(cands, NOW)}
    assert by_id[2].recency > 0.99  # (0.995 - 0.995**168) / (1 - 0.995**168)
    assert by_id[2].recency == pytest.approx((0.995 - 0.995**168) / (1 - 0.995**168))


def test_ties_and_limits():
    cands = [Candidate(rec(i, 1, 5), 0.3) for i in (4, 9, 7)]
    out = score_candidates(cands, NOW, k=2)
    assert [s.record.id for s in out] == [9, 7]  # equal scores: newest id first
    assert all(s.score == pytest.approx(1.5) for s in out)
    assert score_candidates([], NOW) == []
    with pytest.raises(ValueError):
        ScoringWeights(decay_per_hour=1.5)
