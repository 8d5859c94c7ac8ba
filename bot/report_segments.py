"""A conversation's event log cut into segments: one from `created` (or each `reopened`) to `resolved`.

Reports read these instead of the conversation's columns, which a reopen overwrites
(`handed_off_at`, `first_human_response_at`, `resolved_at` are cleared when a customer writes
again). Pure: plain rows in, plain segments out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.report_rows import EventRow

#: Events that mean a person was involved (queue entry or a person acting).
HUMAN_KINDS = frozenset({"handed_off", "escalated", "assigned", "agent_replied"})
QUEUE_KINDS = frozenset({"handed_off", "escalated", "assigned"})
START_KINDS = frozenset({"created", "reopened"})


@dataclass
class Segment:
    conversation_id: int
    start: datetime
    start_kind: str  # created | reopened
    queued_at: datetime | None = None  # first handoff, escalation or assignment in the segment
    priority: str | None = None  # of the first handoff (the decision's priority)
    first_reply_at: datetime | None = None  # first reply by a person after the queue entry
    replies: int = 0  # replies by people (internal notes are not replies)
    bot_answers: int = 0
    owner: str | None = None  # who held it last (the latest `assigned.to`)
    owner_since: datetime | None = None
    resolved_at: datetime | None = None
    resolved_owner: str | None = None
    human_events: list[datetime] = field(default_factory=list)

    @property
    def human(self) -> bool:
        return bool(self.human_events)


def ordered(events: Iterable[EventRow]) -> list[EventRow]:
    return sorted(events, key=lambda e: (e.at, e.id))


def segments(events: Sequence[EventRow]) -> list[Segment]:
    """Cut one conversation's events (any order) into segments, oldest first.

    A segment starts at `created` or `reopened`; activity by a person or the bot after a
    resolution without a `reopened` event (an agent writing after resolve) starts one too.
    """
    out: list[Segment] = []
    current: Segment | None = None
    for e in ordered(events):
        if e.kind == "created" and current is not None:
            continue  # a duplicate `created`
        after_resolve = current is not None and current.resolved_at is not None
        if (e.kind in START_KINDS or current is None
                or (after_resolve and (e.kind in HUMAN_KINDS or e.kind == "bot_answered"))):
            kind = e.kind if e.kind in START_KINDS else ("created" if current is None else "reopened")
            current = Segment(conversation_id=e.conversation_id, start=e.at, start_kind=kind)
            out.append(current)
            if e.kind in START_KINDS:
                continue
        elif after_resolve:
            continue  # surveys, opt-outs... after the resolution belong to no segment
        _apply(current, e)
    return out


def _apply(seg: Segment, e: EventRow) -> None:
    if e.kind in HUMAN_KINDS:
        seg.human_events.append(e.at)
    if e.kind in QUEUE_KINDS and seg.queued_at is None:
        seg.queued_at = e.at
        prio = e.data.get("priority")
        seg.priority = str(prio) if prio else None
    if e.kind == "assigned":
        seg.owner = str(e.data.get("to")) if e.data.get("to") else seg.owner
        seg.owner_since = e.at
    elif e.kind == "released":
        seg.owner = seg.owner_since = None
    elif e.kind == "agent_replied":
        seg.replies += 1
        if seg.first_reply_at is None:
            seg.first_reply_at = e.at
            if seg.queued_at is None:
                seg.queued_at = e.at
    elif e.kind == "bot_answered":
        seg.bot_answers += 1
    elif e.kind == "resolved":
        seg.resolved_at = e.at
        seg.resolved_owner = seg.owner


def by_conversation(events: Iterable[EventRow]) -> dict[int, list[EventRow]]:
    out: dict[int, list[EventRow]] = {}
    for e in events:
        out.setdefault(e.conversation_id, []).append(e)
    return out
