"""The worker's deliverer for channel "sms": look before resending, so a crash mid-send is not a duplicate.

Twilio has no idempotency key. An outbox entry whose earlier attempt may have reached Twilio (the
worker died with the lease held, or the call timed out after Twilio took it: ``attempts > 0``) is
first looked up: a message Twilio took for the same number with exactly this text, created since
the entry was written, whose SID no other entry or message already holds, is that attempt. It is
recorded as delivered instead of being sent again (as `bot.desk.slack_deliver` does with message
metadata). Otherwise the entry is sent. docs/security.md gives the measured duplicate window.

    deliverers["sms"] = SmsDeliverer(channel, sessionmaker=sm)
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.messages import SendResult
from bot.models import Message, OutboxEntry
from bot.worker import ChannelDeliverer

log = logging.getLogger("switchboard.sms")

CLOCK_SLACK = timedelta(minutes=2)  # our clock vs Twilio's date_created


@runtime_checkable
class SentLookup(Protocol):
    """What `channels.sms.SmsChannel.find_sent` offers: messages the platform already took."""

    async def find_sent(self, to: str, body: str, *, since: datetime, limit: int = 20) -> list[SendResult]: ...


class SmsDeliverer(ChannelDeliverer):
    def __init__(self, channel: Any, *, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(channel)
        self.lookup = channel if isinstance(channel, SentLookup) else None
        self.sessionmaker = sessionmaker
        self.found_instead_of_sent = 0  # resends avoided (tests, docs/security.md's measurement)

    async def deliver(self, entry: OutboxEntry) -> SendResult:
        p = entry.payload
        if entry.attempts > 0 and self.lookup is not None:
            since = entry.created_at - CLOCK_SLACK
            for candidate in await self.lookup.find_sent(p["to"], p["text"], since=since):
                if not await self._taken(candidate.platform_id, entry):
                    self.found_instead_of_sent += 1
                    log.info("outbox %s was already taken by Twilio as %s: not sent again", entry.id,
                             candidate.platform_id)
                    return candidate
        return await super().deliver(entry)

    async def _taken(self, sid: str | None, entry: OutboxEntry) -> bool:
        """Does another entry or message already own `sid` (an earlier identical reply)?"""
        others = select(Message.id).where(Message.platform_id == sid, Message.channel == "sms").limit(1)
        if entry.message_id is not None:
            others = others.where(Message.id != entry.message_id)
        async with self.sessionmaker() as session:
            in_outbox = (await session.execute(select(OutboxEntry.id).where(
                OutboxEntry.platform_id == sid, OutboxEntry.id != entry.id).limit(1))).first()
            in_messages = (await session.execute(others)).first()
        return in_outbox is not None or in_messages is not None
