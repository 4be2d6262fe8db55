"""An agent's act prompt: a stable prefix and a short, bounded variable part.

The prefix (persona card and world rules) is the same every step, so a server's prefix
cache can reuse it; the variable part holds only the situation (time, place, company,
ways out), the current activity, the few retrieved memories that matter and the latest
observations, each capped, so a prompt does not grow with the length of the run."""

from __future__ import annotations

from collections.abc import Sequence

from concordia_like.agents.persona import PersonaCard, clip

MAX_MEMORIES = 4
MAX_OBSERVATIONS = 5
LINE_MAX = 220
RULES_MAX = 6
PERSONA_MAX = 900


def stable_prefix(p: PersonaCard, world_name: str, rules: Sequence[str]) -> str:
    lines = [
        p.prompt_text(PERSONA_MAX),
        f"You live in {world_name}. Rules of the world:",
        *[f"- {clip(r, 160)}" for r in list(rules)[:RULES_MAX]],
        "Stay in character. Choose one action and answer in JSON.",
    ]
    return "\n".join(lines)


def situation(
    *,
    here: str,
    activity: str | None,
    memories: Sequence[str],
    observations: Sequence[str],
    reply_to: str | None = None,
) -> str:
    lines = [here]
    if activity:
        lines.append(f"Your plan now: {clip(activity, 160)}")
    if memories:
        lines.append("You remember:")
        lines.extend(f"- {clip(m, LINE_MAX)}" for m in list(memories)[:MAX_MEMORIES])
    if observations:
        lines.append("Just now:")
        lines.extend(f"- {clip(o, LINE_MAX)}" for o in list(observations)[-MAX_OBSERVATIONS:])
    if reply_to:
        lines.append(f"{clip(reply_to, LINE_MAX)} Answer with a say action, or do something else.")
    lines.append("What do you do next?")
    return "\n".join(lines)
