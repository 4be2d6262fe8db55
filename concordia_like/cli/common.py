"""What every command shares: the console, the backend flags (each command turns them
into `llm.BackendOptions`), and turning a user's mistake into one clear line and a
non-zero exit instead of a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from concordia_like.errors import ConcordiaError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Report ConcordiaError as `error: <message>` and exit 1; bugs keep their traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConcordiaError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


BackendOpt = Annotated[
    str, typer.Option("--backend", "-b", help="embedded, openai, vllm, langchain or scripted")
]
OptionalBackendOpt = Annotated[
    str | None,
    typer.Option("--backend", "-b", help="embedded (default), openai, vllm, langchain or scripted"),
]
BaseUrlOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="OpenAI-compatible server URL (env CONCORDIA_OPENAI_BASE_URL); give it more "
        "than once to spread requests over several servers"
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", help="model name on the server; for vllm, a Hugging Face folder or a GGUF"
    ),
]
ApiKeyOpt = Annotated[str | None, typer.Option(help="API key for the server (env OPENAI_API_KEY)")]
ModelPathOpt = Annotated[
    Path | None, typer.Option(help="GGUF file for the embedded backend (default: SmolLM2)")
]
