"""The one text-fitting helper: white space folded, long text cut at a word."""

from __future__ import annotations

from concordia_like.text import clip, identifier, one_line, squash


def test_squash_folds_every_run_of_white_space() -> None:
    assert squash("  Ann\n\tsays   hi \n") == "Ann says hi"
    assert squash("") == ""


def test_clip_cuts_at_a_word_and_marks_the_cut() -> None:
    assert clip("short", 10) == "short"
    out = clip("one two three four five six", 12)
    assert len(out) <= 12 and out.endswith("…") and out == "one two…"
    assert clip("x" * 50, 10) == "x" * 9 + "…"  # one long word is split


def test_one_line_squashes_before_clipping() -> None:
    assert one_line("one\n\n two   three", 100) == "one two three"
    assert one_line("one\n two three four", 12) == "one two…"


def test_identifier_keeps_only_what_a_name_field_takes() -> None:
    assert identifier("Ines Marlowe", "speaker") == "Ines_Marlowe"
    assert identifier("Zoë's *day*", "x") == "Zo_s_day"
    assert identifier("!!!", "speaker") == "speaker"
    assert len(identifier("a" * 100, "x")) == 64
