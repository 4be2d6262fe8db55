"""The Ray executor: each seed of an experiment as one task on a Ray cluster (a local
one unless given an address), each worker opening its own model from the settings."""

from __future__ import annotations

import asyncio
import importlib
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from concordia_like.errors import ConfigError
from concordia_like.experiments.scenario import Scenario, load_scenario
from concordia_like.experiments.seed import SeedRunner
from concordia_like.experiments.settings import Settings, Tracker
from concordia_like.llm import BackendOptions, open_model


def run_seed_task(
    scenario_path: str, seed: int, settings: dict[str, Any], setup: str | None = None
) -> dict[str, Any]:
    """One seed in a worker process (the Ray executor's task). `setup` ("module:function")
    is called first, for what a worker needs before it loads anything."""
    if setup:
        module, _, fn = setup.partition(":")
        getattr(importlib.import_module(module), fn)()
    scenario = load_scenario(scenario_path)
    s = Settings(
        out=Path(settings["out"]),
        seeds=[seed],
        model=BackendOptions(**settings["model"]),
        fork=settings["fork"],
        cache_mode=settings["cache_mode"],
        attention=settings.get("attention", {}),
    )

    async def go() -> dict[str, Any]:
        async with open_model(s.model) as model:
            return await SeedRunner(scenario, seed, s, model).run()

    return asyncio.run(go())


def run_on_ray(
    scenario: Scenario,
    settings: Settings,
    tracker: Tracker | None,
    address: str | None,
    setup: str | None,
    env: dict[str, str] | None,
) -> list[dict[str, Any]]:
    """Every seed as one Ray task; what each did, by seed."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'concordia-like[ray]'") from None
    tracker = tracker or Tracker()
    started = not ray.is_initialized()
    if started:
        runtime_env = {"env_vars": env} if env else None
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        else:
            ray.init(
                num_cpus=max(1, min(len(settings.seeds), os.cpu_count() or 1)),
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                runtime_env=runtime_env,
                log_to_driver=False,
            )
    try:
        task = ray.remote(run_seed_task)
        data = {**asdict(settings), "out": str(settings.out.resolve())}
        data.pop("seeds")
        path = str(scenario.path.resolve())
        refs = {task.remote(path, s, data, setup): s for s in settings.seeds}
        for s in settings.seeds:
            tracker.run_started(f"seed {s}", 1, 0)
        done: list[dict[str, Any]] = []
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            for ref in ready:
                done.append(ray.get(ref))
                tracker.step_done(f"seed {refs[ref]}")
                tracker.run_finished(f"seed {refs[ref]}", "done")
        return sorted(done, key=lambda d: d["seed"])
    finally:
        if started:
            ray.shutdown()
