"""`concordia-like models`: list the backends, and check one end to end."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

import typer
from pydantic import BaseModel, Field
from rich.table import Table

from concordia_like.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    ModelOpt,
    ModelPathOpt,
    console,
    user_errors,
)
from concordia_like.llm import BACKENDS, BackendOptions, LLMRequest, open_model
from concordia_like.llm.errors import StructuredOutputError
from concordia_like.text import shown


class CheckReply(BaseModel):
    """A small structured request: an enum, a bounded integer and a bounded string."""

    mood: Literal["happy", "tired", "curious", "worried"]
    hours_of_sleep: int = Field(ge=0, le=14)
    greeting: str = Field(max_length=80)


CHECK_PROMPT = (
    "You are Mira, the town baker, at dawn. Reply in JSON with your mood, how many hours "
    "you slept, and the greeting you call out to your first customer."
)


async def check_backend(options: BackendOptions) -> None:
    async with open_model(options) as lm:
        request = LLMRequest.chat(CHECK_PROMPT, schema=CheckReply, max_tokens=96, purpose="check")
        start = time.perf_counter()
        try:
            done = await lm.complete(request)
            parsed, text, error = done.parsed, done.text, None
            tokens = done.completion_tokens
        except StructuredOutputError as exc:
            parsed, text, error, tokens = None, exc.raw_text, exc.reason, 0
        seconds = time.perf_counter() - start
        console.print(f"[bold]backend[/] {options.name} ({shown(lm.backend.model)})")
        console.print(f"[bold]reply[/]   {shown(text)}", highlight=False)
        if error is None:
            console.print(f"[bold green]parsed[/]  {shown(repr(parsed))}")
        else:
            console.print(f"[bold red]invalid[/] {shown(error)}")
        speed = tokens / seconds if seconds > 0 else 0.0
        console.print(f"[bold]speed[/]   {tokens} tokens in {seconds:.2f} s ({speed:.1f} tok/s)")
        if error is not None:
            raise typer.Exit(2)


@user_errors
def models(
    check: Annotated[
        str | None, typer.Option("--check", help="backend to check with a structured request")
    ] = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    model_path: ModelPathOpt = None,
) -> None:
    """List the language-model backends; with --check NAME, send one a small structured
    request and print its reply, the parse result and the speed."""
    if check is None:
        table = Table(title="language-model backends")
        table.add_column("name", style="bold")
        table.add_column("what it is")
        for info in BACKENDS.values():
            table.add_row(info.name, info.summary)
        console.print(table)
        console.print("check one with: concordia-like models --check NAME")
        return
    asyncio.run(check_backend(BackendOptions(check, model, base_url, api_key, model_path)))
