"""The Ray executor: a local Ray cluster on 127.0.0.1, started and stopped by the test,
runs each seed as one task and gives the same measurements as the local executor."""

from __future__ import annotations

import pytest

from support.experiment import run, timeline_of, write_scenario

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.ray


def test_ray_executor_gives_the_local_results(tmp_path, fast_embedder):
    path = write_scenario(tmp_path)
    local = run(path, tmp_path / "local")
    remote = run(
        path,
        tmp_path / "ray",
        executor="ray",
        worker_setup="concordia_like.memory.hash_embedder:install",
    )
    assert not ray.is_initialized()  # the cluster it started is stopped
    key = lambda r: (r["condition"], r["seed"], r["step"], r["measurement"])  # noqa: E731
    assert sorted(remote.rows, key=key) == sorted(local.rows, key=key)
    assert [s["seed"] for s in remote.seeds] == [0, 1]
    assert (remote.steps_computed, remote.steps_total) == (16, 20)
    for seed in (0, 1):
        for c in ("control", "treated"):
            assert timeline_of(remote.out, seed, c) == timeline_of(local.out, seed, c)
