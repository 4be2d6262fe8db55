"""The `concordia-like` command: one module per command, registered here."""

from __future__ import annotations

import typer

from concordia_like.cli.demo import demo
from concordia_like.cli.dialogues import dialogues
from concordia_like.cli.experiment import experiment
from concordia_like.cli.log import log
from concordia_like.cli.models import models
from concordia_like.cli.run import run
from concordia_like.cli.town import town
from concordia_like.cli.view import view

app = typer.Typer(
    name="concordia-like",
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


if __name__ == "__main__":
    app()
