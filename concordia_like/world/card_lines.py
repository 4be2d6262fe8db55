"""Many persona cards in one file: JSON Lines, one card a line, for generated worlds.

A city of thousands cannot keep one YAML file per resident (thousands of files to read
and parse), so a world may name a card file (`personas: cards.jsonl`) whose every line
is one card, in the same fields as `personas/*.yaml`, validated by the same model. Each
line is checked on its own and every complaint names the file, the line and the field,
as the YAML loader's do:

    worlds/city/cards.jsonl:812: routine[2].place: unknown place 'cafe_9' of worlds/city/world.yaml

A blank line is skipped; a duplicate key within a card is refused (JSON would keep the
last silently). The file is read under the load's `ReadBudget`, and a line may be no
longer than a card file may be (`yaml_loader.MAX_FILE_BYTES`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from concordia_like.world.persona import PersonaCard
from concordia_like.yaml_loader import (
    MAX_FILE_BYTES,
    ConfigFileError,
    Issue,
    ReadBudget,
    YamlDoc,
    display_path,
    pydantic_issues,
)

#: what a card file's name ends with
SUFFIX = ".jsonl"


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"duplicate key {key!r}")
        out[key] = value
    return out


def card_doc(path: Path, line: int, data: Any) -> YamlDoc:
    """A card's line as a parsed document: every field it has is at that line, so
    cross-reference checks report a card's problems where it is."""
    return YamlDoc(path, data, {(): line})


def load_card_lines(
    path: str | Path, budget: ReadBudget | None = None
) -> list[tuple[PersonaCard, YamlDoc]]:
    """Every card of a JSON Lines file with its line, in file order; ConfigFileError
    lists the problems of every line (a name used twice included) at once."""
    path = Path(path)
    name = display_path(path)
    budget = budget or ReadBudget()
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ConfigFileError([Issue(name, 0, "", "is not a regular file")])
        if size > budget.left:
            raise ConfigFileError(
                [
                    Issue(
                        name,
                        0,
                        "",
                        "over the limit of what one load reads: the files it names come "
                        f"to more than {budget.total:,} bytes in all",
                    )
                ]
            )
        raw = path.read_bytes()[: budget.left + 1]
    except FileNotFoundError:
        raise ConfigFileError([Issue(name, 0, "", "file not found")]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigFileError([Issue(name, 0, "", f"cannot read file: {reason}")]) from None
    budget.left -= len(raw)
    cards: list[tuple[PersonaCard, YamlDoc]] = []
    issues: list[Issue] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_FILE_BYTES:
            issues.append(Issue(name, number, "", f"a card over {MAX_FILE_BYTES:,} bytes"))
            continue
        try:
            data = json.loads(line, object_pairs_hook=_no_duplicates)
        except (ValueError, RecursionError) as exc:
            issues.append(Issue(name, number, "", f"not a JSON card: {exc}"))
            continue
        doc = card_doc(path, number, data)
        if not isinstance(data, dict):
            issues.append(
                doc.issue((), f"expected a card (a JSON object), got {type(data).__name__}")
            )
            continue
        try:
            card = PersonaCard.model_validate(data)
        except ValidationError as exc:
            issues.extend(pydantic_issues(doc, exc, PersonaCard))
            continue
        if card.name in first_line:
            issues.append(
                doc.issue(
                    ("name",), f"name {card.name!r} is also used at line {first_line[card.name]}"
                )
            )
            continue
        first_line[card.name] = number
        cards.append((card, doc))
    if issues:
        raise ConfigFileError(issues)
    return cards


def card_line(card: PersonaCard) -> str:
    """One card as its line: the fields a card file holds, defaults left out, in the
    model's order, so the same card is always the same bytes."""
    data = card.model_dump(mode="json", exclude_defaults=True)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
