"""Anger: VADER's compound score plus shouting as evidence.

VADER scores a whole message; a long message can dilute one furious sentence, so we take the
lowest of the whole-message and per-sentence compounds. Shouting (mostly capitals) and runs of
"!!!"/"?!?" lower the score further, but never make a neutral or positive message angry on
their own ("THANK YOU!!!" stays calm).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

SHOUT_PENALTY = 0.2
PUNCT_PENALTY = 0.1
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_PUNCT_RUN = re.compile(r"[!?]*!{2,}[!?]*|[!?]{3,}")


@dataclass(frozen=True, slots=True)
class Mood:
    compound: float  # lowest VADER compound over the message and its sentences, -1..1
    shouting: bool  # mostly capitals (at least 8 letters, 70 % upper-case)
    exclaiming: bool  # "!!", "!!!", "?!?" ...
    score: float  # compound lowered by shouting/exclaiming evidence when already negative

    def describe(self) -> str:
        parts = [f"compound {self.compound:.2f}"]
        if self.shouting:
            parts.append("shouting (mostly capitals)")
        if self.exclaiming:
            parts.append("repeated !!!")
        if self.score != self.compound:
            parts.append(f"score {self.score:.2f}")
        return ", ".join(parts)


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def is_shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 8:
        return False
    return sum(c.isupper() for c in letters) / len(letters) >= 0.7


def mood(text: str) -> Mood:
    """Score one customer message (pure; ~0.1 ms for a short message)."""
    analyzer = _analyzer()
    compounds = [analyzer.polarity_scores(text)["compound"]]
    sentences = [s for s in _SENTENCES.split(text) if s.strip()]
    if len(sentences) > 1:
        compounds.extend(analyzer.polarity_scores(s)["compound"] for s in sentences)
    compound = min(compounds)
    shouting = is_shouting(text)
    exclaiming = bool(_PUNCT_RUN.search(text))
    score = compound
    if compound < 0:
        score -= SHOUT_PENALTY * shouting + PUNCT_PENALTY * exclaiming
    return Mood(compound=compound, shouting=shouting, exclaiming=exclaiming, score=max(-1.0, score))
