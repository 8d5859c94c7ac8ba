"""A short extractive summary of what the customer said: no model, just TF-IDF and position.

Each customer sentence is a document. A word weighs its frequency across the conversation
times its inverse sentence frequency (a topic the customer keeps returning to, in words not
used everywhere); a sentence scores the sum of its distinct words' weights over the square
root of its length, boosted when it opens the conversation (the problem statement), closes
it (the latest state), or carries a number (order ids, amounts, dates). Greetings and
one-word sentences never qualify. The best 2-3 come back in the order they were written.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_TOKEN = re.compile(r"[a-z0-9][a-z0-9'_-]*")
_HAS_NUMBER = re.compile(r"\d")
STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't dont down
    during each few for from further had hadn't has hasn't have haven't having he her here hers herself him
    himself his how i i'd i'll i'm i've im if in into is isn't it it's its itself just let's me more most
    my myself no nor not now of off on once only or other ought our ours ourselves out over own same she
    should so some such than that that's the their theirs them themselves then there there's these they
    this those through to too under until up very was wasn't we were weren't what what's when where which
    while who whom why will with won't would wouldn't you you're your yours yourself also get got please
    pls thanks thank thx hi hello hey ok okay yes yeah yep no nope hmm well really still one like know
    want need would could""".split()
)
GREETINGS = frozenset("hi hello hey thanks thank you thx ok okay yes no please bye cheers".split())
MAX_SENTENCE_CHARS = 240


def sentences(texts: Sequence[str]) -> list[tuple[int, str]]:
    """(message index, sentence) for every non-empty sentence, in order."""
    out: list[tuple[int, str]] = []
    for i, text in enumerate(texts):
        for s in _SENTENCE_SPLIT.split(text or ""):
            s = " ".join(s.split())
            if s:
                out.append((i, s))
    return out


def content_words(sentence: str) -> list[str]:
    return [t for t in _TOKEN.findall(sentence.lower()) if t not in STOPWORDS and len(t) > 1]


def summarize(texts: Sequence[str], *, max_sentences: int = 3, min_sentences: int = 2) -> list[str]:
    """The most informative customer sentences (2-3), in conversation order.

    A third sentence is kept only if it scores at least half of the best one.
    """
    items = sentences(texts)
    candidates = []
    for pos, (msg_index, sentence) in enumerate(items):
        words = content_words(sentence)
        if len(words) < 2 and not (words and _HAS_NUMBER.search(sentence)):
            continue
        if all(w in GREETINGS for w in _TOKEN.findall(sentence.lower())):
            continue
        candidates.append((pos, msg_index, sentence, words))
    if not candidates:
        return []
    n = len(candidates)
    df: Counter[str] = Counter()
    tf: Counter[str] = Counter()
    for _, _, _, words in candidates:
        df.update(set(words))
        tf.update(words)
    idf = {w: math.log((1 + n) / (1 + d)) + 1.0 for w, d in df.items()}
    last_msg = max(c[1] for c in candidates)
    scored: list[tuple[float, int, str]] = []
    for pos, msg_index, sentence, words in candidates:
        distinct = set(words)
        score = sum(tf[w] * idf[w] for w in distinct) / math.sqrt(len(words))
        if msg_index == 0:
            score *= 1.25
        elif msg_index == last_msg:
            score *= 1.1
        if _HAS_NUMBER.search(sentence):
            score *= 1.15
        scored.append((score, pos, sentence))
    ranked = sorted(scored, key=lambda item: (-item[0], item[1]))
    chosen = ranked[:min_sentences]
    best = ranked[0][0]
    for item in ranked[min_sentences:max_sentences]:
        if item[0] >= 0.5 * best:
            chosen.append(item)
    chosen.sort(key=lambda item: item[1])
    return [_clip(sentence) for _, _, sentence in chosen]


def _clip(sentence: str) -> str:
    if len(sentence) <= MAX_SENTENCE_CHARS:
        return sentence
    return sentence[: MAX_SENTENCE_CHARS - 1].rstrip() + "\u2026"
