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

from concordia_like.agents.attention import ATTENTION_MODES
from concordia_like.errors import ConcordiaError, ConfigError

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


AttentionOpt = Annotated[
    str | None,
    typer.Option(
        help="who is asked what they do each step: events (only where something calls for "
        "a choice; the default) or always (every awake resident); over the world file's"
    ),
]
IdleStepsOpt = Annotated[
    int | None,
    typer.Option(help="under --attention events: the most steps a resident goes unasked"),
]


def attention_overrides(attention: str | None, idle_steps: int | None) -> dict[str, Any]:
    """The `--attention` and `--idle-steps` flags as a run's attention overrides, checked
    here so that a mistake is one line."""
    if attention is not None and attention not in ATTENTION_MODES:
        raise ConfigError(
            f"--attention must be one of {', '.join(ATTENTION_MODES)}, not {attention!r}"
        )
    if idle_steps is not None and idle_steps < 1:
        raise ConfigError(f"--idle-steps must be at least 1, not {idle_steps}")
    given = {"mode": attention, "idle_steps": idle_steps}
    return {k: v for k, v in given.items() if v is not None}


def checked_store(store: str | None) -> str | None:
    """The `--store` URL, refused when it keeps nothing once the command ends (an
    in-memory SQLite database): the run id printed could never be opened again."""
    if store is None:
        return None
    url = store.strip()
    memory = url in (":memory:", "sqlite://", "sqlite:///:memory:") or (
        url.startswith("sqlite") and ("mode=memory" in url or url.endswith("/:memory:"))
    )
    if memory:
        raise ConfigError(
            f"--store {store}: an in-memory database keeps nothing once the command ends; "
            "name a file (sqlite:///PATH) or a server"
        )
    return store
