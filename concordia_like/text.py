"""Text made fit for one line of a prompt, a log or a table: the one place where white
space is folded and long text is cut, so that every layer cuts the same way."""

from __future__ import annotations

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
