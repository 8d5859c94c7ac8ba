"""Segment counting (GSM-7 / UCS-2) and the long-reply splitter, with hypothesis properties."""

from __future__ import annotations

import math
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.sms_segments import (
    CONCATENATED,
    GSM_BASIC,
    GSM_EXTENSION,
    SINGLE,
    analyse,
    encoding_of,
    fits,
    is_url,
    plan_parts,
    segment_count,
    split_text,
)

# ---- counting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters cost two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("{[]}" * 40, "GSM-7", 320, 3),  # 76 escape pairs per 153-septet segment
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),  # the escape pair cannot straddle segments
        ("é" * 160, "GSM-7", 160, 1),  # é is in the GSM basic table
        ("ş" * 70, "UCS-2", 70, 1),
        ("ş" * 71, "UCS-2", 71, 2),
        ("ş" * 134, "UCS-2", 134, 2),
        ("ş" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # a surrogate pair costs two units
        ("😀" * 36, "UCS-2", 72, 2),
        ("ş" * 66 + "😀" + "ş" * 66, "UCS-2", 134, 3),  # nor can a surrogate pair
        ("a" * 159 + "\t", "UCS-2", 160, 3),  # a tab is not GSM: the whole text becomes UCS-2
    ],
)
def test_known_segment_counts(text: str, encoding: str, units: int, segments: int) -> None:
    info = analyse(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


def test_the_gsm_tables_have_the_standard_sizes() -> None:
    assert len(GSM_BASIC) == 127  # 128 codes, one of which is the escape to the extension table
    assert len(GSM_EXTENSION) == 10  # form feed ^ { } \ [ ~ ] | €
    assert not GSM_BASIC & GSM_EXTENSION


@given(st.text(max_size=400))
def test_segment_count_is_bounded_by_the_unit_arithmetic(text: str) -> None:
    info = analyse(text)
    assert info.encoding == encoding_of(text)
    if info.units <= SINGLE[info.encoding]:
        assert info.segments == 1
    else:
        size = CONCATENATED[info.encoding]
        assert math.ceil(info.units / size) <= info.segments <= math.ceil(info.units / (size - 1))


@given(st.text(max_size=300), st.text(max_size=50))
def test_appending_never_needs_fewer_segments(a: str, b: str) -> None:
    assert segment_count(a + b) >= segment_count(a)


# ---- splitting: examples --------------------------------------------------------------------------


def test_short_text_is_one_part_and_surrounding_whitespace_is_dropped() -> None:
    assert split_text("  hello there \n").parts == ("hello there",)
    assert split_text(" \n ").parts == ()
    assert plan_parts("hi") == ["hi"]


def test_sentence_boundaries_are_preferred_over_word_boundaries() -> None:
    first = "Your refund was approved today."
    second = (
        "It reaches your card in five to ten business days, depending on your bank, the card network "
        "and the time of the month it was requested in."
    )
    third = "Thanks for waiting!"
    text = f"{first} {second}\n{third}"
    assert fits(f"{first} {second[:100]}", 1) and not fits(
        f"{first} {second}", 1
    )  # a word cut would fit more
    s = split_text(text, max_segments=1)
    assert s.parts == (first, f"{second}\n{third}")  # the rest fits in one part
    assert s.gaps == (" ",)


def test_without_a_sentence_end_the_cut_falls_on_a_word_boundary() -> None:
    text = " ".join(f"word{i}" for i in range(60))
    s = split_text(text, max_segments=1)
    assert len(s.parts) > 1
    assert all(fits(p, 1) for p in s.parts)
    assert all(g == " " for g in s.gaps)
    assert " ".join(s.parts).split() == text.split()


def test_a_line_break_is_a_sentence_boundary_and_is_kept_as_the_gap() -> None:
    text = "Order 1234\n" + "Status: shipped from our warehouse in Leeds, arriving by courier " * 3
    s = split_text(text, max_segments=1)
    assert s.parts[0] == "Order 1234"
    assert s.gaps[0] == "\n"
    assert s.join() == text.strip()


def test_a_url_longer_than_a_segment_is_sent_whole_as_its_own_part() -> None:
    url = "https://help.example.test/articles/" + "x" * 200 + "?utm_source=sms"
    s = split_text(f"See {url} for details.", max_segments=1)
    assert s.parts == ("See", url, "for details.")


def test_a_long_token_that_is_not_a_url_is_cut_only_as_a_last_resort() -> None:
    token = "A" * 400
    s = split_text(f"Your code: {token} ok", max_segments=1)
    assert s.parts[0] == "Your code:"
    assert "".join(s.parts[1:-1]) + s.parts[-1].split(" ")[0] == token
    assert all(fits(p, 1) for p in s.parts)
    assert s.join() == f"Your code: {token} ok"


def test_hard_cuts_keep_combining_marks_and_emoji_sequences_whole() -> None:
    token = "e\u0301" * 60 + "👩\u200d👩\u200d👧" * 10 + "🇬🇧" * 20
    s = split_text(token, max_segments=1)
    assert len(s.parts) > 1 and s.join() == token
    for part in s.parts[1:]:
        first = part[0]
        assert unicodedata.category(first) != "Mn" and first != "\u200d"
    flags = "".join(chr(c) for c in range(0x1F1E6, 0x1F200))
    for part in s.parts[:-1]:
        trailing_flags = len(part) - len(part.rstrip(flags))
        assert part[-1] != "\u200d" and trailing_flags % 2 == 0  # flags are pairs: never cut in half


def test_gsm_parts_can_be_longer_than_ucs2_parts() -> None:
    text = "Café déjà vu. " * 20 + "Straße ş " * 20  # GSM-7 sentences, then words that need UCS-2
    s = split_text(text, max_segments=1)
    assert s.join() == text.strip()
    assert max(len(p) for p in s.parts if encoding_of(p) == "GSM-7") > SINGLE["UCS-2"]
    assert all(fits(p, 1) for p in s.parts)


def test_plan_parts_keeps_up_to_ten_segments_in_one_message() -> None:
    ten = ("All good. " * 153).strip()
    assert segment_count(ten) == 10 and plan_parts(ten) == [ten]
    eleven = ten + " One more sentence to go over the limit."
    parts = plan_parts(eleven)
    assert len(parts) == 2 and all(segment_count(p) <= 10 for p in parts)


# ---- splitting: properties ----------------------------------------------------------------------

WORD = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzéüß€{}ş"), min_size=1, max_size=12)
EMOJI = st.sampled_from(["😀", "👍🏽", "👩\u200d💻", "🇫🇷", "e\u0301", "中文", "ñ"])
URL = st.builds(
    lambda host, path: f"https://{host}.example.test/{path}",
    st.text(alphabet="abcdefghij", min_size=1, max_size=8),
    st.text(alphabet="abcdefghij0123456789/-_?=&", min_size=0, max_size=220),
)
LONG_URL = st.builds(
    lambda path: f"https://help.example.test/{path}", st.text(alphabet="abc/?=&%", min_size=140, max_size=300)
)
LONG = st.text(alphabet="abcxyz0123", min_size=150, max_size=400)
TOKEN = st.one_of(WORD, WORD.map(lambda w: w + "."), WORD.map(lambda w: w + "!"), EMOJI, URL, LONG_URL, LONG)
GAP = st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n", " \n"])


@st.composite
def texts(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(TOKEN, min_size=1, max_size=60))
    out = [draw(st.sampled_from(["", " ", "\n"]))]
    for token in tokens:
        out += [token, draw(GAP)]
    return "".join(out)


def _check(text: str, max_segments: int) -> None:
    s = split_text(text, max_segments=max_segments)
    original_tokens = text.split()
    # 1. The parts reassemble to the text: parts[0] + gaps[0] + parts[1] + ... == text.strip().
    assert len(s.gaps) == max(0, len(s.parts) - 1)
    assert s.join() == text.strip()
    for part in s.parts:
        assert part and part == part.strip()
    for gap in s.gaps:
        assert gap == "" or gap.isspace()
    # 2. Every part fits, except a URL too long for one part, which is a part of its own.
    for part in s.parts:
        assert fits(part, max_segments) or (is_url(part) and not any(c.isspace() for c in part))
    # 3. Words and URLs are never broken: a cut inside a token ("" gap) only splits a non-URL
    #    token that could not fit on its own.
    rebuilt: list[str] = []
    glued = False
    for i, part in enumerate(s.parts):
        tokens = part.split()
        if glued:
            rebuilt[-1] += tokens[0]
            tokens = tokens[1:]
        rebuilt += tokens
        glued = i < len(s.gaps) and s.gaps[i] == ""
    assert rebuilt == original_tokens
    for i, gap in enumerate(s.gaps):
        if gap == "":
            whole = next(
                t for t in original_tokens if s.parts[i].split()[-1] + s.parts[i + 1].split()[0] in t
            )
            assert not is_url(whole) and not fits(whole, max_segments)
    for token in original_tokens:
        if is_url(token) or fits(token, max_segments):
            assert any(token in part.split() for part in s.parts)
    # 4. No multi-code-point character is cut: a part never starts inside a cluster.
    for i, part in enumerate(s.parts[1:]):
        if s.gaps[i] == "":
            assert unicodedata.category(part[0]) not in ("Mn", "Mc", "Me") and part[0] != "\u200d"
            assert s.parts[i][-1] != "\u200d"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts(), st.integers(min_value=1, max_value=3))
def test_split_properties(text: str, max_segments: int) -> None:
    _check(text, max_segments)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=700), st.integers(min_value=1, max_value=2))
def test_split_properties_on_arbitrary_unicode(text: str, max_segments: int) -> None:
    _check(text, max_segments)
