"""Small test doubles for the pipeline's collaborators (the real ones are tested on their own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import APIRouter

from bot.messages import Address, OutboundMessage, SendResult
from channels.base import ChannelHost, PermanentSendError, TransientSendError
from kb_index.types import Hit


class TableSearcher:
    """A Searcher that answers from a fixed table: phrase contained in the query -> (article, confidence)."""

    def __init__(self, table: dict[str, tuple[str, float]]) -> None:
        self.table = table
        self.queries: list[tuple[str, tuple[str, ...]]] = []

    async def search(
        self, query: str, *, history: Sequence[str] = (), last_article: str | None = None, k: int = 3
    ) -> list[Hit]:
        self.queries.append((query, tuple(history)))
        hits = [
            Hit(article_id=art, title=art.title(), snippet=f"About {art}", answer=f"Answer about {art}.",
                score=conf, confidence=conf)
            for phrase, (art, conf) in self.table.items()
            if phrase in query.lower()
        ]
        return sorted(hits, key=lambda h: -h.confidence)[:k] or [
            Hit(article_id="misc", title="Misc", snippet="", answer="Misc.", score=0.05, confidence=0.05)
        ]


class ScriptedChannel:
    """A customer channel whose sends fail as scripted, then succeed; records every accepted send."""

    name: ClassVar[str] = "web"

    def __init__(self, failures: Sequence[Exception] = ()) -> None:
        self.failures = list(failures)
        self.sent: list[tuple[Address, OutboundMessage]] = []
        self.calls = 0

    def router(self, host: ChannelHost) -> APIRouter:
        return APIRouter()

    async def send(self, to: Address, message: OutboundMessage) -> SendResult:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((to, message))
        return SendResult(platform_id=f"p-{message.message_id}-{self.calls}", status="sent")

    async def aclose(self) -> None:
        return None


def transient(retry_after: float | None = None) -> TransientSendError:
    return TransientSendError("platform said 503", code=503, retry_after=retry_after)


def permanent() -> PermanentSendError:
    return PermanentSendError("invalid recipient", code=21211)


def texts(channel: ScriptedChannel) -> list[str]:
    return [m.text for _, m in channel.sent]


def kwargs(**kw: Any) -> dict[str, Any]:
    return kw
