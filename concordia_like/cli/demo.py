"""`concordia-like demo`: the language-model layer at work, in one command.

Four townsfolk decide what to do at the same moment; their four requests meet in one
batch on the embedded model, each constrained to a typed action."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from pydantic import BaseModel, Field
from rich.table import Table

from concordia_like.cli.common import (
    ApiKeyOpt,
    BackendOpt,
    BaseUrlOpt,
    ModelOpt,
    ModelPathOpt,
    console,
    user_errors,
)
from concordia_like.llm import BackendOptions, LLMRequest, StructuredOutputError, open_model
from concordia_like.text import shown

PLACES = ("bakery", "market", "library", "park")
PEOPLE = {
    "Mira": "the baker, proud of her rye loaves",
    "Tomas": "the librarian, shy and curious",
    "Odile": "a market trader who loves gossip",
    "Ben": "a retired sailor who walks every morning",
}


class DemoAction(BaseModel):
    kind: Literal["move", "say", "wait"]
    place: Literal["bakery", "market", "library", "park"]
    text: str = Field(max_length=90, description="what you do, in one short sentence")


def _request(name: str, who: str) -> LLMRequest:
    return LLMRequest.chat(
        f"It is 8 in the morning in the town square. The places are {', '.join(PLACES)}. "
        "What do you do next? Answer in JSON.",
        system=f"You are {name}, {who}.",
        schema=DemoAction,
        purpose="act",
        agent=name,
        max_tokens=72,
    )


async def _demo(options: BackendOptions) -> None:
    async with open_model(options) as lm:
        start = time.perf_counter()
        results = await lm.complete_many(
            [_request(n, w) for n, w in PEOPLE.items()], return_exceptions=True
        )
        seconds = time.perf_counter() - start
    table = Table(title=f"four townsfolk, one batch ({lm.name})")
    for col in ("who", "kind", "place", "says or does"):
        table.add_column(col)
    for name, res in zip(PEOPLE, results, strict=True):
        if isinstance(res, StructuredOutputError):
            table.add_row(name, "-", "-", f"[red]invalid output: {shown(res.reason)}[/]")
        elif isinstance(res, BaseException):
            raise res
        else:
            parsed = res.parsed
            table.add_row(name, shown(parsed.kind), shown(parsed.place), shown(parsed.text))
    console.print(table)
    total = lm.usage.total
    console.print(
        f"{total.calls} calls in batches of {lm.batcher.batch_sizes}, "
        f"{total.prompt_tokens} prompt + {total.completion_tokens} completion tokens, "
        f"{seconds:.2f} s"
    )


@user_errors
def demo(
    backend: BackendOpt = "embedded",
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    model_path: ModelPathOpt = None,
) -> None:
    """Four townsfolk choose an action at once: one batched, schema-constrained call each."""
    if backend == "scripted":
        console.print("[yellow]note: the scripted backend is a test double, not a model[/]")
    asyncio.run(_demo(BackendOptions(backend, model, base_url, api_key, model_path)))
