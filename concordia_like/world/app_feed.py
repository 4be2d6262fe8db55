"""Reading the apps: who has them, whom one can reach, and the feed as a policy ranks it.

Everything here is a pure function of the world state, so two runs (or a run and its
resumption) that reach the same state rank the same feed and offer the same targets.
Lists a prompt or a schema shows are capped: they must not grow with the world."""

from __future__ import annotations

import math
import random

from concordia_like.world.apps import Message, Post
from concordia_like.world.state import WorldState

#: the most residents an action schema offers to message, follow or pay
CONTACTS_MAX = 12


def has_device(s: WorldState, agent: str) -> bool:
    """Whether `agent` has the apps now: it holds the world's device (or none is needed)."""
    apps = s.apps
    if apps is None or agent not in s.agents:
        return False
    device = apps.spec.device
    return device is None or s.stack_named(agent, device) is not None


def device_refusal(s: WorldState, agent: str, role: str = "use the apps") -> str | None:
    """Why `agent` cannot `role` for want of the device, or None."""
    if has_device(s, agent):
        return None
    device = s.apps.spec.device if s.apps is not None else None
    return f"{agent} holds no {device}: without one, {agent} cannot {role}"


def contacts(s: WorldState, agent: str) -> list[str]:
    """Whom `agent` can reach through the apps (others holding the device), sorted, at most
    `CONTACTS_MAX`: when more hold one, first those it has exchanged messages or money
    with, follows, or is with, then the rest by name. Read from the state's index of who
    holds the device (`WorldState.holders_of`) and the apps' of partners, so its cost
    grows with those contacts, not with the town."""
    apps = s.apps
    if apps is None:
        return []
    known = apps.partners(agent) | set(s.others_present(agent))
    out = sorted(n for n in known if n != agent and has_device(s, n))[:CONTACTS_MAX]
    device = apps.spec.device
    holders = sorted(s.agents) if device is None else s.holders_of(device)
    for n in holders:
        if len(out) >= CONTACTS_MAX:
            break
        if n != agent and n not in known and n in s.agents:
            out.append(n)
    return sorted(out)


def rank_feed(s: WorldState, reader: str, limit: int | None = None) -> list[Post]:
    """The posts `reader` is shown when it reads the feed now, best first, at most
    `limit` (default: the feed's `read_limit`), its own posts left out (a reader `""`:
    the whole town feed as the world ranks it, for an onlooker). `chronological`: newest first.
    `engagement`: likes, whether the reader follows the author and how recent the post
    is, weighted as the world says; ties are broken by a draw seeded by the feed's seed,
    the step, the reader and the post, so the order is deterministic."""
    apps = s.apps
    if apps is None or apps.spec.feed is None:
        return []
    feed = apps.spec.feed
    limit = feed.read_limit if limit is None else limit
    posts = [p for p in apps.posts if p.author != reader]
    if feed.ranking == "chronological":
        return list(reversed(posts))[:limit]
    step = s.clock.step_index + 1  # as posts are stamped (`world.app_effects`)
    followed = {b for a, b in apps.follows if a == reader}
    likes: dict[str, int] = {}
    for _, post_id in apps.likes:
        likes[post_id] = likes.get(post_id, 0) + 1

    def score(p: Post) -> tuple[float, float]:
        age = max(0, step - p.step)
        value = (
            feed.like_weight * likes.get(p.id, 0)
            + feed.follow_weight * (p.author in followed)
            + feed.recency_weight * math.pow(0.5, age / feed.half_life)
        )
        tie = random.Random(f"{feed.seed}|{step}|{reader}|{p.id}").random()
        return (-round(value, 9), tie)

    return sorted(posts, key=score)[:limit]


def inbox(s: WorldState, agent: str) -> list[Message]:
    """The latest messages to `agent`, oldest first, at most the messages app's
    `read_limit`."""
    apps = s.apps
    if apps is None or apps.spec.messages is None:
        return []
    mine = [m for m in apps.messages if m.to == agent]
    return mine[-apps.spec.messages.read_limit :]


def feed_line(s: WorldState, post: Post) -> str:
    """One post as a reader perceives it."""
    apps = s.apps
    likes = apps.like_count(post.id) if apps is not None else 0
    what = f"replying to {post.reply_to}" if post.reply_to else "posts"
    return f'On the feed, {post.author} {what} ({post.id}, {likes} likes): "{post.text}"'


def message_line(m: Message) -> str:
    return f'Message from {m.sender}: "{m.text}"'


def has_news(s: WorldState, agent: str) -> bool:
    """Whether reading the feed would show `agent` something new: a post by another that
    its latest read did not show, made since that read (any such post, if it never read)."""
    apps = s.apps
    if apps is None or apps.spec.feed is None:
        return False
    read = apps.last_read(agent, "feed")
    for p in reversed(apps.posts):  # newest first, back to the latest read
        if read is not None and p.step < read.step:
            return False
        if p.author != agent and (read is None or p.id not in read.shown):
            return True
    return False


def readable_posts(s: WorldState, agent: str) -> list[str]:
    """The posts `agent` may like or reply to: those its latest read of the feed showed
    that still exist (one acts on what one has seen)."""
    apps = s.apps
    if apps is None:
        return []
    read = apps.last_read(agent, "feed")
    return list(read.shown) if read is not None else []
