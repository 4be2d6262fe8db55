"""The world's invariants: what holds after any sequence of valid effects.

The validator (`world.rules`) keeps them by construction; checking them is how a test,
a fault-injection run or an experiment's `conservation` measurement finds a bug of the
framework (or a hand-made state) rather than trusting it."""

from __future__ import annotations

from collections.abc import Mapping

from concordia_like.world.state import EPS, Number, WorldState


def check_invariants(
    state: WorldState,
    baseline_counts: Mapping[str, int] | None = None,
    baseline_totals: Mapping[str, Number] | None = None,
) -> list[str]:
    """Every broken invariant, in words; empty when the state is sound.

    Item counts must equal the baseline (default: the counts when the world was loaded)
    plus created minus destroyed; conserved attribute totals must equal theirs."""
    s = state
    out: list[str] = []
    base = s.initial_counts if baseline_counts is None else baseline_counts
    counts = s.item_counts()
    for name in sorted(set(base) | set(counts) | set(s.created) | set(s.destroyed)):
        expected = base.get(name, 0) + s.created.get(name, 0) - s.destroyed.get(name, 0)
        if counts.get(name, 0) != expected:
            out.append(f"item {name!r}: {counts.get(name, 0)} in the world, ledger says {expected}")
    for item in s.items.values():
        if not isinstance(item.quantity, int) or not 1 <= item.quantity <= s.max_stack:
            out.append(f"item {item.id}: quantity {item.quantity!r} outside 1..{s.max_stack}")
        if not s.holder_exists(item.holder):
            out.append(f"item {item.id}: holder {item.holder!r} does not exist")
    present: dict[str, set[str]] = {}
    for agent in s.agents.values():
        if agent.location not in s.places:
            out.append(f"agent {agent.name}: at {agent.location!r}, which is not a place")
        present.setdefault(agent.location, set()).add(agent.name)
        if set(agent.attributes) != set(s.attributes):
            out.append(
                f"agent {agent.name}: has attributes {sorted(agent.attributes)}, "
                f"the world defines {sorted(s.attributes)}"
            )
        for name, attr in s.attributes.items():
            value = agent.attributes.get(name)
            if value is None:
                continue
            if not attr.min <= value <= attr.max:
                out.append(f"agent {agent.name}: {name} {value} outside {attr.min}..{attr.max}")
            if attr.integer and not isinstance(value, int):
                out.append(f"agent {agent.name}: {name} {value!r} is not a whole number")
    out.extend(
        f"place {place}: presence index out of step with agents' locations"
        for place in set(present) | set(s._present)
        if present.get(place, set()) != s._present.get(place, set())
    )
    totals = s.initial_totals if baseline_totals is None else baseline_totals
    for name, total in s.conserved_totals().items():
        if name in totals and abs(total - totals[name]) > EPS:
            out.append(f"conserved {name}: total {total} != {totals[name]}")
    return out
