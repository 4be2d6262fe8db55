"""The one base of the models that read a user's file (worlds, personas, apps, code
rules, population specs, scenarios), and the one rule for the times such files give.

Unknown fields are refused (a misspelt field must not be ignored), values are frozen,
text is stripped, and an infinite or NaN number is refused where it is read: it is no
quantity, bound or price, and a NaN compares false with everything, so a stop or check
on one would never hold."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

When = TypeVar("When", bound=datetime | None)


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )


def naive(v: When) -> When:
    """A file's time as given, refused with a timezone: simulation times are local."""
    if v is not None and v.tzinfo is not None:
        raise ValueError("simulation times are local: write them without a timezone")
    return v
