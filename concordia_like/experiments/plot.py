"""A PNG of each measurement over the steps: one line per condition (the mean over the
seeds) with its band (the 95% interval where there are two seeds or more)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from concordia_like.experiments.stats import mean_ci
from concordia_like.files import atomic_writer


def plot(rows: Sequence[dict[str, Any]], conditions: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = [r for r in rows if isinstance(r["value"], int | float)]
    measures = list(dict.fromkeys(r["measurement"] for r in numeric))
    if not measures:
        return
    cols = min(3, len(measures))
    nrows = (len(measures) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.2 * nrows), squeeze=False)
    for ax, m in zip(axes.flat, measures, strict=False):
        for c in conditions:
            by_step: dict[int, list[float]] = {}
            for r in numeric:
                if r["measurement"] == m and r["condition"] == c:
                    by_step.setdefault(int(r["step"]), []).append(float(r["value"]))
            if not by_step:
                continue
            steps = sorted(by_step)
            stats = [mean_ci(by_step[s]) for s in steps]
            (line,) = ax.plot(
                steps, [s[0] for s in stats], marker="." if len(steps) < 3 else None, label=c
            )
            lo, hi = [s[1] for s in stats], [s[2] for s in stats]
            if not all(v == v for v in lo):  # a nan: one seed somewhere, no band
                continue
            if len(steps) == 1:  # a value at the end only: an error bar
                mid = stats[0][0]
                err = [[mid - lo[0]], [hi[0] - mid]]
                ax.errorbar(steps, [mid], yerr=err, color=line.get_color(), capsize=4)
            else:
                ax.fill_between(steps, lo, hi, alpha=0.2, color=line.get_color())
        ax.set_title(m)
        ax.set_xlabel("step")
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(measures) :]:
        ax.set_visible(False)
    fig.tight_layout()
    with atomic_writer(path, binary=True) as f:
        fig.savefig(f, dpi=90, format="png")
    plt.close(fig)
