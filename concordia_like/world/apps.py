"""Digital life: the apps a world declares and their state (messages, a feed, a bank).

A world file's `apps:` section says which apps exist and what reaches them:

    apps:
      device: phone                  # the item that gives access: holding one is having the apps
      notifications: 3               # most app notices one resident perceives in a step
      messages: {max_per_step: 2, max_chars: 280}
      feed: {ranking: engagement, seed: 7, max_per_step: 2, read_limit: 3, max_chars: 280}
      bank: {currency: money, max_per_step: 2}

Each app is optional (absent: the world has none). A phone is an ordinary item, so it
changes hands, is dropped or lost by the effects that move every other thing, and access
follows it. The bank moves an existing conserved attribute (its `currency`) between two
residents' accounts, so money is conserved by construction. What the apps hold (every
message, post, like, follow, read and transfer) is part of the world state
(`WorldState.apps`), written only through the app effects (`world.app_effects`) with the
same journal as the rest, so a failed action or step is undone exactly and a checkpoint
(`to_dict`) rebuilds it; the feed's ranking and the queries over it are in
`world.app_feed`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from concordia_like.strict import Strict
from concordia_like.world.state import name_key

if TYPE_CHECKING:
    from concordia_like.world.state import WorldState

APPS: tuple[str, ...] = ("messages", "feed", "bank")
#: the longest text any app accepts, whatever a world sets (a checkpoint must stay small)
TEXT_LIMIT = 1000


class _AppSpec(Strict):
    #: the most actions of this app one resident takes in one step
    max_per_step: int = Field(2, ge=1, le=100)


class MessagesSpec(_AppSpec):
    max_chars: int = Field(280, ge=1, le=TEXT_LIMIT)
    #: the messages a `read messages` shows (the latest)
    read_limit: int = Field(3, ge=1, le=20)


class FeedSpec(_AppSpec):
    #: `chronological`: newest first; `engagement`: likes, follows and recency, seeded
    ranking: Literal["chronological", "engagement"] = "chronological"
    seed: int = 0
    max_chars: int = Field(280, ge=1, le=TEXT_LIMIT)
    #: the posts one read shows
    read_limit: int = Field(3, ge=1, le=20)
    #: engagement's weights: per like, for a followed author, for a post just made
    like_weight: float = Field(1.0, ge=0, le=100)
    follow_weight: float = Field(2.0, ge=0, le=100)
    recency_weight: float = Field(3.0, ge=0, le=100)
    #: steps over which a post's recency halves
    half_life: float = Field(6.0, gt=0, le=100_000)


class BankSpec(_AppSpec):
    #: the conserved attribute the bank moves (`money`)
    currency: str = Field("money", min_length=1, max_length=80)
    #: the most one transfer moves
    max_amount: int = Field(1000, ge=1, le=1_000_000)


class AppsSpec(Strict):
    """The world file's `apps:` section (see the module's text)."""

    #: the item name that gives access; none: every resident has the apps
    device: str | None = Field("phone", min_length=1, max_length=80)
    notifications: int = Field(3, ge=1, le=50)
    messages: MessagesSpec | None = None
    feed: FeedSpec | None = None
    bank: BankSpec | None = None

    def has(self, app: str) -> bool:
        return getattr(self, app) is not None


def app_problems(
    spec: AppsSpec, conserved: Mapping[str, bool], item_names: set[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """(location under `apps`, message) of each problem a world file's apps have
    against the rest of it: `conserved` maps each attribute to whether it is conserved,
    `item_names` are the item names the file places (as `name_key`)."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    if spec.bank is not None:
        cur = spec.bank.currency
        if cur not in conserved:
            out.append((("bank", "currency"), f"no attribute {cur!r} for the bank to move"))
        elif not conserved[cur]:
            out.append((("bank", "currency"), f"{cur} is not conserved: a bank only moves what is"))
    if spec.device is not None and name_key(spec.device) not in item_names:
        out.append((("device",), f"no item named {spec.device!r}: nobody could use the apps"))
    if not any(spec.has(a) for a in APPS):
        out.append(((), "declare at least one app: messages, feed or bank"))
    return out


# -- what the apps hold ---------------------------------------------------------------


#: every record's `step` is the engine step it was made in (1 is the first)


@dataclass(frozen=True)
class Message:
    id: str
    sender: str
    to: str
    text: str
    step: int
    time: str


@dataclass(frozen=True)
class Post:
    """A post on the town feed; a reply names the post it answers."""

    id: str
    author: str
    text: str
    step: int
    time: str
    reply_to: str | None = None


@dataclass(frozen=True)
class Read:
    """A resident read an app (`feed` or `messages`) and was shown `shown` (ids, in order)."""

    agent: str
    what: str
    step: int
    shown: tuple[str, ...]


@dataclass(frozen=True)
class Transfer:
    id: str
    sender: str
    to: str
    amount: int
    currency: str
    step: int


@dataclass
class AppState:
    """Everything the apps hold. Read freely; write only through the methods below
    (called by `world.app_effects`), which journal their undo on the world state."""

    spec: AppsSpec
    messages: list[Message] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    #: (resident, post id)
    likes: set[tuple[str, str]] = field(default_factory=set)
    #: (follower, followed)
    follows: set[tuple[str, str]] = field(default_factory=set)
    reads: list[Read] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    #: uses in step `usage_step`, by "resident|app" (rate limits, notices)
    usage: dict[str, int] = field(default_factory=dict)
    usage_step: int = 0
    #: apps out of service (an outage an experiment causes: `world.app_world`)
    down: set[str] = field(default_factory=set)
    #: whom each resident has exchanged messages with, paid or follows, with how many
    #: such records: derived from the lists above (never checkpointed), kept by the
    #: writes, so that a resident's contacts cost no scan of every message
    _partners: dict[str, dict[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: where in `reads` each "resident|app" read is, and in `messages` each message to
    #: "resident|to", in order (derived, like `_partners`)
    _read_at: dict[str, list[int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for record in (*self.messages, *self.transfers, *self.follows):
            self._link(record, 1)
        for i, r in enumerate(self.reads):
            self._read_at.setdefault(f"{r.agent}|{r.what}", []).append(i)
        for i, m in enumerate(self.messages):
            self._read_at.setdefault(f"{m.to}|to", []).append(i)

    def partners(self, agent: str) -> set[str]:
        """Whom `agent` has exchanged messages with (either way), paid, or follows."""
        return set(self._partners.get(agent, ()))

    def _link(self, record: Any, d: int) -> None:
        """Count `record` (a message, a transfer, a follow pair) in `_partners` (`d`
        1), or count it out (-1); other records are not about partners."""
        if isinstance(record, Message):
            pairs: tuple[tuple[str, str], ...] = (
                (record.sender, record.to),
                (record.to, record.sender),
            )
        elif isinstance(record, Transfer):
            pairs = ((record.sender, record.to),)
        elif isinstance(record, tuple):
            pairs = (record,)
        else:
            return
        for a, b in pairs:
            row = self._partners.setdefault(a, {})
            n = row.get(b, 0) + d
            if n > 0:
                row[b] = n
            else:
                row.pop(b, None)

    def post(self, post_id: str) -> Post | None:
        """The post with `post_id` (ids are `p1`, `p2`... in order of posting)."""
        if post_id.startswith("p") and post_id[1:].isdigit():
            i = int(post_id[1:]) - 1
            if 0 <= i < len(self.posts):
                return self.posts[i]
        return None

    def used(self, step: int, who: str, what: str) -> int:
        """How often `who` used `what` (an app, or `notices`) in `step`."""
        return self.usage.get(f"{who}|{what}", 0) if step == self.usage_step else 0

    def like_count(self, post_id: str) -> int:
        return sum(1 for _, p in self.likes if p == post_id)

    def unread(self, agent: str) -> bool:
        """Whether a message reached `agent` after its latest read of its messages."""
        to = self._read_at.get(f"{agent}|to")
        if not to:
            return False
        read = self.last_read(agent, "messages")
        return read is None or self.messages[to[-1]].id not in read.shown

    def last_read(self, agent: str, what: str = "feed") -> Read | None:
        at = self._read_at.get(f"{agent}|{what}")
        return self.reads[at[-1]] if at else None

    # -- writing (journaled on the world state) -----------------------------------------

    def use(self, s: WorldState, step: int, who: str, what: str) -> int:
        """Count one use of `what` by `who` in `step`; the count so far, this one included."""
        old_step, old_usage = self.usage_step, self.usage
        self.usage = dict(old_usage) if step == old_step else {}
        self.usage_step = step
        key = f"{who}|{what}"
        self.usage[key] = self.usage.get(key, 0) + 1

        def undo() -> None:
            self.usage_step, self.usage = old_step, old_usage

        _journal(s, undo)
        return self.usage[key]

    def append(self, s: WorldState, records: list[Any], record: Any) -> None:
        """Add `record` to one of the lists above (`messages`, `posts`, ...)."""
        records.append(record)
        self._link(record, 1)
        at = (
            self._read_at.setdefault(f"{record.agent}|{record.what}", [])
            if isinstance(record, Read)
            else self._read_at.setdefault(f"{record.to}|to", [])
            if isinstance(record, Message)
            else None
        )
        if at is not None:
            at.append(len(records) - 1)

        def undo() -> None:
            records.pop()
            self._link(record, -1)
            if at is not None:
                at.pop()

        _journal(s, undo)

    def set_down(self, s: WorldState, down: set[str]) -> None:
        """The apps out of service from now on."""
        old, self.down = self.down, set(down)
        _journal(s, lambda: setattr(self, "down", old))

    def set_spec(self, s: WorldState, spec: AppsSpec) -> None:
        """The apps' settings from now on (a feed's ranking switched mid-run)."""
        old, self.spec = self.spec, spec
        _journal(s, lambda: setattr(self, "spec", old))

    def add_pair(self, s: WorldState, pairs: set[tuple[str, str]], pair: tuple[str, str]) -> None:
        """Add `pair` to `likes` or `follows` (it is not there yet)."""
        pairs.add(pair)
        follow = pairs is self.follows
        if follow:
            self._link(pair, 1)

        def undo() -> None:
            pairs.discard(pair)
            if follow:
                self._link(pair, -1)

        _journal(s, undo)

    # -- checkpoints --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready and canonical: sets sorted, lists in the order they were made."""
        return {
            "spec": self.spec.model_dump(mode="json"),
            "messages": [_row(m) for m in self.messages],
            "posts": [_row(p) for p in self.posts],
            "likes": sorted(list(p) for p in self.likes),
            "follows": sorted(list(p) for p in self.follows),
            "reads": [{**_row(r), "shown": list(r.shown)} for r in self.reads],
            "transfers": [_row(t) for t in self.transfers],
            "usage": dict(sorted(self.usage.items())),
            "usage_step": self.usage_step,
            "down": sorted(self.down),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AppState:
        return cls(
            spec=AppsSpec.model_validate(d["spec"]),
            messages=[Message(**m) for m in d["messages"]],
            posts=[Post(**p) for p in d["posts"]],
            likes={(a, b) for a, b in d["likes"]},
            follows={(a, b) for a, b in d["follows"]},
            reads=[Read(**{**r, "shown": tuple(r["shown"])}) for r in d["reads"]],
            transfers=[Transfer(**t) for t in d["transfers"]],
            usage=dict(d["usage"]),
            usage_step=d["usage_step"],
            down=set(d.get("down", ())),
        )


def _row(record: Any) -> dict[str, Any]:
    return dict(record.__dict__)


def _journal(s: WorldState, undo: Callable[[], object]) -> None:
    s._log(undo)  # the world's one journal: a rollback undoes app writes with the rest
