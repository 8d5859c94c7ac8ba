"""The lenient CSAT reader: numbers, words, stars, emoji; anything else is not a rating."""

from __future__ import annotations

import pytest

from bot.csat_parse import Rating, parse_rating

CASES: list[tuple[str, Rating | None]] = [
    ("5", Rating(5, None)),
    (" 4 ", Rating(4, None)),
    ("five", Rating(5, None)),
    ("Five!", Rating(5, None)),
    ("5 thanks!", Rating(5, "thanks!")),
    ("5 great service", Rating(5, "great service")),
    ("three - slow but fine", Rating(3, "slow but fine")),
    ("4/5", Rating(4, None)),
    ("4 out of 5, nice", Rating(4, "nice")),
    ("2 stars", Rating(2, None)),
    ("1. awful", Rating(1, "awful")),
    ("I'd say 4", Rating(4, None)),
    ("rating: 2", Rating(2, None)),
    ("5\ufe0f\u20e3", Rating(5, None)),
    ("\u2b50\u2b50\u2b50", Rating(3, None)),
    ("\u2b50\ufe0f\u2b50\ufe0f\u2b50\ufe0f\u2b50\ufe0f\u2b50\ufe0f", Rating(5, None)),
    ("\U0001F621", Rating(1, None)),
    ("\U0001F610 ok", Rating(3, "ok")),
    ("\U0001F44D\U0001F3FD", Rating(5, None)),
    ("\U0001F600 thanks", Rating(5, "thanks")),
    # not ratings
    ("I still can't log in", None),
    ("2 more questions", None),
    ("3 days and nothing arrived", None),
    ("5?", None),
    ("can you call me at 5", None),
    ("6", None),
    ("10", None),
    ("0", None),
    ("55", None),
    ("5pm works", None),
    ("", None),
    ("\u2b50\u2b50\u2b50\u2b50\u2b50\u2b50", None),
    ("hello", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[repr(t) for t, _ in CASES])
def test_parse_rating(text: str, expected: Rating | None) -> None:
    assert parse_rating(text) == expected
