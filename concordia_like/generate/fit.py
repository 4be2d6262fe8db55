"""How well a drawn population fits its spec: each field's realised shares beside the
spec's, with the total variation distance and a chi-square test's p-value.

The total variation distance (half the sum of the absolute differences of the shares)
is how far apart the two distributions are, whatever the size; the p-value says
whether a difference that large is what chance gives at this size (a tiny one with a
large population means a bug, not bad luck). The spec's tables are drawn stratified,
so their fields fit to within about one person and their p-values are near 1; traits
and values are drawn evenly without repeats, independently, so every pick is compared
with the even share of the pool. A household size is counted per household, the last
one cut to fit the population.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from concordia_like.generate.population import Population, household_sizes, person_draws


@dataclass(frozen=True)
class FieldFit:
    """One field: value -> (spec's share, realised count), over `total` draws."""

    field: str
    rows: dict[str, tuple[float, int]]
    total: int

    @property
    def tvd(self) -> float:
        if not self.total:
            return 0.0
        return 0.5 * sum(abs(c / self.total - p) for p, c in self.rows.values())

    @property
    def chi2(self) -> tuple[float, int]:
        stat = sum((c - p * self.total) ** 2 / (p * self.total) for p, c in self.rows.values() if p)
        return stat, max(sum(1 for p, _ in self.rows.values() if p) - 1, 0)

    @property
    def p_value(self) -> float:
        stat, dof = self.chi2
        return chi2_sf(stat, dof)


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X chi-square with `dof` degrees of freedom (1.0 for none)."""
    if dof <= 0 or x <= 0:
        return 1.0
    return _upper_gamma(dof / 2, x / 2)


def _upper_gamma(a: float, x: float) -> float:
    """The regularised upper incomplete gamma Q(a, x): a series below a + 1, a
    continued fraction above (each to double precision)."""
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-15:
            n += 1
            term *= x / n
            total += term
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


def fits(pop: Population) -> list[FieldFit]:
    """Every field's fit: the person fields (each marginal; a joint table's cells too),
    household sizes, traits and values."""
    people = pop.people
    out = []
    for fields, weights in person_draws(pop.spec):
        probs = weights.probabilities()
        for i, name in enumerate(fields):
            share: dict[str, float] = {}
            for value, p in probs.items():
                key = value[i]
                share[key] = share.get(key, 0.0) + p
            counts = Counter(getattr(person, name) for person in people)
            out.append(_fit(name, share, counts, len(people)))
        if len(fields) > 1:
            share = {" / ".join(v): p for v, p in probs.items()}
            counts = Counter(" / ".join(getattr(q, f) for f in fields) for q in people)
            out.append(_fit(" x ".join(fields), share, counts, len(people)))
    sizes = {str(k): p for k, p in household_sizes(pop.spec).probabilities().items()}
    counts = Counter(str(len(h)) for h in pop.households)
    out.append(_fit("household_size", sizes, counts, len(pop.households)))
    for name, pool in (("traits", pop.spec.traits.pool), ("values", pop.spec.values.pool)):
        picks = Counter(v for person in people for v in getattr(person, name))
        even = {v: 1 / len(pool) for v in pool}
        out.append(_fit(name, even, picks, sum(picks.values())))
    return out


def _fit(name: str, share: dict[str, float], counts: Counter[str], total: int) -> FieldFit:
    rows = {v: (p, counts.get(v, 0)) for v, p in share.items()}
    rows.update({v: (0.0, c) for v, c in counts.items() if v not in rows})
    return FieldFit(name, rows, total)


def summary(pop: Population, rows_shown: int = 12) -> str:
    """The realised distributions beside the spec's, a fit line per field: the text
    `population` and `city` print and write beside what they make."""
    head = f"{pop.spec.name}: {len(pop.people)} residents in {len(pop.households)} households"
    lines = [f"{head} (seed {pop.seed})"]
    for f in fits(pop):
        stat, dof = f.chi2
        lines.append(
            f"{f.field}: TVD {f.tvd:.3f}, chi-square {stat:.1f} on {dof} df, p = {f.p_value:.2f}"
        )
        ordered = sorted(f.rows.items(), key=lambda kv: (-kv[1][0], kv[0]))
        for value, (p, c) in ordered[:rows_shown]:
            realised = c / f.total if f.total else 0.0
            lines.append(f"  {value[:34]:<34} spec {p:6.1%}  realised {realised:6.1%}")
        if len(ordered) > rows_shown:
            lines.append(f"  ... and {len(ordered) - rows_shown} more")
    return "\n".join(lines)
