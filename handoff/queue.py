"""The people queue's order: priority first (urgent, high, normal, low), then who has waited longest.

    order_queue([QueueItem(7, "normal", t1), QueueItem(9, "urgent", t2)])  # 9 first, whatever the wait

Pure, plus `priority_rank_sql` for queries that must order (and limit) in the database the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case

PRIORITIES = ("urgent", "high", "normal", "low")
_RANK = {p: i for i, p in enumerate(PRIORITIES)}


def priority_rank(priority: str | None) -> int:
    """0 for urgent .. 3 for low; an unknown or missing priority ranks as normal."""
    return _RANK.get((priority or "normal").lower(), _RANK["normal"])


@dataclass(frozen=True, slots=True)
class QueueItem:
    conversation_id: int
    priority: str | None
    waiting_since: datetime | None  # the handoff; None (never handed off) goes last in its priority


def queue_key(item: QueueItem) -> tuple[int, int, float, int]:
    since = item.waiting_since
    return (priority_rank(item.priority), since is None, since.timestamp() if since else 0.0, item.conversation_id)


def order_queue(items: Iterable[QueueItem]) -> list[QueueItem]:
    return sorted(items, key=queue_key)


def priority_rank_sql(column: Any) -> Any:
    """The same rank as a SQL expression: ``order_by(priority_rank_sql(Conversation.priority), ...)``."""
    return case({p: i for p, i in _RANK.items()}, value=column, else_=_RANK["normal"])
