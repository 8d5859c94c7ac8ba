"""SMS segment arithmetic (GSM-7 vs UCS-2) and a splitter for replies too long for one message.

Counting follows GSM 03.38 / 3GPP 23.040 as carriers and Twilio apply it:

- A text is GSM-7 when every character is in the GSM basic table or its extension table; an
  extension character (``^ { } \\ [ ~ ] | €`` and form feed) costs 2 septets (escape + char).
  One message holds 160 septets; a concatenated message 153 per segment.
- Otherwise it is UCS-2 (UTF-16 code units): 70 units in one message, 67 per segment when
  concatenated; a character outside the BMP (most emoji) is a surrogate pair and costs 2 units.
- A segment never ends in the middle of an escape pair or a surrogate pair, so a segment can
  hold one unit less than its nominal size; counting packs segments greedily to match.

Splitting (`split_text`): the text is first stripped of surrounding whitespace. Cuts are only
made at whitespace runs between tokens, preferring the latest sentence end (a token ending in
``. ! ?`` or ``…``, optionally followed by closing quotes/brackets, or a line break in the gap)
that keeps the part within the limit, else the latest word boundary. A single token longer than
the limit is cut inside only if it is not a URL (a URL is sent whole as its own part, even over
the limit), and never inside a grapheme cluster where avoidable. The whitespace run removed at
each cut is kept in `Split.gaps` (``""`` for a cut inside an over-long token), so::

    s = split_text(text, max_segments=1)
    assert s.join() == text.strip()      # parts[0] + gaps[0] + parts[1] + ... + parts[-1]
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\x0c^{}\\[~]|€")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
CONCATENATED = {"GSM-7": 153, "UCS-2": 67}
TWILIO_MAX_SEGMENTS = 10  # Twilio concatenates up to 10 segments (1600 characters) as one message


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def encoding_of(text: str) -> Encoding:
    return "GSM-7" if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text) else "UCS-2"


def _unit_costs(text: str, encoding: Encoding) -> list[int]:
    if encoding == "GSM-7":
        return [2 if c in GSM_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def analyse(text: str) -> SegmentInfo:
    """Encoding, size in units, and how many segments the text is sent as (an empty text: 1)."""
    encoding = encoding_of(text)
    costs = _unit_costs(text, encoding)
    units = sum(costs)
    if units <= SINGLE[encoding]:
        return SegmentInfo(encoding, units, 1)
    size = CONCATENATED[encoding]
    segments, used = 1, 0
    for cost in costs:  # greedy packing: an escape or surrogate pair never straddles two segments
        if used + cost > size:
            segments, used = segments + 1, 0
        used += cost
    return SegmentInfo(encoding, units, segments)


def segment_count(text: str) -> int:
    return analyse(text).segments


def fits(text: str, max_segments: int) -> bool:
    return analyse(text).segments <= max_segments


# ---- splitting ---------------------------------------------------------------------------------

_TOKENS = re.compile(r"(\s+)")
_URL = re.compile(r"^[(\[<\"'«]*(?:[a-z][a-z0-9+.-]*://|www\.)\S", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]»]*$")


def is_url(token: str) -> bool:
    return bool(_URL.match(token))


@dataclass(frozen=True, slots=True)
class Split:
    """Parts to send, and the whitespace removed between consecutive parts (len(gaps) == len(parts) - 1)."""

    parts: tuple[str, ...]
    gaps: tuple[str, ...]

    def join(self) -> str:
        out = [self.parts[0]] if self.parts else []
        for gap, part in zip(self.gaps, self.parts[1:], strict=True):
            out += [gap, part]
        return "".join(out)


def split_text(text: str, *, max_segments: int = 1) -> Split:
    """Split `text` into parts of at most `max_segments` segments each (see the module docstring)."""
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    text = text.strip()
    if not text:
        return Split((), ())
    if fits(text, max_segments):
        return Split((text,), ())

    # Tokens with the gap that follows each (the last gap is ""). Over-long non-URL tokens are
    # pre-cut into maximal chunks joined by "" gaps; those cuts are the only in-token cuts.
    pieces = _TOKENS.split(text)
    tokens: list[str] = []
    gaps: list[str] = []
    for i in range(0, len(pieces), 2):
        token, gap = pieces[i], pieces[i + 1] if i + 1 < len(pieces) else ""
        if not fits(token, max_segments) and not is_url(token):
            chunks = _hard_cut(token, max_segments)
            tokens += chunks
            gaps += [""] * (len(chunks) - 1)
        else:
            tokens.append(token)
        gaps.append(gap)

    def sentence_end(k: int) -> bool:  # may we prefer a cut after token k?
        return bool(gaps[k]) and ("\n" in gaps[k] or bool(_SENTENCE_END.search(tokens[k])))

    parts: list[str] = []
    out_gaps: list[str] = []
    start = 0
    while start < len(tokens):
        end = start + 1  # the part is tokens[start:end]
        best_sentence: int | None = None
        while end < len(tokens):
            candidate = _render(tokens, gaps, start, end + 1)
            if not fits(candidate, max_segments):
                break
            if sentence_end(end - 1):
                best_sentence = end
            end += 1
        if end < len(tokens) and best_sentence is not None:
            end = best_sentence  # cut at the latest sentence end instead of mid-sentence
        parts.append(_render(tokens, gaps, start, end))
        if end < len(tokens):
            out_gaps.append(gaps[end - 1])
        start = end
    return Split(tuple(parts), tuple(out_gaps))


def _render(tokens: list[str], gaps: list[str], start: int, end: int) -> str:
    out: list[str] = []
    for k in range(start, end):
        out.append(tokens[k])
        if k < end - 1:
            out.append(gaps[k])
    return "".join(out)


def _hard_cut(token: str, max_segments: int) -> list[str]:
    """Cut one over-long token into maximal chunks that fit, avoiding cuts inside grapheme clusters."""
    chunks: list[str] = []
    rest = token
    while not fits(rest, max_segments):
        lo, hi = 1, len(rest) - 1  # the longest prefix that fits (fits() is monotone in length)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(rest[:mid], max_segments):
                lo = mid
            else:
                hi = mid - 1
        cut = lo
        while cut > 1 and _joins_previous(rest, cut):
            cut -= 1
        if _joins_previous(rest, cut):
            cut = lo  # one cluster longer than a segment: cutting it cannot be avoided
        chunks.append(rest[:cut])
        rest = rest[cut:]
    chunks.append(rest)
    return chunks


def _joins_previous(s: str, i: int) -> bool:
    """Would a cut between s[i-1] and s[i] split a grapheme cluster? (an approximation of UAX #29)"""
    prev, ch = s[i - 1], s[i]
    if prev == "\u200d" or ch == "\u200d":  # zero-width joiner sequences
        return True
    if unicodedata.category(ch) in ("Mn", "Mc", "Me"):  # combining marks
        return True
    if 0xFE00 <= ord(ch) <= 0xFE0F or 0x1F3FB <= ord(ch) <= 0x1F3FF or 0xE0020 <= ord(ch) <= 0xE007F:
        return True  # variation selectors, skin tones, tag sequences
    if _regional(prev) and _regional(ch):  # a flag is a pair of regional indicators
        run = 0
        k = i - 1
        while k >= 0 and _regional(s[k]):
            run, k = run + 1, k - 1
        return run % 2 == 1
    return prev == "\r" and ch == "\n"


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def plan_parts(text: str, *, max_segments: int = TWILIO_MAX_SEGMENTS) -> list[str]:
    """What the SMS channel sends for `text`: one message if it fits `max_segments`, else the split parts."""
    return list(split_text(text, max_segments=max_segments).parts)
