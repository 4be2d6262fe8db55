"""The dialogue filters and deduplication (concordia_like/dialogue/filters.py,
secrets.py) on crafted conversations: each reason drops what it names and keeps what
it does not, near-duplicates that differ by a few words are found across the set,
and a secret counts as leaked only when it never reached the speaker."""

from __future__ import annotations

import pytest

from concordia_like.dialogue.filters import FilterConfig, problem, select, statistics_of
from concordia_like.dialogue.secrets import carries, leaked, secrets_of
from concordia_like.world.loader import load_world

from support.engine import TOWN

GOOD = [
    ("Ann Reed", "The apples came in late today, so I marked them down a little."),
    ("Bob Vale", "Good, my sister wants a basket for her pies on Sunday."),
    ("Ann Reed", "Tell her to come before noon and I will keep the best ones aside."),
    ("Bob Vale", "Thank you, and I still owe you five coins from last week."),
]


def conv(turns, cid="c", leaks=()):
    people = list(dict.fromkeys(s for s, _ in turns))
    return {
        "id": cid,
        "speakers": people,
        "turns": [
            {"speaker": s, "to": [p for p in people if p != s][:1], "text": t} for s, t in turns
        ],
        "leaks": list(leaks),
        "provenance": {},
    }


def reason(record):
    why = problem(record)
    return None if why is None else why.split(":", 1)[0]


def test_a_good_conversation_passes():
    assert problem(conv(GOOD)) is None


PEARS = ("Ann Reed", "And the pears are nearly ripe in the back garden.")
ECHO = ("Bob Vale", "You turn to Ann Reed and ask her about the apples.")
#: seen in a real embedded generation, kept before the pattern allowed a colon
ECHO_COLON = ("Bob Vale", "You turn to: Ann Reed (all eyes on you) You say a word and smile.")
LINE = ("Bob Vale", "- You are at Market Square with Ann Reed.")
AGAIN = ("Bob Vale", "Good, my sister wants a basket for her pies on Sunday!")
LOOP = ("Bob Vale", "the bridge the bridge the bridge the bridge the bridge")
COPY = ("Ann Reed", "Good, my sister wants a basket for her pies on Sunday.")


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        (GOOD[:1], "never got going"),
        ([GOOD[0], PEARS], "never got going"),
        ([GOOD[0], ("Bob Vale", "says"), *GOOD[2:]], "short or empty turn"),
        ([GOOD[0], ("Bob Vale", ""), *GOOD[2:]], "short or empty turn"),
        ([GOOD[0], ECHO, *GOOD[2:]], "prompt echo"),
        ([GOOD[0], ECHO_COLON, *GOOD[2:]], "prompt echo"),
        ([GOOD[0], LINE, *GOOD[2:]], "prompt echo"),
        ([*GOOD[:3], AGAIN], "self-repeat"),
        ([*GOOD[:3], LOOP], "loop"),
        ([*GOOD[:2], COPY], "loop"),
    ],
)
def test_each_reason_drops_what_it_names(turns, expected):
    assert reason(conv(turns)) == expected


def test_a_leak_found_when_read_drops_the_conversation():
    leak = {"turn": 1, "speaker": "Bob Vale", "owner": "Ann Reed", "secret": "x"}
    assert reason(conv(GOOD, leaks=[leak])) == "secret leak"


def test_low_distinct_bigrams_are_a_loop():
    turns = [
        ("Ann Reed", "we should fix the bridge before the rain comes"),
        ("Bob Vale", "the rain comes soon so we should hurry up"),
    ]
    assert problem(conv(turns)) is None
    assert problem(conv(turns), FilterConfig(min_distinct2=0.99)).startswith("loop: distinct-2")


# -- near-duplicates across the set ----------------------------------------------------


def test_near_duplicates_differing_by_a_few_words_are_dropped_and_others_kept():
    first = conv(GOOD, "first")
    # the same conversation with three words changed
    near = conv(
        [
            (s, t.replace("late", "early").replace("sister", "cousin").replace("noon", "ten"))
            for s, t in GOOD
        ],
        "near",
    )
    other = conv(
        [
            ("Cy Moss", "The ferry is running again since the water went down on Tuesday."),
            ("Ann Reed", "Then I can send the apples across to the market in Holt tomorrow."),
            ("Cy Moss", "Mind the crates, the last ones split open on the landing stage."),
            ("Ann Reed", "I will rope them properly this time, thank you for the warning."),
        ],
        "other",
    )
    sel = select([first, near, other])
    assert [r["id"] for r in sel.kept] == ["first", "other"]
    assert [(r["id"], why) for r, why in sel.dropped] == [("near", "near-duplicate: of first")]
    # without deduplication all are kept; the limit keeps the first ones in order
    assert len(select([first, near, other], FilterConfig(dedup=False)).kept) == 3
    assert [r["id"] for r in select([first, near, other], limit=1).kept] == ["first"]


def test_selection_of_a_prefix_is_a_prefix_of_the_selection():
    records = [conv(GOOD, "a"), conv(GOOD[:1], "b"), conv(GOOD, "c"), conv(GOOD[::-1], "d")]
    whole = select(records)
    for k in range(len(records)):
        part = select(records[:k])
        assert [r["id"] for r in part.kept] == [r["id"] for r in whole.kept if r in records[:k]]


def test_statistics_count_reasons_turns_and_coverage():
    records = [conv(GOOD, "a"), conv(GOOD[:1], "b"), conv(GOOD, "c")]
    sel = select(records)
    stats = statistics_of(sel, ["Ann Reed", "Bob Vale", "Cy Moss"], FilterConfig())
    assert (stats["kept"], stats["dropped"]) == (1, 2)
    assert stats["dropped_by_reason"]["never got going"] == 1
    assert stats["dropped_by_reason"]["near-duplicate"] == 1
    assert stats["turns"] == {"median": 4, "p95": 4.0}
    assert stats["persona_coverage"] == {"covered": 2, "of": 3, "missing": ["Cy Moss"]}
    assert stats["speaker_balance"]["mean_top_share"] == 0.5
    assert [d["id"] for d in stats["drops"]] == ["b", "c"]


# -- secrets -----------------------------------------------------------------------------


def test_secrets_are_a_cards_private_seed_memories():
    world = load_world(TOWN)
    secrets = dict(secrets_of(world.personas.values()))
    assert "4000 coins" in secrets["Desmond Pike"]
    owners = {o for o, _ in secrets_of(world.personas.values())}
    assert owners <= set(world.personas)


def test_a_secret_is_leaked_only_if_it_never_reached_the_speaker():
    world = load_world(TOWN)
    secrets = secrets_of(world.personas.values())
    quote = "I hear the bridge fund holds only 4000 coins, not the 6000 in his ledger."
    assert carries(quote, dict(secrets)["Desmond Pike"])
    assert leaked(quote, "Margo Vell", secrets, known=["Margo likes the morning rush."]) == (
        "Desmond Pike",
        dict(secrets)["Desmond Pike"],
    )
    # its owner may say it; someone who was told it (a memory, an earlier turn) may repeat it
    assert leaked(quote, "Desmond Pike", secrets, known=[]) is None
    told = "Desmond Pike said: the bridge fund holds 4000 coins, not the 6000 in the ledger."
    assert leaked(quote, "Margo Vell", secrets, known=[told]) is None
    # talk of the bridge in general is no leak
    assert leaked("The bridge needs a repair before May.", "Margo Vell", secrets, []) is None
