"""The act prompt's situation: what an agent sees under "Just now" is not repeated
under "You remember" (its latest observation is also its newest memory, and retrieval
finds it first)."""

from __future__ import annotations

from concordia_like.agents.prompt import situation_body

NEWS = "Rafael Quint goes from Rooms over The Lantern to The Lantern."


def test_a_memory_of_what_is_shown_just_now_is_not_shown_twice():
    body = situation_body(
        here="It is Monday 07:10.",
        activity="opens the pub",
        memories=[NEWS, 'Hana said "not yet".', "Plan for Monday: 08:00 accounts"],
        observations=["Rafael  Quint goes from Rooms over The Lantern to The Lantern."],
    )
    assert body.count("goes from Rooms over") == 1
    assert body.index("Just now:") < body.index("goes from Rooms over")
    assert "- Hana said" in body and "- Plan for Monday" in body
    # nothing else recalled: no empty heading
    alone = situation_body(here="It is Monday 07:10.", activity=None, memories=[NEWS],
                           observations=[NEWS])  # fmt: skip
    assert "You remember" not in alone
