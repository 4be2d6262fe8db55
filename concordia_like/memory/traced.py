"""A frozen TorchScript trace of the embedding model, for the embedder's hot path.

A retrieval embeds one short query, and at that size the eager model spends more time
in Python (about 115 module calls per forward) than in arithmetic: 7 ms a query here,
where the frozen trace takes 4 to 5 (`scripts/bench/bench_memory.py` shows it as "query
embedding alone"). The trace is taken once per process (under half a second) and checked
against the eager model on a padded batch of another shape before it is used; where
the model is not the Transformer, mean Pooling, Normalize stack it was written for, or
the check fails, the embedder stays eager, so the trace can only change speed.

`torch.jit.trace` is deprecated in favour of `torch.export`, which was measured too:
its exported graph runs no faster than the eager model here, because it keeps the
per-operator dispatch that the frozen trace removes."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

#: texts the trace is taken on and checked with: a padded batch, so the attention mask
#: really masks, and a check batch of another size and length than the trace's
_TRACE_TEXTS = ["Maria buys bread at the bakery in the morning", "a nod"]
_CHECK_TEXTS = [
    "Where can I buy coffee?",
    (
        "Tom talks with Ayesha by the river about the broken fountain around 10:15, and then "
        "walks home slowly because the rain has started again"
    ),
    "ok",
]
_CHECK_MIN_COSINE = 0.9999

Encoder = Callable[[dict[str, Any]], Any]


def _stack_ok(model: Any) -> bool:
    names = [type(m).__name__ for m in model]
    return (
        names == ["Transformer", "Pooling", "Normalize"]
        and getattr(model[1], "pooling_mode", None) == "mean"
        and hasattr(model[0], "auto_model")
    )


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Tracing walks the model's attributes, and one of them logs a warning
    (`loss_type=None`) that means nothing for an encoder."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def trace_encoder(model: Any) -> Encoder | None:
    """`features -> sentence vectors` (unnormalised mean of the token states) through a
    frozen trace of `model`'s transformer, or None where that cannot be trusted."""
    import torch

    if not _stack_ok(model):
        return None

    class _Positional(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.inner(
                input_ids=ids, attention_mask=mask, token_type_ids=types, return_dict=False
            )[0]

    try:
        example = model.preprocess(_TRACE_TEXTS)
        args = (example["input_ids"], example["attention_mask"], example["token_type_ids"])
        with warnings.catch_warnings(), torch.no_grad(), _quiet_transformers():
            warnings.simplefilter("ignore")
            traced = torch.jit.freeze(
                torch.jit.trace(_Positional(model[0].auto_model).eval(), args, strict=False)
            )
    except Exception as exc:  # any failure leaves the eager model in charge
        log.info("embedding model not traced (%s); running it eagerly", exc)
        return None

    def encode(features: dict[str, Any]) -> Any:
        mask = features["attention_mask"]
        states = traced(features["input_ids"], mask, features["token_type_ids"]).float()
        weights = mask.unsqueeze(-1).float()  # pooled in float32, as the eager Pooling does
        return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)

    with torch.inference_mode():
        features = model.preprocess(_CHECK_TEXTS)
        eager = model.forward(dict(features))["sentence_embedding"].float()
        fast = torch.nn.functional.normalize(encode(features), dim=-1)
        cosine = float((eager * fast).sum(dim=-1).min())
    if cosine < _CHECK_MIN_COSINE:
        log.warning("traced embedding model disagrees (cosine %.6f); running it eagerly", cosine)
        return None
    return encode
