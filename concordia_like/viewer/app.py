"""The viewer's web app (Starlette on uvicorn): the page and its scripts from `static/`,
a JSON API of read-only queries over the runs it serves, and a server-sent event stream
that tells a page following a live town each step it commits.

Only 127.0.0.1 is served: the app reads a run's whole store, and nothing in it asks
who is asking."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from concordia_like.errors import ConcordiaError, ConfigError
from concordia_like.viewer.experiment import ExperimentView
from concordia_like.viewer.feed import feed
from concordia_like.viewer.residents import memories, resident
from concordia_like.viewer.runview import EventFilter, RunView

STATIC = Path(__file__).parent / "static"
HOST = "127.0.0.1"
#: how often a live page's stream looks for a newly committed step, in seconds
POLL_S = 1.0


@dataclass
class Catalog:
    """What one app serves: the runs it may open (one, or an experiment's), the
    experiment, and with `current` the run a live page follows (the sandbox's town,
    which `fork` changes)."""

    opener: Callable[[str], RunView]
    runs: list[dict[str, Any]]
    experiment: ExperimentView | None = None
    current: Callable[[], str] | None = None
    live: bool = True
    _views: dict[str, RunView] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def view(self, rid: str) -> RunView:
        known = {r["id"] for r in self.runs}
        if rid not in known and (self.current is None or rid != self.current()):
            raise ConfigError(f"no run {rid!r} here")
        with self._lock:
            if rid not in self._views:
                self._views[rid] = self.opener(rid)
            return self._views[rid]

    def followed(self) -> str | None:
        if self.current is not None:
            return self.current()
        return self.runs[0]["id"] if len(self.runs) == 1 else None

    def index(self) -> dict[str, Any]:
        runs = list(self.runs)
        current = self.followed()
        if current is not None and current not in {r["id"] for r in runs}:
            runs.append({"id": current, "label": current})
        return {
            "kind": "experiment" if self.experiment else "run",
            "runs": runs,
            "current": current,
            "live": self.live,
        }

    def close(self) -> None:
        with self._lock:
            for v in self._views.values():
                v.close()
            self._views.clear()


def _json(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False, default=str)
    return Response(body, status, media_type="application/json")


def _steps(catalog: Catalog, rid: str | None) -> int:
    return catalog.view(rid).steps_done() if rid is not None else 0


def _int(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None


def create_app(catalog: Catalog) -> Starlette:
    def answer(make: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                return _json(await run_in_threadpool(make, request))
            except ConcordiaError as exc:
                return _json({"error": str(exc)}, 404)

        return endpoint

    def view(request: Request) -> RunView:
        return catalog.view(request.path_params["rid"])

    def events(request: Request) -> Any:
        q = request.query_params
        flt = EventFilter(
            actor=q.get("actor") or None,
            place=q.get("place") or None,
            kinds=[k for k in q.getlist("kind") if k] or None,
            text=q.get("q") or None,
        )
        return view(request).events(flt, _int(request, "offset", 0), _int(request, "limit", 100))

    def experiment(request: Request) -> Any:
        if catalog.experiment is None:
            raise ConfigError("this view holds no experiment")
        return catalog.experiment.data()

    async def live(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            seen: tuple[str | None, int] | None = None
            quiet = 0
            while not await request.is_disconnected():
                rid = catalog.followed()
                steps = await run_in_threadpool(_steps, catalog, rid)
                if (rid, steps) != seen:
                    seen, quiet = (rid, steps), 0
                    yield f"event: step\ndata: {json.dumps({'run': rid, 'steps': steps})}\n\n"
                elif (quiet := quiet + 1) % 15 == 0:
                    yield ": still here\n\n"
                for _ in range(10):  # a stopping server ends the stream, not cuts it
                    if stopping.is_set():
                        return
                    await asyncio.sleep(POLL_S / 10)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    stopping = threading.Event()
    q = lambda r, k: r.query_params.get(k, "")  # noqa: E731
    routes = [
        Route("/", page),
        Route("/api/index", answer(lambda r: catalog.index())),
        Route("/api/experiment", answer(experiment)),
        Route("/api/live", live),
        Route("/api/run/{rid}/head", answer(lambda r: view(r).head())),
        Route("/api/run/{rid}/positions", answer(lambda r: view(r).positions())),
        Route("/api/run/{rid}/events", answer(events)),
        Route(
            "/api/run/{rid}/conversations",
            answer(
                lambda r: view(r).conversations(
                    q(r, "resident") or None, _int(r, "offset", 0), _int(r, "limit", 50)
                )
            ),
        ),
        Route("/api/run/{rid}/usage", answer(lambda r: view(r).usage())),
        Route("/api/run/{rid}/feed", answer(lambda r: feed(view(r)))),
        Route(
            "/api/run/{rid}/resident/{name}",
            answer(lambda r: resident(view(r), r.path_params["name"])),
        ),
        Route(
            "/api/run/{rid}/memories/{name}",
            answer(
                lambda r: memories(view(r), r.path_params["name"], q(r, "q"), _int(r, "limit", 100))
            ),
        ),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    #: set by ViewerServer.stop, so that open live streams end before the server does
    app.state.stopping = stopping
    return app


class ViewerServer:
    """uvicorn serving an app on 127.0.0.1: in the foreground (`run`, the command) or
    in a thread (`start`, the sandbox and the tests)."""

    def __init__(self, app: Starlette, port: int = 0, *, catalog: Catalog | None = None) -> None:
        #: closed with the server, when given
        self.catalog = catalog
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((HOST, port))
        except OSError as exc:
            self.sock.close()
            raise ConfigError(f"cannot serve on {HOST}:{port}: {exc.strerror}") from None
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(
            app, log_level="warning", timeout_graceful_shutdown=2, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.stopping: threading.Event = app.state.stopping
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> ViewerServer:
        self.thread = threading.Thread(target=self.run, name="viewer", daemon=True)
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            threading.Event().wait(0.02)
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.sock.close()
        if self.catalog is not None:
            self.catalog.close()
