"""Small test doubles for the pipeline's collaborators (the real ones are tested on their own)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agents import Agents
from bot.conversations import Conversations
from bot.desk.base import Desk, NullDesk
from bot.engine import Pipeline
from bot.messages import Address, OutboundMessage, SendResult
from bot.settings import Settings
from channels.base import ChannelHost, PermanentSendError, TransientSendError
from handoff.policy import Policy, PolicyConfig
from kb_index.types import Hit, Searcher


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


@dataclass
class Core:
    """What `bot.app.build_parts` builds around one desk: the conversation moves, the agent actions
    and the pipeline, sharing the desk, the policy and the worker's wake-up."""

    conversations: Conversations
    agents: Agents
    pipeline: Pipeline


def make_core(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, *, kb: Searcher | None,
              policy: Policy | None = None, desk: Desk | None = None, wake: Callable[[], None] | None = None,
              conversations: Conversations | None = None, **pipeline_kw: Any) -> Core:
    policy = policy or Policy(PolicyConfig.from_settings(settings))
    conversations = conversations or Conversations(settings=settings, desk=desk or NullDesk())
    agents = Agents(sessionmaker=sessionmaker, settings=settings, conversations=conversations, policy=policy,
                    wake=wake)
    pipeline = Pipeline(sessionmaker=sessionmaker, settings=settings, kb=kb, policy=policy,
                        conversations=conversations, wake=wake, **pipeline_kw)
    return Core(conversations, agents, pipeline)
