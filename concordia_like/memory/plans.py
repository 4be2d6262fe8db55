"""An agent's day plan as data, and the pure arithmetic of plans.

A day plan is a list of blocks (a start, an end, what the agent means to do) from
wake-up to bedtime. The block under way is broken into steps of 5 to 60 minutes, one
hour (or what is left of it) at a time, as late as possible: a replan then discards
only steps not yet started. `DayPlan.current(now)` says what the agent is doing at any
moment. Plans serialise to plain dicts for the engine's checkpoints.

The model proposes hours and durations; the functions here make them a valid plan
whatever it proposes (sorted, clipped to the waking day, steps summing exactly to the
time they fill)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from concordia_like.text import squash

STEP_UNIT = 5  # minutes
STEP_MIN = 5
STEP_MAX = 60


@dataclass
class Activity:
    start: datetime
    minutes: int
    description: str

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    def covers(self, when: datetime) -> bool:
        return self.start <= when < self.end


@dataclass
class PlanBlock:
    start: datetime
    end: datetime
    description: str
    #: the place id it happens at (None: free time, the resident chooses where)
    place: str | None = None

    def covers(self, when: datetime) -> bool:
        return self.start <= when < self.end


@dataclass
class DayPlan:
    agent: str
    day: date
    wake: datetime
    bedtime: datetime
    blocks: list[PlanBlock]
    steps: list[Activity] = field(default_factory=list)
    #: how many times the plan was changed during the day
    revision: int = 0
    #: when the agent was last asked whether news should change the plan
    asked: datetime | None = None

    def block_at(self, when: datetime) -> PlanBlock | None:
        return next((b for b in self.blocks if b.covers(when)), None)

    def place_at(self, when: datetime) -> str | None:
        """The place id of the plan item under way at `when` (its steps happen where
        it does), or None: free time, or no item."""
        block = self.block_at(when)
        return block.place if block is not None else None

    def step_at(self, when: datetime) -> Activity | None:
        return next((s for s in self.steps if s.covers(when)), None)

    def current(self, when: datetime) -> Activity:
        """What the agent is doing at `when`: the step under way, else its block, else
        asleep (before waking, after bedtime)."""
        step = self.step_at(when)
        if step is not None:
            return step
        block = self.block_at(when)
        if block is not None:
            minutes = int((block.end - block.start).total_seconds() // 60)
            return Activity(block.start, minutes, block.description)
        if when < self.wake:
            return Activity(datetime.combine(self.day, time()), _minutes(self.wake), "sleeping")
        return Activity(self.bedtime, 24 * 60 - _minutes(self.bedtime), "sleeping")

    def needs_decomposition(self, when: datetime) -> bool:
        return self.block_at(when) is not None and self.step_at(when) is None

    def window(self, when: datetime) -> tuple[datetime, datetime] | None:
        """The span the next decomposition fills: from now (on the 5-minute grid) to the
        end of the hour or of the block, whichever comes first."""
        block = self.block_at(when)
        if block is None:
            return None
        start = max(block.start, floor_to_unit(when))
        hour_end = when.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        end = min(block.end, hour_end)
        return (start, end) if end > start else None

    def describe(self, start: datetime | None = None) -> str:
        """`7:00 wake up; 8:00 breakfast; ...` (from `start` on, if given)."""
        parts = [
            f"{max(b.start, start) if start else b.start:%H:%M} {b.description}"
            for b in self.blocks
            if start is None or b.end > start
        ]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "day": self.day.isoformat(),
            "wake": self.wake.isoformat(),
            "bedtime": self.bedtime.isoformat(),
            "blocks": [
                [b.start.isoformat(), b.end.isoformat(), b.description, b.place]
                for b in self.blocks
            ],
            "steps": [[s.start.isoformat(), s.minutes, s.description] for s in self.steps],
            "revision": self.revision,
            "asked": self.asked.isoformat() if self.asked else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DayPlan:
        parse = datetime.fromisoformat
        return cls(
            agent=data["agent"],
            day=date.fromisoformat(data["day"]),
            wake=parse(data["wake"]),
            bedtime=parse(data["bedtime"]),
            blocks=[PlanBlock(parse(b[0]), parse(b[1]), *b[2:4]) for b in data["blocks"]],
            steps=[Activity(parse(s), int(m), d) for s, m, d in data["steps"]],
            revision=int(data.get("revision", 0)),
            asked=parse(data["asked"]) if data.get("asked") else None,
        )


def _minutes(when: datetime) -> int:
    return when.hour * 60 + when.minute


def floor_to_unit(when: datetime, unit: int = STEP_UNIT) -> datetime:
    return when.replace(minute=when.minute - when.minute % unit, second=0, microsecond=0)


def blocks_from_hours(
    items: Sequence[tuple[int, str] | tuple[int, str, str | None]],
    start: datetime,
    end: datetime,
) -> list[PlanBlock]:
    """Blocks from (hour, activity) or (hour, activity, place id) items: sorted, clipped
    to [start, end), one block per start (the first wins), the first starting at
    `start`, each ending where the next begins and the last at `end`."""
    starts: dict[datetime, tuple[str, str | None]] = {}
    for hour, text, *where in sorted(items, key=lambda it: it[0]):
        text = squash(text)
        if not text:
            continue
        when = max(
            start, start.replace(hour=min(max(hour, 0), 23), minute=0, second=0, microsecond=0)
        )
        if when >= end:
            continue
        starts.setdefault(when, (text, where[0] if where else None))
    if not starts:
        return []
    times = sorted(starts)
    if times[0] > start:  # the plan starts when the agent does
        starts[start] = starts.pop(times[0])
        times[0] = start
    ends = [*times[1:], end]
    return [PlanBlock(s, e, *starts[s]) for s, e in zip(times, ends, strict=True)]


def fit_durations(minutes: Sequence[int], total: int) -> list[int]:
    """Durations (multiples of 5, each within 5..60) summing exactly to `total`.

    Keeps the proportions proposed as far as whole 5-minute units allow; proposals
    beyond what `total` can hold are dropped from the end. `total` must be a positive
    multiple of 5 and at most 60 per proposal kept."""
    if total <= 0 or total % STEP_UNIT:
        raise ValueError(f"cannot fill {total} minutes with {STEP_UNIT}-minute units")
    units = total // STEP_UNIT
    hi = STEP_MAX // STEP_UNIT
    wanted = [min(max(int(m), STEP_MIN), STEP_MAX) for m in minutes][:units] or [total]
    n = max(len(wanted), -(-units // hi))  # enough steps that none exceeds 60 minutes
    wanted += [STEP_MAX] * (n - len(wanted))
    raw = [w * units / sum(wanted) for w in wanted]
    out = [min(hi, max(1, int(r))) for r in raw]
    while sum(out) > units:  # drop a unit where it is least deserved
        i = max((i for i in range(n) if out[i] > 1), key=lambda i: out[i] - raw[i])
        out[i] -= 1
    while sum(out) < units:  # add a unit where it is most deserved
        i = max((i for i in range(n) if out[i] < hi), key=lambda i: raw[i] - out[i])
        out[i] += 1
    return [u * STEP_UNIT for u in out]


def activities_in(
    window: tuple[datetime, datetime], proposals: Sequence[tuple[str, int]]
) -> list[Activity]:
    """Consecutive activities exactly filling `window` from (description, minutes)."""
    start, end = window
    total = int((end - start).total_seconds() // 60)
    proposals = [(squash(d), m) for d, m in proposals if d.strip()]
    if not proposals or total < STEP_UNIT:
        return []
    durations = fit_durations([m for _, m in proposals], total - total % STEP_UNIT)
    names = [d for d, _ in proposals] + [proposals[-1][0]] * len(durations)
    out: list[Activity] = []
    at = start
    for name, minutes in zip(names, durations, strict=False):
        out.append(Activity(at, minutes, name))
        at += timedelta(minutes=minutes)
    return out


def replace_rest_of_day(plan: DayPlan, now: datetime, blocks: Sequence[PlanBlock]) -> DayPlan:
    """The plan with everything from `now` (on the 5-minute grid) replaced by `blocks`.

    Blocks already over are kept, the one under way is cut short, steps not yet started
    are dropped (the new block under way is broken down afresh)."""
    cut = floor_to_unit(now)
    kept: list[PlanBlock] = []
    for b in plan.blocks:
        if b.end <= cut:
            kept.append(b)
        elif b.start < cut:
            kept.append(PlanBlock(b.start, cut, b.description, b.place))
    steps = [s for s in plan.steps if s.end <= cut or s.start < cut]
    steps = [
        s
        if s.end <= cut
        else Activity(s.start, int((cut - s.start).total_seconds() // 60), s.description)
        for s in steps
    ]
    return DayPlan(
        agent=plan.agent,
        day=plan.day,
        wake=plan.wake,
        bedtime=plan.bedtime,
        blocks=kept + [b for b in blocks if b.start >= cut],
        steps=[s for s in steps if s.minutes > 0],
        revision=plan.revision + 1,
        asked=plan.asked,
    )
