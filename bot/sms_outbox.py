"""A long SMS reply owes one outbox entry per part, so a crash never resends a part.

`channels.sms_segments.plan_parts` says what the SMS channel sends for a text: one (concatenated)
message when it fits ``sms_max_segments``, else several parts. Each part is its own outbox entry,
written in the same transaction as the reply, with consecutive ids on the customer's `order_key`:
the worker delivers them strictly in order, retries each on its own, and stores each part's
Twilio SID in its entry's `platform_id` when Twilio accepts it. A worker killed between parts
leaves the delivered parts marked delivered in the database; whoever claims next sends only what
is still owed. (The one window left is the same as for any message: Twilio accepted a part and
the process died before committing, so that one part is sent again on the lease's expiry.)

If a part is dead-lettered (a permanent error), the parts after it are cancelled, so the customer
never gets the end of a reply without its start.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.models import OutboxEntry, OutboxStatus
from channels.sms_segments import TWILIO_MAX_SEGMENTS, plan_parts


async def enqueue_reply(
    session: AsyncSession,
    *,
    channel: str,
    order_key: str,
    conversation_id: int | None,
    message_id: int | None,
    payload: dict[str, Any],
    sms_max_segments: int = TWILIO_MAX_SEGMENTS,
) -> list[OutboxEntry]:
    """Owe a customer message: one entry, or one per part for a split SMS (same transaction)."""
    parts = plan_parts(str(payload.get("text") or ""), max_segments=sms_max_segments) if channel == "sms" else []
    if len(parts) <= 1:
        return [await store.enqueue(session, channel=channel, order_key=order_key, conversation_id=conversation_id,
                                    message_id=message_id, payload=payload)]
    return [
        await store.enqueue(session, channel=channel, order_key=order_key, conversation_id=conversation_id,
                            message_id=message_id,
                            payload={**payload, "text": text, "part": n, "parts": len(parts)})
        for n, text in enumerate(parts, 1)
    ]


async def cancel_later_parts(session: AsyncSession, entry: OutboxEntry) -> int:
    """After part n of a split reply is dead-lettered: cancel parts n+1.. of the same message."""
    part = (entry.payload or {}).get("part")
    if entry.channel != "sms" or not part or entry.message_id is None:
        return 0
    result = await session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.message_id == entry.message_id, OutboxEntry.id > entry.id,
               OutboxEntry.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.CANCELLED, last_error=f"part {part} of this reply was dead-lettered")
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["enqueue_reply", "cancel_later_parts"]
