"""The worker's deliverer for channel "slack": renders and posts cards and thread posts, keeps
the thread mapping (`bot.slack_models`)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.desk.routing_tags import route_tags
from bot.handoff_context import build_context
from bot.messages import SendResult, utcnow
from bot.models import ChannelIdentity, Conversation, Customer, Event, OutboxEntry
from bot.models import ConversationState as S
from bot.settings import Settings
from bot.sla_watch import human_duration
from bot.slack_models import SlackThread
from channels import slack_blocks as kit
from channels.base import PermanentSendError, TransientSendError
from channels.slack_format import thread_link
from handoff.context import mask_address
from handoff.errors import SLAConfigError
from handoff.sla import SLAPolicy, sla_for_conversation

if TYPE_CHECKING:
    pass

log = logging.getLogger("switchboard.slack")
ERASED = "[erased]"


def masked(identity: ChannelIdentity | None) -> str:
    if identity is None:
        return "customer"
    return mask_address(identity.channel, identity.address) or "customer"


# ---- the deliverer ------------------------------------------------------------------------------------


class SlackDeliverer:
    """The worker's deliverer for channel "slack": posts cards and thread posts, keeps the mapping.

    Kinds: ``slack.card`` (root card; stores the thread ts), ``slack.post`` (thread post),
    ``slack.update`` (re-render the card), ``slack.escalation`` / ``slack.esc_update`` (the
    supervisors' card). Cards are rendered from the database at delivery time, so they always
    show the current state. A retry after an ambiguous failure (a timeout after Slack accepted)
    first looks for the post by its metadata, so nothing appears twice.
    """

    def __init__(self, *, sessionmaker: async_sessionmaker[AsyncSession], api: Any, settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.api = api  # channels.slack_api.SlackApi
        self.settings = settings
        self._sla_policy: Any = None  # handoff.sla.SLAPolicy, built on first use

    async def deliver(self, entry: OutboxEntry) -> Any:
        kind, p = entry.kind, entry.payload or {}
        conv_id = int(entry.conversation_id or p.get("conversation_id") or 0)
        async with self.sessionmaker() as session:
            thread = (await session.execute(
                select(SlackThread).where(SlackThread.conversation_id == conv_id))).scalar_one_or_none()
        marker = str(entry.id)
        meta = {"event_type": "switchboard_post", "event_payload": {"outbox": marker}}
        if kind == "slack.page":
            return SendResult(platform_id=await self._page(entry, conv_id, thread, marker, meta))
        if kind == "slack.erase":
            return SendResult(platform_id=await self._erase(p.get("posts") or []))
        if thread is None:
            raise PermanentSendError(f"no Slack thread for conversation {conv_id}", code="no_thread")
        if kind == "slack.card":
            if thread.card_ts:
                return SendResult(platform_id=thread.card_ts)
            text, blocks = await self._card(conv_id)
            ts = await self._find(entry, thread.channel_id, None, marker) or await self.api.post_message(
                channel=thread.channel_id, text=text, blocks=blocks, metadata=meta)
            await self._save(conv_id, thread_ts=ts, card_ts=ts)
            return SendResult(platform_id=ts)
        if kind == "slack.post":
            esc = p.get("target") == "esc"
            channel, root = (thread.esc_channel_id, thread.esc_ts) if esc else (thread.channel_id, thread.thread_ts)
            if not channel or not root:
                raise TransientSendError("the thread's root is not posted yet", code="no_root", retry_after=2)
            ts = await self._find(entry, channel, root, marker) or await self.api.post_message(
                channel=channel, text=p.get("text") or "", blocks=p.get("blocks"), thread_ts=root, metadata=meta)
            return SendResult(platform_id=ts)
        if kind == "slack.update":
            if not thread.card_ts:
                raise TransientSendError("the card is not posted yet", code="no_root", retry_after=2)
            text, blocks = await self._card(conv_id)
            await self.api.update_message(channel=thread.channel_id, ts=thread.card_ts, text=text, blocks=blocks)
            return SendResult(platform_id=thread.card_ts)
        if kind in ("slack.escalation", "slack.esc_update"):
            channel = thread.esc_channel_id or self.settings.slack_supervisors_channel
            if not channel:
                raise PermanentSendError("SLACK_SUPERVISORS_CHANNEL is not set", code="no_channel")
            text, blocks = await self._escalation(conv_id)
            if kind == "slack.escalation" and thread.esc_outbox_id == entry.id and not thread.esc_ts:
                ts = await self._find(entry, channel, None, marker) or await self.api.post_message(
                    channel=channel, text=text, blocks=blocks, metadata=meta)
                await self._save(conv_id, esc_ts=ts, esc_channel_id=channel)
                return SendResult(platform_id=ts)
            if thread.esc_ts:
                await self.api.update_message(channel=channel, ts=thread.esc_ts, text=text, blocks=blocks)
            return SendResult(platform_id=thread.esc_ts)
        raise PermanentSendError(f"unknown Slack outbox kind {kind!r}", code="unknown_kind")

    async def _erase(self, posts: list[dict[str, str]]) -> str | None:
        """``slack.erase`` (bot.gdpr): rewrite each of our posts in an erased person's threads to "[erased]".
        Idempotent (a retry rewrites them again); a post already deleted in Slack is skipped."""
        for post in posts:
            try:
                await self.api.update_message(channel=post["channel"], ts=post["ts"], text=ERASED,
                                              blocks=[kit.section(ERASED)])
            except PermanentSendError as exc:
                if exc.code not in ("message_not_found", "cant_update_message", "channel_not_found"):
                    raise
                log.info("erasing Slack post %s in %s: %s (skipped)", post["ts"], post["channel"], exc.code)
        return posts[0]["ts"] if posts else None

    async def _page(self, entry: OutboxEntry, conv_id: int, thread: SlackThread | None, marker: str,
                    meta: dict[str, Any]) -> str:
        """``slack.page``: an SLA breach, top level in the supervisors' channel, else in the conversation's thread."""
        p = entry.payload or {}
        channel, root = p.get("channel"), None
        if not channel and thread is not None:
            channel, root = thread.channel_id, thread.thread_ts
            if not root:
                raise TransientSendError("the thread's root is not posted yet", code="no_root", retry_after=2)
        if not channel:
            raise PermanentSendError("no channel to page: set SLACK_SUPERVISORS_CHANNEL", code="no_channel")
        async with self.sessionmaker() as session:
            conv = await store.get_conversation(session, conversation_id=conv_id)
            customer = await session.get(Customer, conv.customer_id)
            identity = await session.get(ChannelIdentity, conv.identity_id)
        due = datetime.fromisoformat(str(p.get("due_at")))
        link = thread_link(thread.channel_id, thread.thread_ts) if thread is not None else None
        text, blocks = kit.sla_page(
            kit.SlaPage(
                conversation_id=conv.id,
                customer=(customer.display_name if customer else None) or masked(identity),
                channel=conv.channel,
                priority=conv.priority,
                state=conv.state,
                clock=str(p.get("clock")),
                overdue=human_duration(float(p.get("overdue_seconds") or 0)),
                due=kit.slack_date(due.timestamp(), f"{due:%Y-%m-%d %H:%M} UTC"),
                mentions=list(p.get("mentions") or ()),
                link=link,
                assignee=conv.assignee_id,
            )
        )
        ts: str = await self._find(entry, channel, root, marker) or await self.api.post_message(
            channel=channel, text=text, blocks=blocks, thread_ts=root, metadata=meta)
        return ts

    def _sla_line(self, conv: Conversation) -> str | None:
        """The card's SLA line: each running clock's due time, or how it was breached."""
        if conv.state not in S.HUMAN:
            return None
        try:
            if self._sla_policy is None:
                self._sla_policy = SLAPolicy.from_settings(self.settings)
            status = sla_for_conversation(conv, policy=self._sla_policy, now=utcnow())
        except SLAConfigError as exc:
            log.warning("SLA settings: %s", exc)
            return None
        if status is None:
            return None
        parts = []
        for clock in (status.first_response, status.resolution):
            if not clock.running:
                continue
            label = kit.CLOCK_LABELS[clock.name].capitalize()
            due = kit.slack_date(clock.due_at.timestamp(), f"{clock.due_at:%Y-%m-%d %H:%M} UTC")
            if clock.breached:
                parts.append(f":rotating_light: *{label} SLA breached* ({human_duration(clock.remaining_seconds)} "
                             f"overdue, was due {due})")
            else:
                parts.append(f":alarm_clock: {label} due {due}")
        return " \u00b7 ".join(parts) or None

    async def _find(self, entry: OutboxEntry, channel: str, thread_ts: str | None, marker: str) -> str | None:
        if entry.attempts == 0:
            return None
        found: str | None = await self.api.find_marked(channel=channel, thread_ts=thread_ts, marker=marker)
        return found

    async def _save(self, conversation_id: int, **values: Any) -> None:
        async with self.sessionmaker() as session, session.begin():
            thread = (await session.execute(select(SlackThread).where(
                SlackThread.conversation_id == conversation_id))).scalar_one()
            for key, value in values.items():
                setattr(thread, key, value)

    async def _card(self, conversation_id: int) -> tuple[str, list[dict[str, Any]]]:
        async with self.sessionmaker() as session:
            conv = await store.get_conversation(session, conversation_id=conversation_id)
            customer = await session.get(Customer, conv.customer_id)
            identity = await session.get(ChannelIdentity, conv.identity_id)
        return kit.card(kit.CardInfo(
            conversation_id=conv.id, customer=(customer.display_name if customer else None) or masked(identity),
            channel=conv.channel, state=conv.state, priority=conv.priority, assignee=conv.assignee_id,
            tags=sorted(route_tags(conv, customer)), opted_out=bool(identity and identity.opted_out),
            reason=conv.handoff_reason, sla=self._sla_line(conv),
        ))

    async def _escalation(self, conversation_id: int) -> tuple[str, list[dict[str, Any]]]:
        async with self.sessionmaker() as session:
            package = (await build_context(session, conversation_id=conversation_id)).to_dict()
            conv = await store.get_conversation(session, conversation_id=conversation_id)
        taken = conv.assignee_id if conv.state == S.ASSIGNED and conv.assignee_role == "supervisor" else None
        return kit.escalation_card(package, taken_by=taken)


async def counts(session: AsyncSession) -> tuple[dict[str, int], dict[str, int]]:
    """Conversations per state, and today's events per kind (for `/switchboard stats`)."""
    states = dict((await session.execute(select(Conversation.state, func.count()).group_by(Conversation.state))).all())
    start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    events = dict((await session.execute(
        select(Event.kind, func.count()).where(Event.at >= start).group_by(Event.kind))).all())
    return {str(k): int(v) for k, v in states.items()}, {str(k): int(v) for k, v in events.items()}
