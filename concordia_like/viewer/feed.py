"""A run's town feed as the viewer's feed page reads it: every post with its likes, its
replies and how many were shown it, step by step.

The app state (`world.apps`) is part of the world state, so the run's newest
checkpoint holds every post, like and read of the run; a post keeps the step it was
made in, likes are as they stand now (the apps keep no time of a like). Nothing is
written; the page puts every text in as text (the posts are model output)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concordia_like.viewer.runview import RunView


def apps_of(world: dict[str, Any] | None) -> dict[str, Any] | None:
    """The apps' part of a checkpoint's world state, or None (a world without apps)."""
    return (world or {}).get("apps") or None


def feed(view: RunView) -> dict[str, Any]:
    """The run's feed (see the module's text)."""
    cp = view.checkpoint()
    apps = apps_of(cp.world if cp is not None else None)
    spec = (apps or {}).get("spec") or {}
    if apps is None or not spec.get("feed"):
        return {"has_feed": False, "ranking": None, "posts": [], "steps": []}
    likers: dict[str, list[str]] = {}
    for who, post in apps.get("likes", []):
        likers.setdefault(post, []).append(who)
    shown: dict[str, set[str]] = {}
    for r in apps.get("reads", []):
        if r.get("what") == "feed":
            for post in r.get("shown", []):
                shown.setdefault(post, set()).add(r["agent"])
    replies: dict[str, list[str]] = {}
    for p in apps.get("posts", []):
        if p.get("reply_to"):
            replies.setdefault(p["reply_to"], []).append(p["id"])
    posts = [
        {
            "id": p["id"],
            "author": p["author"],
            "text": p["text"],
            "step": int(p["step"]),
            "time": str(p.get("time", ""))[:16],
            "reply_to": p.get("reply_to"),
            "replies": replies.get(p["id"], []),
            "likes": len(likers.get(p["id"], [])),
            "liked_by": sorted(likers.get(p["id"], [])),
            "shown_to": sorted(shown.get(p["id"], set())),
        }
        for p in apps.get("posts", [])
    ]
    steps: dict[int, dict[str, int]] = {}
    for p in posts:
        row = steps.setdefault(p["step"], {"step": p["step"], "posts": 0, "replies": 0})
        row["replies" if p["reply_to"] else "posts"] += 1
    return {
        "has_feed": True,
        "ranking": spec["feed"].get("ranking"),
        "posts": posts,
        "steps": [steps[s] for s in sorted(steps)],
        "likes": sum(p["likes"] for p in posts),
        "messages": len(apps.get("messages", [])),
    }
