"""One sandbox session: a town, the person's seat in it, and what each command does.

The session owns the simulation's lifetime (`async with TownSession(...)` closes the
model and the stores on every path) and turns every line, from the prompt or a script,
into at most one change: a mistake is a one-line hint with nothing changed, a step that
fails is one error line with nothing of it committed (the next `step` tries again), and
Ctrl-C during `step N` stops after the step in flight (a second one abandons it, which
the engine puts back as at its last commit). Where the line comes from is the
terminal module's business, not this one's."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from concordia_like.engine.fork import fork_run
from concordia_like.engine.interview import question_requests
from concordia_like.engine.newcomers import add_newcomer
from concordia_like.engine.runs import run_folder
from concordia_like.engine.simulation import Simulation, StepAborted, StepReport
from concordia_like.errors import ConcordiaError
from concordia_like.llm.sampling import step_scope
from concordia_like.llm.usage import merge_usage
from concordia_like.sandbox import render
from concordia_like.sandbox.commands import COMMANDS, Hint, help_text, resolve, resolve_place, split
from concordia_like.sandbox.inject import Injections
from concordia_like.sandbox.newcomer import read_newcomer
from concordia_like.sandbox.phone import PhoneCommands
from concordia_like.sandbox.runlog import RunLog
from concordia_like.sandbox.seat import PlayerSeat, parse_action, parse_say
from concordia_like.sandbox.stepping import StepLoop
from concordia_like.text import one_line, shown

#: `until` goes at most this far ahead
UNTIL_MAX = timedelta(days=1)
INTERVIEW_TOKENS = 80

Opener = Callable[[str], Simulation]


class TownSession(PhoneCommands):
    def __init__(
        self,
        sim: Simulation,
        console: Console,
        *,
        opener: Opener,
        root: Path,
        store: str | None = None,
        live: bool = False,
    ) -> None:
        self.sim = sim
        self.console = console
        #: opens a run by id (fork switches to the copy, and closes the town it leaves:
        #: runs that share a loaded model borrow it, see `llm.registry.run_models`)
        self.opener = opener
        self.root, self.store = root, store
        #: spinners and Ctrl-C handling: only at a terminal
        self.live = live
        self.seat = PlayerSeat()
        self.injections = Injections()
        sim.hooks.extend([self.seat, self.injections])
        #: the library's warnings (degraded model calls) go to the town's folder
        self.log = RunLog(self._folder(sim))
        self.steps = StepLoop(console, live=live, say=self.say)
        self._spent_before: dict[str, Any] = {}  # usage of towns left by `fork`
        self.viewer: Any = None  # the browser view, once `view` starts it

    async def __aenter__(self) -> TownSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the town, and give the library's log records back to where they went."""
        if self.viewer is not None:
            self.viewer.stop()
        try:
            await self.sim.aclose()
        finally:
            self.log.close()

    def _folder(self, sim: Simulation) -> Path:
        folder = run_folder(sim.run_id, self.root)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- what the prompt needs ----------------------------------------------------------

    def prompt(self) -> str:
        who = f"{self.seat.resident} " if self.seat.resident else ""
        return f"{who}{self.sim.state.now:%a %H:%M}> "

    def words(self) -> list[str]:
        """What Tab completes after a command: residents' names and first names, places."""
        s = self.sim.state
        names = sorted(self.sim.agents)
        return [*names, *sorted({n.split(" ")[0] for n in names}), *sorted(s.places), "to", "at"]

    def say(self, *lines: Any) -> None:
        for line in lines:
            self.console.print(line, highlight=False, soft_wrap=isinstance(line, str))

    # -- one line -----------------------------------------------------------------------

    async def execute(self, line: str) -> bool:
        """Run one line; False once the session is to end."""
        word, rest = split(line)
        if not word or word.startswith("#"):
            return True
        go_on = True
        try:
            if word in COMMANDS:
                go_on = await getattr(self, f"_cmd_{word}")(rest)
            elif self.seat.resident is not None:
                await self._act(parse_action(self.sim.state, self.seat.resident, line))
            else:
                raise Hint(f"unknown command {word!r}; type help for the list")
        except Hint as hint:
            self.say(f"[yellow]hint:[/] {shown(str(hint))}")
        except StepAborted as exc:
            self.say(
                f"[bold red]error:[/] {shown(str(exc))}; the town is as after step "
                f"{exc.last_committed}; `step` tries again"
            )
        except ConcordiaError as exc:
            self.say(f"[bold red]error:[/] {shown(str(exc))}")
        except Exception as exc:  # never a traceback at the prompt
            self.say(f"[bold red]error:[/] {type(exc).__name__}: {shown(str(exc))}")
        self._logged()
        return go_on

    def _logged(self) -> None:
        """One line, when the library logged warnings since the last: how many, where."""
        n = self.log.take()
        if n:
            what = "warning" if n == 1 else "warnings"
            self.say(
                f"  [dim]({n} {what}, such as a degraded model call, "
                f"in {shown(str(self.log.path))})[/]"
            )

    # -- advancing ----------------------------------------------------------------------

    async def advance(self, n: int) -> None:
        """Run n steps, showing each as it commits."""
        await self.steps.run(self.sim, n, self._show)

    def _show(self, report: StepReport) -> None:
        resident = self.seat.resident
        if resident is None:
            self.say(*render.step_lines(report))
        else:
            self.say(*render.seen_lines(report, self.seat.seen, resident))
            self.say(f"  [dim]{shown(self.sim.state.describe_for(resident))}[/]")
        self._logged()

    async def _act(self, action: Any) -> None:
        self.seat.queued = action
        await self.advance(1)

    # -- commands -----------------------------------------------------------------------

    async def _cmd_step(self, rest: str) -> bool:
        n = _count(rest)
        await self.advance(n)
        return True

    async def _cmd_until(self, rest: str) -> bool:
        try:
            hh, mm = (int(x) for x in rest.strip().split(":"))
            now = self.sim.state.now
            target = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        except ValueError:
            raise Hint("until HH:MM, e.g. until 08:00") from None
        if target == now:
            raise Hint(f"it is {now:%H:%M} already")
        if target < now:  # tomorrow's
            target += timedelta(days=1)
        step = self.sim.state.clock.step
        n = math.ceil((target - now) / step)
        if target - now > UNTIL_MAX:
            raise Hint("until goes at most a day ahead")
        await self.advance(n)
        return True

    async def _cmd_look(self, rest: str) -> bool:
        s, resident = self.sim.state, self.seat.resident
        if resident is not None:
            if rest:
                pid, _ = self._place(rest)
                if pid != s.location(resident):
                    raise Hint(f"{resident} is not at {pid}: you see only where you are")
            self.say(render.clock(self.sim), shown(s.describe_for(resident)))
            return True
        if rest:
            pid, extra = self._place(rest)
            if extra:
                raise Hint(f"look PLACE: unexpected {extra!r}")
            self.say(*render.place(self.sim, pid))
        else:
            self.say(render.town(self.sim))
        return True

    async def _cmd_inspect(self, rest: str) -> bool:
        name = self._name(rest, whole=True)
        self._private(name)
        self.say(*render.resident(self.sim, name))
        return True

    async def _cmd_interview(self, rest: str) -> bool:
        name, question = self._name(rest)
        self._private(name, interview=True)
        if not question:
            raise Hint("interview NAME QUESTION, e.g. interview Margo How is the café?")
        answer = await self.interview(name, question)
        self.say(f"[bold]{shown(name)}:[/] {shown(answer)}")
        return True

    async def _cmd_whisper(self, rest: str) -> bool:
        name, text = self._name(rest)
        if not text:
            raise Hint("whisper NAME TEXT")
        self.sim.plant_memory(name, text)
        self.say(f"{shown(name)} will remember: {shown(text)}")
        return True

    async def _cmd_inject(self, rest: str) -> bool:
        where = None
        if rest.lower().startswith("at "):
            where, rest = self._place(rest[3:])
        if not rest:
            raise Hint("inject [at PLACE] TEXT")
        self.injections.add(rest, where)
        at = f"at {where}" if where else "everywhere"
        self.say(f"at the next step, {at}: {shown(rest)}")
        return True

    async def _cmd_play(self, rest: str) -> bool:
        if rest.split(" ")[0] == "--new":
            return await self._join(rest[len("--new") :].strip())
        self._start_playing(self._name(rest, whole=True))
        return True

    async def _join(self, card: str) -> bool:
        """A newcomer from the person's own card joins the town and is played. The card
        is checked before anything changes (sandbox/newcomer.py); joining is recorded
        in the run with its first memories, so reopening and forking bring it back."""
        if not card:
            raise Hint("play --new CARD.yaml: a persona card of your own (see personas/)")
        arrival = read_newcomer(self.sim, Path(card).expanduser())
        newcomer = arrival.newcomer
        add_newcomer(self.sim, newcomer)
        name, where = newcomer.card.name, self.sim.state.places[newcomer.place].name
        # those there see someone new arrive, at the next step, like any event
        self.injections.add(f"{name}, a newcomer, arrives at {where}.", newcomer.place)
        self.say(f"{shown(name)} joins {shown(self.sim.world.name)}, {shown(arrival.note)}")
        self._start_playing(name)
        return True

    def _start_playing(self, name: str) -> None:
        self.seat.take(name)
        self.say(
            f"you are {shown(name)} now: type what you do "
            + shown("(go PLACE, say [to NAME] TEXT, give ITEM to NAME, use ITEM, wait, ")
            + "or anything in words); leave hands back",
            f"  [dim]{shown(self.sim.state.describe_for(name))}[/]",
        )

    async def _cmd_say(self, rest: str) -> bool:
        if self.seat.resident is None:
            raise Hint("say is for playing: play NAME first")
        await self._act(parse_say(self.sim.state, self.seat.resident, rest))
        return True

    async def _cmd_leave(self, rest: str) -> bool:
        was = self.seat.leave()
        if was is None:
            raise Hint("you are not playing anyone")
        self.say(f"{shown(was)} is back in its model's hands")
        return True

    async def _cmd_fork(self, rest: str) -> bool:
        old = self.sim
        new_id = fork_run(old, self.root, self.store, rest or None)
        self._spent_before = merge_usage(self._spent_before, old.lm.usage.summary())
        sim = self.opener(new_id)
        # the old town closes what it owns: its stores and cache, and its backend only
        # if its model owns it (the CLI's runs borrow one model: it stays loaded)
        old.hooks.clear()
        await old.aclose()
        sim.hooks.extend([self.seat, self.injections])
        self.sim = sim
        self.log.move_to(self._folder(sim))
        label = f" ({shown(rest)})" if rest else ""
        self.say(
            f"forked town {old.run_id} after step {old.step} into {new_id}{label}; you are in "
            f"the copy now (reopen the original with: concordia-like town --open {old.run_id})"
        )
        return True

    async def _cmd_save(self, rest: str) -> bool:
        self.say(
            f"town {self.sim.run_id} is committed after every step (now after step "
            f"{self.sim.step}); reopen it with: concordia-like town --open {self.sim.run_id}"
        )
        return True

    async def _cmd_quit(self, rest: str) -> bool:
        return False

    async def _cmd_stats(self, rest: str) -> bool:
        spent = merge_usage(self._spent_before, self.sim.lm.usage.summary())
        try:
            from concordia_like.llm.usage import summary_percentiles

            pct = summary_percentiles(spent)
        except Exception:  # an older ledger without histograms: no percentiles
            pct = {}
        self.say(*render.usage_table(spent.get("total", {}), pct, self.steps.per_step))
        return True

    async def _cmd_view(self, rest: str) -> bool:
        if self.viewer is None:
            from concordia_like.viewer.sources import serve_town

            self.viewer = serve_town(
                lambda: self.sim.run_id,
                lambda rid: self.sim.memory if rid == self.sim.run_id else None,
                self.root,
                self.store,
            )
        self.say(f"the town in the browser: {self.viewer.url} (it follows every step)")
        return True

    async def _cmd_help(self, rest: str) -> bool:
        self.say(*[shown(x) for x in help_text(rest or None)])
        return True

    # -- interview ----------------------------------------------------------------------

    async def interview(self, name: str, question: str) -> str:
        """The resident's answer, in character; nothing of the town changes (see
        `engine.interview`)."""
        sim = self.sim
        (request,) = question_requests(
            sim,
            [name],
            question,
            tag="interview",
            instruction="Answer in one to three sentences.",
            purpose="speech",
            max_tokens=INTERVIEW_TOKENS,
        )
        with step_scope(sim.seed, sim.step):
            answer = await sim.lm.complete(request)
        return one_line(answer.text, 500) or "(says nothing)"

    # -- names --------------------------------------------------------------------------

    def _name(self, text: str, *, whole: bool = False) -> Any:
        name, rest = resolve(text, self.sim.agents, "resident")
        if whole:
            if rest:
                raise Hint(f"unexpected {rest!r} after {name}")
            return name
        return name, rest

    def _place(self, text: str) -> tuple[str, str]:
        return resolve_place(text, {pid: p.name for pid, p in self.sim.state.places.items()})

    def _private(self, name: str, *, interview: bool = False) -> None:
        """While playing, only one's own resident is open to inspection."""
        resident = self.seat.resident
        if resident is None:
            return
        if interview:
            raise Hint("while playing you cannot interview: leave first")
        if name != resident:
            raise Hint(f"while playing you see only what {resident} perceives: leave first")


def _count(rest: str) -> int:
    if not rest:
        return 1
    try:
        n = int(rest)
    except ValueError:
        raise Hint(f"step [N]: N is a number of steps, not {rest!r}") from None
    if not 1 <= n <= 1000:
        raise Hint("step N: N from 1 to 1000")
    return n
