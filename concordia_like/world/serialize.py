"""The world state as checkpoint data (JSON-ready) and back, exactly.

The form is canonical: places, agents and items in sorted order, times as ISO text, so
two equal states give byte-identical JSON (`json.dumps(..., sort_keys=True)`) whatever
order their dicts were filled in. That is what lets a test say "rolled back to exactly
the original", and lets a resumed run continue from a stored step.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from concordia_like.world.apps import AppState
from concordia_like.world.code_rules import CODE_RULES_ADAPTER
from concordia_like.world.effects import effect_to_dict, parse_effect
from concordia_like.world.hours import WEEKDAYS, OpeningHours
from concordia_like.world.state import (
    AttributeDef,
    Clock,
    Item,
    Place,
    Resident,
    ScheduledEvent,
    WorldState,
)

FORMAT = 1


def state_to_dict(s: WorldState) -> dict[str, Any]:
    out: dict[str, Any] = {
        "format": FORMAT,
        "name": s.name,
        "clock": {
            "now": s.clock.now.isoformat(),
            "step_seconds": s.clock.step.total_seconds(),
            "step_index": s.clock.step_index,
        },
        "max_stack": s.max_stack,
        "places": {pid: _place(p) for pid, p in sorted(s.places.items())},
        "attributes": {
            n: {
                "min": a.min,
                "max": a.max,
                "initial": a.initial,
                "integer": a.integer,
                "conserved": a.conserved,
                "description": a.description,
            }
            for n, a in sorted(s.attributes.items())
        },
        "agents": {
            n: {
                "location": a.location,
                "home": a.home,
                "attributes": dict(sorted(a.attributes.items())),
            }
            for n, a in sorted(s.agents.items())
        },
        "items": {
            iid: {
                "name": i.name,
                "holder": i.holder,
                "quantity": i.quantity,
                "properties": dict(sorted(i.properties.items())),
            }
            for iid, i in sorted(s.items.items())
        },
        "events": [_event(e) for e in s.events],
        "ledger": {
            "created": dict(sorted(s.created.items())),
            "destroyed": dict(sorted(s.destroyed.items())),
            "initial_counts": dict(sorted(s.initial_counts.items())),
            "initial_totals": dict(sorted(s.initial_totals.items())),
            "item_seq": s.item_seq,
        },
    }
    if s.code_rules:  # left out when none: older checkpoints stay byte-identical
        out["code_rules"] = [r.model_dump(mode="json") for r in s.code_rules]
    if s.apps is not None:  # likewise: a world without apps has no key
        out["apps"] = s.apps.to_dict()
    return out


def _place(p: Place) -> dict[str, Any]:
    return {
        "name": p.name,
        "kind": p.kind,
        "description": p.description,
        "connections": list(p.connections),
        "hours": [list(r) for r in p.hours.ranges],
        "closed_days": [WEEKDAYS[d] for d in sorted(p.hours.closed_days)],
        "capacity": p.capacity,
        "keyholders": sorted(p.keyholders),
    }


def _event(e: ScheduledEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "text": e.text,
        "place": e.place,
        "repeat": e.repeat,
        "until": e.until.isoformat() if e.until else None,
        "effects": [effect_to_dict(x) for x in e.effects],
    }


def state_from_dict(d: dict[str, Any]) -> WorldState:
    if d.get("format") != FORMAT:
        raise ValueError(f"unknown world checkpoint format {d.get('format')!r}")
    places = {
        pid: Place(
            id=pid,
            name=p["name"],
            kind=p["kind"],
            description=p["description"],
            connections=tuple(p["connections"]),
            hours=OpeningHours(
                tuple((int(a), int(b)) for a, b in p["hours"]),
                frozenset(WEEKDAYS.index(x) for x in p["closed_days"]),
            ),
            capacity=p["capacity"],
            keyholders=frozenset(p["keyholders"]),
        )
        for pid, p in d["places"].items()
    }
    attributes = {n: AttributeDef(name=n, **a) for n, a in d["attributes"].items()}
    agents = {
        n: Resident(
            name=n, location=a["location"], home=a["home"], attributes=dict(a["attributes"])
        )
        for n, a in d["agents"].items()
    }
    items = {
        iid: Item(
            id=iid,
            name=i["name"],
            holder=i["holder"],
            quantity=i["quantity"],
            properties=dict(i["properties"]),
        )
        for iid, i in d["items"].items()
    }
    events = [
        ScheduledEvent(
            id=e["id"],
            at=datetime.fromisoformat(e["at"]),
            text=e["text"],
            place=e["place"],
            repeat=e["repeat"],
            until=datetime.fromisoformat(e["until"]) if e["until"] else None,
            effects=tuple(parse_effect(x) for x in e["effects"]),
        )
        for e in d["events"]
    ]
    clock = d["clock"]
    ledger = d["ledger"]
    return WorldState(
        name=d["name"],
        clock=Clock(
            now=datetime.fromisoformat(clock["now"]),
            step=timedelta(seconds=clock["step_seconds"]),
            step_index=clock["step_index"],
        ),
        places=places,
        attributes=attributes,
        agents=agents,
        items=items,
        events=events,
        max_stack=d["max_stack"],
        created=ledger["created"],
        destroyed=ledger["destroyed"],
        initial_counts=ledger["initial_counts"],
        initial_totals=ledger["initial_totals"],
        item_seq=ledger["item_seq"],
        code_rules=CODE_RULES_ADAPTER.validate_python(d.get("code_rules", [])),
        apps=AppState.from_dict(d["apps"]) if "apps" in d else None,
    )
