"""What an experiment is run with, and what it says of its progress.

Both cross process boundaries as they are: the Ray executor sends `Settings` to its
workers as a plain dict (`dataclasses.asdict`), and the CLI's progress bars are a
`Tracker`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concordia_like.llm import BackendOptions


@dataclass
class Settings:
    out: Path
    seeds: list[int]
    model: BackendOptions = field(default_factory=BackendOptions)
    #: continue every condition of a seed from one run of their shared past
    fork: bool = True
    cache_mode: str = "readwrite"
    #: over each world's attention policy (`mode`, `idle_steps`: `--attention`)
    attention: dict[str, Any] = field(default_factory=dict)


class Tracker:
    """What the runner says of its progress (the CLI draws bars); no-ops here."""

    def run_started(self, key: str, total: int, done: int) -> None: ...
    def step_done(self, key: str) -> None: ...
    def run_finished(self, key: str, note: str) -> None: ...
