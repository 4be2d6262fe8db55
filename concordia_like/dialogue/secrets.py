"""Secrets, and turns that leak one: a resident quoting what only another one knows.

A resident's secrets are the seed memories on its card that it alone holds: those of
importance 9 or more, and those whose words say so ("only I know", "nobody knows",
"secret"). A turn leaks a secret when it carries the secret's substance (`carries`:
a run of three of its content words in order, or most of its content words, at least
three) although the speaker is not its owner and nothing the speaker could know at that
moment (its own card, its memories of the run so far, the conversation so far)
carries it too."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from concordia_like.agents.degenerate import words
from concordia_like.text import squash
from concordia_like.world.persona import PersonaCard

SECRET_IMPORTANCE = 9
SECRET_WORDS = ("only i know", "nobody knows", "no one knows", "secret")
#: short and common words, which say nothing of a secret's substance
_STOP_WORDS = (
    "a an and are as at be but by for from had has have he her his i in is it its me my "
    "no not of on or our she so than that the their them they this to was we were what "
    "when who will with you your only know knows nobody one secret"
)
STOP = frozenset(_STOP_WORDS.split(" "))


def secrets_of(cards: Iterable[PersonaCard]) -> list[tuple[str, str]]:
    """(owner, text) of every secret on the cards."""
    out = []
    for card in cards:
        for m in card.seed_memories:
            low = squash(m.text.lower())
            if (m.importance or 0) >= SECRET_IMPORTANCE or any(w in low for w in SECRET_WORDS):
                out.append((card.name, m.text))
    return out


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOP and (len(w) > 2 or w.isdigit())]


def carries(text: str, secret: str) -> bool:
    """Whether `text` carries the substance of `secret` (see the module's text)."""
    s, t = content_words(secret), content_words(text)
    if len(s) < 3 or len(t) < 3:
        return False
    grams = set(zip(s, s[1:], s[2:], strict=False))
    if grams & set(zip(t, t[1:], t[2:], strict=False)):
        return True
    shared = set(s) & set(t)
    return len(shared) >= 3 and len(shared) >= 0.6 * len(set(s))


def leaked(
    text: str, speaker: str, secrets: Sequence[tuple[str, str]], known: Sequence[str]
) -> tuple[str, str] | None:
    """The (owner, secret) that `text`, said by `speaker`, leaks, or None."""
    for owner, secret in secrets:
        if owner == speaker or not carries(text, secret):
            continue
        if not any(carries(k, secret) for k in known):
            return owner, secret
    return None
