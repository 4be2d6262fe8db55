"""What the sandbox shows: the town, a place, a resident, a step, the spend.

Pure functions from the simulation (read through its public state and the stores'
typed queries) to rich renderables and markup lines; the session prints them. Every
piece of text that is not the program's own (names, descriptions, events, memories)
goes through `text.shown`, so that it shows as it reads. Nothing here writes, and
nothing depends on wall-clock time except what `stats` is about."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from concordia_like.engine.simulation import Simulation, StepReport
from concordia_like.sandbox.phone import phone_lines
from concordia_like.text import shown, squash

EVENT_SHOWN = ("announcement", "speech", "action", "failure")


def clock(sim: Simulation) -> str:
    return f"{sim.state.now:%a %d %b %H:%M}, after step {sim.step}"


def town(sim: Simulation) -> Table:
    """Every place with someone or something in it (the empty ones counted)."""
    s = sim.state
    table = Table(
        title=f"{shown(sim.world.name)}, {clock(sim)}", title_justify="left", expand=False
    )
    table.add_column("place")
    table.add_column("who")
    table.add_column("what lies there")
    empty = 0
    for pid, place in s.places.items():
        who = sorted(s.agents_at(pid))
        items = [f"{i.quantity} {i.name}" for i in s.items_held(pid)]
        if not who and not items:
            empty += 1
            continue
        closed = "" if s.is_open(pid) else " (closed)"
        table.add_row(
            f"{shown(place.name)} [dim]{shown(pid)}[/]{closed}",
            shown(", ".join(who)),
            shown(_few(items)),
        )
    if empty:
        table.caption = f"{empty} other places empty"
    return table


def place(sim: Simulation, pid: str) -> list[str]:
    s = sim.state
    p = s.places[pid]
    hours = "open" if s.is_open(pid) else "closed"
    lines = [
        f"[bold]{shown(p.name)}[/] ({shown(pid)}, {shown(p.kind)}, {hours}: {p.hours.text()})",
        squash(p.description),
        f"leads to: {', '.join(p.connections) or 'nowhere'}",
        f"here: {', '.join(sorted(s.agents_at(pid))) or 'nobody'}",
        f"lying here: {_few([f'{i.quantity} {i.name}' for i in s.items_held(pid)], 12)}",
    ]
    if p.keyholders:
        lines.append(f"keys: {', '.join(sorted(p.keyholders))}")
    return [lines[0], *(shown(x) for x in lines[1:])]


def resident(sim: Simulation, name: str, n: int = 5) -> list[str]:
    """All that `inspect` shows of a resident (with its phone, in a world with apps)."""
    s, agent = sim.state, sim.agents[name]
    card = agent.persona
    here = s.location(name)
    lines = [
        f"{card.name} ({card.pronouns}), {card.age}, {card.occupation}",
        f"traits: {', '.join(card.traits) or '-'}; values: {', '.join(card.values) or '-'}",
        f"goals: {'; '.join(card.goals) or '-'}",
        f"at {s.places[here].name} ({here}); home {card.home}",
        f"doing: {agent.activity or '-'}",
    ]
    if agent.plan is not None:
        lines.append(f"plan: {agent.plan.describe(s.now)[:300] or '-'}")
    attrs = s.agents[name].attributes
    lines.append("attributes: " + (", ".join(f"{k} {v:g}" for k, v in attrs.items()) or "-"))
    lines.append("holds: " + _few([f"{i.quantity} {i.name}" for i in s.items_held(name)], 12))
    if card.relationships:
        lines.append("relationships:")
        lines += [f"  {who}: {what}" for who, what in card.relationships.items()]
    lines += _memories("recent memories", sim.memory.recent(name, n))
    lines += _memories("most important", sim.memory.important(name, n))
    lines += _memories("reflections", sim.memory.recent(name, n, kinds=["reflection"]))
    lines += phone_lines(s, name)
    return [f"[bold]{shown(lines[0])}[/]", *(shown(x) for x in lines[1:])]


def _memories(title: str, records: Sequence[Any]) -> list[str]:
    if not records:
        return [f"{title}: none"]
    return [f"{title}:"] + [
        f"  [{r.created:%a %H:%M} {r.kind} {r.importance}] {r.text[:140]}" for r in records
    ]


def step_lines(report: StepReport) -> list[str]:
    """What everyone did in a step (the sandbox's view when nobody is played)."""
    kinds: dict[str, int] = {}
    for e in report.events:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing happened"
    lines = [f"[bold]step {report.step}[/] {report.sim_time:%a %H:%M} ({counts})"]
    for e in report.events:
        if e.kind in EVENT_SHOWN:
            lines.append(f"  {shown(e.text[:160])}")
    return lines


def seen_lines(report: StepReport, seen: Sequence[str], resident: str) -> list[str]:
    """What the played resident perceived in a step, and nothing else."""
    lines = [f"[bold]step {report.step}[/] {report.sim_time:%a %H:%M}, as {shown(resident)}:"]
    lines += [f"  {shown(line[:200])}" for line in seen] or ["  (nothing you could perceive)"]
    return lines


def usage_table(
    total: Mapping[str, Any], pct: Mapping[str, float], per_step: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """This session's model spend, and each step's (the latest 12)."""
    calls = int(total.get("calls", 0))
    head = Text(
        f"this session: {calls} model calls ({int(total.get('cached', 0))} cached, "
        f"{int(total.get('failed', 0))} failed), "
        f"{int(total.get('prompt_tokens', 0))} prompt + "
        f"{int(total.get('completion_tokens', 0))} completion tokens; latency "
        f"p50 {pct.get('latency_p50_s', 0.0):.3f} s, p95 {pct.get('latency_p95_s', 0.0):.3f} s"
    )
    table = Table(title="per step", title_justify="left")
    for col in ("step", "clock", "calls", "tokens", "wall s"):
        table.add_column(col, justify="right")
    for row in per_step[-12:]:
        table.add_row(
            str(row["step"]),
            row["clock"],
            str(row["calls"]),
            str(row["tokens"]),
            f"{row['wall_s']:.2f}",
        )
    return [head, table] if per_step else [head]


def _few(things: Sequence[str], limit: int = 6) -> str:
    if not things:
        return "-"
    more = f" and {len(things) - limit} more" if len(things) > limit else ""
    return ", ".join(things[:limit]) + more
