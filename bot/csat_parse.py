"""Reading a CSAT answer from a free-text reply, leniently. Pure.

    parse_rating("5")                 -> Rating(5, None)
    parse_rating("five, great service") -> Rating(5, "great service")
    parse_rating("5 thanks!")         -> Rating(5, "thanks!")
    parse_rating("4/5"), parse_rating("4 out of 5"), parse_rating("4 stars") -> Rating(4, ...)
    parse_rating("⭐⭐⭐"), parse_rating("😡"), parse_rating("👍") -> 3, 1, 5
    parse_rating("I still can't log in") -> None   (not a rating: goes on as a normal message)
    parse_rating("2 more questions")  -> None      (a number that counts something is not a rating)
    parse_rating("5?")                -> None      (a question is not an answer)

The rating must lead the reply; what follows it is the comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
FACES = {
    "\U0001F621": 1, "\U0001F620": 1, "\U0001F92C": 1, "\U0001F62D": 1, "\U0001F44E": 1,  # angry, crying, thumbs down
    "\U0001F641": 2, "\u2639": 2, "\U0001F61E": 2, "\U0001F615": 2, "\U0001F622": 2,  # frowns, sad
    "\U0001F610": 3, "\U0001F611": 3, "\U0001F636": 3,  # neutral
    "\U0001F642": 4, "\U0001F60A": 4, "\U0001F44C": 4,  # slight smile, smiling, ok hand
    "\U0001F600": 5, "\U0001F603": 5, "\U0001F604": 5, "\U0001F601": 5, "\U0001F929": 5,
    "\U0001F60D": 5, "\u2764": 5, "\U0001F44D": 5, "\U0001F64F": 5, "\U0001F970": 5,  # grins, hearts, thumbs up
}
STAR = "\u2b50"
KEYCAP = "\ufe0f?\u20e3"  # "5️⃣": digit, optional variation selector, combining keycap
#: Words that, right after a number, say it counts something ("2 more questions", "3 days").
QUANTITY = frozenset(
    "more items item orders order days day hours hour weeks week minutes minute times things thing questions "
    "question of dollars dollar euros pounds pm am months month years year people packages parcels".split()
)
_SKIN = re.compile("[\U0001F3FB-\U0001F3FF\ufe0f\u200d]")
_LEAD = re.compile(r"^\s*(?:(?:i'?d\s+(?:say|give\s+(?:it|you))|rating|score|my\s+rating\s+is)\s*[:\-]?\s*)?",
                   re.IGNORECASE)
_NUMBER = re.compile(
    r"(?P<n>[1-5]|one|two|three|four|five)(?:" + KEYCAP + r")?"
    r"(?P<scale>\s*(?:/|out\s+of)\s*5)?(?P<stars>\s*stars?)?(?=$|[\s.,!;:)\-])",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Rating:
    score: int
    comment: str | None


def _comment(rest: str) -> str | None:
    text = rest.strip().lstrip(".,!;:-)").strip()
    return text[:2000] or None


def parse_rating(text: str) -> Rating | None:
    """A 1–5 rating at the start of `text`, with the rest as a comment; None when it is not one."""
    if not text or "?" in text:
        return None
    raw = text.strip()
    stars = len(raw) - len(raw.lstrip(STAR + "\ufe0f "))
    if raw.startswith(STAR):
        count = raw[:stars].count(STAR)
        return Rating(count, _comment(raw[stars:])) if 1 <= count <= 5 else None
    cleaned = _SKIN.sub("", raw)
    if cleaned and cleaned[0] in FACES:
        return Rating(FACES[cleaned[0]], _comment(cleaned[1:]))
    lead = _LEAD.match(raw)
    body = raw[lead.end():] if lead else raw
    m = _NUMBER.match(body)
    if m is None:
        return None
    value = m.group("n").lower()
    score = WORDS.get(value) or int(value)
    rest = body[m.end():]
    words = re.findall(r"[a-z%]+", rest.lower())
    if (not m.group("scale") and not m.group("stars") and words
            and (words[0] in QUANTITY or rest.lstrip().startswith("%"))):
        return None
    return Rating(score, _comment(rest))
