"""The world's own changes to its apps: an outage, a feed's ranking switched mid-run.

Like `world.world_effects`, these are an experiment's interventions, never a
resident's action (`refusal`): they go through the one validator
(`world.rules.apply_effects`), journaled, so a failed step undoes them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from concordia_like.world.apps import APPS
from concordia_like.world.state import WorldState
from concordia_like.world.world_effects import _WorldOnly


class AppsSetEffect(_WorldOnly):
    """From now on the feed ranks by `ranking` and the apps in `down` are out of
    service (each left as it is where not given; `down: []` ends an outage)."""

    kind: Literal["apps_set"] = "apps_set"
    ranking: Literal["chronological", "engagement"] | None = None
    down: list[Literal["messages", "feed", "bank"]] | None = Field(None, max_length=len(APPS))

    def describe(self) -> str:
        parts = []
        if self.ranking is not None:
            parts.append(f"rank the feed by {self.ranking}")
        if self.down is not None:
            parts.append(f"apps down: {', '.join(self.down) or 'none'}")
        return "; ".join(parts) or "leave the apps as they are"

    def check(self, s: WorldState) -> str | None:
        apps = s.apps
        if apps is None:
            return f"{s.name} has no apps"
        if self.ranking is not None and apps.spec.feed is None:
            return f"{s.name} has no feed to rank"
        missing = [a for a in self.down or () if not apps.spec.has(a)]
        if missing:
            return f"{s.name} has no {', '.join(missing)} app"
        return None

    def apply(self, s: WorldState) -> None:
        apps = s.apps
        assert apps is not None
        if self.ranking is not None and apps.spec.feed is not None:
            feed = apps.spec.feed.model_copy(update={"ranking": self.ranking})
            apps.set_spec(s, apps.spec.model_copy(update={"feed": feed}))
        if self.down is not None:
            apps.set_down(s, set(self.down))
