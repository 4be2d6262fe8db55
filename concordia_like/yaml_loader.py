"""Loading YAML configuration files so that every complaint names file, line and field.

A user who mistypes one field in a 300-line world file should be told exactly where, so
this module parses with node positions kept: each mapping key and sequence entry gets
the line it starts on, under its path (`("places", "bakery", "connections", 1)`).
Pydantic's error `loc` and our own cross-reference checks are both paths, so both map to
a line the same way, and every refusal reads like a compiler error:

    worlds/town.yaml:42: places.bakery.connections[1]: unknown place 'bakeryy'

Two YAML 1.1 surprises are removed on the way: base-60 numbers (`at: 05:30` would be the
integer 330, so times stay strings) and silently overwritten duplicate keys (refused).
Loading never writes anything.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from concordia_like.errors import ConfigError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """SafeLoader without YAML 1.1 base-60 numbers: `05:30` stays the string '05:30'."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_INT = re.compile(
    r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
)
_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_Loader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))


def display_path(path: str | Path) -> str:
    """The path as a user would type it: relative to the working folder when under it."""
    p = Path(os.path.normpath(path))
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def format_loc(loc: Sequence[str | int]) -> str:
    """`("places", "bakery", "connections", 1)` -> `places.bakery.connections[1]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class Issue:
    """One thing wrong with one file, at one line."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigFileError(ConfigError):
    """A configuration file refused; `issues` lists every problem found, first first."""

    MAX_SHOWN = 12

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        shown = [str(i) for i in self.issues[: self.MAX_SHOWN]]
        if len(self.issues) > self.MAX_SHOWN:
            shown.append(f"... and {len(self.issues) - self.MAX_SHOWN} more problems")
        super().__init__("\n".join(shown))

    @property
    def first(self) -> Issue:
        return self.issues[0]


@dataclass
class YamlDoc:
    """A parsed YAML file with the line of every key and entry, for pointing at problems."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return display_path(self.path)

    def locate(self, loc: Iterable[str | int]) -> tuple[int, Loc]:
        """Line of the deepest part of `loc` present in the file, and `loc` as displayed.

        Parts that are not in the file are a missing field (shown, line of its parent) or
        a tagged union's tag, which pydantic adds to its `loc` (dropped)."""
        path: Loc = ()
        shown: list[str | int] = []
        node = self.data
        line = self.lines.get((), 1)
        for part in loc:
            key = part if isinstance(part, int) else str(part)
            if (*path, key) in self.lines:
                path = (*path, key)
                shown.append(key)
                line = self.lines[path]
                node = _child(node, key)
            elif isinstance(node, dict) and node.get("kind") == key:
                continue  # a discriminated union's tag
            else:
                shown.append(key)
                node = None
        return line, tuple(shown)

    def issue(self, loc: Iterable[str | int], message: str) -> Issue:
        line, shown = self.locate(loc)
        return Issue(self.name, line, format_loc(shown), message)


def _child(node: Any, key: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return None


def read_yaml(path: str | Path) -> YamlDoc:
    """Parse `path` into a YamlDoc; a missing, unreadable or malformed file raises
    ConfigFileError at the line of the problem."""
    path = Path(path)
    name = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError([Issue(name, 0, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError([Issue(name, 0, "", f"cannot read file: {exc}")]) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigFileError([Issue(name, 1, "", "file is empty")])
        lines: dict[Loc, int] = {}
        dups: list[Issue] = []
        _walk(node, (), lines, dups, name)
        if dups:
            raise ConfigFileError(dups)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigFileError([Issue(name, line, "", f"YAML syntax error: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigFileError([Issue(name, 0, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    lines[()] = node.start_mark.line + 1
    return YamlDoc(path, data, lines)


def _walk(node: yaml.Node, path: Loc, lines: dict[Loc, int], dups: list[Issue], name: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key == "<<":
                continue
            if key in seen:
                dups.append(
                    Issue(
                        name,
                        line,
                        format_loc((*path, key)),
                        f"duplicate key (first at line {seen[key]})",
                    )
                )
                continue
            seen[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, dups, name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), lines, dups, name)


def pydantic_issues(
    doc: YamlDoc, exc: ValidationError, model: type[BaseModel] | None = None
) -> list[Issue]:
    """Each pydantic error as an Issue, in words a YAML author understands."""
    out = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        kind = err["type"]
        if kind == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}" if loc else "unknown field"
            allowed = _allowed_fields(doc, loc, model)
            if allowed:
                close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
                message += f" (did you mean {close[0]!r}?)" if close else ""
                message += f"; allowed: {', '.join(allowed)}"
        elif kind == "missing":
            message = "required field missing"
        else:
            message = err["msg"].removeprefix("Value error, ")
            if (
                kind != "value_error"
                and "input" in err
                and not isinstance(err["input"], dict | list)
            ):
                message += f", got {_short(err['input'])}"
        out.append(doc.issue(loc, message))
    return out


def _allowed_fields(
    doc: YamlDoc, loc: Sequence[str | int], model: type[BaseModel] | None
) -> list[str]:
    """Field names of the model at `loc[:-1]`, found by walking the root model's annotations."""
    if model is None:
        return []
    current: Any = model
    for part in loc[:-1]:
        current = _descend(current, part)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


def _descend(tp: Any, part: str | int) -> Any:
    """The type found at `part` inside `tp`: a model's field, a list's or dict's values,
    or the member of a tagged union whose `kind` is `part` (pydantic's loc names it)."""
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        f = tp.model_fields.get(str(part))
        if f is None:
            f = next((f for f in tp.model_fields.values() if f.alias == part), None)
        return _unwrap(f.annotation) if f is not None else None
    origin = get_origin(tp)
    if origin in (list, tuple, set, frozenset):
        return _unwrap(get_args(tp)[0])
    if origin is dict:
        return _unwrap(get_args(tp)[1])
    if origin in (Union, types.UnionType):
        for member in get_args(tp):
            kind = getattr(member, "model_fields", {}).get("kind")
            if kind is not None and kind.default == part:
                return member
    return None


def _unwrap(tp: Any) -> Any:
    """`Annotated[X, ...]` and `X | None` -> X; anything else as is."""
    if get_origin(tp) is Annotated:
        return _unwrap(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return tp


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_doc(doc: YamlDoc, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """`doc.data` as `model`, or ConfigFileError naming file, line and field of each problem."""
    if not isinstance(doc.data, dict):
        raise ConfigFileError(
            [
                doc.issue(
                    (), f"expected a mapping of fields at the top, got {type(doc.data).__name__}"
                )
            ]
        )
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        raise ConfigFileError(pydantic_issues(doc, exc, model)) from None


def load_model(path: str | Path, model: type[M]) -> tuple[M, YamlDoc]:
    """Read and validate one YAML file; the YamlDoc is kept for cross-reference errors."""
    doc = read_yaml(path)
    return validate_doc(doc, model), doc
