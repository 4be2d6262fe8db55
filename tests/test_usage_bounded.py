"""Bounded usage accounting: what a ledger and a batcher keep does not grow with calls."""

from __future__ import annotations

import asyncio
import random

import pytest

from concordia_like.llm.backend import Backend
from concordia_like.llm.batcher import RECENT_BATCHES, Batcher
from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.llm.types import LLMRequest, RawCompletion
from concordia_like.llm.usage import (
    Histogram,
    UsageLedger,
    latency_histogram,
    merge_usage,
    percentile,
    summary_percentiles,
    token_histogram,
)

CALLS = 200_000


def test_ledger_stays_bounded_after_many_calls():
    rng = random.Random(7)
    ledger = UsageLedger()
    agents = [f"agent{i}" for i in range(20)]
    purposes = ["act", "resolve", "importance", "plan", "reflect"]
    for i in range(CALLS):
        ledger.record(
            purposes[i % len(purposes)],
            agents[i % len(agents)],
            rng.randint(50, 6000),
            rng.randint(1, 200),
            rng.lognormvariate(-1.0, 1.0),
        )
    assert ledger.total.calls == CALLS
    everything = [ledger.total, *ledger.by_purpose.values(), *ledger.by_agent.values()]
    for stats in everything:
        assert not any(isinstance(v, list) for v in vars(stats).values())
        for hist in (stats.prompt_token_hist, stats.latency_hist):
            assert len(hist.counts) <= hist.max_buckets
    # far below one entry per call: the layouts' ceilings themselves are small
    assert token_histogram().max_buckets == 1024 + (24 - 10) * 512 + 1
    assert latency_histogram().max_buckets == 64 + (36 - 6) * 32 + 1
    assert len(ledger.total.prompt_token_hist.counts) < 6000
    assert len(ledger.total.latency_hist.counts) < latency_histogram().max_buckets


def test_histogram_size_has_a_ceiling_whatever_the_values():
    h = Histogram(sub_bits=4, unit=1, max_units=2**20)
    for v in [*range(0, 2**21, 7), 10**12, -5]:
        h.add(v)
    assert len(h.counts) <= h.max_buckets == 16 + (20 - 4) * 8 + 1


def test_buckets_cover_every_value_once():
    h = Histogram(sub_bits=5, unit=1, max_units=2**16)
    previous_end = 0
    for idx in range(h.max_buckets - 1):
        lo, width = h._bucket(idx)
        assert lo == previous_end  # contiguous, no gaps, no overlaps
        assert h._index(lo) == idx and h._index(lo + width - 1) == idx
        previous_end = lo + width
    assert previous_end == 2**16


def test_token_percentiles_match_exact_ones():
    rng = random.Random(3)
    samples = [max(1, int(rng.gauss(700, 200))) for _ in range(50_000)]
    samples += [rng.randint(1024, 30_000) for _ in range(5_000)]  # a tail above 1024
    ledger = UsageLedger()
    for n in samples:
        ledger.record("act", None, n, 1, 0.0)
    for q in (0, 1, 50, 90, 95, 99, 99.9, 100):
        exact = percentile(samples, q)
        got = ledger.prompt_tokens_percentile(q)
        if exact < 1024:
            assert got == exact, q  # below 1024 tokens the buckets are single values
        else:
            assert abs(got - exact) <= exact * 2**-10, q


def test_latency_percentiles_are_within_the_documented_bound():
    rng = random.Random(11)
    samples = [rng.lognormvariate(-2.0, 1.2) for _ in range(100_000)]
    ledger = UsageLedger()
    for s in samples:
        ledger.record("act", "ada", 10, 1, s)
    for q in (5, 50, 95, 99):
        exact = percentile(samples, q)
        assert ledger.latency_percentile(q) == pytest.approx(exact, rel=1 / 64, abs=1e-6)
    assert ledger.latency_percentile(100) == max(samples)
    assert ledger.latency_percentile(0) == min(samples)
    p = ledger.percentiles()
    assert p["latency_p50_s"] == ledger.latency_percentile(50)
    assert p["prompt_tokens_p95"] == 10.0


def test_empty_ledger_percentiles_are_zero():
    ledger = UsageLedger()
    assert ledger.prompt_tokens_percentile(95) == 0.0
    assert ledger.latency_percentile(50) == 0.0
    assert summary_percentiles(ledger.summary())["latency_p95_s"] == 0.0


def test_since_and_merge_of_histograms():
    h = token_histogram()
    for v in range(100):
        h.add(v)
    first = h.copy()
    for v in range(500, 600):
        h.add(v)
    last = h.since(first)
    assert last.count == 100 and first.count == 100
    assert last.percentile(0) == 500 and last.percentile(100) == 599
    again = first.copy()
    again.merge(last)
    assert again.counts == h.counts and again.count == h.count
    with pytest.raises(ValueError, match="layouts"):
        h.merge(latency_histogram())


# -- merge_usage --------------------------------------------------------------------


def _ledger(calls: list[tuple[str, str | None, int, float]]) -> UsageLedger:
    ledger = UsageLedger()
    for purpose, agent, tokens, latency in calls:
        ledger.record(purpose, agent, tokens, 2, latency, cached=tokens == 0)
    return ledger


def test_merge_usage_sums_counters_and_recomputes_means():
    earlier = _ledger([("act", "ada", 100, 1.0), ("act", "bo", 200, 3.0)]).summary()
    now = _ledger(
        [("act", "ada", 300, 0.5), ("resolve", None, 400, 0.5), ("plan", "cy", 0, 0.0)]
    ).summary()
    merged = merge_usage(earlier, now)
    total = merged["total"]
    assert total["calls"] == 5 and total["cached"] == 1
    assert total["prompt_tokens"] == 1000 and total["completion_tokens"] == 10
    assert total["latency_s"] == pytest.approx(5.0)
    assert total["mean_latency_s"] == pytest.approx(1.0)  # 5 s over 5 calls, not now's 0.2
    act = merged["by_purpose"]["act"]
    assert act["calls"] == 3 and act["mean_latency_s"] == pytest.approx(1.5)
    assert merged["by_purpose"]["resolve"] == now["by_purpose"]["resolve"]  # one side only
    assert merged["by_agent"]["ada"]["calls"] == 2
    assert merged["by_agent"]["ada"]["mean_latency_s"] == pytest.approx(0.75)
    assert merged["by_agent"]["bo"] == earlier["by_agent"]["bo"]
    assert merged["by_agent"]["cy"]["mean_latency_s"] == 0.0
    # the inputs are left alone
    assert earlier["total"]["calls"] == 2 and now["total"]["calls"] == 3


def test_merge_usage_equals_one_ledger_over_both_sessions():
    rng = random.Random(5)
    calls = [
        (rng.choice(["act", "resolve"]), rng.choice(["ada", "bo", None]), rng.randint(1, 3000),
         rng.random())
        for _ in range(2000)
    ]  # fmt: skip
    merged = merge_usage(_ledger(calls[:700]).summary(), _ledger(calls[700:]).summary())
    whole = _ledger(calls).summary()
    assert merged.keys() == whole.keys()
    assert merged["total"] == pytest.approx(whole["total"])
    for part in ("by_purpose", "by_agent"):
        assert merged[part].keys() == whole[part].keys()
        for name, stats in whole[part].items():
            assert merged[part][name] == pytest.approx(stats)
    # histograms add up bucket by bucket, so run-wide percentiles survive a resume
    assert merged["distributions"] == whole["distributions"]
    assert summary_percentiles(merged) == summary_percentiles(whole)


def test_merge_usage_with_nothing_earlier():
    now = _ledger([("act", "ada", 10, 0.25)]).summary()
    assert merge_usage({}, now) == now
    assert merge_usage(now, {}) == now
    assert merge_usage({}, {}) == {}


def test_merge_usage_of_old_summaries_without_distributions():
    old = {"total": {"calls": 2, "latency_s": 2.0, "mean_latency_s": 1.0}}
    now = _ledger([("act", "ada", 10, 4.0)]).summary()
    merged = merge_usage(old, now)
    assert merged["total"]["mean_latency_s"] == pytest.approx(2.0)
    assert merged["distributions"] == now["distributions"]


# -- the batcher --------------------------------------------------------------------


class _Echo(Backend):
    name = "echo"
    max_batch = 8

    @property
    def model(self) -> str:
        return "echo"

    async def generate_batch(self, requests: list[LLMRequest]) -> list[RawCompletion | Exception]:
        return [RawCompletion("ok", prompt_tokens=1, completion_tokens=1) for _ in requests]


async def test_batcher_keeps_bounded_batch_records():
    batcher = Batcher(_Echo(), gather_ticks=0)
    # submit from inside a running loop many rounds of 1..12 concurrent requests
    sizes_submitted = 0
    for i in range(CALLS // 20):
        n = i % 12 + 1
        await asyncio.gather(*(batcher.submit(_request()) for _ in range(n)))
        sizes_submitted += n
    assert batcher.batched_requests == sizes_submitted
    assert batcher.batches > RECENT_BATCHES
    assert len(batcher.recent_batch_sizes) == RECENT_BATCHES
    assert len(batcher.batch_sizes) == RECENT_BATCHES
    assert set(batcher.batch_size_counts) <= set(range(1, _Echo.max_batch + 1))
    assert sum(batcher.batch_size_counts.values()) == batcher.batches
    assert batcher.mean_batch_size == pytest.approx(sizes_submitted / batcher.batches)


def _request() -> LLMRequest:
    return LLMRequest.chat("hi", purpose="act")


async def test_scripted_backend_keeps_only_its_recent_requests():
    backend = ScriptedBackend(default_text="ok")
    backend.keep_requests = 50
    for i in range(400):
        await backend.generate_batch([LLMRequest.chat(f"request {i}", purpose="act")])
        assert len(backend.requests_seen) == min(i + 1, backend.keep_requests)
    # the newest are the ones kept, in order
    assert backend.requests_seen[-1].messages[-1].content == "request 399"
    tail = [int(r.messages[-1].content.split()[1]) for r in backend.requests_seen]
    assert tail == list(range(400 - len(tail), 400))
