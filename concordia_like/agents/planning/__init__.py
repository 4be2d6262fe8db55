"""Planning, the agent's cognition of its day: what it plans from (`context`), the
model calls that ask for plans (`requests`) and the planner that keeps every agent's
plan up to the clock (`planner`). The plans themselves are data in `memory.plans`."""

from concordia_like.agents.planning.context import PlanContext, PlanningConfig
from concordia_like.agents.planning.planner import Planner

__all__ = ["PlanContext", "Planner", "PlanningConfig"]
