"""Steps run from the prompt: one at a time, each shown as it commits.

Ctrl-C during `step N` stops after the step in flight; a second one abandons it, which
the engine puts back as at its last commit. Signal handling is installed only at a
terminal (`live`) and only while steps run, so a script or a test is never touched."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

from rich.console import Console

from concordia_like.engine.simulation import Simulation, StepReport


class StepLoop:
    def __init__(self, console: Console, *, live: bool, say: Callable[..., None]) -> None:
        self.console, self.live, self.say = console, live, say
        #: calls, tokens and seconds of each step run here, for `stats`
        self.per_step: list[dict[str, Any]] = []
        self._stop = False
        self._abandon = False
        self._task: asyncio.Future[StepReport] | None = None

    async def run(self, sim: Simulation, n: int, show: Callable[[StepReport], None]) -> None:
        """Run n steps of `sim`, handing each report to `show`."""
        self._stop = self._abandon = False
        loop = asyncio.get_running_loop()
        handled = False
        if self.live:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGINT, self._interrupt)
                handled = True
        try:
            for i in range(n):
                if self._stop:
                    self.say(f"stopped after step {sim.step} (Ctrl-C); it is committed")
                    return
                self._task = asyncio.ensure_future(self._one_step(sim, i + 1, n))
                try:
                    report = await self._task
                except asyncio.CancelledError:
                    if not self._abandon:
                        raise
                    self.say(
                        f"step {sim.step + 1} abandoned (Ctrl-C twice): nothing of it "
                        f"committed; the town is as after step {sim.step}"
                    )
                    return
                finally:
                    self._task = None
                show(report)
        finally:
            if handled:
                loop.remove_signal_handler(signal.SIGINT)

    def _interrupt(self) -> None:
        if not self._stop:
            self._stop = True
            self.say("[dim](Ctrl-C: stopping after this step; again to abandon it)[/]")
        elif self._task is not None:
            self._abandon = True
            self._task.cancel()

    async def _one_step(self, sim: Simulation, i: int, n: int) -> StepReport:
        before = sim.lm.usage.summary()["total"]
        status = (
            self.console.status(f"step {sim.step + 1} ({i}/{n}): the residents think…")
            if self.live
            else contextlib.nullcontext()
        )
        with status:
            report = await sim.run_step()
        after = sim.lm.usage.summary()["total"]

        def tokens(t: dict[str, Any]) -> int:
            return int(t.get("prompt_tokens", 0) + t.get("completion_tokens", 0))

        self.per_step.append(
            {
                "step": report.step,
                "clock": f"{report.sim_time:%a %H:%M}",
                "calls": after.get("calls", 0) - before.get("calls", 0),
                "tokens": tokens(after) - tokens(before),
                "wall_s": report.wall_s,
            }
        )
        return report
