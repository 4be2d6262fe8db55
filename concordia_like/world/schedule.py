"""Scheduled events: which occur in a window of simulation time.

Occurrences are computed from the schedule, not remembered: the engine asks for the
events of each step's window `[now, now + step)`, so consecutive steps see each
occurrence exactly once, and a run resumed from a checkpoint needs no extra state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from concordia_like.world.state import ScheduledEvent

if TYPE_CHECKING:
    from concordia_like.world.effects import EffectBase

PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}


@dataclass(frozen=True)
class EventOccurrence:
    """One occurrence of a scheduled event: the event and the time it happens."""

    event: ScheduledEvent
    at: datetime

    @property
    def text(self) -> str:
        return self.event.text

    @property
    def place(self) -> str | None:
        return self.event.place

    @property
    def effects(self) -> tuple[EffectBase, ...]:
        return self.event.effects


def occurrences(event: ScheduledEvent, start: datetime, end: datetime) -> list[datetime]:
    """Times of `event` in [start, end)."""
    period = PERIODS.get(event.repeat)
    if period is None:
        return [event.at] if start <= event.at < end else []
    if end <= event.at:
        return []
    k = max(0, math.ceil((start - event.at) / period))
    out = []
    t = event.at + k * period
    while t < end and (event.until is None or t <= event.until):
        out.append(t)
        t += period
    return out


def events_due(
    events: Iterable[ScheduledEvent], start: datetime, end: datetime
) -> list[EventOccurrence]:
    """Every occurrence in [start, end), in time order (ties in schedule order)."""
    found = [
        (t, i, EventOccurrence(e, t))
        for i, e in enumerate(events)
        for t in occurrences(e, start, end)
    ]
    return [occ for _, _, occ in sorted(found, key=lambda x: (x[0], x[1]))]
