"""Summary statistics of an experiment: per condition and measurement, the mean of the
runs' final values with a 95% confidence interval (Student's t), and the paired
difference of each condition from the control over the seeds both ran."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

# two-sided 95% quantiles of Student's t, by degrees of freedom (1..30); beyond: normal
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    if df <= 60:
        return 2.000 + (2.042 - 2.000) * (60 - df) / 30
    if df <= 120:
        return 1.980 + (2.000 - 1.980) * (120 - df) / 60
    return 1.960


def mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) of a 95% interval; one value: an interval of nan."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    m = sum(values) / n
    if n == 1:
        return m, math.nan, math.nan
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return m, m - half, m + half


def final_values(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, int], float]:
    """(measurement, condition, seed) -> the value at the latest step (numbers only)."""
    last: dict[tuple[str, str, int], tuple[int, float]] = {}
    for r in rows:
        v = r["value"]
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        key = (r["measurement"], r["condition"], int(r["seed"]))
        if key not in last or int(r["step"]) >= last[key][0]:
            last[key] = (int(r["step"]), float(v))
    return {k: v for k, (_, v) in last.items()}


def summarize(
    rows: Iterable[dict[str, Any]], conditions: Sequence[str], control: str
) -> list[dict[str, Any]]:
    """One row per measurement and condition: n, mean and its interval, and the paired
    difference from the control (mean and interval; empty for the control itself)."""
    finals = final_values(rows)
    measures = list(dict.fromkeys(k[0] for k in finals))
    out = []
    for m in measures:
        for c in conditions:
            seeds = sorted(s for (mm, cc, s) in finals if mm == m and cc == c)
            values = [finals[(m, c, s)] for s in seeds]
            if not values:
                continue
            mean, lo, hi = mean_ci(values)
            row: dict[str, Any] = {
                "measurement": m,
                "condition": c,
                "n": len(values),
                "mean": mean,
                "ci_low": lo,
                "ci_high": hi,
                "diff": math.nan,
                "diff_low": math.nan,
                "diff_high": math.nan,
            }
            if c != control:
                diffs = [
                    finals[(m, c, s)] - finals[(m, control, s)]
                    for s in seeds
                    if (m, control, s) in finals
                ]
                row["diff"], row["diff_low"], row["diff_high"] = mean_ci(diffs)
            out.append(row)
    return out
