"""Usage accounting: every model call counted by purpose and by agent.

The budgets of the design (model calls per agent-step) are checked against these
figures, so cache hits and failed parses are counted too, each in its own column."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class UsageStats:
    calls: int = 0
    cached: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    prompt_token_samples: list[int] = field(default_factory=list, repr=False)

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
        self.prompt_token_samples.append(prompt_tokens)

    def as_dict(self) -> dict[str, Any]:
        """The counters (not the samples), written out by hand: a run's summary holds one
        per agent and is checkpointed every step, where `dataclasses.asdict` (a deep copy
        of the samples too) cost a few percent of a 100-agent step."""
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
    """Counts per purpose, per agent and in total for one run."""

    def __init__(self) -> None:
        self.total = UsageStats()
        self.by_purpose: dict[str, UsageStats] = defaultdict(UsageStats)
        self.by_agent: dict[str, UsageStats] = defaultdict(UsageStats)

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
    ) -> None:
        targets = [self.total, self.by_purpose[purpose]]
        if agent is not None:
            targets.append(self.by_agent[agent])
        for stats in targets:
            stats.add(prompt_tokens, completion_tokens, latency_s, cached=cached, failed=failed)

    def prompt_tokens_percentile(self, q: float) -> float:
        return percentile(self.total.prompt_token_samples, q)

    def summary(self) -> dict[str, Any]:
        return {
            "total": self.total.as_dict(),
            "by_purpose": {k: v.as_dict() for k, v in sorted(self.by_purpose.items())},
            "by_agent": {k: v.as_dict() for k, v in sorted(self.by_agent.items())},
        }


def percentile(samples: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `samples` by nearest rank; 0.0 when empty."""
    ordered = sorted(samples)
    if not ordered:
        return 0.0
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return float(ordered[idx])
