"""Where the session's lines come from: a prompt at a terminal, or a script.

At a terminal, prompt_toolkit gives the line editing, a history kept across sessions
in a file, and Tab completion of commands, residents' names and places. From a script
(`--script FILE`, or stdin when it is not a terminal) each line is echoed after the
prompt, so that the transcript reads like a session typed by hand.

Every line is bounded (`LINE_MAX_CHARS`): a script or stdin is read a line at a time,
never more than the bound, and a longer line ends the session with one error line (what
follows it cannot be trusted to be the commands meant, and an endless one never ends);
at the prompt a longer line is skipped with a hint."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory

from concordia_like.errors import ConfigError
from concordia_like.sandbox.commands import COMMANDS
from concordia_like.sandbox.session import TownSession
from concordia_like.text import shown

#: the longest line the sandbox reads, from the prompt, a script or stdin
LINE_MAX_CHARS = 4096
_LINE_MAX_BYTES = 4 * LINE_MAX_CHARS  # UTF-8 takes at most four bytes a character


def _too_long(where: str) -> str:
    return f"{where} is longer than {LINE_MAX_CHARS:,} characters"


def bounded_lines(stream: BinaryIO, name: str) -> Iterator[str]:
    """The lines of `stream` as text (bad UTF-8 replaced, line ends dropped), read one
    at a time; a line over `LINE_MAX_CHARS` raises ConfigError, so that an endless one
    costs no more than the bound."""
    for number in itertools.count(1):
        raw = stream.readline(_LINE_MAX_BYTES + 1)
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if len(raw) > _LINE_MAX_BYTES or len(line) > LINE_MAX_CHARS:
            raise ConfigError(f"{_too_long(f'{name}: line {number}')}: the session ends there")
        yield line


def commands_or(lines: Iterator[str], default: Iterable[str]) -> Iterator[str]:
    """`lines` when any of them is more than white space, else `default` (what stdin
    with no commands runs); `lines` is read as it goes, never held whole."""
    for blank, line in enumerate(lines):
        if line.strip():
            yield from itertools.repeat("", blank)
            yield line
            yield from lines
            return
    yield from default


class TownCompleter(Completer):
    """Commands first; after a command, residents' names, places and `to`/`at`."""

    def __init__(self, session: TownSession) -> None:
        self.session = session

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor
        if " " not in text.lstrip():
            word = text.lstrip().lower()
            for name in COMMANDS:
                if name.startswith(word):
                    yield Completion(name + " ", start_position=-len(word))
            return
        _, _, rest = text.lstrip().partition(" ")
        last = rest.split(" ")[-1]
        seen = set()
        for cand in self.session.words():
            for typed in (rest, last):
                if typed and cand.lower().startswith(typed.lower()) and cand not in seen:
                    seen.add(cand)
                    yield Completion(cand, start_position=-len(typed))
                    break


async def run_prompt(session: TownSession, history: Path) -> None:
    """Read lines at the terminal until `quit` or Ctrl-D; Ctrl-C at the prompt only
    clears the line."""
    history.parent.mkdir(parents=True, exist_ok=True)
    prompt: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)),
        completer=TownCompleter(session),
        complete_while_typing=False,
    )
    while True:
        try:
            line = await prompt.prompt_async(session.prompt())
        except KeyboardInterrupt:
            session.say("[dim](Ctrl-C: the town is safe; type quit or Ctrl-D to leave)[/]")
            continue
        except EOFError:
            break
        if len(line) > LINE_MAX_CHARS:
            session.say(f"[yellow]hint:[/] {_too_long('that line')}: skipped")
            continue
        if not await session.execute(line):
            break


async def run_lines(session: TownSession, lines: Iterable[str]) -> None:
    """Run lines as if typed, echoing each after the prompt; stop at `quit`."""
    for raw in lines:
        line = raw.rstrip("\n")
        if len(line) > LINE_MAX_CHARS:
            raise ConfigError(f"{_too_long('a line')}: the session ends there")
        session.say(f"[bold]{shown(session.prompt())}[/]{shown(line)}")
        if not await session.execute(line):
            break
