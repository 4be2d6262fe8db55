"""Benchmark of the web viewer (`concordia-like view`) in headless Chromium.

- A run of 100,000 events is made through the recorder's real commit path (one
  transaction per step, as a simulation commits): the town's residents walk between
  connected places and talk, 50 events a step.
- Time to first paint: Chromium opens the viewer on it; the browser's first
  contentful paint, and the time until the map shows the residents where they are
  (the page asked the API for the run's head and positions).
- The server's p95 per request: every API route the page uses (head, positions, pages
  of the timeline at its start, middle and end with and without filters, a text
  search, conversations, usage, a resident), each asked repeatedly over HTTP.
- Screenshots, in headless Chromium, of the map and a resident's page of a town run on
  the scripted model, and of an experiment on it, into docs/figures/view_*.png.

    .venv/bin/python scripts/bench/bench_view.py             # a minute or two
    .venv/bin/python scripts/bench/bench_view.py --events 20000 --no-figures

Runs go to a temporary folder, removed at the end. The last line is
`first_paint_ms=<a> map_ready_ms=<b> request_p95_ms=<c> events=<n>`."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from concordia_like.engine.events import Event, Utterance
from concordia_like.engine.recorder import RunRecorder
from concordia_like.memory.hash_embedder import install
from concordia_like.store.base import sqlite_url
from concordia_like.viewer.app import ViewerServer, create_app
from concordia_like.viewer.browser import chromium
from concordia_like.viewer.sources import catalog_for
from concordia_like.world.loader import load_world

REPO = Path(__file__).resolve().parents[2]
TOWN = REPO / "worlds" / "town.yaml"
FIGURES = REPO / "docs" / "figures"
PER_STEP = 50


def synthetic_run(root: Path, n_events: int, seed: int = 0) -> str:
    """A run of `n_events` events committed step by step through RunRecorder."""
    rng = random.Random(seed)
    world = load_world(TOWN)
    state = world.state.to_dict()
    places = state["places"]
    run_id = "bench" + "0" * 7
    recorder = RunRecorder(sqlite_url(root / run_id / "store.sqlite"))
    recorder.create_run(
        world_path=str(TOWN), world_name=world.name, engine="simultaneous",
        backend="scripted", seed=seed, config={}, run_id=run_id,
    )  # fmt: skip
    now = world.state.clock.now
    names = sorted(state["agents"])
    for step in range(1, n_events // PER_STEP + 1):
        events: list[Event] = []
        said: list[Utterance] = []
        while len(events) < PER_STEP:
            who = rng.choice(names)
            here = state["agents"][who]["location"]
            if rng.random() < 0.3 and places[here]["connections"]:
                to = rng.choice(places[here]["connections"])
                effects = [{"kind": "move", "agent": who, "to": to}]
                text = f"{who} goes from {places[here]['name']} to {places[to]['name']}."
                events.append(Event("action", text, who, here, {"effects": effects}))
                state["agents"][who]["location"] = to
            elif rng.random() < 0.5:
                line = f"Lovely weather for step {step}, isn't it? ({rng.randrange(10**6)})"
                events.append(Event("speech", f"{who} says: {line}", who, here))
                said.append(Utterance(f"{who}@{step}", who, [], here, line))
            else:
                events.append(Event("action", f"{who} works at {places[here]['name']}.", who, here))
        recorder.commit_step(run_id, step, now, events, said, world=state, agents={}, usage={})
        now += timedelta(minutes=10)
    recorder.close()
    return run_id


def first_paint(url: str, profile: Path) -> tuple[float, float]:
    """(first contentful paint, map with residents) in ms after navigation starts."""
    driver = chromium(profile)
    try:
        driver.get(url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready = driver.execute_script(
                "return document.querySelectorAll('#map .resident[data-place]').length"
            )
            if ready:
                break
            time.sleep(0.01)
        ready_ms = driver.execute_script("return performance.now()")
        paint = driver.execute_script(
            "const p = performance.getEntriesByName('first-contentful-paint');"
            " return p.length ? p[0].startTime : null;"
        )
        return float(paint or 0.0), float(ready_ms)
    finally:
        driver.quit()


def request_times(url: str, run_id: str, repeat: int) -> dict[str, list[float]]:
    base = f"{url}api/run/{run_id}"
    routes = {
        "head": f"{base}/head",
        "positions": f"{base}/positions",
        "events start": f"{base}/events?offset=0&limit=100",
        "events middle": f"{base}/events?offset=50000&limit=100",
        "events end": f"{base}/events?offset=99900&limit=100",
        "events resident": f"{base}/events?actor=Ines%20Marlowe&offset=0&limit=100",
        "events kind": f"{base}/events?kind=speech&offset=20000&limit=100",
        "events text": f"{base}/events?q=bakery&limit=100",
        "conversations": f"{base}/conversations?offset=0&limit=30",
        "usage": f"{base}/usage",
        "resident": f"{base}/resident/Ines%20Marlowe",
    }
    times: dict[str, list[float]] = {k: [] for k in routes}
    with httpx.Client(timeout=120) as client:
        for k, u in routes.items():
            client.get(u).raise_for_status()  # the first answer fills the caches
            for _ in range(repeat):
                t = time.perf_counter()
                client.get(u).raise_for_status()
                times[k].append((time.perf_counter() - t) * 1000)
    return times


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) > 1 else xs[0]


async def _town(root: Path) -> str:
    from concordia_like.api import open_run

    async with open_run(TOWN, backend="scripted", seed=4, root=root, start_time="07:00") as run:
        await run.step(12)
        run.whisper("Ines Marlowe", "The miller owes the bakery twelve coins.")
        await run.step(2)
        return run.id


def wait_until(driver: Any, script: str, *args: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not driver.execute_script(script, *args):
        time.sleep(0.05)


def small_png(path: Path) -> None:
    """A screenshot in 256 colours (Pillow comes with matplotlib, a dev dependency)."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(256)
    small.save(path, optimize=True)


def figures(tmp: Path) -> None:
    from concordia_like.api import run_experiment

    FIGURES.mkdir(parents=True, exist_ok=True)
    run_id = asyncio.run(_town(tmp / "town"))
    exp = tmp / "experiment"
    scenario = REPO / "worlds" / "scenarios" / "bread_price.yaml"
    asyncio.run(run_experiment(scenario, out=exp, seeds=2, backend="scripted"))
    # (catalog, route, what shows the page is ready, file, window height, a query to score)
    shots: list[tuple[Any, str, str, str, int, str]] = [
        (catalog_for(run_id, root=tmp / "town"), f"#/{run_id}/map", "#map .resident[data-place]",
         "view_map.png", 980, ""),
        (catalog_for(run_id, root=tmp / "town"), f"#/{run_id}/resident/Ines%20Marlowe",
         "#memories tr.memory", "view_resident.png", 1700, "who owes the bakery money"),
        (catalog_for(str(exp)), "#/experiment", "#plots .plot", "view_experiment.png", 1100, ""),
    ]  # fmt: skip
    driver = chromium(tmp / "profile-figures", width=1300, height=900)
    try:
        for catalog, route, ready, name, height, query in shots:
            server = ViewerServer(create_app(catalog), catalog=catalog).start()
            try:
                driver.set_window_size(1300, height)
                driver.get(server.url + route)
                wait_until(driver, "return document.querySelector(arguments[0]) !== null", ready)
                if query:
                    driver.find_element("id", "mem-q").send_keys(query + "\n")
                    wait_until(
                        driver,
                        "return document.getElementById('mem-info').textContent"
                        ".includes('scored for')",
                    )
                time.sleep(0.5)  # the markers' move transition
                driver.save_screenshot(str(FIGURES / name))
                small_png(FIGURES / name)
                print(f"wrote docs/figures/{name}")
            finally:
                server.stop()
    finally:
        driver.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=20, help="requests per route")
    ap.add_argument("--no-figures", action="store_true")
    args = ap.parse_args()
    install()  # the hashing embedder: nothing here measures the sentence model
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t = time.perf_counter()
        run_id = synthetic_run(tmp / "runs", args.events)
        print(f"made a run of {args.events} events in {time.perf_counter() - t:.1f} s")
        catalog = catalog_for(run_id, root=tmp / "runs")
        server = ViewerServer(create_app(catalog), catalog=catalog).start()
        try:
            paint, ready = first_paint(server.url, tmp / "profile")
            print(f"first contentful paint {paint:.0f} ms, map with residents {ready:.0f} ms")
            times = request_times(server.url, run_id, args.repeat)
        finally:
            server.stop()
        for k, xs in times.items():
            print(f"  {k:<16} median {statistics.median(xs):7.1f} ms  p95 {p95(xs):7.1f} ms")
        every = [x for xs in times.values() for x in xs]
        overall = p95(every)
        print(f"server p95 per request over {len(every)} requests: {overall:.1f} ms")
        if not args.no_figures:
            figures(tmp)
    print(
        f"first_paint_ms={paint:.0f} map_ready_ms={ready:.0f} "
        f"request_p95_ms={overall:.1f} events={args.events}"
    )


if __name__ == "__main__":
    main()
