"""What an agent may do in a step, as a schema built per agent and step from the world.

The model decodes a *decision* (`decision_schema`): a union of typed kinds, each with
enums of its valid targets (the places reachable from here, the people present, the
items held), so decoding can only yield a decision that is well formed and names real
things; a small model left free puts sentences where names belong. A kind with no
valid target (nobody to talk to, nothing to give) is left out of the union. The kinds
are written once, and an agent's schema narrows them (`concordia_like.llm.narrowed`):
agents in the same situation share one, and a new situation costs dictionary work,
not a new pydantic class.

A decision holds no sentence except for the free-form kinds (`use`, `other`), which the
Game Master needs described: a small model asked for a JSON "text" writes "says", or
the prompt back in a loop. The words of a `say` are written apart, as plain text
(`agents.speech`), and `to_action` makes the full action (`ACTION`) the Game Master
grounds.

A resident holding the world's device (`world.apps`) has the app kinds besides:
`message` someone, `post` on the town feed, `reply` to or `like` a post, `follow`
someone, `read` the feed or its messages, `transfer` money to someone through the bank;
each narrowed to real targets (`AppTargets`: the residents it can reach, the posts its
last read of the feed showed), and each left out where the world has no such app or
nothing to name. A small model picks among the kinds it is offered nearly at random, so
a kind is offered only where it has a point: `follow` the authors of posts it has read,
`transfer` to those it is with or has written to or paid, `read` the feed or its
messages when something new is there. The words of a message, post or reply are written
apart, like those of a `say` (the engine asks for them as plain text, `written_ask`,
with the same guards): in the decision's JSON a small model writes a stray word."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from concordia_like.llm.narrowed import Narrowed, union_of
from concordia_like.text import one_line

if TYPE_CHECKING:
    from concordia_like.world.state import WorldState

TEXT_MAX = 100
WORDS_MAX = 140

_TEXT = Field(max_length=TEXT_MAX, description="what you do, in a short sentence")


class ActionBase(BaseModel):
    """What every action carries: the agent's own words for what it does."""

    kind: str
    text: str = _TEXT


class Move(ActionBase):
    kind: Literal["move"]
    to: str


class Say(ActionBase):
    kind: Literal["say"]
    to: str
    text: str = Field(max_length=WORDS_MAX, description="the words you say")


class Give(ActionBase):
    kind: Literal["give"]
    item: str
    to: str
    quantity: int = Field(1, ge=1, le=20)


class Use(ActionBase):
    kind: Literal["use"]
    item: str


class Wait(ActionBase):
    kind: Literal["wait"]


class Continue(ActionBase):
    kind: Literal["continue"]


class Other(ActionBase):
    kind: Literal["other"]


_WRITTEN = Field(max_length=WORDS_MAX, description="the words you write")


class Message(ActionBase):
    kind: Literal["message"]
    to: str
    text: str = _WRITTEN


class Post(ActionBase):
    kind: Literal["post"]
    text: str = _WRITTEN


class Reply(ActionBase):
    kind: Literal["reply"]
    post: str
    text: str = _WRITTEN


class Like(ActionBase):
    kind: Literal["like"]
    post: str


class Follow(ActionBase):
    kind: Literal["follow"]
    name: str


class ReadApp(ActionBase):
    kind: Literal["read"]
    what: Literal["feed", "messages"]


class Pay(ActionBase):
    kind: Literal["transfer"]
    to: str
    amount: int = Field(ge=1, le=1000)


ACTION = union_of(
    Move, Say, Give, Use, Wait, Continue, Other, Message, Post, Reply, Like, Follow, ReadApp, Pay
)
#: the kinds of action that use an app (grounded by `gm.apps`)
APP_KINDS = frozenset({"message", "post", "reply", "like", "follow", "read", "transfer"})
#: the kinds whose `text` is words said or written, not what one does
WORDED = frozenset({"say", "message", "post", "reply"})
_ACTION_ADAPTER = TypeAdapter(ACTION)

# -- decisions: what the act call decodes ---------------------------------------------

_DOING = Field(max_length=80, description="what you do, in a few words")


class MoveTo(BaseModel):
    kind: Literal["move"]
    to: str


class SayTo(BaseModel):
    kind: Literal["say"]
    to: str


class GiveTo(BaseModel):
    kind: Literal["give"]
    item: str
    to: str
    quantity: int = Field(1, ge=1, le=20)


class UseItem(BaseModel):
    kind: Literal["use"]
    item: str
    text: str = _DOING


class WaitHere(BaseModel):
    kind: Literal["wait"]


class CarryOn(BaseModel):
    kind: Literal["continue"]


class OtherAct(BaseModel):
    kind: Literal["other"]
    text: str = _DOING


class MessageTo(BaseModel):
    kind: Literal["message"]
    to: str


class PostIt(BaseModel):
    kind: Literal["post"]


class ReplyTo(BaseModel):
    kind: Literal["reply"]
    post: str


class LikePost(BaseModel):
    kind: Literal["like"]
    post: str


class FollowWhom(BaseModel):
    kind: Literal["follow"]
    name: str


class ReadIt(BaseModel):
    kind: Literal["read"]
    what: str


#: the amounts a decision to pay chooses among (those within its balance and the bank's
#: limit): a grammar does not hold a small model's number within bounds
AMOUNTS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class PayTo(BaseModel):
    kind: Literal["transfer"]
    to: str
    amount: str  # one of `AMOUNTS`, narrowed (`AppTargets.amounts`)


DECISION = union_of(
    MoveTo,
    SayTo,
    GiveTo,
    UseItem,
    WaitHere,
    CarryOn,
    OtherAct,
    MessageTo,
    PostIt,
    ReplyTo,
    LikePost,
    FollowWhom,
    ReadIt,
    PayTo,
)


@dataclass(frozen=True)
class AppTargets:
    """What a resident holding the device can name through its apps (all sorted):
    `apps` the world has (`messages`, `feed`, `bank`), `contacts` it can message,
    `posts` it may like or reply to, `followable` whom it may follow, `payees` whom it
    may pay and `amounts` how much (within its balance), `readable` what it may read."""

    apps: tuple[str, ...] = ()
    contacts: tuple[str, ...] = ()
    posts: tuple[str, ...] = ()
    followable: tuple[str, ...] = ()
    payees: tuple[str, ...] = ()
    amounts: tuple[str, ...] = ()
    readable: tuple[str, ...] = ()


def app_targets(state: WorldState, agent: str) -> AppTargets | None:
    """The app targets of `agent` now; None when it has no apps (no device, or none in
    the world)."""
    from concordia_like.world.app_feed import contacts, has_device, has_news, readable_posts

    apps = state.apps
    if apps is None or not has_device(state, agent):
        return None
    reach = contacts(state, agent)
    seen = readable_posts(state, agent)
    authors = {p.author for p in map(apps.post, seen) if p is not None}
    dealt = apps.partners(agent) | set(state.others_present(agent))
    return AppTargets(
        apps=tuple(a for a in ("bank", "feed", "messages") if apps.spec.has(a)),
        contacts=tuple(reach),
        posts=tuple(sorted(seen)),
        followable=tuple(
            sorted(
                n
                for n in authors
                if n != agent and n in state.agents and (agent, n) not in apps.follows
            )
        ),
        payees=tuple(n for n in reach if n in dealt),
        amounts=_amounts(state, agent),
        readable=tuple(
            what
            for what, new in (("feed", has_news(state, agent)), ("messages", apps.unread(agent)))
            if new
        ),
    )


def _amounts(state: WorldState, agent: str) -> tuple[str, ...]:
    """The `AMOUNTS` `agent` could pay through the bank now: within its balance and the
    bank's most per transfer."""
    bank = state.apps.spec.bank if state.apps is not None else None
    if bank is None or bank.currency not in state.agents[agent].attributes:
        return ()
    most = min(state.attribute(agent, bank.currency), bank.max_amount)
    return tuple(str(a) for a in AMOUNTS if a <= most)


def written_ask(decision: Any, state: WorldState) -> str:
    """What a resident that decided to write a message, a post or a reply is asked for
    its words (`agents.prompt.writing_ask`)."""
    from concordia_like.agents.prompt import writing_ask
    from concordia_like.world.app_feed import feed_line

    post = state.apps.post(decision.post) if decision.kind == "reply" and state.apps else None
    line = feed_line(state, post) if post is not None else None
    return writing_ask(decision.kind, getattr(decision, "to", None), line)


def _app_names(apps: AppTargets | None) -> dict[tuple[str, str], tuple[str, ...]]:
    """The app kinds' narrowed fields (empty where a kind is not open)."""
    t = apps or AppTargets()
    has = set(t.apps)
    feed = "feed" in has
    return {
        ("MessageTo", "to"): t.contacts if "messages" in has else (),
        ("PostIt", "kind"): ("post",) if feed else (),
        ("ReplyTo", "post"): t.posts if feed else (),
        ("LikePost", "post"): t.posts if feed else (),
        ("FollowWhom", "name"): t.followable if feed else (),
        ("ReadIt", "what"): tuple(a for a in t.readable if a in has),
        ("PayTo", "to"): t.payees if "bank" in has and t.amounts else (),
        ("PayTo", "amount"): t.amounts if "bank" in has and t.payees else (),
    }


#: a narrowing holds its JSON schema and validators (kilobytes): 10,000 kept grew a
#: soak by hundreds of MiB, and 1,024 still took thousands of steps to fill (RSS kept
#: rising); a step of 100 agents meets about 50 new situations, and making one again
#: is dictionary work, so a few steps' worth is plenty
@lru_cache(maxsize=256)
def decision_schema(
    reachable: tuple[str, ...],
    listeners: tuple[str, ...],
    held: tuple[str, ...],
    usable: tuple[str, ...],
    givees: tuple[str, ...] = (),
    apps: AppTargets | None = None,
) -> Narrowed:
    """The decisions open to an agent, discriminated by `kind`: `move` to any of
    `reachable`, `say` to any of `listeners`, `give` one of `held` to any of `givees`,
    `use` any of `usable`, and the app kinds `apps` opens; a kind with no target is
    left out."""
    app_names = _app_names(apps)
    exclude = [
        kind
        for kind, open_ in (
            ("MoveTo", reachable),
            ("SayTo", listeners),
            ("GiveTo", held and givees),
            ("UseItem", usable),
            *((model, allowed) for (model, _), allowed in app_names.items()),
        )
        if not open_
    ]
    names = {
        ("MoveTo", "to"): reachable,
        ("SayTo", "to"): listeners,
        ("GiveTo", "item"): held if givees else (),
        ("GiveTo", "to"): givees if held else (),
        ("UseItem", "item"): usable,
        **{key: v for key, v in app_names.items() if key != ("PostIt", "kind")},
    }
    return Narrowed.of(DECISION, names, exclude)


def decision_for(
    reachable: list[str],
    present: list[str],
    held: list[str],
    usable: list[str],
    actor: str | None = None,
    apps: AppTargets | None = None,
) -> Narrowed:
    """The decision schema of an agent with `present` others around. With `actor`, the
    people it may speak to are everyone at the place, itself included (speaking to
    oneself is thinking aloud), so that agents at one place holding nothing share one
    schema, and a backend compiles one grammar for them all. `apps`: what it can name
    through its apps (`app_targets`), if it holds the device."""
    listeners = set(present) | ({actor} if actor is not None and present else set())
    return decision_schema(
        tuple(sorted(reachable)),
        tuple(sorted(listeners)),
        tuple(sorted(held)),
        tuple(sorted(usable)),
        tuple(sorted(present)) if held else (),
        apps,
    )


def to_action(decision: Any, text: str) -> Any:
    """The full action of a decision, with `text` (the words said, or what the agent is
    doing) where the decision has none of its own. An action already full (a test's,
    a hook's) is returned as it is."""
    if isinstance(decision, ActionBase):
        return decision
    data = decision.model_dump()
    if data["kind"] == "transfer":
        data["amount"] = int(data["amount"])
    limit = WORDS_MAX if data["kind"] in WORDED else TEXT_MAX
    data["text"] = one_line(str(data.get("text") or text), limit)
    return _ACTION_ADAPTER.validate_python(data)
