"""What happened in a step, as the engine records it and the `log` command shows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Event:
    kind: str  # action, outcome, failure, speech, announcement, plan, reflection
    text: str
    actor: str | None = None
    place: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Utterance:
    conversation: str
    speaker: str
    addressees: list[str]
    place: str
    text: str
