"""The sandbox's commands: their names, usage, one-line help and an example, and how a
typed line is split into a command and its arguments.

Names are fixed (scripts and tests rely on them); everything a mistake can be is a
`Hint`: one line for the person at the prompt, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from concordia_like.errors import ConcordiaError


class Hint(ConcordiaError):
    """A mistake at the prompt: the line says what to type instead. Nothing changed."""


class AmbiguousPlace(Hint):
    """A place's name that several places bear; the hint names their ids."""


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    example: str


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("step", "step [N]", "advance N steps (default 1)", "step 3"),
        Command("until", "until HH:MM", "advance to that clock time", "until 08:00"),
        Command(
            "look",
            "look [PLACE]",
            "the clock and who is where; one place in detail",
            "look bakery",
        ),
        Command(
            "inspect",
            "inspect NAME",
            "persona, place, plan, holdings, memories and reflections of a resident",
            "inspect Ines Marlowe",
        ),
        Command(
            "interview",
            "interview NAME QUESTION",
            "the resident answers in character from its memories; changes nothing",
            "interview Margo What do you think of the bridge?",
        ),
        Command(
            "whisper",
            "whisper NAME TEXT",
            "plant one memory in a resident (recalled from the next step on)",
            "whisper Tobias The flour delivery will be late today.",
        ),
        Command(
            "inject",
            "inject [at PLACE] TEXT",
            "an event, world-wide or at one place, that residents perceive",
            "inject at cafe The copper urn bursts with a hiss.",
        ),
        Command(
            "play",
            "play NAME | --new CARD",
            "take over a resident, or join as a newcomer with a persona card (YAML) of your "
            "own: what you type is its action, you see what it perceives",
            "play Ines Marlowe",
        ),
        Command(
            "say",
            "say [to NAME] TEXT",
            "while playing: speak to someone present",
            "say to Tobias Good morning!",
        ),
        Command("leave", "leave", "hand the resident back to its model", "leave"),
        Command(
            "feed",
            "feed",
            "the town feed ranked as the world ranks it (while playing: as your resident "
            "last read it)",
            "feed",
        ),
        Command(
            "fork",
            "fork [NAME]",
            "copy the town as it stands into a new town, and go on in the copy",
            "fork what-if",
        ),
        Command("save", "save", "the town is committed after every step; says so", "save"),
        Command("quit", "quit", "close the town cleanly (Ctrl-D too)", "quit"),
        Command(
            "stats",
            "stats",
            "model calls, tokens and latency (p50/p95), this session and per step",
            "stats",
        ),
        Command(
            "view",
            "view",
            "serve the town in the browser (127.0.0.1); the page follows every step",
            "view",
        ),
        Command("help", "help [COMMAND]", "every command, or one, with an example", "help step"),
    )
}

#: what a resident being played may type besides commands (see seat.py; with a phone,
#: phone.py's APP_VERBS too)
PLAY_VERBS = ("go", "give", "use", "wait")


def split(line: str) -> tuple[str, str]:
    """The command word (lower case) and the rest of the line."""
    line = line.strip()
    word, _, rest = line.partition(" ")
    return word.lower(), rest.strip()


def resolve(text: str, names: Iterable[str], what: str) -> tuple[str, str]:
    """The known name `text` begins with (whole name, first word of it, or an id,
    case-insensitively; the longest match wins) and the rest of `text`."""
    low = text.lower()
    best: tuple[int, str] | None = None
    for name in names:
        for alias in {name, name.split(" ")[0]}:
            a = alias.lower()
            if (low == a or low.startswith(a + " ")) and (best is None or len(a) > best[0]):
                best = (len(a), name)
    if best is None:
        first = text.split(" ")[0] if text else ""
        known = _known(text, sorted(names))
        raise Hint(f"no {what} {first!r}: one of {known}" if first else f"name a {what}: {known}")
    return best[1], text[best[0] :].strip()


#: names a hint lists whole; of more (a city's residents or places), the nearest to
#: what was typed, and how many there are
NAMES_SHOWN = 24


def _known(typed: str, names: list[str]) -> str:
    if len(names) <= NAMES_SHOWN:
        return ", ".join(names)
    low = typed.lower()
    word = low.split(" ")[0]

    def likeness(name: str) -> float:
        """How like the typed text a name is: as a whole, or by its first word."""
        n = name.lower()
        whole = difflib.SequenceMatcher(None, low[: len(n)], n).ratio()
        return max(whole, difflib.SequenceMatcher(None, word, n.split(" ")[0]).ratio())

    scored = sorted(((likeness(n), n) for n in names), key=lambda s: -s[0])
    shown = [n for score, n in scored[:8] if score >= 0.6] or names[:8]
    return f"{', '.join(shown)}, ... ({len(names)} in all)"


def resolve_place(text: str, names: Mapping[str, str]) -> tuple[str, str]:
    """The place `text` begins with (its id, or a name only one place bears; `names`:
    id -> name) and the rest of `text`. A city repeats names (each district its Alder
    Row): a name that several places bear is refused with their ids to choose from."""
    by_name: dict[str, list[str]] = {}
    for pid, name in names.items():
        by_name.setdefault(name, []).append(pid)
    found, rest = resolve(text, [*names, *by_name], "place")
    if found in names:
        return found, rest
    ids = by_name[found]
    if len(ids) > 1:
        raise AmbiguousPlace(
            f"{found!r} is the name of {len(ids)} places: name one of {', '.join(ids)}"
        )
    return ids[0], rest


def help_text(name: str | None = None) -> list[str]:
    """Lines of help: every command, or one with its example."""
    if name:
        cmd = COMMANDS.get(name.lower())
        if cmd is None:
            raise Hint(f"no command {name!r}; type help for the list")
        return [f"{cmd.usage}: {cmd.summary}", f"  e.g. {cmd.example}"]
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"{c.usage:<{width}}  {c.summary}  (e.g. {c.example})" for c in COMMANDS.values()]
    lines.append("while playing, any other line is your resident's action: go PLACE, ")
    lines.append("  give ITEM to NAME, use ITEM ..., wait, or anything you do in words;")
    lines.append("  with a phone: message NAME TEXT, post TEXT, reply POST TEXT, like POST,")
    lines.append("  follow NAME, read feed, read messages, pay N to NAME")
    return lines
