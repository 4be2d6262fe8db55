"""The sandbox and the apps (`world.apps`): a resident's phone as `inspect` shows it, the
town feed as the `feed` command shows it, and what a player types to use its phone.

What is shown is read from the world state and nothing is written: a resident's phone
is its messages (sent and received) and its feed as it last read it (what it was
shown, in that order); the town feed is every post, ranked by the world's policy.
While playing, `feed` shows only what the played resident was shown when it last read
it: one sees what one's resident perceives.

A player's app action is a typed action (`agents.actions`) where its form is plain:
`message NAME TEXT`, `post TEXT`, `reply POST TEXT`, `like POST`, `follow NAME`,
`read feed` or `read messages`, `pay N to NAME`. It is checked against the world first
(a phone in hand, a recipient with one, the money to pay), so that an impossible one
gets a hint and costs no step. In a world without apps, and for any other wording,
the line is a free-form action as before ("post the letter" is for the Game Master)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from concordia_like.agents.actions import (
    WORDS_MAX,
    Follow,
    Like,
    Message,
    Pay,
    Post,
    ReadApp,
    Reply,
)
from concordia_like.sandbox.commands import Hint, resolve
from concordia_like.text import clip, shown
from concordia_like.world.app_feed import feed_line, has_device, rank_feed, readable_posts
from concordia_like.world.apps import AppState
from concordia_like.world.state import WorldState

if TYPE_CHECKING:
    from concordia_like.engine.simulation import Simulation
    from concordia_like.sandbox.seat import PlayerSeat

#: what a player may type to use its phone (see the module's text)
APP_VERBS = ("message", "post", "reply", "like", "follow", "read", "pay")
#: the most messages and posts a screen shows
SHOWN_MAX = 20
_PAY = re.compile(r"^(\d{1,7})\s+(?:\w+\s+)?to\s+(.+)$", re.IGNORECASE)
_POST_ID = re.compile(r"^p[1-9][0-9]*$")


def _device(apps: AppState) -> str:
    return apps.spec.device or "phone"


# -- what is shown --------------------------------------------------------------------


def phone_lines(s: WorldState, name: str, n: int = 8) -> list[str]:
    """A resident's phone: its latest messages and its feed as it last read it (plain
    text: the caller escapes it)."""
    apps = s.apps
    if apps is None:
        return []
    if not has_device(s, name):
        return [f"phone: none (holds no {_device(apps)})"]
    lines = ["phone:"]
    if apps.spec.messages is not None:
        mine = [m for m in apps.messages if name in (m.sender, m.to)][-n:]
        lines.append(f"  messages ({len(mine)} latest):" if mine else "  messages: none")
        for m in mine:
            other = f"to {m.to}" if m.sender == name else f"from {m.sender}"
            lines.append(f"    [{m.time[11:16]}] {other}: {m.text}")
    if apps.spec.feed is not None:
        read = apps.last_read(name, "feed")
        if read is None:
            lines.append("  feed: never read")
        else:
            lines.append(f"  feed as last read (step {read.step}):")
            posts = [p for p in (apps.post(i) for i in read.shown) if p is not None]
            lines += [f"    {feed_line(s, p)}" for p in posts] or ["    (nothing new)"]
    if apps.spec.bank is not None:
        paid = [t for t in apps.transfers if name in (t.sender, t.to)][-n:]
        for t in paid:
            way = f"paid {t.to}" if t.sender == name else f"paid by {t.sender}"
            lines.append(f"  bank: {way} {t.amount} {t.currency}")
    return lines


def feed_lines(sim: Simulation, seat: PlayerSeat) -> list[str]:
    """What the `feed` command shows (markup lines, model text escaped)."""
    s = sim.state
    apps = s.apps
    if apps is None or apps.spec.feed is None:
        raise Hint(f"{sim.world.name} has no town feed (an apps: feed section in its world file)")
    if seat.resident is not None:
        name = seat.resident
        read = apps.last_read(name, "feed")
        if read is None:
            return [f"{shown(name)} has not read the feed yet: type read feed"]
        posts = [p for p in (apps.post(i) for i in read.shown) if p is not None]
        head = f"[bold]the feed as {shown(name)} last read it[/] (step {read.step}):"
        lines = [f"  {shown(feed_line(s, p))}" for p in posts] or ["  (nothing new)"]
        return [head, *lines]
    ranking = apps.spec.feed.ranking
    posts = rank_feed(s, "", limit=SHOWN_MAX)
    head = f"[bold]the town feed[/], {len(apps.posts)} posts, ranked {ranking}"
    if not posts:
        return [f"{head}: nothing posted yet"]
    lines = [f"{head}:"]
    for p in posts:
        replies = sum(1 for x in apps.posts if x.reply_to == p.id)
        more = f", {replies} repl{'y' if replies == 1 else 'ies'}" if replies else ""
        lines.append(f"  {shown(feed_line(s, p))}  [dim](step {p.step}{more})[/]")
    return lines


# -- what a player types ----------------------------------------------------------------


def parse_app_action(s: WorldState, actor: str, verb: str, rest: str) -> Any | None:
    """The typed app action `verb rest` means for `actor`, a Hint when it cannot be
    done, or None when it is not an app action's form (the Game Master's then)."""
    apps = s.apps
    if apps is None or verb not in APP_VERBS:
        return None
    if verb == "read" and rest.lower() not in ("feed", "messages", "the feed", "my messages"):
        return None
    pay = _PAY.match(rest) if verb == "pay" else None
    if verb == "pay" and pay is None:
        return None  # "pay Ines for the bread": said in words, grounded by the GM
    app = {"message": "messages", "pay": "bank", "read": None}.get(verb, "feed")
    if verb == "read":
        app = "feed" if "feed" in rest.lower() else "messages"
    if app is not None and not apps.spec.has(app):
        raise Hint(f"this world has no {app} app")
    if not has_device(s, actor):
        raise Hint(f"you hold no {_device(apps)}: without one you cannot {verb}")
    reachable = [n for n in sorted(s.agents) if n != actor and has_device(s, n)]
    if verb == "message":
        to, words = _someone(rest, reachable, "message NAME TEXT")
        if not words:
            raise Hint("message what? message NAME TEXT")
        return Message(kind="message", to=to, text=clip(words, WORDS_MAX))
    if verb == "post":
        if not rest:
            raise Hint("post what? post TEXT")
        return Post(kind="post", text=clip(rest, WORDS_MAX))
    if verb in ("reply", "like"):
        post, _, words = rest.partition(" ")
        seen = readable_posts(s, actor)
        if not _POST_ID.match(post.lower()) or post.lower() not in seen:
            where = ", ".join(seen) if seen else "none yet: read feed first"
            raise Hint(f"{verb} one of the posts you last read ({where})")
        if verb == "like":
            return Like(kind="like", post=post.lower(), text=f"like {post.lower()}")
        if not words.strip():
            raise Hint("reply what? reply POST TEXT")
        return Reply(kind="reply", post=post.lower(), text=clip(words.strip(), WORDS_MAX))
    if verb == "follow":
        whom, extra = _someone(rest, reachable, "follow NAME")
        if extra:
            raise Hint(f"unexpected {extra!r} after {whom}")
        return Follow(kind="follow", name=whom, text=f"follow {whom}")
    if verb == "read":
        what = "feed" if app == "feed" else "messages"
        return ReadApp(kind="read", what=what, text=f"read the {what}")
    assert pay is not None
    return _pay(s, actor, int(pay.group(1)), pay.group(2), reachable)


def _someone(text: str, reachable: list[str], usage: str) -> tuple[str, str]:
    if not reachable:
        raise Hint("nobody else holds a phone")
    if not text:
        raise Hint(f"{usage} (with a phone: {', '.join(reachable)})")
    return resolve(text, reachable, "resident with a phone")


def _pay(s: WorldState, actor: str, amount: int, rest: str, reachable: list[str]) -> Pay:
    bank = s.apps.spec.bank if s.apps is not None else None
    assert bank is not None
    to, extra = _someone(rest, reachable, "pay N to NAME")
    if extra:
        raise Hint(f"unexpected {extra!r} after {to}: pay N to NAME")
    has = s.attribute(actor, bank.currency)
    if amount < 1:
        raise Hint("pay at least 1")
    if amount > min(has, bank.max_amount):
        most = f"{has:g}" if has < bank.max_amount else f"{bank.max_amount} in one transfer"
        raise Hint(f"you can pay at most {most} {bank.currency}")
    return Pay(kind="transfer", to=to, amount=amount, text=f"pay {to} {amount} {bank.currency}")


class PhoneCommands:
    """The session's `feed` command (`TownSession` has it from here, so that the
    session module keeps to the commands every world has)."""

    sim: Simulation
    seat: PlayerSeat

    def say(self, *lines: Any) -> None:
        raise NotImplementedError

    async def _cmd_feed(self, rest: str) -> bool:
        if rest:
            raise Hint(f"feed takes nothing after it, not {rest!r}")
        self.say(*feed_lines(self.sim, self.seat))
        return True
