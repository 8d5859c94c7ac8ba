"""Shapes shared between the KB engine and its callers (the pipeline, Slack, the CLI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Hit:
    """One article the engine proposes for a query.

    `confidence` is a calibrated probability that this article answers the query (0..1);
    `score` is the raw fused retrieval score; `answer` is text fit to send to a customer
    (the best passage, with enough of the article's context to stand alone); `snippet` is a
    short preview for agents; `context` is the earlier turn that made the difference, when
    the message was read in its conversation.
    """

    article_id: str
    title: str
    snippet: str
    answer: str
    score: float
    confidence: float
    url: str | None = None
    context: str | None = None  # the earlier customer turn this hit was found with (a follow-up)


class Searcher(Protocol):
    """What the pipeline needs from the KB engine.

    Example::

        hits = await kb.search("where is my parcel?", history=["I ordered on Monday"], k=3)
        if hits and hits[0].confidence >= settings.answer_threshold: reply(hits[0].answer)
    """

    async def search(
        self, query: str, *, history: Sequence[str] = (), last_article: str | None = None, k: int = 3
    ) -> list[Hit]: ...
