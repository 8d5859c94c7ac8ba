"""Asking instead of guessing: when the two best articles are close and the first is not sure,
the bot offers both ("Do you mean A or B?", buttons in web chat, numbered options by SMS) and
the customer's reply picks the answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from kb_index.types import Hit

SECOND_MIN = 0.25  # the runner-up must be a real candidate ...
MARGIN_MAX = 0.4  # ... close to the top one ...
SURE = 0.85  # ... and the top one not sure by itself ...
# ... but plausible: at least this share of the serving threshold. An off-topic message ("my
# neighbour's parrot keeps singing opera at night" after a delivery question) scores 0.3-0.5 on a
# couple of articles and goes to people instead of "A or B?". Fitted on the tune splits of
# kb/eval (bench/fit_clarify.py; the held-out splits were not read): see bench/RESULTS.md.
TOP_MIN_SHARE = 0.76
SERVING = 0.6  # bot.settings.Settings.answer_threshold's default, when the caller gives none


def options(hits: Sequence[Hit], *, threshold: float = SERVING) -> list[Hit]:
    """The two articles to offer, or [] when there is nothing to ask. ``threshold`` is the
    serving threshold in force (the top article must reach ``TOP_MIN_SHARE`` of it)."""
    if len(hits) < 2:
        return []
    a, b = hits[0], hits[1]
    if a.article_id == b.article_id or a.confidence >= SURE or a.confidence < TOP_MIN_SHARE * threshold:
        return []
    if b.confidence < SECOND_MIN or a.confidence - b.confidence > MARGIN_MAX:
        return []
    return [a, b]


def question(titles: Sequence[str], *, numbered: bool) -> str:
    """The clarifying question; ``numbered`` for channels without buttons (SMS)."""
    if numbered:
        lines = "\n".join(f"{i}. {t}" for i, t in enumerate(titles, 1))
        return f"Just to be sure I answer the right thing, which one is it?\n{lines}\nReply with the number."
    return "Just to be sure I answer the right thing, which one is it: " + " or ".join(
        f"\u201c{t}\u201d" for t in titles
    ) + "?"


_WORDS = re.compile(r"[a-z0-9]+")
_ORDINALS = {"1": 0, "first": 0, "2": 1, "two": 1, "second": 1}  # "one" is also "the second one"


def pick(reply: str, offered: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The offered option (``{"article_id", "title", ...}``) the customer's ``reply`` chooses: its
    number ("1", "2", "the first one"), its article id (a button's value) or its title; None when
    the reply chooses neither (a new question)."""
    text = reply.strip().lower()
    for o in offered:
        if text == str(o.get("article_id", "")).lower():
            return o
    words = _WORDS.findall(text)
    if 0 < len(words) <= 4:
        nums = {_ORDINALS[w] for w in words if w in _ORDINALS}
        if len(nums) == 1 and (i := nums.pop()) < len(offered):
            return offered[i]
    for o in offered:
        title = " ".join(_WORDS.findall(str(o.get("title", "")).lower()))
        if title and (" ".join(words) == title or (len(words) >= 2 and title.startswith(" ".join(words)))):
            return o
    return None
