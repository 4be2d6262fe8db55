"""`concordia-like view [RUN | FOLDER]`: the web viewer over a run, a run's folder or an
experiment's folder, served on 127.0.0.1 or written as a static site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from concordia_like.cli.common import console, user_errors
from concordia_like.engine.runs import DEFAULT_ROOT


@user_errors
def view(
    target: Annotated[
        str, typer.Argument(help="a run id, a run's folder, or an experiment's --out folder")
    ],
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (default: a free one)")] = 0,
    export: Annotated[
        Path | None,
        typer.Option(help="write the viewer as a static site into this folder and exit"),
    ] = None,
    store: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the run's store")] = None,
    root: Annotated[Path, typer.Option(help="folder where runs keep their stores")] = DEFAULT_ROOT,
) -> None:
    """Open a run or an experiment in the browser: a map replayed step by step, the
    timeline, conversations, residents and their memories, usage, experiment plots."""
    from concordia_like.viewer.app import ViewerServer, create_app
    from concordia_like.viewer.export import export_site
    from concordia_like.viewer.sources import catalog_for

    catalog = catalog_for(target, root=root, store=store)
    try:
        if export is not None:
            page = export_site(catalog, export)
            console.print(f"static viewer written to {export}; open {page.resolve().as_uri()}")
            return
        server = ViewerServer(create_app(catalog), port)
        console.print(f"viewer of {target} at {server.url} (Ctrl-C stops it)", highlight=False)
        server.run()
    finally:
        catalog.close()
