"""The console's queue: open handed-off conversations in the routed queue's order, with filters.

    rows = await queue_rows(session, policy=sla_policy, warn_at=0.8, filters=QueueFilters(state="waiting"))

Order is `handoff.queue.order_queue` (priority, then who has waited longest), the same order
routing and auto-assignment use; SLA clock states come from `bot.sla_watch.clock_alerts`, the same
rule that warns and pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.console.forms import clean
from bot.messages import utcnow
from bot.models import Conversation
from bot.models import ConversationState as S
from bot.sla_watch import BREACHED, WARNING, clock_alerts, describe_clock
from handoff.context import mask_address
from handoff.queue import QueueItem, order_queue
from handoff.sla import SLAPolicy, sla_for_conversation

STATES = S.HUMAN  # waiting, assigned, escalated
CLOCK_LABELS = {"first_response": "First response", "resolution": "Resolution"}


@dataclass(frozen=True, slots=True)
class QueueFilters:
    state: str | None = None
    channel: str | None = None
    owner: str | None = None  # an assignee id, or "none" for nobody's
    tag: str | None = None

    @classmethod
    def parse(cls, params: dict[str, str]) -> QueueFilters:
        def field(key: str) -> str | None:
            return clean(params.get(key), limit=64) or None

        state = field("state")
        return cls(state=state if state in STATES else None, channel=field("channel"), owner=field("owner"),
                   tag=(field("tag") or "").lower() or None)


@dataclass(frozen=True, slots=True)
class Clock:
    name: str
    label: str
    text: str  # "due in 12 min" / "OVERDUE 5 min" / "met"
    status: str  # ok | warning | breached | met


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    state: str
    channel: str
    priority: str
    customer: str
    vip: bool
    reason: str | None
    owner: str | None
    owner_id: str | None
    waiting_since: datetime | None
    tags: tuple[str, ...]
    clocks: tuple[Clock, ...]


def clocks_for(conv: Conversation, policy: SLAPolicy, now: datetime, warn_at: float) -> tuple[Clock, ...]:
    status = sla_for_conversation(conv, policy=policy, now=now)
    if status is None:
        return ()
    alerts = clock_alerts(conv, policy, now, warn_at)
    out = []
    for clock in (status.first_response, status.resolution):
        if clock.met_at is not None:
            kind = "breached" if clock.breached else "met"
        else:
            kind = {BREACHED: "breached", WARNING: "warning"}.get(alerts.get(clock.name, ""), "ok")
        out.append(Clock(clock.name, CLOCK_LABELS[clock.name], describe_clock(clock), kind))
    return tuple(out)


def customer_label(conv: Conversation) -> str:
    cust = conv.customer
    if cust is not None and cust.display_name:
        return cust.display_name
    if cust is not None and cust.email:
        return mask_address("email", cust.email)
    return mask_address(conv.channel, conv.identity.address) if conv.identity is not None else f"#{conv.id}"


async def queue_rows(session: AsyncSession, *, policy: SLAPolicy, warn_at: float,
                     filters: QueueFilters | None = None, now: datetime | None = None,
                     limit: int = 500) -> list[QueueRow]:
    f = filters or QueueFilters()
    now = now or utcnow()
    stmt = (select(Conversation).where(Conversation.state.in_([f.state] if f.state else STATES))
            .options(selectinload(Conversation.customer), selectinload(Conversation.identity)).limit(limit))
    if f.channel:
        stmt = stmt.where(Conversation.channel == f.channel)
    if f.owner == "none":
        stmt = stmt.where(Conversation.assignee_id.is_(None))
    elif f.owner:
        stmt = stmt.where(Conversation.assignee_id == f.owner)
    convs = {c.id: c for c in (await session.scalars(stmt)).all()}
    if f.tag:
        convs = {i: c for i, c in convs.items()
                 if f.tag in {str(t).lower() for t in (c.tags or [])} | {str(t).lower() for t in
                                                                         (c.customer.tags or [])}}
    order = order_queue(QueueItem(c.id, c.priority, c.handed_off_at) for c in convs.values())
    rows = []
    for item in order:
        c = convs[item.conversation_id]
        tags = tuple(dict.fromkeys([*map(str, c.tags or []), *map(str, c.customer.tags or [])]))
        rows.append(QueueRow(
            id=c.id, state=c.state, channel=c.channel, priority=c.priority or "normal",
            customer=customer_label(c), vip=bool(c.customer.vip), reason=c.handoff_reason,
            owner=c.assignee_name or c.assignee_id, owner_id=c.assignee_id, waiting_since=c.handed_off_at,
            tags=tags, clocks=clocks_for(c, policy, now, warn_at),
        ))
    return rows


async def filter_choices(session: AsyncSession) -> dict[str, list[str]]:
    """The channels and owners present in the open queue (the filter drop-downs)."""
    rows = (await session.execute(select(Conversation.channel, Conversation.assignee_id, Conversation.assignee_name)
                                  .where(Conversation.state.in_(STATES)))).all()
    owners = sorted({(r.assignee_id, r.assignee_name or r.assignee_id) for r in rows if r.assignee_id})
    return {"channels": sorted({r.channel for r in rows}), "owners": [o[0] for o in owners],
            "owner_names": [o[1] for o in owners]}


__all__ = ["QueueFilters", "QueueRow", "Clock", "queue_rows", "filter_choices", "customer_label", "STATES"]
