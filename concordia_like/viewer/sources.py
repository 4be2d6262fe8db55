"""What `concordia-like view` may be pointed at, as the catalog the app serves: a run
by id, a run's folder, an experiment's folder, or the sandbox's open town."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from concordia_like.engine.recorder import RunRecorder
from concordia_like.engine.runs import DEFAULT_ROOT, run_folder, store_url_for
from concordia_like.errors import ConfigError
from concordia_like.store.base import sqlite_url
from concordia_like.viewer.app import Catalog, ViewerServer, create_app
from concordia_like.viewer.experiment import ExperimentView, is_experiment
from concordia_like.viewer.runview import RunView


def catalog_for(target: str, *, root: Path = DEFAULT_ROOT, store: str | None = None) -> Catalog:
    """An experiment's folder, a run's folder (holding store.sqlite) or a run id."""
    path = Path(target)
    if path.is_dir() and is_experiment(path):
        return experiment_catalog(path)
    if path.is_dir() and (path / "store.sqlite").is_file():
        return folder_catalog(path)
    if store is None and not (run_folder(target, root) / "store.sqlite").exists():
        raise ConfigError(f"{target!r} is no experiment folder, run folder or run id under {root}")
    view = RunView.open(target, root=root, store=store)
    return Catalog(lambda rid: view, [{"id": target, "label": target}])


def folder_catalog(folder: Path) -> Catalog:
    """Every run of the SQLite store in `folder`."""
    url = sqlite_url(folder / "store.sqlite")
    probe = RunRecorder(url)
    try:
        runs = [{"id": r.id, "label": f"{r.id} ({r.world_name})"} for r in probe.runs()]
    finally:
        probe.close()
    if not runs:
        raise ConfigError(f"the store in {folder} holds no run")
    return Catalog(lambda rid: RunView(RunRecorder(url), rid, folder), runs)


def experiment_catalog(folder: Path) -> Catalog:
    exp = ExperimentView(folder)
    runs = exp.runs()
    where = {r.id: r.folder for r in runs}

    def opener(rid: str) -> RunView:
        return RunView(RunRecorder(sqlite_url(where[rid] / "store.sqlite")), rid, where[rid])

    labels = [{"id": r.id, "label": f"seed {r.seed} · {r.condition}"} for r in runs]
    return Catalog(opener, labels, experiment=exp, live=False)


def live_catalog(
    current: Callable[[], str], memory: Callable[[str], Any], root: Path, store: str | None
) -> Catalog:
    """The sandbox's town: the page follows whichever run `current` names (a fork
    moves it on), reading memories through the store the town lends (`memory`)."""

    def opener(rid: str) -> RunView:
        folder = run_folder(rid, root)
        return RunView(RunRecorder(store_url_for(folder, store)), rid, folder, memory=memory(rid))

    return Catalog(opener, [], current=current)


def serve_town(
    current: Callable[[], str], memory: Callable[[str], Any], root: Path, store: str | None
) -> ViewerServer:
    """The viewer of the sandbox's open town, served in a thread until `stop`."""
    catalog = live_catalog(current, memory, root, store)
    return ViewerServer(create_app(catalog), catalog=catalog).start()
