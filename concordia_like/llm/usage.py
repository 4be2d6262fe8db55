"""Usage accounting: every model call counted by purpose and by agent.

The budgets of the design (model calls per agent-step) are checked against these
figures, so cache hits and failed parses are counted too, each in its own column.

Nothing here keeps a record per call: a ledger left running for millions of calls holds
counters and fixed-layout histograms (`Histogram`), whose size has a ceiling set by their
layout, not by the number of calls. Percentiles of prompt tokens and of latency come
from those histograms."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard


class Histogram:
    """Counts of non-negative values in fixed log-linear buckets (the HdrHistogram layout).

    A value is first quantised to a whole number of `unit`s, `u`. Below `2**sub_bits`
    every `u` has its own bucket; each power of two above, `[2**m, 2**(m+1))`, is split
    into `2**(sub_bits-1)` equal buckets of width `w = 2**(m-sub_bits+1)`. Values of
    `max_units` and more share the last bucket.

    Size: at most `2**sub_bits + (log2(max_units) - sub_bits) * 2**(sub_bits-1)` buckets,
    whatever the number of values added (`max_buckets`); only buckets that were hit are
    stored, in a dict.

    Error bound of `percentile`: the rank is exact (nearest rank over all values added,
    the same rank `percentile()` picks from the full list of samples); only the value
    reported for that rank is approximate. It is the middle of the rank's bucket, clamped
    to the smallest and largest values seen, so it is off by less than half the bucket
    width: exact below `2**sub_bits` units, and above that `w/2 <= u * 2**-sub_bits`
    because `u >= 2**m`. So the relative error is under `2**-sub_bits`, plus half a `unit`
    of quantisation.

    The bucket counts (`to_dict`) merge by adding counts of equal keys, which is what
    `merge_usage` does to any nested dict of numbers, so a run's distributions survive
    being merged across sessions."""

    __slots__ = ("count", "counts", "max", "max_units", "min", "sub_bits", "unit")

    def __init__(self, sub_bits: int, unit: float = 1.0, max_units: int = 2**32) -> None:
        if sub_bits < 1 or max_units < 2**sub_bits:
            raise ValueError("need sub_bits >= 1 and max_units >= 2**sub_bits")
        self.sub_bits = sub_bits
        self.unit = unit
        self.max_units = max_units
        self.counts: dict[int, int] = {}
        self.count = 0
        self.min = float("inf")
        self.max = float("-inf")

    @property
    def max_buckets(self) -> int:
        """The ceiling on `len(self.counts)`: the number of buckets of the layout."""
        return self._index(self.max_units) + 1

    def _units(self, value: float) -> int:
        u = int(value / self.unit + 0.5) if value > 0 else 0
        return min(u, self.max_units)

    def _index(self, u: int) -> int:
        s = self.sub_bits
        if u < 1 << s:
            return u
        shift = u.bit_length() - s  # u >> shift lies in [2**(s-1), 2**s)
        return (1 << s) + (shift - 1) * (1 << (s - 1)) + (u >> shift) - (1 << (s - 1))

    def _bucket(self, idx: int) -> tuple[int, int]:
        """The bucket's lowest value and width, in units."""
        s = self.sub_bits
        if idx < 1 << s:
            return idx, 1
        shift, offset = divmod(idx - (1 << s), 1 << (s - 1))
        shift += 1
        return (offset + (1 << (s - 1))) << shift, 1 << shift

    def index_of(self, value: float) -> int:
        """The bucket of `value` (for `add_at`: one lookup for several histograms)."""
        return self._index(self._units(value))

    def add(self, value: float) -> None:
        self.add_at(self._index(self._units(value)), value)

    def add_at(self, idx: int, value: float) -> None:
        """Add `value`, whose bucket `index_of(value)` is `idx`."""
        counts = self.counts
        counts[idx] = counts.get(idx, 0) + 1
        self.count += 1
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def percentile(self, q: float) -> float:
        """The `q`-th percentile (0-100) by nearest rank; 0.0 when empty. See the class
        docstring for the error bound."""
        if not self.count:
            return 0.0
        rank = min(self.count - 1, max(0, round(q / 100 * (self.count - 1))))
        seen = 0
        for idx in sorted(self.counts):
            seen += self.counts[idx]
            if seen > rank:
                lo, width = self._bucket(idx)
                value = (lo + (width - 1) / 2) * self.unit
                return float(min(max(value, self.min), self.max))
        raise AssertionError("unreachable: the counts add up to self.count")

    def same_layout(self, other: Histogram) -> bool:
        return (self.sub_bits, self.unit, self.max_units) == (
            other.sub_bits,
            other.unit,
            other.max_units,
        )

    def copy(self) -> Histogram:
        out = Histogram(self.sub_bits, self.unit, self.max_units)
        out.counts = dict(self.counts)
        out.count, out.min, out.max = self.count, self.min, self.max
        return out

    def merge(self, other: Histogram) -> None:
        """Add `other`'s values to this histogram (same layout)."""
        if not self.same_layout(other):
            raise ValueError("histograms of different layouts do not merge")
        for idx, n in other.counts.items():
            self.counts[idx] = self.counts.get(idx, 0) + n
        self.count += other.count
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def since(self, earlier: Histogram) -> Histogram:
        """The values added after `earlier` (a `copy()` of this histogram) was taken.
        Smallest and largest seen become the bounds of the extreme buckets."""
        if not self.same_layout(earlier):
            raise ValueError("histograms of different layouts do not subtract")
        out = Histogram(self.sub_bits, self.unit, self.max_units)
        for idx, n in self.counts.items():
            left = n - earlier.counts.get(idx, 0)
            if left < 0:
                raise ValueError("`earlier` is not an earlier state of this histogram")
            if left:
                out.counts[idx] = left
        out.count = self.count - earlier.count
        out._bounds_from_buckets()
        return out

    def _bounds_from_buckets(self) -> None:
        if self.counts:
            lo, _ = self._bucket(min(self.counts))
            hi, width = self._bucket(max(self.counts))
            self.min, self.max = lo * self.unit, (hi + width - 1) * self.unit

    def to_dict(self) -> dict[str, int]:
        """The bucket counts by bucket index, as a JSON object (string keys)."""
        return {str(idx): self.counts[idx] for idx in sorted(self.counts)}

    def load(self, counts: Mapping[str, int]) -> Histogram:
        """Add the bucket counts of a `to_dict()` of the same layout; returns self."""
        for key, n in counts.items():
            idx = int(key)
            self.counts[idx] = self.counts.get(idx, 0) + int(n)
            self.count += int(n)
        self._bounds_from_buckets()
        return self


def token_histogram() -> Histogram:
    """Prompt tokens: exact below 1024 tokens, under 0.1% off above (up to 2**24)."""
    return Histogram(sub_bits=10, unit=1, max_units=2**24)


def latency_histogram() -> Histogram:
    """Seconds in microsecond units: under 1/64 (1.6%) off, plus half a microsecond;
    up to 2**36 µs (19 hours)."""
    return Histogram(sub_bits=6, unit=1e-6, max_units=2**36)


#: the histograms of `UsageLedger.summary()["distributions"]`, by name
DISTRIBUTIONS = {"prompt_tokens": token_histogram, "latency_s": latency_histogram}


@dataclass
class UsageStats:
    calls: int = 0
    cached: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    prompt_token_hist: Histogram = field(default_factory=token_histogram, repr=False)
    latency_hist: Histogram = field(default_factory=latency_histogram, repr=False)

    def add(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        latency_s: float,
        *,
        cached: bool,
        failed: bool,
    ) -> None:
        self.calls += 1
        self.cached += int(cached)
        self.failed += int(failed)
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.latency_s += latency_s
        self.prompt_token_hist.add(prompt_tokens)
        self.latency_hist.add(latency_s)

    def _add_at(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        latency_s: float,
        token_idx: int,
        latency_idx: int,
        cached: bool,
        failed: bool,
    ) -> None:
        """`add` with the histogram buckets already found (all stats share a layout)."""
        self.calls += 1
        self.cached += cached
        self.failed += failed
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.latency_s += latency_s
        self.prompt_token_hist.add_at(token_idx, prompt_tokens)
        self.latency_hist.add_at(latency_idx, latency_s)

    def as_dict(self) -> dict[str, Any]:
        """The counters (not the histograms), written out by hand: a run's summary holds
        one per agent and is checkpointed every step, where `dataclasses.asdict` (a deep
        copy of everything) cost a few percent of a 100-agent step."""
        return {
            "calls": self.calls,
            "cached": self.cached,
            "failed": self.failed,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_s": self.latency_s,
            "mean_latency_s": self.latency_s / self.calls if self.calls else 0.0,
        }


class UsageLedger:
    """Counts per purpose, per agent and in total for one run (one session of it: the
    ledger lives as long as its `LanguageModel`)."""

    def __init__(self) -> None:
        self.total = UsageStats()
        self.by_purpose: dict[str, UsageStats] = defaultdict(UsageStats)
        self.by_agent: dict[str, UsageStats] = defaultdict(UsageStats)
        #: calls whose request says why they are made, by purpose and reason
        #: (`act:addressed`)
        self.by_why: dict[str, UsageStats] = defaultdict(UsageStats)

    def record(
        self,
        purpose: str,
        agent: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        latency_s: float,
        *,
        cached: bool = False,
        failed: bool = False,
        why: str | None = None,
    ) -> None:
        targets = [self.total, self.by_purpose[purpose]]
        if agent is not None:
            targets.append(self.by_agent[agent])
        if why is not None:
            targets.append(self.by_why[f"{purpose}:{why}"])
        token_idx = self.total.prompt_token_hist.index_of(prompt_tokens)
        latency_idx = self.total.latency_hist.index_of(latency_s)
        for stats in targets:
            stats._add_at(
                prompt_tokens,
                completion_tokens,
                latency_s,
                token_idx,
                latency_idx,
                bool(cached),
                bool(failed),
            )

    def prompt_tokens_percentile(self, q: float) -> float:
        return self.total.prompt_token_hist.percentile(q)

    def latency_percentile(self, q: float) -> float:
        """Seconds per model call (cache hits included, as they are in the counts)."""
        return self.total.latency_hist.percentile(q)

    def percentiles(self) -> dict[str, float]:
        """p50 and p95 of prompt tokens and of latency over this ledger's calls."""
        return {
            "prompt_tokens_p50": self.prompt_tokens_percentile(50),
            "prompt_tokens_p95": self.prompt_tokens_percentile(95),
            "latency_p50_s": self.latency_percentile(50),
            "latency_p95_s": self.latency_percentile(95),
        }

    def summary(self) -> dict[str, Any]:
        """Counters in total, by purpose and by agent, and `distributions`: the bucket
        counts of the total's histograms (see `DISTRIBUTIONS`), which `merge_usage` adds
        up across sessions and `summary_percentiles` reads. Percentiles themselves are
        left out: they do not add up."""
        return {
            "total": self.total.as_dict(),
            "by_purpose": {k: v.as_dict() for k, v in sorted(self.by_purpose.items())},
            "by_agent": {k: v.as_dict() for k, v in sorted(self.by_agent.items())},
            "by_why": {k: v.as_dict() for k, v in sorted(self.by_why.items())},
            "distributions": {
                "prompt_tokens": self.total.prompt_token_hist.to_dict(),
                "latency_s": self.total.latency_hist.to_dict(),
            },
        }


def summary_histogram(summary: Mapping[str, Any], name: str) -> Histogram:
    """One of the `distributions` of a (possibly merged) `summary()`; empty if absent."""
    counts = (summary.get("distributions") or {}).get(name) or {}
    return DISTRIBUTIONS[name]().load(counts)


def summary_percentiles(summary: Mapping[str, Any]) -> dict[str, float]:
    """`UsageLedger.percentiles()` computed from a (possibly merged) summary, where the
    smallest and largest values are known only to their buckets."""
    tokens = summary_histogram(summary, "prompt_tokens")
    latency = summary_histogram(summary, "latency_s")
    return {
        "prompt_tokens_p50": tokens.percentile(50),
        "prompt_tokens_p95": tokens.percentile(95),
        "latency_p50_s": latency.percentile(50),
        "latency_p95_s": latency.percentile(95),
    }


def merge_usage(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Usage summaries `a` (earlier sessions of a run) and `b` (this one) added up.

    Numbers at the same path are summed, at any depth (`by_purpose`, `by_agent`, the
    bucket counts of `distributions`); a path on one side only is copied. Means are not
    summed: wherever a level has `latency_s` and `calls`, its `mean_latency_s` is
    recomputed from the summed two. Anything that is not a number or a dict is taken
    from `b` if `b` has it. Neither input is changed (when one is empty, the result
    shares the other's nested dicts)."""
    if not a or not b:  # a new run, or nothing yet this session: no sums to do
        return dict(b or a)
    out: dict[str, Any] = {}
    for key in [*a, *(k for k in b if k not in a)]:
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) or isinstance(y, dict):
            out[key] = merge_usage(
                x if isinstance(x, dict) else {}, y if isinstance(y, dict) else {}
            )
        elif key == "mean_latency_s":
            out[key] = None  # recomputed below, in its place
        elif _is_number(x) and _is_number(y):
            out[key] = x + y
        else:
            out[key] = y if key in b else x
    if "mean_latency_s" in out:
        calls, latency = out.get("calls"), out.get("latency_s")
        if _is_number(calls) and _is_number(latency):
            out["mean_latency_s"] = latency / calls if calls else 0.0
        else:  # nothing to recompute it from: keep what there is
            out["mean_latency_s"] = b.get("mean_latency_s", a.get("mean_latency_s"))
    return out


def _is_number(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool)


def percentile(samples: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `samples` by nearest rank; 0.0 when empty."""
    ordered = sorted(samples)
    if not ordered:
        return 0.0
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return float(ordered[idx])
