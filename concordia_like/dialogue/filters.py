"""Which conversations are fit to train on, and why the others are not; their statistics.

Each conversation is checked in order and dropped for the first reason that applies:

- `never got going`: fewer than `min_turns` turns, or only one speaker;
- `short or empty turn`: a turn of fewer than three words (or only the prompt's words);
- `prompt echo`: a turn repeating the prompt's own lines ("You turn to ...", "Just
  now:", "- You are at ...") instead of speaking, as a small model does;
- `self-repeat`: a speaker saying again (nearly) what it said earlier in the conversation;
- `loop`: a turn that loops on itself, a turn echoing another speaker's earlier one, or
  a conversation whose distinct 2-grams are under `min_distinct2` of all its 2-grams;
- `secret leak`: a turn carrying another resident's secret that never reached the
  speaker (found when the conversation was read from its run: `records.leaks`);
- `near-duplicate`: a conversation whose text is nearly that of one kept before it
  (MinHash over word 3-grams, datasketch's LSH at Jaccard `dedup_threshold`).

The checks of one conversation use only it, and deduplication only the conversations
kept before it (in order), so the decisions of a set are those of its prefixes: a job
that goes on after a kill keeps what it kept. The word-level checks are those of
`agents.degenerate`, the engine's speech guard, so that "degenerate" means one thing."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datasketch import MinHash, MinHashLSH

from concordia_like.agents.degenerate import (
    PROMPT_ECHOES,
    distinct_n,
    is_loop,
    utterance_problem,
    words,
)

REASONS = (
    "never got going",
    "short or empty turn",
    "prompt echo",
    "self-repeat",
    "loop",
    "secret leak",
    "near-duplicate",
)
NUM_PERM = 128


@dataclass(frozen=True)
class FilterConfig:
    min_turns: int = 2
    min_distinct2: float = 0.5
    dedup_threshold: float = 0.7
    dedup: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_turns": self.min_turns,
            "min_distinct2": self.min_distinct2,
            "dedup_threshold": self.dedup_threshold if self.dedup else None,
        }


def problem(record: dict[str, Any], config: FilterConfig = FilterConfig()) -> str | None:
    """The first reason (of `REASONS`, all but near-duplicate) to drop `record`, with
    detail after a colon, or None."""
    turns = record["turns"]
    speakers = len({t["speaker"] for t in turns})
    if len(turns) < config.min_turns or speakers < 2:
        return f"never got going: {len(turns)} turn(s), {speakers} speaker(s)"
    for k, t in enumerate(turns):
        w = words(t["text"])
        bad = utterance_problem(t["text"])
        if len(w) < 3 or (bad is not None and bad.startswith(("too short", "only the"))):
            return f"short or empty turn: turn {k} {t['text'][:40]!r}"
    for k, t in enumerate(turns):
        if PROMPT_ECHOES.search(t["text"]):
            return f"prompt echo: turn {k} {t['text'][:40]!r}"
    for k, t in enumerate(turns):
        mine = [u["text"] for u in turns[:k] if u["speaker"] == t["speaker"]]
        repeat = "a repeat of the speaker's last words"
        if mine and utterance_problem(t["text"], previous=mine) == repeat:
            return f"self-repeat: turn {k} of {t['speaker']}"
    for k, t in enumerate(turns):
        theirs = [u["text"] for u in turns[:k] if u["speaker"] != t["speaker"]]
        if is_loop(t["text"]):
            return f"loop: turn {k} loops"
        if theirs and utterance_problem(t["text"], examples=theirs) == "a copy of the example":
            return f"loop: turn {k} echoes an earlier turn"
    d2 = distinct_n([t["text"] for t in turns], 2)
    if d2 < config.min_distinct2:
        return f"loop: distinct-2 {d2:.2f} under {config.min_distinct2}"
    if record.get("leaks"):
        leak = record["leaks"][0]
        return f"secret leak: turn {leak['turn']} of {leak['speaker']} tells {leak['owner']}'s"
    return None


def _minhash(record: dict[str, Any]) -> MinHash:
    w = words(" ".join(t["text"] for t in record["turns"]))
    m = MinHash(num_perm=NUM_PERM, seed=1)
    for gram in zip(w, w[1:], w[2:], strict=False):
        m.update(" ".join(gram).encode())
    if len(w) < 3:
        m.update(" ".join(w).encode())
    return m


@dataclass
class Selection:
    kept: list[dict[str, Any]] = field(default_factory=list)
    #: (record, reason with detail)
    dropped: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = Counter(reason.split(":", 1)[0] for _, reason in self.dropped)
        return {r: c.get(r, 0) for r in REASONS}


def select(
    records: Sequence[dict[str, Any]],
    config: FilterConfig = FilterConfig(),
    limit: int | None = None,
) -> Selection:
    """Filter and deduplicate `records` in order, keeping at most `limit`."""
    lsh = MinHashLSH(threshold=config.dedup_threshold, num_perm=NUM_PERM)
    out = Selection()
    for rec in records:
        if limit is not None and len(out.kept) >= limit:
            break
        why = problem(rec, config)
        if why is None and config.dedup:
            m = _minhash(rec)
            near = lsh.query(m)
            if near:
                why = f"near-duplicate: of {sorted(near)[0]}"
            else:
                lsh.insert(rec["id"], m)
        if why is None:
            out.kept.append(rec)
        else:
            out.dropped.append((rec, why))
    return out


def _p(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return float(values[min(len(values) - 1, round(q * (len(values) - 1)))])


def statistics_of(
    selection: Selection, all_personas: Sequence[str], config: FilterConfig
) -> dict[str, Any]:
    """Counts kept and dropped per reason, turns and turn lengths (median, p95),
    speaker balance, persona coverage and distinct-2 of the kept conversations."""
    kept = selection.kept
    turns = [len(r["turns"]) for r in kept]
    lengths = [len(words(t["text"])) for r in kept for t in r["turns"]]
    balance = []
    spoke: Counter[str] = Counter()
    for r in kept:
        c = Counter(t["speaker"] for t in r["turns"])
        spoke.update(c)
        balance.append(max(c.values()) / len(r["turns"]))
    covered = sorted({p for r in kept for p in r["speakers"]})
    return {
        "conversations": len(kept) + len(selection.dropped),
        "kept": len(kept),
        "dropped": len(selection.dropped),
        "dropped_by_reason": selection.counts(),
        "turns": {"median": statistics.median(turns) if turns else 0, "p95": _p(turns, 0.95)},
        "turn_words": {
            "median": statistics.median(lengths) if lengths else 0,
            "p95": _p(lengths, 0.95),
        },
        "speaker_balance": {
            "mean_top_share": round(statistics.fmean(balance), 3) if balance else 0.0,
            "turns_by_speaker": dict(spoke.most_common()),
        },
        "persona_coverage": {
            "covered": len(covered),
            "of": len(all_personas),
            "missing": sorted(set(all_personas) - set(covered)),
        },
        "distinct_2": round(distinct_n([t["text"] for r in kept for t in r["turns"]], 2), 3),
        "group_sizes": dict(sorted(Counter(len(r["speakers"]) for r in kept).items())),
        "filters": config.to_dict(),
        "drops": [{"id": r["id"], "reason": why} for r, why in selection.dropped],
    }
