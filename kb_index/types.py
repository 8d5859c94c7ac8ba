"""Shapes shared between the KB engine and its callers (the pipeline, Slack, the CLI)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol


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


class Phrasing(NamedTuple):
    """A question an agent tied to an article (or marked as not answered by it: negative)."""

    article_id: str
    question: str
    negative: bool = False


@dataclass(frozen=True, slots=True)
class HitRecord:
    """One proposed article as a turn's record keeps it (erasure keeps only the id)."""

    article_id: str
    title: str | None = None
    confidence: float | None = None
    score: float | None = None

    @classmethod
    def of(cls, hit: Hit) -> HitRecord:
        return cls(hit.article_id, hit.title, round(hit.confidence, 4), round(hit.score, 4))


@dataclass(frozen=True, slots=True)
class KbRecord:
    """What the KB made of one customer message, kept with it as ``Message.meta["kb"]``: written by
    the pipeline's turn, read by the desks, the handoff context, reports, gaps and data protection.

    `query` is the text as the KB read it (with `context_turn`, the earlier turn, when that made the
    difference); `answered` is whether the bot answered it (None: not decided, e.g. before a turn);
    `downvoted`: the customer rated the answer unhelpful, which counts it as not answered.
    """

    query: str
    answered: bool | None = None
    hits: tuple[HitRecord, ...] = ()
    context_turn: str | None = None
    downvoted: bool = False

    def to_meta(self) -> dict[str, Any]:
        """The JSON the message's meta holds under "kb" (absent fields left out)."""
        out: dict[str, Any] = {"query": self.query}
        if self.context_turn:
            out["context_turn"] = self.context_turn
        if self.answered is not None:
            out["answered"] = self.answered
        if self.hits:
            out["hits"] = [{k: v for k, v in (("article_id", h.article_id), ("title", h.title),
                                              ("confidence", h.confidence), ("score", h.score)) if v is not None}
                           for h in self.hits]
        if self.downvoted:
            out["downvoted"] = True
        return out

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None, *, text: str = "") -> KbRecord | None:
        """The record in a message's meta (None when the message has none); `text`, the message's
        own text, stands in for a missing query."""
        kb = (meta or {}).get("kb")
        if not isinstance(kb, Mapping):
            return None
        answered = kb.get("answered")
        hits = tuple(
            HitRecord(str(h.get("article_id", "")), _str_or_none(h.get("title")),
                      _float_or_none(h.get("confidence")), _float_or_none(h.get("score")))
            for h in kb.get("hits") or () if isinstance(h, Mapping)
        )
        return cls(query=str(kb.get("query") or text), answered=answered if isinstance(answered, bool) else None,
                   hits=hits, context_turn=_str_or_none(kb.get("context_turn")), downvoted=bool(kb.get("downvoted")))

    @property
    def missed(self) -> bool:
        """A question the bot did not answer confidently (or answered unhelpfully): a KB gap."""
        return self.answered is False


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
