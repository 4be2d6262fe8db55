"""An experiment's manifest: what was run, with what and when, and whether it replays
exactly; and the check that a folder holds this experiment (or none) before anything
is written into it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from concordia_like.errors import ConfigError
from concordia_like.experiments.scenario import Scenario
from concordia_like.experiments.settings import Settings

MANIFEST = "manifest.json"


def check_out(scenario: Scenario, out: Path) -> dict[str, Any] | None:
    """The manifest of an experiment already in `out`, refused if of another scenario
    (or not an experiment's folder at all)."""
    manifest = out / MANIFEST
    if not manifest.exists():
        if out.exists() and any(out.iterdir()):
            raise ConfigError(f"--out {out} is not empty and holds no experiment: choose another")
        return None
    old = json.loads(manifest.read_text())
    if old.get("scenario_hash") != scenario.digest():
        raise ConfigError(
            f"--out {out} holds an experiment of another scenario ({old.get('scenario')}, or "
            "this file changed since): choose another folder"
        )
    return old


def new_manifest(
    scenario: Scenario, settings: Settings, executor: str, old: dict[str, Any] | None
) -> dict[str, Any]:
    """The manifest of a run of the experiment (`old`: the one already in its folder,
    whose start it keeps); `ended` is filled in when it ends."""
    return {
        "scenario": str(scenario.path),
        "scenario_name": scenario.name,
        "scenario_hash": scenario.digest(),
        "world": str(scenario.world_path),
        "world_hash": _world_digest(scenario),
        "package_version": _version(),
        "git_revision": _git_revision(),
        **settings.model.recorded(),
        "engine": scenario.spec.engine,
        "sampling": {p: o.model_dump(exclude_none=True) for p, o in scenario.spec.sampling.items()},
        "conditions": scenario.conditions,
        "control": scenario.control,
        "seeds": settings.seeds,
        "fork": settings.fork,
        "shared_steps": scenario.shared_steps() if settings.fork else 0,
        "executor": executor,
        "started": (old or {}).get("started") or now(),
        "ended": None,
        "replayable": settings.cache_mode == "readwrite",
    }


def now() -> str:
    """The local time, with its offset from UTC."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _version() -> str:
    try:
        return version("concordia-like")
    except PackageNotFoundError:
        return "unknown"


def _world_digest(scenario: Scenario) -> str:
    h = hashlib.sha256(scenario.world_path.read_bytes())
    for card in sorted(scenario.world.personas):
        h.update(card.encode())
    return h.hexdigest()[:16]
