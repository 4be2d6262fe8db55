"""What every command shares: the console, the backend flags (each command turns them
into `llm.BackendOptions`), the checks of flags every command takes, and turning a
user's mistake or a failing environment (a full or read-only disk, a store that is not
one or is down) into one clear line and a non-zero exit instead of a traceback."""

from __future__ import annotations

import functools
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from concordia_like.agents.attention import ATTENTION_MODES
from concordia_like.errors import ConcordiaError, ConfigError
from concordia_like.text import one_line, shown

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


#: an error line is cut here: a message may quote hostile input at any length
ERROR_MAX = 600
#: the most lines of an error that lists problems (a world file's, one per line)
ERROR_LINES = 20


def describe(exc: BaseException) -> str | None:
    """One line for a failure that is the user's input or environment, not our bug (None
    for a bug): our own errors as they say, an OS error (a full or read-only disk, a
    path that is a folder) by its reason and file, a store's error by the driver's first
    line (never the statement and its parameters), a value out of bounds by its field.
    Our own errors keep the lines of a list of problems; each line is clipped."""
    if isinstance(exc, ConcordiaError):
        lines = str(exc).splitlines() or [type(exc).__name__]
        return "\n".join(one_line(line, ERROR_MAX) for line in lines[:ERROR_LINES])
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        text = f"{exc.filename}: {reason}" if exc.filename else reason
    elif isinstance(exc, SQLAlchemyError):
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        text = f"the store failed: {first}"
    elif isinstance(exc, sqlite3.Error):
        text = f"a database file failed: {exc}"
    elif isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        text = f"{where}: {err['msg']}" if where else err["msg"]
    else:
        return None
    return one_line(text, ERROR_MAX)


def fail(message: str) -> None:
    """Print the one error line."""
    err_console.print(f"[bold red]error:[/] {shown(message)}", highlight=False, soft_wrap=True)


def user_errors(func: F) -> F:
    """The one place a command's failure becomes `error: <one line>` and exit 1: every
    error `describe` knows; bugs keep their traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConcordiaError, OSError, SQLAlchemyError, sqlite3.Error, ValidationError) as exc:
            message = describe(exc)
            if message is None:
                raise
            fail(message)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


#: seeds are stored as 64-bit integers
SEED_MAX = 2**63 - 1


def check_seed(seed: int | None, flag: str = "--seed") -> None:
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"{flag} must be from 0 to {SEED_MAX}, not {seed}")


def check_seconds(value: float | None, flag: str) -> None:
    """A deadline flag: a positive, finite number of seconds (None: unset)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{flag} must be a positive number of seconds, not {value}")


def check_root(root: Path, flag: str = "--root") -> None:
    """`root` names a folder, or where one can be made."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{flag} {root} is not a folder")
    for parent in root.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {root}: {parent} is not a folder")
            break


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


RequestTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        help="seconds one model request over HTTP (openai, langchain) may take, all its "
        "retries together (default 120)"
    ),
]
StepTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        help="seconds one step may take; past it the step aborts, nothing of it committed "
        "(default: no bound)"
    ),
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
