"""Text made fit for one line of a prompt, a log or a table, for an API's name field, or
for the terminal: the one place where white space is folded, long text is cut and
outside text is made safe to show, so that every layer does it the same way."""

from __future__ import annotations

import hashlib
import re

from rich.markup import escape

ELLIPSIS = "…"
#: C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides
#: and isolates that make a terminal show text in another order than it is stored
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def squash(text: str) -> str:
    """`text` with every run of white space (newlines included) folded to one space and
    none at either end."""
    return " ".join(text.split())


def clip(text: str, max_chars: int) -> str:
    """`text` cut at a word boundary to at most `max_chars`, marked with an ellipsis.

    The cut falls on the last space of the final stretch when there is one, so a word is
    not split in two unless it is very long."""
    if len(text) <= max_chars:
        return text
    cut = text[: max(0, max_chars - 1)]
    if " " in cut[-40:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;") + ELLIPSIS


def one_line(text: str, max_chars: int) -> str:
    """`text` squashed onto one line and clipped to `max_chars`."""
    return clip(squash(text), max_chars)


def identifier(text: str, fallback: str, max_chars: int = 64) -> str:
    """`text` as a name of letters, digits, `_` and `-` (each run of anything else one
    `_`), at most `max_chars` long, as OpenAI's `name` fields take it; `fallback` when
    nothing is left."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:max_chars] or fallback


def plain(text: str) -> str:
    """`text` without the control characters a terminal would act on (escape and
    operating-system sequences, carriage returns, bells, bidirectional overrides), tab
    and newline kept: what is left of such a sequence shows as the characters it is."""
    return _CONTROLS.sub("", text)


def shown(text: object) -> str:
    """Text that is not the program's own (residents' words, events, file names, fields
    of a file, messages quoting input) made safe to print through rich: control
    characters dropped and markup escaped, so that it shows as it reads. The one path
    for such text to the screen; what is stored keeps it as it came."""
    return escape(plain(str(text)))


def text_key(text: str) -> str:
    """A short key standing for `text` (24 hex digits of its BLAKE2b digest): what is
    stored where only whether a text is the same matters, or where one text stored once
    is referred to from many places."""
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
