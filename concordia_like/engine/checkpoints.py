"""A checkpoint as parts, so that a step writes what changed and nothing else.

A run's state is the world (`WorldState.to_dict`) and each resident's mind
(`Agent.to_dict`, and the hooks' states under `HOOKS_KEY`). Written whole every step, it
costs every resident's state per step however few of them changed. Split into parts
keyed by what they hold (each entry of the world's frame, each resident's place and
attributes, each holder's items, each field of each mind), a step rewrites only the
parts whose text differs from what the store holds, and joining all parts gives back
exactly the dicts they were split from (the world's form is canonical: residents and
items in sorted order), so a resumed run goes on as an uninterrupted one.

A long string in a mind's fields is a part of its own, keyed by its digest, and the
field holds a reference to it; so is a long list (its JSON, once its own long strings
are references): everyone at a place perceives the same lines, and their news, recent
observations and retrieved memories repeat them, so a crowd's step writes each text
and each such list once, not once per resident, and a resident whose plan moved on
rewrites its plan's progress, not its blocks. A text no part refers to any more is
deleted with the parts that are gone, and one still referred to is never written
again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from concordia_like.store.base import conflict_insert
from concordia_like.store.run_tables import CheckpointPartRow
from concordia_like.text import text_key

#: a head row whose world is this marker has its state in parts (older runs: the
#: whole state is in the head row)
PARTS_MARK = "parts"
#: 3: a mind's long lists are stored once too; 2: its long strings are stored once
#: (`_TEXT`); 1: written out in every field. A format reads the ones before it.
PARTS_FORMAT = 3
#: keys per DELETE ... IN (...) statement
_CHUNK = 500

_FRAME = "world:"  # one top-level entry of the world (its clock, its places, ...)
_RESIDENT = "w:"  # a resident's place, home and attributes, as the world holds them
_ITEMS = "i:"  # the item stacks one holder has
_MIND = "a:"  # a mind (or the hooks' states) is there, whatever its fields
_FIELD = "m:"  # one field of a mind: "m:<field>:<name>" (a field name has no colon)
_USAGE = "usage"  # the run's usage, less what it holds per resident
_USAGE_OF = "u:"  # one resident's usage
_TEXT = "t:"  # a long string of a mind's fields: "t:<its digest>", the string itself
#: strings of a mind's fields this long or longer are stored once, by digest
TEXT_MIN = 64
#: a string that refers to a stored text ("@<digest>"); a short string that begins
#: with it is written with it doubled
_REF = "@"
#: after `_REF`: the stored text is a list's JSON ("@[<digest>")
_LIST = "["


def encode(data: Any) -> str:
    """A part's text: canonical, so equal data give equal text whatever the dict
    order."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(text: str) -> bytes:
    """What a store's copy of a part is compared by (the text itself would cost as much
    memory as the state)."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def split(world: Mapping[str, Any], agents: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The state as parts: key -> canonical JSON text. Parts are small and change
    apart: a resident who walked on rewrites its place and its latest news, not its
    plan or the town's places."""
    parts = {}
    for key, value in world.items():
        if key == "agents":
            for name, resident in value.items():
                parts[_RESIDENT + name] = encode(resident)
        elif key == "items":
            held: dict[str, dict[str, Any]] = {}
            for iid, item in value.items():
                held.setdefault(item["holder"], {})[iid] = item
            for holder, items in held.items():
                parts[_ITEMS + holder] = encode(items)
        else:
            parts[_FRAME + key] = encode(value)
    texts: dict[str, str] = {}
    for name, mind in agents.items():
        parts[_MIND + name] = "1"
        for field, value in mind.items():
            parts[f"{_FIELD}{field}:{name}"] = encode(_referred(value, texts))
    for key, text in texts.items():
        parts[_TEXT + key] = text
    return parts


def _referred(value: Any, texts: dict[str, str], whole: bool = True) -> Any:
    """`value` with each long string, and each long list not inside a list (`whole`),
    replaced by a reference, the string or the list's JSON kept in `texts` under its
    digest. A text and a list whose JSON is that text share the key and the part."""
    if isinstance(value, str):
        if len(value) >= TEXT_MIN:
            key = text_key(value)
            texts[key] = value
            return _REF + key
        return _REF + value if value.startswith(_REF) else value
    if isinstance(value, list | tuple):
        inner = [_referred(v, texts, whole=False) for v in value]
        if not whole:
            return inner
        text = encode(inner)
        if len(text) < TEXT_MIN:
            return inner
        key = text_key(text)
        texts[key] = text
        return _REF + _LIST + key
    if isinstance(value, dict):
        return {k: _referred(v, texts, whole) for k, v in value.items()}
    return value


def _resolved(value: Any, texts: Mapping[str, str]) -> Any:
    """`value` as it was before `_referred`."""
    if isinstance(value, str):
        if not value.startswith(_REF):
            return value
        rest = value[len(_REF) :]
        if rest.startswith(_REF):
            return rest
        if rest.startswith(_LIST):
            return _resolved(json.loads(texts[rest[len(_LIST) :]]), texts)
        return texts[rest]
    if isinstance(value, list):
        return [_resolved(v, texts) for v in value]
    if isinstance(value, dict):
        return {k: _resolved(v, texts) for k, v in value.items()}
    return value


def join(
    parts: Mapping[str, str], form: int = PARTS_FORMAT
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (world, agents) dicts that `split` made `parts` of (in format `form`)."""
    world: dict[str, Any] = {}
    residents: dict[str, Any] = {}
    items: dict[str, Any] = {}
    agents: dict[str, dict[str, Any]] = {}
    fields: list[tuple[str, str, str]] = []
    texts: dict[str, str] = {}
    for key, text in parts.items():
        if key.startswith(_FRAME):
            world[key[len(_FRAME) :]] = json.loads(text)
        elif key.startswith(_RESIDENT):
            residents[key[len(_RESIDENT) :]] = json.loads(text)
        elif key.startswith(_ITEMS):
            items.update(json.loads(text))
        elif key.startswith(_MIND):
            agents[key[len(_MIND) :]] = {}
        elif key.startswith(_FIELD):
            field, name = key[len(_FIELD) :].split(":", 1)
            fields.append((name, field, text))
        elif key.startswith(_TEXT):
            texts[key[len(_TEXT) :]] = text
    for name, field, text in fields:
        value = json.loads(text)
        agents[name][field] = _resolved(value, texts) if form >= 2 else value
    world["agents"] = dict(sorted(residents.items()))
    world["items"] = dict(sorted(items.items()))
    return world, agents


def split_usage(usage: Mapping[str, Any]) -> dict[str, str]:
    """The run's usage as parts: its totals, and each resident's usage on its own (a
    step changes the usage of those it asked, not of everyone)."""
    rest = {k: {} if k == "by_agent" else v for k, v in usage.items()}
    parts = {_USAGE: encode(rest)}
    for name, used in usage.get("by_agent", {}).items():
        parts[_USAGE_OF + name] = encode(used)
    return parts


def join_usage(parts: dict[str, str]) -> dict[str, Any]:
    """The usage `split_usage` made parts of, taken out of `parts`."""
    usage: dict[str, Any] = json.loads(parts.pop(_USAGE, "{}"))
    mine = sorted(k for k in parts if k.startswith(_USAGE_OF))
    by_agent = {k[len(_USAGE_OF) :]: json.loads(parts.pop(k)) for k in mine}
    if "by_agent" in usage:
        usage["by_agent"] = by_agent
    return usage


def changes(
    parts: Mapping[str, str], stored: Mapping[str, bytes] | None
) -> tuple[dict[str, str], list[str], dict[str, bytes]]:
    """What to write to bring a store holding `stored` (part digests; None: unknown,
    write everything) to `parts`: (parts to write, keys to delete, digests after)."""
    digests = {k: digest(t) for k, t in parts.items()}
    if stored is None:
        return dict(parts), [], digests
    write = {k: t for k, t in parts.items() if stored.get(k) != digests[k]}
    gone = [k for k in stored if k not in parts]
    return write, gone, digests


def write_parts(
    s: Session, run_id: str, step: int, parts: Mapping[str, str], known: Mapping[str, bytes] | None
) -> dict[str, bytes]:
    """Bring run `run_id`'s stored parts to `parts` in transaction `s`, given the
    digests of what it holds (`known`; None: not known here, every part is written
    again); return the digests it then holds."""
    write, gone, digests = changes(parts, known)
    if known is None:
        s.execute(delete(CheckpointPartRow).where(CheckpointPartRow.run_id == run_id))
    rows = [{"run_id": run_id, "key": k, "step": step, "data": t} for k, t in write.items()]
    upsert = _upsert(s)
    if upsert is None:  # neither SQLite nor PostgreSQL: delete, then insert
        gone = [k for k in write if known is not None and k in known] + gone
    for i in range(0, len(gone), _CHUNK):
        s.execute(
            delete(CheckpointPartRow).where(
                CheckpointPartRow.run_id == run_id,
                CheckpointPartRow.key.in_(gone[i : i + _CHUNK]),
            )
        )
    if rows:
        s.execute(upsert if upsert is not None else insert(CheckpointPartRow), rows)
    return digests


def _upsert(s: Session) -> Any:
    """An INSERT of parts that updates a part already there, where the store has one."""
    stmt = conflict_insert(s, cast(Table, CheckpointPartRow.__table__))
    if stmt is None:
        return None
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={"step": stmt.excluded.step, "data": stmt.excluded.data},
    )


def read_parts(s: Session, run_id: str) -> dict[str, str]:
    """Run `run_id`'s stored parts: key -> text."""
    q = select(CheckpointPartRow.key, CheckpointPartRow.data).where(
        CheckpointPartRow.run_id == run_id
    )
    return {str(k): str(t) for k, t in s.execute(q)}
