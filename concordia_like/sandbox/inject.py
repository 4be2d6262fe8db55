"""Injected events: what the person at the prompt makes happen in the world.

A step hook (engine/hooks.py): `inject [at PLACE] TEXT` waits for the next step, where
it is announced like a scheduled event (logged, and perceived by everyone at the place
or everyone), and is consumed only once that step is committed, so a step that fails
and is run again still carries it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from concordia_like.engine.hooks import Announcement, StepHook, StepInput

if TYPE_CHECKING:
    from concordia_like.engine.simulation import Simulation, StepReport


class Injections(StepHook):
    name = "inject"

    def __init__(self) -> None:
        self.pending: list[Announcement] = []

    def add(self, text: str, place: str | None = None) -> None:
        self.pending.append(Announcement(text, place))

    async def before_acting(self, sim: Simulation, step: int) -> StepInput | None:
        return StepInput(announcements=list(self.pending)) if self.pending else None

    def after_commit(self, sim: Simulation, report: StepReport) -> None:
        self.pending = []
