"""Name lists: shipped with the package (`names/<list>.txt`) or beside a spec.

A list is one name a line; blank lines and lines starting with `#` are skipped. A
spec names a list by its bare word (`feminine`: the shipped list) or by a file path
ending in `.txt`, relative to the spec's folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from concordia_like.errors import ConfigError

SHIPPED = "names"


def shipped_lists() -> list[str]:
    """The names of the lists shipped with the package."""
    folder = resources.files(__package__).joinpath(SHIPPED)
    return sorted(p.name.removesuffix(".txt") for p in folder.iterdir() if p.name.endswith(".txt"))


def read_list(ref: str, base: Path) -> list[str]:
    """The names of list `ref` (a shipped list's name, or a `.txt` path relative to
    `base`), in file order without repeats; ConfigError when it is missing or empty."""
    if ref.endswith(".txt"):
        path = Path(ref) if Path(ref).is_absolute() else base / ref
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"name list {ref!r}: {exc.strerror or exc}") from None
    else:
        entry = resources.files(__package__).joinpath(SHIPPED, f"{ref}.txt")
        if not entry.is_file():
            raise ConfigError(
                f"no shipped name list {ref!r}; shipped: {', '.join(shipped_lists())} "
                "(or name a .txt file beside the spec)"
            )
        text = entry.read_text(encoding="utf-8")
    names = [s.strip() for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#")]
    if not names:
        raise ConfigError(f"name list {ref!r} is empty")
    return list(dict.fromkeys(names))
