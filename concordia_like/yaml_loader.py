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

Only a regular file is read (a named pipe would wait for a writer forever, a device
never end), and one load (a world with every persona card it names) reads at most
`MAX_LOAD_BYTES` in all, through one `ReadBudget`. Every file is read under
`YamlLimits` (size in bytes, aliases, nesting depth, nodes), so
a hostile file is refused in well under a second and a few MB: an "alias bomb" of a few
hundred bytes (ten levels of nine aliases each) otherwise expands to billions of nodes.
The limits are enforced while the node graph is composed, event by event: an alias
counts as a full copy of the node it names (its nodes and its depth), so the expanded
size is known, and refused, before anything is expanded by construction, by the line
walk or by validation. The defaults are far above what a real world or persona needs
(`worlds/town.yaml` is 13 KB, 915 nodes, 6 levels deep), and the node limit is about what
a file at the size limit holds without aliases.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import Node
from yaml.resolver import Resolver

from concordia_like.errors import ConfigError
from concordia_like.text import clip

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

# Limits on every configuration file read by `read_yaml` (worlds, personas, scenarios).
# worlds/town.yaml: 13 KB, 915 nodes, 6 levels, no alias; a persona card: 2 KB, 110, 3.
MAX_FILE_BYTES = 1024 * 1024  # 1 MiB
MAX_ALIASES = 500  # uses of an anchor (`*name`, `<<: *name`) in one file
MAX_DEPTH = 32  # nested mappings and sequences, an alias counted as the node it names
MAX_NODES = 100_000  # scalars, mappings, sequences; an alias as a copy of its node
MAX_LOAD_BYTES = 16 * 1024 * 1024  # all the files of one load together
# what an error line shows of a field's path and of a message (they may quote input)
MAX_FIELD_CHARS = 200
MAX_MESSAGE_CHARS = 600


@dataclass(frozen=True)
class YamlLimits:
    """How big a YAML file may be, read and composed; past any limit it is refused."""

    file_bytes: int = MAX_FILE_BYTES
    aliases: int = MAX_ALIASES
    depth: int = MAX_DEPTH
    nodes: int = MAX_NODES


DEFAULT_LIMITS = YamlLimits()


class ReadBudget:
    """The bytes one load may still read, over all the files it reads: a world naming
    many large cards is refused at the limit, not after reading each of them."""

    def __init__(self, total: int = MAX_LOAD_BYTES) -> None:
        self.total = total
        self.left = total


class _LimitExceeded(Exception):
    """Raised by the composer at the event that crossed a limit; read_yaml names the file."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _LimitedComposer(Composer):
    """PyYAML's composer, counting as it goes what the document would be once expanded.

    Each node composed adds one node; each alias adds the expanded size of the node it
    names, and reaches the current depth plus that node's height. Both are known when
    the alias is met (its node is complete by then; an alias inside the node it names is
    refused as recursive), so the count stops at the limit without ever expanding."""

    def __init__(self, limits: YamlLimits) -> None:
        super().__init__()
        self._limits = limits
        self._nodes = 0
        self._aliases = 0
        self._depth = 0  # collections open around the node being composed
        self._deepest = 0  # deepest level reached in the node being composed
        self._extent: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (nodes, height)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > self._limits.aliases:
                raise _LimitExceeded(
                    line, f"too many YAML aliases: over the alias limit of {self._limits.aliases}"
                )
            target = self.anchors.get(event.anchor)
            if target is not None:  # an undefined alias is the composer's own error
                extent = self._extent.get(id(target))
                if extent is None:
                    raise _LimitExceeded(
                        line, f"recursive YAML alias *{event.anchor} inside the node it names"
                    )
                self._add_nodes(extent[0], line)
                self._reach(self._depth + extent[1], line)
            return super().compose_node(parent, index)
        start_nodes = self._nodes
        outer_deepest = self._deepest
        self._add_nodes(1, line)
        collection = isinstance(event, SequenceStartEvent | MappingStartEvent)
        if collection:
            self._depth += 1
        self._deepest = self._depth
        self._reach(self._depth, line)
        node = super().compose_node(parent, index)
        if collection:
            self._depth -= 1
        if event.anchor is not None:
            self._extent[id(node)] = (self._nodes - start_nodes, self._deepest - self._depth)
        self._deepest = max(outer_deepest, self._deepest)
        return node

    def _add_nodes(self, count: int, line: int) -> None:
        self._nodes += count
        if self._nodes > self._limits.nodes:
            raise _LimitExceeded(
                line,
                f"too many YAML nodes: over the node limit of {self._limits.nodes:,}"
                " (an alias counts as a copy of what it names)",
            )

    def _reach(self, depth: int, line: int) -> None:
        self._deepest = max(self._deepest, depth)
        if depth > self._limits.depth:
            raise _LimitExceeded(
                line,
                f"YAML nested too deep: over the depth limit of {self._limits.depth} levels"
                " (an alias counts as a copy of what it names)",
            )


try:  # libyaml's parser, when PyYAML was built with it
    from yaml.cyaml import CParser as _CParser
except ImportError:  # pragma: no cover
    _CParser = None

if _CParser is not None:

    class _Loader(_LimitedComposer, _CParser, SafeConstructor, Resolver):
        """libyaml's parser, our counting composer, SafeLoader's constructor."""

        def __init__(self, stream: str, limits: YamlLimits = DEFAULT_LIMITS) -> None:
            _CParser.__init__(self, stream)
            _LimitedComposer.__init__(self, limits)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, _LimitedComposer, SafeConstructor, Resolver):  # type: ignore[no-redef]
        """PyYAML's pure-Python parser, our counting composer, SafeLoader's constructor."""

        def __init__(self, stream: str, limits: YamlLimits = DEFAULT_LIMITS) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            _LimitedComposer.__init__(self, limits)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)


# YAML 1.1 without base-60 numbers: `05:30` stays the string '05:30'.
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
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
        where = f"{clip(self.file, MAX_FIELD_CHARS)}:{self.line}"
        message = clip(self.message, MAX_MESSAGE_CHARS)
        if self.field:
            return f"{where}: {clip(self.field, MAX_FIELD_CHARS)}: {message}"
        return f"{where}: {message}"


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


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def _read_regular(path: Path, most: int) -> tuple[bytes, int]:
    """At most `most` bytes of `path` and its size; OSError, or ValueError naming what
    `path` is when it is not a regular file (checked on the open file, which a pipe
    with no writer or a device cannot hold up)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(_kind(info.st_mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        return f.read(most), info.st_size


def read_yaml(
    path: str | Path, limits: YamlLimits = DEFAULT_LIMITS, budget: ReadBudget | None = None
) -> YamlDoc:
    """Parse `path` into a YamlDoc; a missing, unreadable, malformed or oversized file
    (past any of `limits`, or past what is left of `budget`), or one that is not a
    regular file, raises ConfigFileError at the line of the problem."""
    path = Path(path)
    name = display_path(path)
    most = limits.file_bytes if budget is None else min(limits.file_bytes, budget.left)
    try:
        raw, size = _read_regular(path, most + 1)  # never more, whatever the file is
    except FileNotFoundError:
        raise ConfigFileError([Issue(name, 0, "", "file not found")]) from None
    except ValueError as exc:
        raise ConfigFileError(
            [Issue(name, 0, "", f"is {exc}: only a regular file is read")]
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigFileError([Issue(name, 0, "", f"cannot read file: {reason}")]) from None
    if budget is not None and len(raw) > budget.left and len(raw) <= limits.file_bytes:
        raise ConfigFileError(
            [
                Issue(
                    name,
                    0,
                    "",
                    "over the limit of what one load reads: the files it names come to "
                    f"more than {_size(budget.total)} in all",
                )
            ]
        )
    if budget is not None:
        budget.left -= len(raw)
    if len(raw) > limits.file_bytes:
        actual = f"{size:,} bytes" if size > limits.file_bytes else "larger"
        raise ConfigFileError(
            [
                Issue(
                    name,
                    0,
                    "",
                    f"file too large: {actual}, over the size limit of {_size(limits.file_bytes)}",
                )
            ]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError([Issue(name, 0, "", f"cannot read file: {exc}")]) from None
    loader = _Loader(text, limits)
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
    except _LimitExceeded as exc:
        raise ConfigFileError([Issue(name, exc.line, "", exc.message)]) from None
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


def _size(n: int) -> str:
    """1048576 -> '1 MiB'; 1536 -> '1.5 KiB'; 100 -> '100 bytes'."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


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
    return clip(repr(value), limit)


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


def load_model(
    path: str | Path,
    model: type[M],
    *,
    limits: YamlLimits = DEFAULT_LIMITS,
    budget: ReadBudget | None = None,
) -> tuple[M, YamlDoc]:
    """Read and validate one YAML file; the YamlDoc is kept for cross-reference errors."""
    doc = read_yaml(path, limits, budget)
    return validate_doc(doc, model), doc
