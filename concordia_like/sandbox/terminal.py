"""Where the session's lines come from: a prompt at a terminal, or a script.

At a terminal, prompt_toolkit gives the line editing, a history kept across sessions
in a file, and Tab completion of commands, residents' names and places. From a script
(`--script FILE`, or stdin when it is not a terminal) each line is echoed after the
prompt, so that the transcript reads like a session typed by hand."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from rich.markup import escape

from concordia_like.sandbox.commands import COMMANDS
from concordia_like.sandbox.session import TownSession


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
        if not await session.execute(line):
            break


async def run_lines(session: TownSession, lines: Iterable[str]) -> None:
    """Run lines as if typed, echoing each after the prompt; stop at `quit`."""
    for raw in lines:
        line = raw.rstrip("\n")
        session.say(f"[bold]{escape(session.prompt())}[/]{escape(line)}")
        if not await session.execute(line):
            break
