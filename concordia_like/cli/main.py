"""The `concordia-like` command: one module per command, registered here."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from concordia_like.cli.city import city
from concordia_like.cli.common import fail
from concordia_like.cli.demo import demo
from concordia_like.cli.dialogues import dialogues
from concordia_like.cli.experiment import experiment
from concordia_like.cli.log import log
from concordia_like.cli.models import models
from concordia_like.cli.population import population
from concordia_like.cli.run import run
from concordia_like.cli.town import town
from concordia_like.cli.view import view

try:  # typer vendors its own click from 0.2x on
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - an older typer on click itself
    from click.exceptions import ClickException  # type: ignore[assignment]


class OneLineErrors(TyperGroup):
    """A flag click itself refuses (not a number, a missing argument, an unknown option)
    is one `error:` line naming the command's help too, like every other failure."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as exc:
            if not standalone_mode:
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":  # the help, as asked for
                exc.show()
            else:
                ctx = getattr(exc, "ctx", None)  # a usage error's command
                where = ctx.command_path if ctx is not None else "concordia-like"
                fail(f"{exc.format_message()} (see {where} --help)")
            sys.exit(exc.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            fail("aborted")
            sys.exit(1)
        if standalone_mode:
            sys.exit(code if isinstance(code, int) else 0)
        return code


app = typer.Typer(
    name="concordia-like",
    cls=OneLineErrors,
    help="Generative-agent social worlds with a grounding Game Master.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(run)
app.command()(log)
app.command()(models)
app.command()(demo)
app.command()(town)
app.command()(experiment)
app.command()(dialogues)
app.command()(view)
app.command()(population)
app.command()(city)


if __name__ == "__main__":
    app()
