"""Schema building blocks that constrain decoding, not only validation.

llama.cpp's JSON-schema-to-grammar conversion ignores `minimum`/`maximum` on integers,
so a bounded integer written as `Field(ge=1, le=10)` is enforced only after decoding,
and a small model that writes 0 or 11 fails the whole answer. An enum of the allowed
values becomes grammar alternatives: the model cannot write anything else."""

from __future__ import annotations

from typing import Any, Literal


def int_enum(lo: int, hi: int, step: int = 1) -> Any:
    """`Literal[lo, lo + step, ..., hi]`: an integer the grammar itself bounds."""
    if hi < lo:
        raise ValueError(f"empty integer range {lo}..{hi}")
    return Literal[tuple(range(lo, hi + 1, step))]
