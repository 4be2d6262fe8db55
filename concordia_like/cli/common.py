"""What every command shares: the console, backend flags, and turning a user's mistake
into one clear line and a non-zero exit instead of a traceback."""

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


def backend_options(
    backend: str,
    base_url: str | list[str] | None = None,
    model: str | None = None,
    api_key: str | None = None,
    model_path: Path | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `make_backend`, only those that apply to `backend`.
    `base_url` is one URL or several (`--base-url` given more than once, a list in a
    recorded run's config)."""
    urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
    if backend == "embedded":
        return {"model_path": model_path}
    if backend == "vllm":
        return {"model": model or (str(model_path) if model_path else None)}
    if backend == "openai":
        return {"base_url": urls or None, "model": model, "api_key": api_key}
    if backend == "langchain":
        if len(urls) > 1:
            raise ConcordiaError("the langchain backend takes one --base-url, not several")
        return {"base_url": urls[0] if urls else None, "model": model, "api_key": api_key}
    return {}
