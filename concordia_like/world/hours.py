"""Opening hours: when a place may be entered.

Written as `"HH:MM-HH:MM"`, several ranges separated by commas (`"08:00-12:00,
13:00-17:00"`). A range whose end is before its start runs past midnight
(`"17:00-01:00"` for a pub). `"always"` (or no hours at all) means always open. Days on
which a place stays shut are listed apart (`closed_days: [sunday]`); a range running past
midnight belongs to the day it opened on, as a shop's late evening does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RANGE = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)\s*$")


@dataclass(frozen=True)
class OpeningHours:
    """Parsed hours; `ranges` in minutes after midnight, `end` may be up to 1440."""

    ranges: tuple[tuple[int, int], ...] = ()
    closed_days: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, text: str | None, closed_days: Iterable[str] = ()) -> OpeningHours:
        days = frozenset(WEEKDAYS.index(d) for d in closed_days)
        if text is None or text.strip().lower() == "always":
            return cls((), days)
        ranges = []
        for part in text.split(","):
            m = _RANGE.match(part)
            if m is None:
                raise ValueError(
                    f"opening hours must be 'HH:MM-HH:MM' (several separated by commas) "
                    f"or 'always', got {part.strip()!r}"
                )
            start = int(m.group(1)) * 60 + int(m.group(2))
            end = int(m.group(3)) * 60 + int(m.group(4))
            if end > 1440:
                raise ValueError(f"no time after 24:00 in {part.strip()!r}")
            if start == end:
                raise ValueError(f"empty opening range {part.strip()!r}; use 'always' for 24h")
            ranges.append((start, end))
        return cls(tuple(ranges), days)

    @property
    def always(self) -> bool:
        return not self.ranges and not self.closed_days

    def is_open(self, at: datetime) -> bool:
        minute = at.hour * 60 + at.minute
        day = at.weekday()
        if not self.ranges:
            return day not in self.closed_days
        for start, end in self.ranges:
            if start < end:
                if start <= minute < end and day not in self.closed_days:
                    return True
            else:  # runs past midnight: the late part belongs to the previous day
                if minute >= start and day not in self.closed_days:
                    return True
                if minute < end and (day - 1) % 7 not in self.closed_days:
                    return True
        return False

    def next_change(self, at: datetime) -> str:
        """'open until 18:00' / 'closed, opens 06:00' style words for prompts."""
        if self.always:
            return "always open"
        minute = at.hour * 60 + at.minute
        if self.is_open(at):
            for start, end in self.ranges:
                inside = start <= minute < end if start < end else (minute >= start or minute < end)
                if inside:
                    return f"open until {_hhmm(end)}"
            return "open today"
        later = sorted(s for s, _ in self.ranges if s > minute)
        if later and at.weekday() not in self.closed_days:
            return f"closed, opens {_hhmm(later[0])}"
        return "closed"

    def text(self) -> str:
        hours = ",".join(f"{_hhmm(s)}-{_hhmm(e)}" for s, e in self.ranges) or "always"
        if self.closed_days:
            hours += " (closed " + ", ".join(WEEKDAYS[d] for d in sorted(self.closed_days)) + ")"
        return hours


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}" if minutes != 1440 else "24:00"
