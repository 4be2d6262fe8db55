"""Step hooks: how a capability joins the simulation loop without patching it.

The loop calls its hooks at three points of a step: before anyone acts (a hook may give
actions that replace some residents' model actions, as the sandbox's player seat does,
and announcements perceived like scheduled events, as the sandbox's `inject` does),
after the step's perceptions are known (to see what a resident perceived), and once
the step is committed. A hook never writes the world's state directly: its actions are
grounded by the Game Master under the same rules as everyone's, its announcements are
routed like any other, and a change it makes itself (an experiment's intervention) is
a list of effects passed through the world's validator (`world.rules.apply_effects`).

`before_acting` must not consume anything: a step that aborts is run again, and must
find the same inputs. A hook consumes its inputs in `after_commit`, which runs only
once the step is in the store. A hook with simulated state of its own (not inputs
waiting for a step) checkpoints it: `checkpoint()` is committed with each step, under
the hook's name, and `restore()` puts it back when a step is rolled back or a run is
reopened. `StepHook` is the protocol; a hook subclasses it and overrides only the
methods it needs (the others are no-ops)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from concordia_like.agents.actions import ActionBase
    from concordia_like.engine.events import Event
    from concordia_like.engine.simulation import Simulation, StepReport

#: where hook states sit in a checkpoint's agents dict (no resident has this name: a
#: persona name has no brackets)
HOOKS_KEY = "[hooks]"


@dataclass(frozen=True)
class Announcement:
    """Something that happens in the world: at one place (perceived by whoever is
    there) or, with `place` None, everywhere; or, with `to`, a message that only those
    residents perceive."""

    text: str
    place: str | None = None
    #: only these residents perceive it, wherever they are (a message to some)
    to: tuple[str, ...] | None = None


@dataclass
class StepInput:
    """What hooks bring to a step before anyone acts."""

    #: resident -> typed action taken instead of asking its model
    actions: dict[str, ActionBase] = field(default_factory=dict)
    announcements: list[Announcement] = field(default_factory=list)


class StepHook(Protocol):
    """What a hook may do, every method a no-op: override what the hook needs. `name`
    keys its checkpointed state."""

    name: str = "hook"

    async def before_acting(self, sim: Simulation, step: int) -> StepInput | None:
        """Inputs for `step` (not consumed here: see the module's text)."""
        return None

    def after_observing(
        self,
        sim: Simulation,
        step: int,
        events: Sequence[Event],
        perceived: Mapping[str, Sequence[str]],
    ) -> None:
        """The step's events so far and what each resident perceived in it."""
        return  # a body: a default, which mypy would take for abstract without one

    def after_commit(self, sim: Simulation, report: StepReport) -> None:
        """The step is committed: consume the inputs it used."""
        return

    def checkpoint(self) -> dict[str, Any] | None:
        """State to commit with the step (None: nothing to keep)."""
        return None

    def restore(self, data: dict[str, Any]) -> None:
        """Back to a checkpointed state."""
        return


# -- what the loop calls ------------------------------------------------------------------


async def gather_inputs(hooks: Sequence[StepHook], sim: Simulation, step: int) -> StepInput:
    """Every hook's inputs for the step, merged (a later hook's action for a resident
    wins over an earlier one's)."""
    merged = StepInput()
    for hook in hooks:
        got = await hook.before_acting(sim, step)
        if got is not None:
            merged.actions.update(got.actions)
            merged.announcements.extend(got.announcements)
    return merged


def notify_observed(
    hooks: Sequence[StepHook],
    sim: Simulation,
    step: int,
    events: Sequence[Event],
    perceived: Mapping[str, Sequence[str]],
) -> None:
    for hook in hooks:
        hook.after_observing(sim, step, events, perceived)


def notify_committed(hooks: Sequence[StepHook], sim: Simulation, report: StepReport) -> None:
    for hook in hooks:
        hook.after_commit(sim, report)


def hook_states(hooks: Sequence[StepHook]) -> dict[str, dict[str, Any]]:
    """Each hook's checkpoint, by name; hooks with nothing to keep are left out."""
    states = {}
    for hook in hooks:
        data = hook.checkpoint()
        if data is not None:
            states[hook.name] = data
    return states


def restore_hooks(hooks: Sequence[StepHook], states: Mapping[str, dict[str, Any]] | None) -> None:
    """Give each hook back its state (a hook absent from `states` gets nothing)."""
    for hook in hooks:
        if states and hook.name in states:
            hook.restore(states[hook.name])
