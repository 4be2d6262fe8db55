"""The app effects: how a message, a post, a like, a follow, a read and a bank transfer
change the world, each with its own check, bound and application like the five
effects of `world.effects`, run by the one validator (`world.rules.apply_effects`).

They are not in the `Effect` union a world file's events write: the Game Master makes
them from a resident's typed app action or a model's resolution (`parse_app_effect`
reads one from a dict), and an experiment may apply them as the world's own (no
actor). Every app effect names the resident who acts (`agent`); one resident's action
may have it only for itself (`Authority.own_refusal`): nobody messages, posts, likes,
follows, reads or pays as another. The world checks the rest: the app exists, the
actor holds the device, the recipient of a message or a payment holds one too, the
text fits, the post exists, the step's rate limit is not reached, and a payment is
covered (it moves a conserved attribute from one account to another, so the total is
unchanged). `notices` says what each resident perceives through the app once the
effect is applied, wherever it is."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, TypeAdapter

from concordia_like.text import one_line
from concordia_like.world.app_feed import (
    device_refusal,
    feed_line,
    inbox,
    message_line,
    rank_feed,
)
from concordia_like.world.apps import TEXT_LIMIT, AppState, Message, Post, Read, Transfer
from concordia_like.world.authority import Authority
from concordia_like.world.effects import NAME, EffectBase
from concordia_like.world.state import WorldState

TEXT = Field(min_length=1, max_length=TEXT_LIMIT)


class AppEffect(EffectBase):
    """What every app effect shares (see the module's text)."""

    #: the app it uses, and what the bound says it may not do as another
    app: ClassVar[str]
    verb: ClassVar[str]

    agent: str = NAME

    def refusal(self, bound: Authority) -> str | None:
        return bound.own_refusal(self.agent, self.verb)

    def access(self, s: WorldState, app: str | None = None) -> str | None:
        """Why `agent` cannot use its app now (no such app, no device, its rate limit
        reached), or None."""
        app = app or self.app
        apps = s.apps
        if apps is None or not apps.spec.has(app):
            return f"{s.name} has no {app} app"
        if app in apps.down:
            return f"the {app} app is down"
        if self.agent not in s.agents:
            return f"no agent named {self.agent!r}"
        reason = device_refusal(s, self.agent)
        if reason is not None:
            return reason
        limit = getattr(apps.spec, app).max_per_step
        used = apps.used(_step(s), self.agent, app)
        if used >= limit:
            return f"{self.agent} has used {app} {used} times this step, its limit ({limit})"
        return None

    def text_problem(self, s: WorldState, text: str) -> str | None:
        limit = getattr(_apps(s).spec, self.app).max_chars
        if not text.strip():
            return "the text is empty"
        if len(text) > limit:
            return f"the text has {len(text)} characters, more than {self.app} takes ({limit})"
        return None

    def count(self, s: WorldState, app: str | None = None) -> None:
        _apps(s).use(s, _step(s), self.agent, app or self.app)

    def notices(self, s: WorldState) -> dict[str, list[str]]:
        """What residents perceive through the app, the effect applied (none by default);
        asked after the whole action is applied, so it reads its own fields, not the
        latest record."""
        return {}


class MessageEffect(AppEffect):
    """`agent` sends `to` a message."""

    app: ClassVar[str] = "messages"
    verb: ClassVar[str] = "message"
    kind: Literal["message"] = "message"
    to: str = NAME
    text: str = TEXT

    def describe(self) -> str:
        return f"message from {self.agent} to {self.to}"

    def check(self, s: WorldState) -> str | None:
        reason = self.access(s) or self.text_problem(s, self.text)
        if reason:
            return reason
        if self.to not in s.agents:
            return f"no resident named {self.to!r} to message"
        if self.to == self.agent:
            return f"{self.agent} cannot message themselves"
        return device_refusal(s, self.to, "receive a message")

    def apply(self, s: WorldState) -> None:
        apps = _apps(s)
        self.count(s)
        m = Message(
            f"m{len(apps.messages) + 1}",
            self.agent,
            self.to,
            self.text,
            _step(s),
            s.now.isoformat(),
        )
        apps.append(s, apps.messages, m)

    def notices(self, s: WorldState) -> dict[str, list[str]]:
        line = message_line(Message("", self.agent, self.to, self.text, 0, ""))
        return {self.to: [line], self.agent: [f'You message {self.to}: "{self.text}"']}


class PostEffect(AppEffect):
    """`agent` posts `text` on the town feed (a reply when `reply_to` names a post). The
    world's own effect (no actor) may post as the town itself (`agent`: the world's
    name), with no device and no rate limit."""

    app: ClassVar[str] = "feed"
    verb: ClassVar[str] = "post"
    kind: Literal["post"] = "post"
    text: str = TEXT
    reply_to: str | None = Field(None, max_length=20)

    def describe(self) -> str:
        to = f" replying to {self.reply_to}" if self.reply_to else ""
        return f"post by {self.agent}{to}"

    def check(self, s: WorldState) -> str | None:
        if self.agent == s.name:  # the town's own account: an experiment's planted post
            apps = s.apps
            if apps is None or apps.spec.feed is None:
                return f"{s.name} has no feed app"
            reason = self.text_problem(s, self.text)
        else:
            reason = self.access(s) or self.text_problem(s, self.text)
        if reason or self.reply_to is None:
            return reason
        return _unknown_post(s, self.reply_to)

    def apply(self, s: WorldState) -> None:
        apps = _apps(s)
        if self.agent != s.name:
            self.count(s)
        p = Post(
            f"p{len(apps.posts) + 1}",
            self.agent,
            self.text,
            _step(s),
            s.now.isoformat(),
            self.reply_to,
        )
        apps.append(s, apps.posts, p)

    def notices(self, s: WorldState) -> dict[str, list[str]]:
        apps = _apps(s)
        p = next(
            p
            for p in reversed(apps.posts)
            if (p.author, p.text, p.reply_to) == (self.agent, self.text, self.reply_to)
        )
        out = {self.agent: [f'You post on the town feed ({p.id}): "{p.text}"']}
        parent = apps.post(self.reply_to) if self.reply_to else None
        if parent is not None and parent.author != self.agent:
            out[parent.author] = [f'{self.agent} replies to your post {parent.id}: "{p.text}"']
        return out


class LikeEffect(AppEffect):
    """`agent` likes a post (once)."""

    app: ClassVar[str] = "feed"
    verb: ClassVar[str] = "like a post"
    kind: Literal["like"] = "like"
    post: str = Field(min_length=1, max_length=20)

    def describe(self) -> str:
        return f"{self.agent} likes {self.post}"

    def check(self, s: WorldState) -> str | None:
        reason = self.access(s) or _unknown_post(s, self.post)
        if reason:
            return reason
        if (self.agent, self.post) in _apps(s).likes:
            return f"{self.agent} already likes {self.post}"
        return None

    def apply(self, s: WorldState) -> None:
        apps = _apps(s)
        self.count(s)
        apps.add_pair(s, apps.likes, (self.agent, self.post))


class FollowEffect(AppEffect):
    """`agent` follows `whom` on the feed (once): their posts rank higher for it."""

    app: ClassVar[str] = "feed"
    verb: ClassVar[str] = "follow anyone"
    kind: Literal["follow"] = "follow"
    whom: str = NAME

    def describe(self) -> str:
        return f"{self.agent} follows {self.whom}"

    def check(self, s: WorldState) -> str | None:
        reason = self.access(s)
        if reason:
            return reason
        if self.whom not in s.agents:
            return f"no resident named {self.whom!r} to follow"
        if self.whom == self.agent:
            return f"{self.agent} cannot follow themselves"
        if (self.agent, self.whom) in _apps(s).follows:
            return f"{self.agent} already follows {self.whom}"
        return None

    def apply(self, s: WorldState) -> None:
        apps = _apps(s)
        self.count(s)
        apps.add_pair(s, apps.follows, (self.agent, self.whom))


class ReadEffect(AppEffect):
    """`agent` reads the feed (ranked by the world's policy) or its latest messages;
    what it was shown is recorded, and it perceives it (`notices`)."""

    app: ClassVar[str] = "feed"
    verb: ClassVar[str] = "read"
    kind: Literal["read"] = "read"
    what: Literal["feed", "messages"] = "feed"

    def describe(self) -> str:
        return f"{self.agent} reads the {self.what}"

    def check(self, s: WorldState) -> str | None:
        return self.access(s, self.what)

    def apply(self, s: WorldState) -> None:
        apps = _apps(s)
        self.count(s, self.what)
        if self.what == "feed":
            shown = tuple(p.id for p in rank_feed(s, self.agent))
        else:
            shown = tuple(m.id for m in inbox(s, self.agent))
        apps.append(s, apps.reads, Read(self.agent, self.what, _step(s), shown))

    def notices(self, s: WorldState) -> dict[str, list[str]]:
        apps = _apps(s)
        read = apps.last_read(self.agent, self.what)
        shown = read.shown if read is not None else ()
        if self.what == "feed":
            posts = [p for p in (apps.post(i) for i in shown) if p is not None]
            lines = [feed_line(s, p) for p in posts] or ["The town feed has nothing new."]
        else:
            by_id = {m.id: m for m in apps.messages}
            lines = [message_line(by_id[i]) for i in shown] or ["No messages."]
        return {self.agent: lines}


class BankEffect(AppEffect):
    """`agent` pays `to` `amount` of the bank's currency (a conserved attribute)."""

    app: ClassVar[str] = "bank"
    verb: ClassVar[str] = "pay"
    kind: Literal["bank"] = "bank"
    to: str = NAME
    amount: int = Field(ge=1)

    def describe(self) -> str:
        return f"bank transfer of {self.amount} from {self.agent} to {self.to}"

    def check(self, s: WorldState) -> str | None:
        reason = self.access(s)
        if reason:
            return reason
        bank = _apps(s).spec.bank
        assert bank is not None
        cur = bank.currency
        if self.to not in s.agents:
            return f"no resident named {self.to!r} to pay"
        if self.to == self.agent:
            return f"{self.agent} cannot pay themselves"
        reason = device_refusal(s, self.to, "be paid through the bank")
        if reason:
            return reason
        if self.amount > bank.max_amount:
            return f"{self.amount} is more than one transfer moves ({bank.max_amount})"
        attr = s.attributes.get(cur)
        if attr is None:
            return f"no attribute {cur!r} for the bank to move"
        has = s.attribute(self.agent, cur)
        if has - self.amount < attr.min:
            return f"{self.agent} has only {has:g} {cur}"
        if s.attribute(self.to, cur) + self.amount > attr.max:
            return f"{self.to} would have more than {attr.max:g} {cur}"
        return None

    def apply(self, s: WorldState) -> None:
        apps = _apps(s)
        bank = apps.spec.bank
        assert bank is not None
        cur = bank.currency
        self.count(s)
        s.set_attribute(self.agent, cur, s.attribute(self.agent, cur) - self.amount)
        s.set_attribute(self.to, cur, s.attribute(self.to, cur) + self.amount)
        t = Transfer(
            f"t{len(apps.transfers) + 1}",
            self.agent,
            self.to,
            self.amount,
            cur,
            _step(s),
        )
        apps.append(s, apps.transfers, t)

    def notices(self, s: WorldState) -> dict[str, list[str]]:
        bank = _apps(s).spec.bank
        cur = bank.currency if bank is not None else "money"
        return {
            self.to: [f"{self.agent} sent you {self.amount} {cur} through the bank."],
            self.agent: [f"You sent {self.to} {self.amount} {cur} through the bank."],
        }


AppEffectModel = Annotated[
    MessageEffect | PostEffect | LikeEffect | FollowEffect | ReadEffect | BankEffect,
    Field(discriminator="kind"),
]
APP_EFFECT_ADAPTER: TypeAdapter[AppEffectModel] = TypeAdapter(AppEffectModel)
APP_EFFECT_KINDS: frozenset[str] = frozenset({"message", "post", "like", "follow", "read", "bank"})


def parse_app_effect(raw: EffectBase | dict[str, Any]) -> EffectBase | dict[str, Any]:
    """An app effect's dict as its model (the world's `apps_set` too:
    `world.app_world`); anything else as it is (`parse_effect` reads the other kinds).
    pydantic's ValidationError for a malformed app effect."""
    if isinstance(raw, dict) and raw.get("kind") in APP_EFFECT_KINDS:
        return APP_EFFECT_ADAPTER.validate_python(raw)
    if isinstance(raw, dict) and raw.get("kind") == "apps_set":
        from concordia_like.world.app_world import AppsSetEffect

        return AppsSetEffect.model_validate(raw)
    return raw


def app_notices(s: WorldState, applied: tuple[EffectBase, ...]) -> dict[str, list[str]]:
    """What residents perceive through the apps from `applied` (effects just applied,
    in order). Notices to others than the actor are bounded per step by the world's
    `notifications`: past the bound a resident is told once that more are waiting (a
    `read messages` shows them), then nothing more that step."""
    out: dict[str, list[str]] = {}
    apps = s.apps
    if apps is None:
        return out
    for effect in applied:
        if not isinstance(effect, AppEffect):
            continue
        for who, lines in effect.notices(s).items():
            if who != effect.agent:
                lines = _bounded(s, apps, who, lines)
            out.setdefault(who, []).extend(lines)
    return out


def _bounded(s: WorldState, apps: AppState, who: str, lines: list[str]) -> list[str]:
    step, bound = _step(s), apps.spec.notifications
    kept = []
    for line in lines:
        n = apps.use(s, step, who, "notices")
        if n <= bound:
            kept.append(one_line(line, 300))
        elif n == bound + 1:
            kept.append("More notifications are waiting on your phone.")
    return kept


def _step(s: WorldState) -> int:
    """The engine step under way (1 is the first): what an app record is stamped with."""
    return s.clock.step_index + 1


def _apps(s: WorldState) -> AppState:
    assert s.apps is not None
    return s.apps


def _unknown_post(s: WorldState, post_id: str) -> str | None:
    apps = _apps(s)
    if apps.post(post_id) is not None:
        return None
    last = f"p1..p{len(apps.posts)}" if apps.posts else "none yet"
    return f"no post {post_id!r} on the feed (posts: {last})"
