"""What every part of a scenario's schema shares: when an intervention happens and when
a measurement is taken. Its own module so that the schema of the apps'
interventions and measurements (`experiments.app_spec`) and the rest
(`experiments.spec`) build on one base without importing each other."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from concordia_like.strict import Strict, naive

NAME = r"^[a-z][a-z0-9_\-]*$"
Name = Annotated[str, Field(pattern=NAME, max_length=60)]


class Timed(Strict):
    """When an intervention happens: at the start of step `at_step` (before anyone
    acts), or at the step whose time is `at`."""

    at_step: int | None = Field(None, ge=1)
    at: datetime | None = None

    @field_validator("at")
    @classmethod
    def _local(cls, v: datetime | None) -> datetime | None:
        return naive(v)

    @model_validator(mode="after")
    def _one_time(self) -> Timed:
        if (self.at_step is None) == (self.at is None):
            raise ValueError("give exactly one of at_step and at")
        return self


class MeasureBase(Strict):
    """When a measurement is taken: every `every` steps, at some steps, at some times;
    the end of a run always. Nothing given: every step (code) or the end (questions)."""

    name: Name
    every: int | None = Field(None, ge=1)
    at_steps: list[int] = Field(default_factory=list, max_length=1000)
    at: list[datetime] = Field(default_factory=list, max_length=1000)

    @field_validator("at")
    @classmethod
    def _local(cls, v: list[datetime]) -> list[datetime]:
        for t in v:
            naive(t)
        return v
