"""A resident's page: persona card, today's plan and where it stands in it, its place
and holdings, what it said, its reflections with the memories they cite, and its
memories scored for a query by the scoring the agent's own retrieval uses."""

from __future__ import annotations

from typing import Any

from concordia_like.errors import ConfigError
from concordia_like.memory.records import MemoryRecord, RetrievalQuery
from concordia_like.memory.scoring import recency
from concordia_like.viewer.runview import RunView, iso

#: the most memories, reflections and lines a page lists
LIST_MAX = 200


def resident(view: RunView, name: str) -> dict[str, Any]:
    cp = view.checkpoint()
    agents = cp.world.get("agents", {}) if cp else {}
    world = view.world()
    if name not in agents and not (world and name in world.personas):
        raise ConfigError(f"no resident {name!r} in run {view.run_id}")
    state = agents.get(name, {})
    mind = (cp.agents.get(name) or {}) if cp else {}
    card = world.personas.get(name) if world else None
    items = cp.world.get("items", {}) if cp else {}
    holds = items.values() if isinstance(items, dict) else items
    memory = view.memory()
    reflections = memory.recent(name, LIST_MAX, kinds=["reflection"])
    cited = {m.id: m for m in memory.get(sorted({i for r in reflections for i in r.evidence}))}
    said = view.recorder.utterances(view.run_id, speaker=name)[-LIST_MAX:]
    return {
        "name": name,
        "card": card.model_dump(exclude={"seed_memories"}, mode="json") if card else None,
        "location": state.get("location"),
        "attributes": state.get("attributes", {}),
        "holdings": sorted(
            f"{i.get('name', '?')} x{i.get('quantity', 1)}"
            for i in holds
            if isinstance(i, dict) and i.get("holder") == name
        ),
        "activity": mind.get("activity"),
        "plan": _plan(mind.get("plan"), cp.sim_time.isoformat() if cp else None),
        "memories": memory.count(name),
        "reflections": [
            {**_row(r), "cites": [_row(cited[i]) for i in r.evidence if i in cited]}
            for r in reflections
        ],
        "said": [
            {"step": u.step, "time": iso(u.sim_time), "to": list(u.addressees), "text": u.text}
            for u in reversed(said)
        ],
    }


def _plan(plan: dict[str, Any] | None, now: str | None) -> dict[str, Any] | None:
    """Today's blocks, and which one the clock is in (ISO strings compare in order)."""
    if not plan:
        return None
    blocks = [
        {
            "start": b[0][11:16],
            "end": b[1][11:16],
            "text": b[2],
            "place": b[3] if len(b) > 3 else None,
        }
        for b in plan.get("blocks", [])
    ]
    current = next(
        (i for i, b in enumerate(plan.get("blocks", [])) if now and b[0] <= now < b[1]), None
    )
    return {"day": plan.get("day"), "blocks": blocks, "current": current, "now": now}


def _row(m: MemoryRecord) -> dict[str, Any]:
    return {"id": m.id, "kind": m.kind, "text": m.text, "created": iso(m.created)}


def memories(view: RunView, name: str, query: str = "", limit: int = 100) -> dict[str, Any]:
    """The resident's memories: newest first with their recency (the decay since last
    recalled) and importance, or, for a query, best first as the agent's retrieval
    scores them now (recency, importance and relevance, each min-max normalised over
    the candidates, and their sum), without moving anyone's last-recalled time."""
    cp = view.checkpoint()
    memory = view.memory()
    limit = max(1, min(limit, LIST_MAX))
    total = memory.count(name)
    query = query.strip()
    if cp is None or not query or not total:
        recent = memory.recent(name, limit)
        now = cp.sim_time if cp else None
        decay = memory.weights.decay_per_hour
        rows = [
            {
                **_row(m),
                "importance": m.importance,
                "recency": round(recency(m.last_retrieved, now, decay), 4) if now else None,
            }
            for m in recent
        ]
        return {"query": "", "total": total, "rows": rows}
    found = memory.retrieve_many([RetrievalQuery(name, query, cp.sim_time, k=total)], touch=False)
    rows = [
        {
            **_row(s.record),
            "importance": s.record.importance,
            "score": round(s.score, 4),
            "recency_n": round(s.recency, 4),
            "importance_n": round(s.importance, 4),
            "relevance_n": round(s.relevance, 4),
            "relevance": round(s.raw_relevance, 4),
        }
        for s in found[0][:limit]
    ]
    return {"query": query, "total": total, "rows": rows}
