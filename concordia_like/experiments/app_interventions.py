"""What the apps' interventions (`experiments.app_spec`) change, for the interventions
hook (`experiments.interventions`) to apply at the start of their steps.

Each is an effect of the world's apps (`world.app_effects`, `world.app_world`) applied
through the one validator with no actor, so it is journaled with the step (a failed
step undoes it), held in the world state (checkpointed, forked, resumed with it) and
refused where the world cannot do it (a post by a resident without a phone): the
refusal is announced, as an `effects` intervention's is. What a post makes residents
perceive (its author, the author of a post it answers) reaches them as its notices.

Outages are a function of the step: at every step where an outage of the condition
begins or ends, the apps down are set to those of every outage that covers the step,
so two outages that overlap end each at its own step."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from concordia_like.engine.hooks import Announcement
from concordia_like.experiments.app_measures import town_author
from concordia_like.experiments.app_spec import FeedRanking, InjectPost, Outage
from concordia_like.world.app_effects import PostEffect, app_notices
from concordia_like.world.app_world import AppsSetEffect
from concordia_like.world.effects import EffectBase
from concordia_like.world.rules import apply_effects
from concordia_like.world.state import WorldState


def outage_changes(due: Mapping[str, tuple[int, Any]]) -> dict[int, list[str]]:
    """Step -> the apps down from that step on, at each step where an outage of `due`
    (name -> (step, intervention)) begins or ends."""
    spans = [
        (step, None if iv.steps is None else step + iv.steps, iv.app)
        for step, iv in due.values()
        if isinstance(iv, Outage)
    ]
    edges = {s for s, _, _ in spans} | {e for _, e, _ in spans if e is not None}
    return {
        step: sorted({app for s, e, app in spans if s <= step and (e is None or step < e)})
        for step in sorted(edges)
    }


def _effect(iv: InjectPost | FeedRanking, state: WorldState) -> EffectBase:
    if isinstance(iv, InjectPost):
        author = iv.author or town_author(state)
        return PostEffect(agent=author, text=iv.text, reply_to=iv.reply_to)
    return AppsSetEffect(ranking=iv.ranking)


def _said(iv: InjectPost | FeedRanking) -> str:
    if isinstance(iv, InjectPost):
        return f"A post by {iv.author or 'the town'} on the town feed"
    return iv.text or f"The town feed ranks posts by {iv.ranking}"


def apply_app_intervention(
    iv: InjectPost | FeedRanking, state: WorldState, residents: Collection[str]
) -> list[Announcement]:
    """Apply a post or a ranking switch; what residents perceive of it."""
    result = apply_effects(state, [_effect(iv, state)])
    if not result.ok:
        return [Announcement(f"{_said(iv)} could not happen: {result.reason}")]
    out = [
        Announcement(line, to=(who,))
        for who, lines in app_notices(state, result.applied).items()
        if who in residents
        for line in lines
    ]
    if isinstance(iv, FeedRanking) and iv.text:
        out.append(Announcement(iv.text, iv.place))
    return out


def apply_outages(state: WorldState, down: list[str]) -> list[Announcement]:
    """Put exactly the apps `down` out of service (the others back in it)."""
    result = apply_effects(state, [AppsSetEffect(down=down)])
    if not result.ok:
        return [Announcement(f"An app outage could not happen: {result.reason}")]
    return []


def outage_announcements(iv: Outage) -> list[Announcement]:
    return [Announcement(iv.text, iv.place)] if iv.text else []
