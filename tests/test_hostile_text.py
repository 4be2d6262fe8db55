"""Text that is not the program's own is shown as it reads: markup in residents' words,
injected events, names, paths and error messages is neither parsed (no MarkupError, no
style, no hidden link) nor are control sequences (clear screen, set title) passed to
the terminal; what is stored keeps the text as it came."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from concordia_like.engine.runs import resume_run, start_run
from concordia_like.sandbox.session import TownSession
from concordia_like.text import plain, shown

from support.engine import MINI, lm_factory

MARKUP = "[/x] [bold red]loud[/bold red] [link=http://x]click[/link]"
CONTROLS = "\x1b]0;title\x07 \x1b[2J \x9b31m \r\x08\u202etxt"
HOSTILE = f"{MARKUP} {CONTROLS} end"
#: what a reader sees of it: the markup as typed, the control characters gone
SEEN = f"{MARKUP} ]0;title [2J 31m txt end"


def assert_literal(output: str) -> None:
    assert SEEN in output, output
    for code in ("\x1b", "\x07", "\x9b", "\r", "\x08", "\u202e"):
        assert code not in output, repr(code)


def test_shown_escapes_markup_and_drops_control_characters() -> None:
    assert plain(HOSTILE) == SEEN
    assert plain("tab\tand\nnewline stay") == "tab\tand\nnewline stay"
    out = io.StringIO()
    Console(file=out, width=400, highlight=False).print(shown(HOSTILE))
    assert out.getvalue() == SEEN + "\n"
    assert shown("trailing backslash \\") != "trailing backslash \\"  # escaped too


class Town:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.factory = lm_factory()
        sim = start_run(MINI, self.factory, root=root, seed=2)
        self.out = io.StringIO()
        console = Console(file=self.out, width=400, highlight=False)
        self.session = TownSession(sim, console, opener=self.open, root=root)

    def open(self, run_id: str):
        return resume_run(run_id, self.factory, world_path=MINI, root=self.root)

    async def __call__(self, *lines: str) -> str:
        start = self.out.tell()
        for line in lines:
            assert await self.session.execute(line)
        return self.out.getvalue()[start:]


@pytest.fixture
async def town(runs_root: Path):
    t = Town(runs_root)
    yield t
    await t.session.aclose()


async def test_the_sandbox_shows_injected_whispered_and_mistyped_text_literally(town) -> None:
    said = await town(f"inject {HOSTILE}")
    assert_literal(said)
    stepped = await town("step")
    assert_literal(stepped)  # the announcement, as the step shows it
    assert_literal(await town(f"whisper Ann {HOSTILE}"))
    hint = await town(f"look {CONTROLS} {MARKUP}")  # the hint quotes what was typed
    assert "hint: no place '" in hint and "\x1b" not in hint and "]0;title" in hint
    assert "no place '[/x]'" in await town(f"look {MARKUP}")
    # stored as it came
    events = town.session.sim.recorder.events(town.session.sim.run_id)
    assert any(HOSTILE in e.text for e in events)


async def test_the_sandbox_echoes_a_hostile_script_line_literally(town) -> None:
    from concordia_like.sandbox.terminal import run_lines

    start = town.out.tell()
    await run_lines(town.session, [f"# {HOSTILE}"])
    assert_literal(town.out.getvalue()[start:])


async def test_log_shows_a_hostile_event_literally(
    town, runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concordia_like.cli import log as log_command
    from concordia_like.cli.main import app

    await town(f"inject {HOSTILE}", "step")
    run_id = town.session.sim.run_id
    await town.session.aclose()
    out = io.StringIO()
    monkeypatch.setattr(log_command, "console", Console(file=out, width=2000, highlight=False))
    result = CliRunner().invoke(app, ["log", run_id, "--root", str(runs_root)])
    assert result.exit_code == 0, result.output
    assert_literal(out.getvalue())


def test_an_error_line_quoting_hostile_input_is_literal(tmp_path: Path) -> None:
    from concordia_like.cli.main import app

    result = CliRunner().invoke(app, ["log", HOSTILE, "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "MarkupError" not in result.output and "Traceback" not in result.output
    assert "error:" in result.output and "[/x]" in result.output
    assert "\x1b" not in result.output and "\x07" not in result.output


def test_a_world_path_with_markup_is_one_literal_error_line(tmp_path: Path) -> None:
    from concordia_like.cli.main import app

    folder = tmp_path / "[/x][bold red]"
    folder.mkdir(parents=True)
    world = folder / "w.yaml"
    world.write_text("name: [unclosed\n")
    result = CliRunner().invoke(
        app, ["run", str(world), "--steps", "1", "-b", "scripted", "--root", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "[/x][bold red]" in result.output
