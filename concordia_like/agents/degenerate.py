"""Checks for degenerate model text: what a small model writes when it fails.

One place for them, so that the engine's speech guard, the quality benchmark and (later)
the dialogue-data filters agree on what "degenerate" means. Each check returns the
reason as a short phrase, or None when the text is fine:

- too short: fewer than three words ("says", "Hello there");
- a repeat: the speaker said the same words (or nearly) among its last utterances;
- a loop: a phrase said again and again ("You remember the bridge. You remember the
  bridge."), or a text made mostly of a few words;
- a copy of the prompt's one-shot example, or of a field or kind name (`say`, `text`);
- an echo of the prompt: a line of it said back ("You turn to Margo Vell.", "You think
  aloud:", "Just now:") instead of speech, as the small model does now and then.

A day plan is degenerate when one activity fills most of it, and an item the model
writes into a plan is none when it does not read as an activity (`activity_problem`:
"dear Lottie", "monday morning", a name, a fragment)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

MIN_WORDS = 3
#: words that are the prompt's or the schema's, not speech
SCHEMA_WORDS = frozenset({"say", "says", "said", "text", "kind", "to", "speech", "wait", "move"})
_WORD = re.compile(r"[a-z0-9']+")
#: lines of the act and speech prompts (agents/prompt.py) that speech must not repeat
PROMPT_ECHOES = re.compile(
    r"^\s*-\s|You turn to\b|You think aloud\b|What do you (?:say|do)|Stay in character|"
    r"in character|You remember:|Just now:|Your plan now:|You may answer|You are at ",
    re.I,
)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def normalized(text: str) -> str:
    return " ".join(words(text))


def is_loop(text: str) -> bool:
    """A phrase repeated: a word three times in a row ("socilacum ia ia ia ia", a plan
    item SmolLM2 wrote), some 3-gram three times or more, a sentence twice, or under a
    third of the words distinct (in a text of ten words or more)."""
    w = words(text)
    if any(a == b == c for a, b, c in zip(w, w[1:], w[2:], strict=False)):
        return True
    if len(w) >= 5:
        grams = Counter(zip(w, w[1:], w[2:], strict=False))
        if grams and grams.most_common(1)[0][1] >= 3:
            return True
    sentences = [normalized(s) for s in re.split(r"[.!?]+", text)]
    sentences = [s for s in sentences if len(s.split()) >= 3]
    if len(sentences) != len(set(sentences)):
        return True
    return len(w) >= 10 and len(set(w)) < len(w) / 3


def _similar(a: str, b: str) -> bool:
    """Same words, or one holding the other, or mostly the same 2-grams."""
    if not a or not b:
        return False
    if a == b or (len(b) >= 12 and b in a) or (len(a) >= 12 and a in b):
        return True
    ga = set(zip(a.split(), a.split()[1:], strict=False))
    gb = set(zip(b.split(), b.split()[1:], strict=False))
    if not ga or not gb:
        return False
    return len(ga & gb) / min(len(ga), len(gb)) >= 0.8


def utterance_problem(
    text: str, previous: Iterable[str] = (), examples: Iterable[str] = ()
) -> str | None:
    """Why `text` is not fit to be said, or None. `previous`: the speaker's last
    utterances; `examples`: texts shown to the model that it must not copy."""
    w = words(text)
    if len(w) < MIN_WORDS:
        return f"too short ({len(w)} word{'s' if len(w) != 1 else ''})"
    if all(x in SCHEMA_WORDS for x in w):
        return "only the prompt's own words"
    if PROMPT_ECHOES.search(text):
        return "an echo of the prompt"
    if is_loop(text):
        return "a loop"
    norm = normalized(text)
    for ex in examples:
        if _similar(norm, normalized(ex)):
            return "a copy of the example"
    for before in previous:
        if _similar(norm, normalized(before)):
            return "a repeat of the speaker's last words"
    return None


def plan_problem(activities: Sequence[str]) -> str | None:
    """Why a day plan (its activities in order) is degenerate, or None: empty, one
    activity filling more than half of it (when it has three or more), or loops."""
    acts = [normalized(a) for a in activities]
    if not acts:
        return "empty"
    if len(acts) >= 3:
        top, n = Counter(acts).most_common(1)[0]
        if n > len(acts) / 2:
            return f"one activity repeated ({top!r} {n} of {len(acts)})"
    if any(is_loop(a) for a in activities):
        return "an activity loops"
    return None


def distinct_n(texts: Iterable[str], n: int = 2) -> float:
    """Distinct n-grams over all n-grams of `texts` (0 with none): how varied they are."""
    grams: list[tuple[str, ...]] = []
    for t in texts:
        w = words(t)
        grams.extend(zip(*(w[i:] for i in range(n)), strict=False))
    return len(set(grams)) / len(grams) if grams else 0.0


# -- plan items: activities a person would write down ------------------------------------

#: verbs a plan item may begin with in their plain form (`visit the bakery`); their
#: third-person forms (`visits`, `teaches`, `studies`) and `-ing` forms count too
BASE_VERBS = frozenset(
    words(
        "attend ask bake bring buy call carry catch chat check clean close collect cook count "
        "deliver do drink drop eat feed fetch find finish fish fix gather get give go gossip "
        "have hear help hold inspect join keep knead learn lead light listen lock look make "
        "mark meet mend milk mind move open pack pay pick plan plant play post practise "
        "practice pray prepare read repair rest return review run see sell send serve shop "
        "sing sit sleep sort speak spend start stock study survey sweep take talk teach tell "
        "tend tidy train visit wait walk wash watch water work write wake dress shower relax "
        "nap travel drive ride head leave arrive stay discuss decide think draw paint build "
        "sew knit weed harvest sow dig hunt swim exercise volunteer organise organize greet "
        "borrow lend order unload load stack chop brew pour set clear ring argue"
    )
)
#: nouns that name what one does (`lunch at the pub`), as routines write them
DOING_NOUNS = frozenset(
    words(
        "breakfast lunch dinner supper coffee tea work school errands chores rounds shift "
        "practice rehearsal service class lessons"
    )
)
_GREETINGS = frozenset(words("hello hi hey dear yes no thanks thank goodbye bye ok okay sure"))
_DATE_WORDS = frozenset(
    words(
        "monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday "
        "morning afternoon evening night noon midnight day week weekend january february "
        "march april may june july august september october november december"
    )
)
_FILLER = frozenset(words("the a an at of in on to and"))
#: words a phrase cannot end with ("walking by the river at")
_DANGLING = _FILLER | frozenset(words("by with for from"))


def _is_verb(word: str) -> bool:
    if word in BASE_VERBS:
        return True
    if word.endswith("ing") and len(word) > 5:
        return True
    if word.endswith("ies") and word[:-3] + "y" in BASE_VERBS:
        return True
    return (word.endswith("es") and word[:-2] in BASE_VERBS) or (
        word.endswith("s") and word[:-1] in BASE_VERBS
    )


@lru_cache(maxsize=16)
def name_words(names: tuple[str, ...]) -> frozenset[str]:
    """The words of `names`, once per tuple: a city's place names are one tuple shared
    by every resident, and a plan item is checked against them all."""
    return frozenset(x for n in names for x in words(n))


def activity_problem(text: str, names: Iterable[str] = (), person: str = "") -> str | None:
    """Why `text` does not read as an activity a person plans, or None: a fragment
    (under two words, words cut off with hyphens, a loop, a dangling last word), a
    greeting, a date, a name (of `person` or of a resident or a place: `names`), or no
    verb among its first words (nor a word like `lunch`)."""
    raw = text.split()
    w = words(text)
    if len(w) < 2 or any(t.startswith("-") or t.rstrip(",.").endswith("-") for t in raw):
        return "a fragment"
    if any(t.count("-") >= 2 for t in raw) or is_loop(text) or w[-1] in _DANGLING:
        return "a fragment"
    if w[0] in _GREETINGS or w[:2] == ["good", "morning"]:
        return "a greeting"
    if all(x in _DATE_WORDS or x in _FILLER or x.isdigit() for x in w):
        return "a date"
    named, own = name_words(tuple(names)), frozenset(words(person))
    if (named or own) and all(x in named or x in own or x in _FILLER for x in w):
        return "a name"
    if not any(_is_verb(x) or x in DOING_NOUNS for x in w[:3]):
        return "no verb"
    return None
