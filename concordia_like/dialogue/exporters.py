"""Conversation records in the formats trainers load, and a Hugging Face datasets folder.

For the chat formats (`openai`, `sharegpt`, `trl`) a conversation gives one sample per
speaker (the target): its turns are the assistant's, everyone else's are user turns,
and the system message is the target's persona card and the situation (place, time,
who is present, the topic). A sample ends at the target's last turn. In conversations
of three or more, user turns name their speaker: OpenAI's `name` field (letters,
digits, `_` and `-`), and in the formats without one the words are prefixed with
"Name: ". Every sample carries the conversation's provenance and its target.

- `openai`: `{"messages": [...], "provenance": {...}}`; with `train_on="last"`, every
  assistant turn but the last has `weight: 0` (the last `weight: 1`);
- `sharegpt`: `{"conversations": [{"from": "system"|"human"|"gpt", "value": ...}]}`;
- `trl`: conversational `{"messages": [...]}`, or with `trl_style="prompt_completion"`
  `{"prompt": [...], "completion": [the last assistant turn]}`;
- `records`: the conversation itself, every speaker named.

`write_parquet` makes a datasets folder: `data/train-NNNNN-of-NNNNN.parquet` shards and a
README.md dataset card stating the world, personas, model, filters and counts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from concordia_like.files import atomic_folder, write_atomic
from concordia_like.text import identifier

FORMATS = ("openai", "sharegpt", "trl", "records")
TRL_STYLES = ("messages", "prompt_completion")
TRAIN_ON = ("all", "last")
SHARD_ROWS = 1000
#: all that `write_parquet` puts in its folder: what it may replace
PARQUET_OUTPUTS = frozenset({"data", "README.md"})


def openai_name(name: str) -> str:
    """A speaker's name as OpenAI's `name` field allows it."""
    return identifier(name, "speaker")


def system_text(record: dict[str, Any], target: str) -> str:
    persona = record.get("personas", {}).get(target) or f"You are {target}."
    others = [p for p in record["speakers"] if p != target]
    return (
        f"{persona}\n\nThe situation: {record['situation']}\n"
        f"You are {target}, talking with {', '.join(others)}. Stay in character and answer "
        "in your own voice."
    )


def _chat(record: dict[str, Any], target: str) -> list[tuple[str, str, str]] | None:
    """(role, speaker, text) of one target's sample, cut at its last turn; None when the
    target never speaks."""
    turns = record["turns"]
    last = max((k for k, t in enumerate(turns) if t["speaker"] == target), default=None)
    if last is None:
        return None
    return [
        ("assistant" if t["speaker"] == target else "user", t["speaker"], t["text"])
        for t in turns[: last + 1]
    ]


def _provenance(record: dict[str, Any], target: str | None) -> dict[str, Any]:
    p = dict(record["provenance"])
    if target is not None:
        p["target"] = target
    return p


def samples(
    record: dict[str, Any],
    fmt: str,
    *,
    trl_style: str = "messages",
    train_on: str = "all",
) -> list[dict[str, Any]]:
    """The samples of one conversation record in `fmt`."""
    if fmt == "records":
        return [dict(record)]
    group = len(record["speakers"]) > 2
    out = []
    for target in record["speakers"]:
        chat = _chat(record, target)
        if chat is None:
            continue
        system = system_text(record, target)

        def said(speaker: str, text: str) -> str:
            return f"{speaker}: {text}" if group else text

        if fmt == "openai":
            msgs: list[dict[str, Any]] = [{"role": "system", "content": system}]
            n_assist = sum(1 for r, _, _ in chat if r == "assistant")
            seen = 0
            for role, speaker, text in chat:
                if role == "user":
                    msgs.append({"role": "user", "name": openai_name(speaker), "content": text})
                else:
                    seen += 1
                    m: dict[str, Any] = {"role": "assistant", "content": text}
                    if train_on == "last":
                        m["weight"] = 1 if seen == n_assist else 0
                    msgs.append(m)
            out.append({"messages": msgs, "provenance": _provenance(record, target)})
        elif fmt == "sharegpt":
            conv = [{"from": "system", "value": system}]
            conv += [
                {"from": "gpt", "value": text}
                if role == "assistant"
                else {"from": "human", "value": said(speaker, text)}
                for role, speaker, text in chat
            ]
            out.append({"conversations": conv, "provenance": _provenance(record, target)})
        elif fmt == "trl":
            msgs = [{"role": "system", "content": system}]
            msgs += [
                {"role": role, "content": text if role == "assistant" else said(speaker, text)}
                for role, speaker, text in chat
            ]
            if trl_style == "prompt_completion":
                out.append(
                    {
                        "prompt": msgs[:-1],
                        "completion": msgs[-1:],
                        "provenance": _provenance(record, target),
                    }
                )
            else:
                out.append({"messages": msgs, "provenance": _provenance(record, target)})
        else:
            raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    return out


def all_samples(records: Iterable[dict[str, Any]], fmt: str, **options: Any) -> list[dict]:
    return [s for r in records for s in samples(r, fmt, **options)]


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    write_atomic(path, "".join(line + "\n" for line in lines))
    return len(lines)


def dataset_card(
    *,
    fmt: str,
    rows: int,
    stats: dict[str, Any],
    records: list[dict[str, Any]],
    shards: list[str],
) -> str:
    worlds = sorted(
        {(r["provenance"]["world"], r["provenance"].get("world_sha256")) for r in records}
    )
    models = sorted(
        {f"{r['provenance'].get('backend')}:{r['provenance'].get('model')}" for r in records}
    )
    personas = sorted({p for r in records for p in r["speakers"]})
    runs = len({r["provenance"]["run_id"] for r in records})
    dropped = ", ".join(f"{k} {v}" for k, v in stats["dropped_by_reason"].items())
    unit = "conversation" if fmt == "records" else "target speaker of a conversation"
    world_lines = "\n".join(f"- {w} (sha256 `{h}`)" for w, h in worlds) or "- none"
    return f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
tags:
- synthetic
- dialogue
- role-play
- concordia-like
---
# Synthetic dialogues ({fmt})

Multi-party conversations generated by concordia_like: residents of a simulated world,
each speaking from its persona card, its place, time and memories, every turn grounded
by the Game Master. One row per {unit}; every row carries its provenance
(world and hash, run id, conversation id, personas, seed, backend and model, sampling,
place and simulation time).

- Rows: {rows} in {len(shards)} shard(s); conversations kept: {stats["kept"]}
  of {stats["conversations"]} (dropped: {dropped})
- World(s):
{world_lines}
- Personas ({len(personas)}): {", ".join(personas)}
- Model(s): {", ".join(models)}
- Runs: {runs}
- Filters: {json.dumps(stats["filters"])}
- Turns per conversation: median {stats["turns"]["median"]}, p95 {stats["turns"]["p95"]};
  words per turn: median {stats["turn_words"]["median"]}, p95 {stats["turn_words"]["p95"]}
- Persona coverage: {stats["persona_coverage"]["covered"]} of {stats["persona_coverage"]["of"]};
  distinct-2: {stats["distinct_2"]}
"""


def write_parquet(
    folder: Path,
    rows: list[dict[str, Any]],
    *,
    fmt: str,
    stats: dict[str, Any],
    records: list[dict[str, Any]],
    shard_rows: int = SHARD_ROWS,
) -> list[Path]:
    """A datasets folder (see the module's text), made beside `folder` and moved into
    place whole."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    with atomic_folder(folder, writes=PARQUET_OUTPUTS) as tmp:
        (tmp / "data").mkdir()
        n = max(1, -(-len(rows) // shard_rows))
        names = []
        for i in range(n):
            part = rows[i * shard_rows : (i + 1) * shard_rows]
            # nested values as JSON text where rows disagree on their shape would make
            # Arrow refuse them; messages and provenance keep one shape per format
            table = pa.Table.from_pylist(part)
            name = f"train-{i:05d}-of-{n:05d}.parquet"
            pq.write_table(table, tmp / "data" / name)
            names.append(name)
        card = dataset_card(fmt=fmt, rows=len(rows), stats=stats, records=records, shards=names)
        (tmp / "README.md").write_text(card, encoding="utf-8")
    return [folder / "data" / n for n in names]
