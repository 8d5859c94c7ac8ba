"""The people side's Slack posts, on the ``slack_notice`` outbox channel:

- ``slack.notice``: a top-level post in a given channel (a low CSAT score for the supervisors),
  with a link to the conversation's thread when it has one;
- ``slack.context``: the context package in the conversation's thread (`bot.desk.agent_context`),
  rendered at delivery; retried until the thread's root is posted.

Registered as the worker's ``slack_notice`` deliverer when Slack is on (`bot.app`).
A retry first looks for the post it may already have made (the entry id rides in the message
metadata), so a timeout never posts twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.desk.agent_context import KIND, render_agent_context
from bot.messages import SendResult
from bot.models import OutboxEntry
from bot.slack_models import SlackThread
from channels.base import PermanentSendError, TransientSendError
from channels.slack_format import escape, thread_link
from handoff.sla import SLAPolicy


class SlackNoticeDeliverer:
    def __init__(self, *, sessionmaker: async_sessionmaker[AsyncSession], api: Any,
                 sla_policy: SLAPolicy | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.api = api  # channels.slack_api.SlackApi
        self.sla_policy = sla_policy or SLAPolicy.from_spec()

    async def deliver(self, entry: OutboxEntry) -> SendResult:
        if entry.kind == KIND:
            return await self._context(entry)
        p = entry.payload or {}
        channel = p.get("channel")
        if not channel:
            raise PermanentSendError("a notice needs a channel", code="no_channel")
        marker = str(entry.id)
        if entry.attempts > 0:
            found = await self.api.find_marked(channel=channel, thread_ts=None, marker=marker)
            if found:
                return SendResult(platform_id=str(found))
        text = escape(str(p.get("text") or ""))  # it quotes the customer's comment
        link = None
        if entry.conversation_id is not None:
            async with self.sessionmaker() as session:
                thread = (await session.execute(select(SlackThread).where(
                    SlackThread.conversation_id == entry.conversation_id))).scalar_one_or_none()
            link = thread_link(thread.channel_id, thread.thread_ts) if thread else None
        if link:
            text = f"{text} \u00b7 <{link}|open the thread>"
        ts = await self.api.post_message(channel=channel, text=text, blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": f":warning: {text}"}}],
            metadata={"event_type": "switchboard_post", "event_payload": {"outbox": marker}})
        return SendResult(platform_id=ts)

    async def _context(self, entry: OutboxEntry) -> SendResult:
        conv_id = int(entry.conversation_id or 0)
        async with self.sessionmaker() as session:
            thread = (await session.execute(select(SlackThread).where(
                SlackThread.conversation_id == conv_id))).scalar_one_or_none()
            if thread is None:
                raise PermanentSendError(f"no Slack thread for conversation {conv_id}", code="no_thread")
            if not thread.thread_ts:
                raise TransientSendError("the thread's root is not posted yet", code="no_root", retry_after=2)
            text, blocks = await render_agent_context(session, conversation_id=conv_id, policy=self.sla_policy)
        marker = str(entry.id)
        if entry.attempts > 0:
            found = await self.api.find_marked(channel=thread.channel_id, thread_ts=thread.thread_ts, marker=marker)
            if found:
                return SendResult(platform_id=str(found))
        ts = await self.api.post_message(channel=thread.channel_id, text=text, blocks=blocks,
                                         thread_ts=thread.thread_ts,
                                         metadata={"event_type": "switchboard_post",
                                                   "event_payload": {"outbox": marker}})
        return SendResult(platform_id=ts)
