"""Grounding a typed app action: the app effect it has, and what onlookers see of it.

The app kinds (`agents.actions.APP_KINDS`) have a clear meaning, so code grounds them
with no model call, like a move or a give: each is one app effect
(`world.app_effects`), checked and applied by the world's validator with the actor as
its authority. What people at the actor's place perceive is only that it used its
phone (the words of a message or a post are not read over its shoulder); the words
reach their addressee, or the feed, through the effect's notices."""

from __future__ import annotations

from typing import Any

from concordia_like.agents.actions import Follow, Like, Message, Pay, Post, ReadApp, Reply
from concordia_like.world.app_effects import (
    BankEffect,
    FollowEffect,
    LikeEffect,
    MessageEffect,
    PostEffect,
    ReadEffect,
)
from concordia_like.world.effects import EffectBase
from concordia_like.world.state import WorldState


def ground_app(s: WorldState, actor: str, action: Any) -> tuple[list[EffectBase], str]:
    """The effects of `actor`'s typed app action and the line its onlookers perceive."""
    if isinstance(action, Message):
        effect: EffectBase = MessageEffect(agent=actor, to=action.to, text=action.text)
        return [effect], f"{actor} sends {action.to} a message."
    if isinstance(action, Reply):
        effect = PostEffect(agent=actor, text=action.text, reply_to=action.post)
        return [effect], f"{actor} replies to {action.post} on the town feed."
    if isinstance(action, Post):
        return [PostEffect(agent=actor, text=action.text)], f"{actor} posts on the town feed."
    if isinstance(action, Like):
        effect = LikeEffect(agent=actor, post=action.post)
        return [effect], f"{actor} likes {action.post} on the town feed."
    if isinstance(action, Follow):
        effect = FollowEffect(agent=actor, whom=action.name)
        return [effect], f"{actor} follows {action.name} on the town feed."
    if isinstance(action, ReadApp):
        what = "the town feed" if action.what == "feed" else "their messages"
        return [ReadEffect(agent=actor, what=action.what)], f"{actor} reads {what}."
    if isinstance(action, Pay):
        bank = s.apps.spec.bank if s.apps is not None else None
        currency = bank.currency if bank is not None else "money"
        effect = BankEffect(agent=actor, to=action.to, amount=action.amount)
        return [effect], f"{actor} sends {action.to} {action.amount} {currency} through the bank."
    raise ValueError(f"{action.kind!r} is not an app action")


def phone_line(s: WorldState, actor: str, contacts: list[str]) -> str:
    """What the Game Master's prompt says of the actor's phone (the apps it may be
    resolved as using)."""
    apps = s.apps
    if apps is None:
        return ""
    have = []
    if apps.spec.messages is not None:
        have.append("messages to " + (", ".join(contacts[:8]) or "nobody"))
    if apps.spec.feed is not None:
        have.append("the town feed")
    if apps.spec.bank is not None:
        have.append(f"the bank ({apps.spec.bank.currency})")
    return f"{actor}'s phone has: {'; '.join(have)}.\n"
