"""The apps' measurements (`experiments.app_spec`): pure functions of the app state,
and what a scenario's app interventions and measurements need of its world.

The app state (every message, post, like, read and transfer) is part of the world
state, so it is committed with each step, rolled back with a failed one, copied with a
fork and rebuilt on a resume: these measurements keep no ledger of their own.

How far a piece of news went (`reach`) follows what the apps recorded: which posts
each read of the feed showed, which messages went to whom. A resident's first contact
with it is either receiving it (shown a post of the thread, sent a message about it) or
passing it on (posting, replying, messaging about it); it counts as reached when it
received it at an earlier step than it first passed it on, so the one who started a
rumour is its source, not one it reached. Residents act at once within a step, so
what one receives in a step is not yet what it acts on."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import singledispatch
from typing import TYPE_CHECKING, Any

from concordia_like.experiments.app_spec import (
    AppMeasure,
    FeedRanking,
    InjectPost,
    LikeCount,
    MessagesSent,
    MoneyMoved,
    Outage,
    PostCount,
    PostReach,
)
from concordia_like.world.app_feed import has_device
from concordia_like.world.apps import AppState, Post
from concordia_like.world.state import WorldState

if TYPE_CHECKING:
    from concordia_like.experiments.scenario import Scenario

Problem = tuple[tuple[str | int, ...], str]


def town_author(state: WorldState) -> str:
    """Whom a post the town itself makes is by: the world's name."""
    return state.name


def _has(text: str, word: str | None) -> bool:
    return word is None or word.lower() in text.lower()


def _apps(state: WorldState) -> AppState | None:
    return state.apps


# -- values ---------------------------------------------------------------------------


@singledispatch
def app_value(m: AppMeasure, state: WorldState, scenario: Scenario | None = None) -> float:
    """The value of an app measurement on `state` (one function per kind below)."""
    raise TypeError(f"not an app measurement: {m!r}")


@app_value.register(PostCount)
def _posts(m: PostCount, state: WorldState, scenario: Scenario | None = None) -> float:
    apps = _apps(state)
    if apps is None:
        return 0.0
    return float(
        sum(
            1
            for p in apps.posts
            if (m.author is None or p.author == m.author)
            and _has(p.text, m.contains)
            and (m.replies is None or (p.reply_to is not None) == m.replies)
        )
    )


@app_value.register(MessagesSent)
def _messages(m: MessagesSent, state: WorldState, scenario: Scenario | None = None) -> float:
    apps = _apps(state)
    if apps is None:
        return 0.0
    return float(
        sum(
            1
            for x in apps.messages
            if (m.sender is None or x.sender == m.sender)
            and (m.to is None or x.to == m.to)
            and _has(x.text, m.contains)
        )
    )


@app_value.register(LikeCount)
def _likes(m: LikeCount, state: WorldState, scenario: Scenario | None = None) -> float:
    apps = _apps(state)
    if apps is None:
        return 0.0
    liked = {p.id for p in apps.posts if _has(p.text, m.contains)}
    if m.post is not None:
        liked &= {m.post}
    return float(sum(1 for _, post in apps.likes if post in liked))


@app_value.register(MoneyMoved)
def _money(m: MoneyMoved, state: WorldState, scenario: Scenario | None = None) -> float:
    apps = _apps(state)
    if apps is None:
        return 0.0
    moved = [
        t.amount
        for t in apps.transfers
        if (m.sender is None or t.sender == m.sender) and (m.to is None or t.to == m.to)
    ]
    return float(len(moved) if m.stat == "count" else sum(moved))


@app_value.register(PostReach)
def _reach(m: PostReach, state: WorldState, scenario: Scenario | None = None) -> float:
    apps = _apps(state)
    if apps is None:
        return 0.0
    seeds = followed_posts(m, apps, state, scenario)
    reached, cascade = spread(apps, thread(apps, seeds), m.contains, set(state.agents))
    return float(len(reached) if m.stat == "reach" else len(cascade))


def followed_posts(
    m: PostReach, apps: AppState, state: WorldState, scenario: Scenario | None
) -> set[str]:
    """The ids of the posts a `reach` follows (before their replies are added)."""
    if m.post is not None:
        return {m.post} if apps.post(m.post) is not None else set()
    if m.intervention is not None:
        iv = scenario.spec.interventions.get(m.intervention) if scenario is not None else None
        if not isinstance(iv, InjectPost):
            return set()
        author = iv.author or town_author(state)
        return {
            p.id
            for p in apps.posts
            if p.author == author and p.text == iv.text and p.reply_to == iv.reply_to
        }
    return {p.id for p in apps.posts if _has(p.text, m.contains)}


def thread(apps: AppState, seeds: Collection[str]) -> list[Post]:
    """The posts `seeds` and every reply to one of them, at any depth, in order."""
    ids = set(seeds)
    out = []
    for p in apps.posts:  # a reply comes after what it answers
        if p.id in ids or (p.reply_to is not None and p.reply_to in ids):
            ids.add(p.id)
            out.append(p)
    return out


def spread(
    apps: AppState, posts: list[Post], contains: str | None, residents: Collection[str]
) -> tuple[set[str], set[str]]:
    """(reached, cascade) of a thread (see the module's text and `PostReach`)."""
    ids = {p.id for p in posts}
    got: dict[str, int] = {}  # resident -> first step it received it
    gave: dict[str, int] = {}  # resident -> first step it passed it on

    def note(into: dict[str, int], who: str, step: int) -> None:
        if who in residents:
            into[who] = min(step, into.get(who, step))

    for p in posts:
        note(gave, p.author, p.step)
    for r in apps.reads:
        if r.what == "feed" and ids.intersection(r.shown):
            note(got, r.agent, r.step)
    if contains is not None:
        for x in apps.messages:
            if _has(x.text, contains):
                note(gave, x.sender, x.step)
                note(got, x.to, x.step)
    reached = {r for r, step in got.items() if r not in gave or step < gave[r]}
    # when each joined the tree, and whether it had it to pass on from that step on
    joined = {r: (s, False) for r, s in got.items() if r in reached}
    joined |= {r: (s, True) for r, s in gave.items() if r not in reached}
    if contains is None:  # what else it passes on by message is not in the words
        for x in apps.messages:
            had = joined.get(x.sender)
            if had is None or x.to not in residents or x.to in joined:
                continue
            step, source = had
            if x.step > step or (source and x.step == step):
                joined[x.to] = (x.step, False)
    return reached, set(joined)


# -- what the world must have ---------------------------------------------------------


def _app_missing(state: WorldState, app: str) -> str | None:
    apps = _apps(state)
    if apps is None:
        return "the world has no apps (an `apps:` section in its world file)"
    if not apps.spec.has(app):
        return f"the world has no {app} app (apps.{app} in its world file)"
    return None


def _residents(pairs: list[tuple[str, str | None]], residents: Collection[str]) -> list[Problem]:
    return [
        ((field,), f"{who!r} is not a resident of the cast")
        for field, who in pairs
        if who is not None and who not in residents
    ]


def intervention_problems(
    iv: object, state: WorldState, residents: Collection[str]
) -> list[Problem]:
    """What an app intervention needs of the world and the cast, and lacks."""
    if isinstance(iv, InjectPost):
        missing = _app_missing(state, "feed")
        if missing:
            return [(("kind",), missing)]
        found = _residents([("author", iv.author)], residents)
        if not found and iv.author is not None and not has_device(state, iv.author):
            device = state.apps.spec.device if state.apps is not None else None
            found.append((("author",), f"{iv.author} holds no {device} at the start"))
        return found
    if isinstance(iv, FeedRanking):
        missing = _app_missing(state, "feed")
        return [(("kind",), missing)] if missing else []
    if isinstance(iv, Outage):
        missing = _app_missing(state, iv.app)
        return [(("app",), missing)] if missing else []
    return []


def measurement_problems(
    m: object, state: WorldState, residents: Collection[str], interventions: Mapping[str, Any]
) -> list[Problem]:
    """What an app measurement needs of the world, the cast and the interventions."""
    if not isinstance(m, AppMeasure):
        return []
    missing = _app_missing(state, m.app)
    if missing:
        return [(("kind",), missing)]
    if isinstance(m, PostCount):
        return _residents([("author", m.author)], residents)
    if isinstance(m, MessagesSent | MoneyMoved):
        return _residents([("sender", m.sender), ("to", m.to)], residents)
    if isinstance(m, PostReach) and m.intervention is not None:
        iv = interventions.get(m.intervention)
        if iv is None:
            return [(("intervention",), f"unknown intervention {m.intervention!r}")]
        if not isinstance(iv, InjectPost):
            return [(("intervention",), f"{m.intervention!r} is no intervention of kind post")]
    return []
