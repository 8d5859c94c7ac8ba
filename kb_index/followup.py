"""A message in its conversation: the message is searched alone, with the previous turn, and the
previous turn by itself; the articles found are ranked by a small calibrated model over features
that describe the context (``FEATURES``), fitted on follow-up and topic-switch cases
(``bench/fit_followups.py``; coefficients in ``kb_index/data/followup.json``).

The features are the KB's own calibrated confidences in the three views, not raw scores, so one
fitted model serves any knowledge base: it learns how far to trust "the message alone is sure",
"the message with the previous turn is sure", "the customer was just answered with this article".
One more feature says how off-topic the message is: the share of its words the KB never uses
(``unknown``, from the KB's own BM25 vocabulary). An elliptical follow-up ("how long do I have?")
and an off-topic message ("tell me a joke") are both unsure alone; only the second brings words
of its own that no article uses, and without this the earlier turn answered it.

The model file (``followup.json``, version 2): ``{"version": 2, "features": [...FEATURES],
"coef": [one per feature], "intercept": float, "fitted_on": str}``. A version-1 file (no
``version``, the features without ``unknown``) still loads, with 0 for ``unknown``: the model as
it was. Any other feature list is refused.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kb_index.types import Hit

SearchText = Callable[[str, int], Awaitable[list[Hit]]]
VIEW_K = 5  # articles read from each view
MODEL_PATH = Path(__file__).with_name("data") / "followup.json"

FEATURES = (
    "alone",  # the article's confidence for the message alone
    "context",  # ... for the previous turn + the message
    "before",  # ... for the previous turn alone (what the customer was talking about)
    "alone_top",  # 1 if it is the message's own top article
    "context_top",  # 1 if it is the top article with the previous turn
    "last",  # 1 if the bot answered the previous turn with it
    "alone_best",  # the message's own best confidence (how self-contained it is)
    "context_best",
    "before_best",
    "words",  # log(1 + words in the message)
    "alone_x_top",  # alone * alone_top
    "context_x_top",  # context * context_top
    "last_x_context",  # last * context
    "last_x_alone_best",  # last * alone_best (a new, self-contained question overrides the prior)
    "alone_rival",  # the best confidence of another article, message alone
    "context_rival",  # ... with the previous turn
    "unknown",  # the share of the message's words the KB never uses (Lexical.unknown_share)
)
MODEL_VERSION = 2
V1_FEATURES = FEATURES[:-1]  # version 1: no "unknown"


@dataclass(frozen=True)
class Views:
    """The three searches behind one message in a conversation."""

    alone: list[Hit]
    context: list[Hit]
    before: list[Hit]

    def candidates(self) -> list[str]:
        seen: dict[str, None] = {}
        for h in [*self.alone, *self.context]:
            seen.setdefault(h.article_id, None)
        return list(seen)


def previous_turn(history: Sequence[str]) -> str:
    return next((h.strip() for h in reversed(history) if h.strip()), "")


async def views(search_text: SearchText, query: str, prev: str) -> Views:
    """The three searches, submitted together (one embedding batch)."""
    alone, context, before = await asyncio.gather(
        search_text(query, VIEW_K), search_text(f"{prev} {query}", VIEW_K), search_text(prev, VIEW_K)
    )
    return Views(alone, context, before)


def features(
    v: Views, query: str, last_article: str | None, *, unknown: float = 0.0
) -> tuple[list[str], np.ndarray]:
    """One row of ``FEATURES`` per candidate article (``unknown``: the message's share of words the
    KB never uses)."""
    ids = v.candidates()
    conf = [{h.article_id: h.confidence for h in hits} for hits in (v.alone, v.context, v.before)]
    best = [hits[0].confidence if hits else 0.0 for hits in (v.alone, v.context, v.before)]
    top_a = v.alone[0].article_id if v.alone else None
    top_c = v.context[0].article_id if v.context else None
    words = math.log1p(len(re.findall(r"\w+", query)))
    rows = []
    for a in ids:
        ca, cc, cb = (c.get(a, 0.0) for c in conf)
        ta, tc, last = float(a == top_a), float(a == top_c), float(a == last_article)
        rival = [max((x for b, x in c.items() if b != a), default=0.0) for c in conf[:2]]
        rows.append(
            [ca, cc, cb, ta, tc, last, *best, words, ca * ta, cc * tc, last * cc, last * best[0], *rival, unknown]
        )
    return ids, np.array(rows, dtype=np.float64).reshape(len(ids), len(FEATURES))


@dataclass(frozen=True)
class Model:
    """Logistic regression over ``FEATURES``: P(this candidate answers the message)."""

    coef: tuple[float, ...]
    intercept: float
    fitted_on: str = ""

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> Model:
        """A version-2 file, or a version-1 one (read with 0 for ``unknown``); others are refused."""
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        version, names = int(d.get("version", 1)), tuple(d["features"])
        coef = tuple(float(x) for x in d["coef"])
        if version == 1 and names == V1_FEATURES and len(coef) == len(names):
            coef += (0.0,)
        elif version != MODEL_VERSION or names != FEATURES or len(coef) != len(names):
            raise ValueError(f"{path}: version {version} fitted on other features ({list(names)}); refit it")
        return cls(coef, float(d["intercept"]), str(d.get("fitted_on", "")))

    def save(self, path: Path = MODEL_PATH) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        d = {"version": MODEL_VERSION, "features": list(FEATURES), "coef": list(self.coef),
             "intercept": self.intercept, "fitted_on": self.fitted_on}
        path.write_text(json.dumps(d, indent=1) + "\n", encoding="utf-8")

    def predict(self, X: np.ndarray) -> np.ndarray:
        z = X @ np.array(self.coef) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)))


CONTEXT_GAIN = 0.1  # the earlier turn "made the difference" when it adds this much (context view)


def rank(
    v: Views, query: str, last_article: str | None, model: Model, k: int, *, prev: str = "", unknown: float = 0.0
) -> list[Hit]:
    """The candidates ordered by the model, with its probability as their confidence; the hit
    (passage) comes from the view that ranks the article highest. A hit the message alone would
    not give (not its top article, or much surer with the previous turn) carries ``prev`` as its
    ``context``."""
    ids, X = features(v, query, last_article, unknown=unknown)
    if not ids:
        return []
    p = model.predict(X)
    by_id: dict[str, Hit] = {}
    for hits in (v.context, v.alone):
        for h in hits:
            by_id.setdefault(h.article_id, h)
    for h in v.alone[:1]:  # the message's own top article answers with its own best passage
        by_id[h.article_id] = h
    order = np.argsort(-p, kind="stable")[:k]
    top_alone = v.alone[0].article_id if v.alone else None
    alone = {h.article_id: h.confidence for h in v.alone}
    context = {h.article_id: h.confidence for h in v.context}
    out = []
    for i in order:
        a = ids[i]
        used = bool(prev) and (a != top_alone or context.get(a, 0.0) - alone.get(a, 0.0) > CONTEXT_GAIN)
        out.append(replace(by_id[a], confidence=float(p[i]), context=prev if used else None))
    return out


async def search(
    search_text: SearchText,
    query: str,
    *,
    history: Sequence[str],
    last_article: str | None,
    model: Model,
    k: int = 3,
    unknown: float = 0.0,
) -> list[Hit]:
    """``query`` answered in its conversation (``history``: the customer's earlier turns, oldest
    first; ``last_article``: what the bot answered last; ``unknown``: the share of the message's
    words the KB never uses, ``Lexical.unknown_share``)."""
    prev = previous_turn(history)
    if not prev:
        return await search_text(query, k)
    return rank(await views(search_text, query, prev), query, last_article, model, k, prev=prev, unknown=unknown)
