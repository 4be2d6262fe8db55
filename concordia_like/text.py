"""Text made fit for one line of a prompt, a log or a table, or for an API's name field:
the one place where white space is folded and long text is cut, so that every layer
cuts the same way."""

from __future__ import annotations

import re

ELLIPSIS = "…"


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
