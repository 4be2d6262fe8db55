"""An agent's act prompt: a stable prefix and a short, bounded variable part.

The prefix (persona card and world rules) is the same every step, so a server's prefix
cache can reuse it; the variable part holds only the situation (time, place, company,
ways out), the current activity, the few retrieved memories that matter and the latest
observations, each capped, so a prompt does not grow with the length of the run.

The act prompt and the speech prompt (`speech_prompt`: the words of a `say` the act
call decided) are the same text but for their last lines, so a backend that keeps
prefixes (the embedded one does) decodes only those lines for the second. The prefix
holds a one-shot example of a line of speech; no prompt names a JSON field."""

from __future__ import annotations

from collections.abc import Sequence

from concordia_like.text import clip, squash
from concordia_like.world.persona import PersonaCard

#: what the act prompt shows: few memories and observations, each line short, since on
#: a CPU every new prompt token costs (a prompt's prefix is kept, its situation is not)
MAX_MEMORIES = 3
MAX_OBSERVATIONS = 3
LINE_MAX = 160
#: what an agent keeps of its observations between steps (checkpointed)
OBSERVATIONS_KEPT = 5
#: the words one is answering, shown whole up to this length
REPLY_MAX = 220
RULES_MAX = 6
PERSONA_MAX = 900


def stable_prefix(p: PersonaCard, world_name: str, rules: Sequence[str]) -> str:
    """The system message of every call an agent makes: who it is, the world's rules,
    how to answer, and the example line of speech."""
    lines = [
        p.prompt_text(PERSONA_MAX),
        f"You live in {world_name}. Rules of the world:",
        *[f"- {clip(r, 160)}" for r in list(rules)[:RULES_MAX]],
        (
            "Stay in character. When asked what you do, choose one action. When asked what "
            "you say, answer with only your words: one or two plain sentences, in your own "
            "voice, about what is going on."
        ),
        f"For example, a ferryman asked what he says to a neighbour: {SPEECH_EXAMPLE}",
    ]
    return "\n".join(lines)


#: the one-shot example of a good line of speech in every stable prefix (an utterance
#: that copies it is degenerate)
SPEECH_EXAMPLE = "The river rose a foot overnight, so I'd keep your boat tied up until Friday."


def speech_prompt(body: str, me: str, to: str, ask: str | None = None) -> str:
    """The speech prompt: the act prompt's situation, then who is spoken to (or `ask`:
    what it writes on its phone, `writing_ask`)."""
    if ask is not None:
        return f"{body}\n{ask}"
    if to == me:
        ask = "You think aloud. What do you say to yourself?"
    else:
        ask = f"You turn to {to}. What do you say to {to.split(' ')[0]}?"
    return f"{body}\n{ask}"


def writing_ask(kind: str, to: str | None = None, post: str | None = None) -> str:
    """The last line of a speech prompt for words written on a phone: a `message` to
    `to`, a `post` on the feed, or a `reply` to `post` (the line it was read as)."""
    if kind == "message" and to:
        return f"You text {to} on your phone. What do you write to {to.split(' ')[0]}?"
    if kind == "reply" and post:
        return f"{clip(post, REPLY_MAX)}\nYou reply on the town feed. What do you write?"
    return "You post on the town feed for the whole town to read. What do you write?"


def situation_body(
    *,
    here: str,
    activity: str | None,
    memories: Sequence[str],
    observations: Sequence[str],
    reply_to: str | None = None,
    standing: str = "",
    plan_hint: str = "",
) -> str:
    """The situation the act and speech prompts share: the standing at the place (which
    lasts while the agent stays), the moment, the plan, what it remembers and what just
    happened, each capped. `plan_hint` says where the plan is and what carrying on
    with it does (`agents.autopilot.plan_hint`)."""
    lines = [standing, here] if standing else [here]
    if activity:
        hint = f" {plan_hint}" if plan_hint else ""
        lines.append(f"Your plan now: {clip(activity, 160)}{hint}")
    shown = list(observations)[-MAX_OBSERVATIONS:]
    # a memory of what is shown under "Just now" (its latest news) would say it twice
    seen = {squash(o) for o in shown}
    recalled = [m for m in list(memories)[:MAX_MEMORIES] if squash(m) not in seen]
    if recalled:
        lines.append("You remember:")
        lines.extend(f"- {clip(m, LINE_MAX)}" for m in recalled)
    if shown:
        lines.append("Just now:")
        lines.extend(f"- {clip(o, LINE_MAX)}" for o in shown)
    if reply_to:
        lines.append(f"{clip(reply_to, REPLY_MAX)} You may answer, or do something else.")
    return "\n".join(lines)
