"""One run as the viewer reads it: its head (world, places, residents, clock), who was
where after every step, its events a page at a time, its conversations and its usage.

Everything goes through the recorder's typed queries and the memory store's; nothing is
written. The store keeps one checkpoint per run (the newest), so where residents were
at earlier steps is read back from the event log: each resident's first event of a step
is at the place it stood when the step began, and a resident with no event in a step did
not move in it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from concordia_like.engine.recorder import Checkpoint, RunRecorder
from concordia_like.engine.runs import DEFAULT_ROOT, run_folder, store_url_for
from concordia_like.errors import ConcordiaError, ConfigError
from concordia_like.viewer.feed import apps_of
from concordia_like.viewer.layout import layout
from concordia_like.world.loader import World, load_world

#: the most events or threads one page holds
PAGE_MAX = 500


def iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="minutes") if when is not None else None


@dataclass
class EventFilter:
    """What the timeline shows: one resident's, one place's, some kinds', some text's."""

    actor: str | None = None
    place: str | None = None
    kinds: list[str] | None = None
    text: str | None = None

    def query(self) -> dict[str, Any]:
        return {
            "agent": self.actor or None,
            "place": self.place or None,
            "kinds": self.kinds or None,
            "text": self.text or None,
        }


@dataclass
class _Positions:
    """Who was where after each step (index: step), as computed so far."""

    upto: int = -1
    where: list[dict[str, str]] = field(default_factory=list)


class RunView:
    """Read-only queries over one run of a store, cached per committed step."""

    def __init__(
        self,
        recorder: RunRecorder,
        run_id: str,
        folder: Path,
        *,
        owns_recorder: bool = True,
        memory: Any = None,
    ) -> None:
        """`memory`: the run's memory store when a running town lends it (the viewer
        then neither opens a second one on the same index nor closes it)."""
        self.recorder = recorder
        self.run_id = run_id
        self.folder = folder
        self._owns = owns_recorder
        self._lock = threading.Lock()
        self._world: World | bool | None = False  # False: not read yet
        self._positions = _Positions()
        self._cache: dict[tuple[str, int], Any] = {}
        self._memory: Any = memory
        self._owns_memory = memory is None
        self.recorder.run(run_id)  # refuses an unknown run now, with its name

    @classmethod
    def open(cls, run_id: str, *, root: Path = DEFAULT_ROOT, store: str | None = None) -> RunView:
        folder = run_folder(run_id, root)
        if store is None and not (folder / "store.sqlite").exists():
            raise ConfigError(f"no run {run_id!r}: {folder / 'store.sqlite'} does not exist")
        return cls(RunRecorder(store_url_for(folder, store)), run_id, folder)

    def close(self) -> None:
        if self._memory is not None and self._owns_memory:
            self._memory.close()
        if self._owns:
            self.recorder.close()

    # -- what every page needs ----------------------------------------------------------

    def steps_done(self) -> int:
        return self.recorder.run(self.run_id).steps_done

    def checkpoint(self) -> Checkpoint | None:
        return self.recorder.last_checkpoint(self.run_id)

    def world(self) -> World | None:
        """The world file the run was started from, when it can still be read (for the
        persona cards and the places' `pos`); None when it cannot."""
        if self._world is False:
            path = self.recorder.run(self.run_id).world_path
            try:
                self._world = load_world(path)
            except (ConcordiaError, OSError):
                self._world = None
        return self._world if isinstance(self._world, World) else None

    def _cached(self, name: str, make: Any) -> Any:
        key = (name, self.steps_done())
        with self._lock:
            if key not in self._cache:
                self._cache = {k: v for k, v in self._cache.items() if k[0] != name}
                self._cache[key] = make()
            return self._cache[key]

    def head(self) -> dict[str, Any]:
        return self._cached("head", self._head)

    def _head(self) -> dict[str, Any]:
        run = self.recorder.run(self.run_id)
        cp = self.checkpoint()
        world_state = cp.world if cp else None
        if world_state is None:
            w = self.world()
            world_state = w.state.to_dict() if w else {"places": {}, "agents": {}}
        places = world_state.get("places", {})
        edges = sorted(
            {tuple(sorted((a, b))) for a, p in places.items() for b in p.get("connections", [])}
        )
        world = self.world()
        fixed = {
            pid: p.pos
            for pid, p in (world.spec.places.items() if world else [])
            if p.pos is not None
        }
        points = layout(sorted(places), [(a, b) for a, b in edges], fixed)
        counts = self.recorder.event_counts(self.run_id)
        kinds = sorted({k for _, k, _ in counts})
        return {
            "id": run.id,
            "world": run.world_name,
            "engine": run.engine,
            "backend": run.backend,
            "seed": run.seed,
            "created": iso(run.created_at),
            "steps_done": run.steps_done,
            "sim_time": iso(cp.sim_time) if cp else None,
            "places": [
                {
                    "id": pid,
                    "name": p.get("name", pid),
                    "kind": p.get("kind", ""),
                    "description": p.get("description", ""),
                    "x": points[pid][0],
                    "y": points[pid][1],
                }
                for pid, p in sorted(places.items())
            ],
            "edges": [list(e) for e in edges],
            "residents": sorted(world_state.get("agents", {})),
            "feed": bool(((apps_of(world_state) or {}).get("spec") or {}).get("feed")),
            "kinds": kinds,
            "events": sum(n for _, _, n in counts),
        }

    # -- who was where ------------------------------------------------------------------

    def positions(self) -> dict[str, Any]:
        """After each step (0: before the first), each resident's place id."""
        with self._lock:
            self._update_positions()
            where = list(self._positions.where)
        residents = sorted({a for w in where for a in w})
        return {"residents": residents, "where": [[w.get(a) for a in residents] for w in where]}

    def _update_positions(self) -> None:
        cp = self.checkpoint()
        pos = self._positions
        if cp is None:
            if pos.upto < 0:
                w = self.world()
                start = w.state.to_dict()["agents"] if w else {}
                pos.where = [{a: d["location"] for a, d in start.items()}]
                pos.upto = 0
            return
        if cp.step <= pos.upto:
            return
        first: dict[int, dict[str, str]] = {}  # step -> resident -> place it began in
        after = max(pos.upto, 0)
        for e in self.recorder.events(self.run_id, after_step=after):
            if e.actor and e.place:
                first.setdefault(e.step, {}).setdefault(e.actor, e.place)
        current = {a: d["location"] for a, d in cp.world.get("agents", {}).items()}
        newer = [dict(current)]
        for step in range(cp.step, after, -1):
            current = {**current, **first.get(step, {})}
            newer.append(dict(current))
        newer.reverse()  # newer[i]: after step `after + i`
        if pos.upto < 0:
            pos.where = newer
        else:
            pos.where = pos.where[: after + 1] + newer[1:]
        pos.upto = cp.step

    # -- the timeline -------------------------------------------------------------------

    def events(self, flt: EventFilter, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        limit = max(1, min(limit, PAGE_MAX))
        q = flt.query()
        rows = self.recorder.events(self.run_id, offset=max(offset, 0), limit=limit, **q)
        return {
            "total": self.recorder.event_count(self.run_id, **q),
            "offset": offset,
            "rows": [_timeline_row(e) for e in rows],
        }

    def all_events(self) -> Iterator[dict[str, Any]]:
        """Every event, as the timeline's rows (for the static export)."""
        for e in self.recorder.events(self.run_id):
            yield _timeline_row(e)

    # -- conversations and usage --------------------------------------------------------

    def conversations(
        self, resident: str | None = None, offset: int = 0, limit: int = 50
    ) -> dict[str, Any]:
        threads = self.threads()
        if resident:
            threads = [t for t in threads if resident in t["people"]]
        limit = max(1, min(limit, PAGE_MAX))
        return {
            "total": len(threads),
            "offset": offset,
            "threads": threads[offset : offset + limit],
        }

    def threads(self) -> list[dict[str, Any]]:
        """Every conversation, newest first, with its lines in order."""
        return list(self._cached("threads", self._threads))

    def _threads(self) -> list[dict[str, Any]]:
        by_id: dict[str, dict[str, Any]] = {}
        for u in self.recorder.utterances(self.run_id):
            t = by_id.setdefault(
                u.conversation,
                {
                    "id": u.conversation,
                    "place": u.place,
                    "step": u.step,
                    "time": iso(u.sim_time),
                    "people": [],
                    "lines": [],
                },
            )
            for who in (u.speaker, *u.addressees):
                if who not in t["people"]:
                    t["people"].append(who)
            t["lines"].append(
                {
                    "step": u.step,
                    "time": iso(u.sim_time),
                    "speaker": u.speaker,
                    "to": list(u.addressees),
                    "text": u.text,
                }
            )
        return sorted(by_id.values(), key=lambda t: (-t["step"], t["id"]))

    def usage(self) -> dict[str, Any]:
        """Model calls, tokens and latency of the run, in all and per purpose and per
        resident (from the newest checkpoint), and the events of each step by kind."""
        cp = self.checkpoint()
        usage = cp.usage if cp else {}
        per_step: dict[int, dict[str, int]] = {}
        for step, kind, n in self.recorder.event_counts(self.run_id):
            per_step.setdefault(step, {})[kind] = n
        return {
            "total": usage.get("total", {}),
            "by_purpose": usage.get("by_purpose", {}),
            "by_agent": usage.get("by_agent", {}),
            "events_per_step": [{"step": s, **k} for s, k in sorted(per_step.items())],
        }

    # -- residents ----------------------------------------------------------------------

    def memory(self) -> Any:
        """The run's memory store, opened on first use without touching its index."""
        with self._lock:
            if self._memory is None:
                from concordia_like.memory.stream import MemoryStore

                config = self.recorder.run(self.run_id).config or {}
                self._memory = MemoryStore.open(
                    self.folder,
                    run_id=self.run_id,
                    engine=self.recorder.engine,
                    chroma_url=config.get("chroma_url"),
                    layout=config.get("memory_layout", "per_agent"),
                    reconcile=False,
                )
            return self._memory


def _timeline_row(e: Any) -> dict[str, Any]:
    """An event as the timeline shows it (served page by page, or exported whole)."""
    return {
        "step": e.step,
        "seq": e.seq,
        "time": iso(e.sim_time),
        "kind": e.kind,
        "actor": e.actor,
        "place": e.place,
        "text": e.text,
    }
