"""The conversation pipeline: a customer's message in -> answer | clarifying question | handoff.

`Pipeline.receive` stores a customer message idempotently and returns before the bot turn
runs (channels acknowledge right after it). The turn runs in a tracked background task; a
message whose turn never finished (a crash) is picked up again by `recover_unprocessed`.
Every reply is written to the outbox in the same transaction as the state change that owes it
(`bot.conversations`). What people do to a conversation is `bot.agents`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import delivery_status as delivery
from bot import store, turn_context
from bot.conversations import Conversations, decision_dict
from bot.csat import capture_rating
from bot.messages import Address, InboundMessage, Receipt, TranscriptItem, utcnow
from bot.models import Conversation, Customer, Message
from bot.models import ConversationState as S
from bot.optout import apply_compliance
from bot.privacy import Redactor, door_meta
from bot.settings import Settings
from handoff.policy import Decision, Policy, Turn
from kb_index import clarify
from kb_index.threshold import threshold_in_force
from kb_index.types import Hit, Searcher

log = logging.getLogger("switchboard.engine")

# Bot turns running at once in one process. The others wait without holding a database connection,
# so storing new messages (before we acknowledge them) never queues behind a burst of turns for the
# pool (bot.db: 10 + 10 overflow). Found by bench/webchat_load.py: with 1,000 sockets asking at once,
# web chat messages timed out (15 s) waiting for a pooled connection to be stored (bench/RESULTS.md).
TURN_SLOTS = 8


class Pipeline:
    """Implements `channels.base.ChannelHost`: the customer's side of every channel."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        kb: Searcher | None,
        policy: Policy,
        conversations: Conversations,
        wake: Callable[[], None] | None = None,
        redactor: Redactor | None = None,
        turn_slots: int = TURN_SLOTS,
    ) -> None:
        self.sessionmaker = sessionmaker
        self._turn_slots = asyncio.Semaphore(turn_slots)
        self.settings = settings
        self.redactor = redactor or Redactor.from_settings(settings)
        self.kb = kb
        self.policy = policy
        self.conversations = conversations
        self._wake = wake or (lambda: None)
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- customer side (ChannelHost) ----------------------------------------------------------

    async def receive(self, message: InboundMessage) -> Receipt:
        receipt, needs_turn = await self._store_inbound(message)
        if needs_turn:
            self._spawn(self.process(receipt.message_id))
        return receipt

    async def _store_inbound(self, msg: InboundMessage) -> tuple[Receipt, bool]:
        clean = self.redactor.inbound(msg.text)  # at the door: nothing below sees the personal data
        msg = replace(msg, text=clean.text, meta=door_meta(msg.meta, clean.kinds))
        async with self.sessionmaker() as session, session.begin():
            existing = await store.find_message(session, channel=msg.channel, platform_id=msg.platform_id)
            if existing is not None:
                return self._duplicate(existing), existing.processed_at is None
            identity = await store.get_or_create_identity(
                session, address=msg.sender, display_name=msg.display_name
            )
            if (rated := await capture_rating(self.conversations, session, identity=identity, message=msg)) is not None:
                return rated, False  # a CSAT answer: stored on the surveyed conversation, no bot turn
            conv = await self.conversations.conversation_for(session, identity=identity)
            meta: dict[str, Any] = dict(msg.meta)
            if msg.attachments:
                meta["attachments"] = [{"url": a.url, "content_type": a.content_type} for a in msg.attachments]
            try:
                async with session.begin_nested():
                    row = await store.add_message(
                        session,
                        conversation_id=conv.id,
                        channel=msg.channel,
                        direction="in",
                        author_kind="customer",
                        author_name=msg.display_name,
                        text=msg.text,
                        sealed_text=clean.sealed,
                        platform_id=msg.platform_id,
                        meta=meta,
                        created_at=msg.received_at,
                    )
            except IntegrityError:
                # A concurrent retry of the same platform message won the race.
                existing = await store.find_message(session, channel=msg.channel, platform_id=msg.platform_id)
                assert existing is not None
                return self._duplicate(existing), False
            return Receipt(message_id=row.id, conversation_id=conv.id, duplicate=False, text=row.text), True

    @staticmethod
    def _duplicate(existing: Message) -> Receipt:
        return Receipt(message_id=existing.id, conversation_id=existing.conversation_id, duplicate=True,
                       text=existing.text)

    async def history(self, address: Address, *, after_id: int = 0, limit: int = 500) -> Sequence[TranscriptItem]:
        async with self.sessionmaker() as session:
            identity = await store.find_identity(session, address=address)
            if identity is None:
                return []
            ids = (
                await session.execute(
                    select(Conversation.id).where(Conversation.identity_id == identity.id)
                )
            ).scalars().all()
            rows = await store.transcript(session, conversation_ids=list(ids), after_id=after_id, limit=limit)
            return [
                TranscriptItem(
                    id=m.id,
                    direction=m.direction,
                    author_kind=m.author_kind,
                    text=m.text,
                    created_at=m.created_at,
                    platform_id=m.platform_id if m.direction == "in" else None,
                    author_name=m.author_name,
                )
                for m in rows
            ]

    async def request_human(self, address: Address) -> None:
        async with self.sessionmaker() as session, session.begin():
            identity = await store.get_or_create_identity(session, address=address)
            conv = await self.conversations.conversation_for(session, identity=identity)
            # locked and read again: the bot's own turn may be handing it off right now (one notice)
            conv = await store.get_conversation(session, conversation_id=conv.id, lock=True)
            if conv.state != S.BOT:
                return
            decision = Decision(
                trigger="asked_for_human", evidence="pressed 'talk to a human'", target="agent", priority="normal"
            )
            await self.conversations.hand_off(session, conv, decision)
        self._wake()

    async def delivery_status(
        self, channel: str, platform_id: str, status: str, *, error_code: str | None = None
    ) -> None:
        async with self.sessionmaker() as session, session.begin():
            msg = await store.find_message(session, channel=channel, platform_id=platform_id)
            if msg is None:
                log.info("status %s for unknown %s message %s", status, channel, platform_id)
                return
            if not delivery.advances(msg.delivery_status, status):
                return  # out of order, repeated or unknown: never backwards, agents warned once
            msg.delivery_status = status
            msg.error_code = error_code
            if status in delivery.PROBLEMS:
                conv = await store.get_conversation(session, conversation_id=msg.conversation_id)
                await self.conversations.desk.on_delivery_problem(session, conversation=conv, message=msg)
        self._wake()

    # ---- the bot turn ----------------------------------------------------------------------------

    async def process(self, message_id: int) -> None:
        """Run the bot turn for one stored inbound message (idempotent); at most `turn_slots` at once."""
        async with self._turn_slots:
            await self._process(message_id)

    async def _process(self, message_id: int) -> None:
        async with self.sessionmaker() as session:
            msg = await session.get(Message, message_id)
            if msg is None or msg.processed_at is not None:
                return
            history = await store.recent_texts(
                session, conversation_id=msg.conversation_id, author_kinds=("customer",), before_id=msg.id, limit=2
            )
            prev_bot = await turn_context.last_bot_meta(
                session, conversation_id=msg.conversation_id, before_id=msg.id
            )
            text = msg.text
        choice = turn_context.picked(prev_bot, text)  # the reply to a clarifying question
        hits = [choice] if choice else await self._search(text, history, turn_context.answered_article(prev_bot))
        async with self.sessionmaker() as session, session.begin():
            # Claim the turn atomically: the first writer wins (a row lock on PostgreSQL, the
            # database write lock on SQLite); a concurrent or repeated call finds nothing to do.
            claimed = await session.execute(
                update(Message)
                .where(Message.id == message_id, Message.processed_at.is_(None))
                .values(processed_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            if not getattr(claimed, "rowcount", 0):
                return
            msg = (await session.execute(select(Message).where(Message.id == message_id))).scalar_one()
            conv = await store.get_conversation(session, conversation_id=msg.conversation_id, lock=True)
            customer = await session.get(Customer, conv.customer_id)
            await self._turn(session, conv, msg, hits, customer)
        self._wake()

    async def _search(self, text: str, history: Sequence[str], last_article: str | None) -> list[Hit]:
        if self.kb is None or not text.strip():
            return []
        try:
            return await self.kb.search(text, history=history, last_article=last_article, k=3)
        except Exception:  # the KB failing must not lose the customer: hand off instead
            log.exception("KB search failed")
            return []

    async def _turn(
        self,
        session: AsyncSession,
        conv: Conversation,
        msg: Message,
        hits: list[Hit],
        customer: Customer | None,
    ) -> None:
        if await apply_compliance(self.conversations, session, conv, msg):
            return  # STOP / START / HELP keywords: handled, no bot turn
        top = hits[0] if hits else None
        threshold = threshold_in_force(self.settings.answer_threshold, self.kb).value
        confident = top is not None and top.confidence >= threshold
        bot_replies = await store.recent_texts(
            session, conversation_id=conv.id, author_kinds=("bot",), limit=2
        )
        decision: Decision | None = None
        if conv.state in (S.BOT, S.WAITING, S.ASSIGNED):
            decision = self.policy.decide(
                Turn(
                    text=msg.text,
                    state=conv.state,
                    hits=hits,
                    low_confidence_streak=conv.low_confidence_streak,
                    previous_bot_replies=bot_replies,
                    customer_vip=bool(customer and customer.vip),
                    customer_flagged=bool(customer and customer.flagged),
                    answer_threshold=threshold,
                )
            )
            if decision is not None and conv.state != S.BOT and decision.target != "supervisor":
                decision = None  # already with people; only a supervisor escalation changes anything
            if decision is not None and turn_context.ask_instead(
                decision.trigger, decision.also, hits, threshold=threshold
            ):
                decision = None  # unsure between two articles: ask which one before handing off
        will_answer = conv.state == S.BOT and decision is None and confident and self.settings.auto_answer
        msg.meta = {
            **(msg.meta or {}),
            "kb": turn_context.kb_record(msg.text, hits, answered=will_answer).to_meta(),
            **({"decision": decision_dict(decision)} if decision else {}),
        }
        # The agents see the customer's message (with suggestions) before whatever the bot does next.
        await self.conversations.desk.on_customer_message(session, conversation=conv, message=msg, hits=hits,
                                                          decision=decision)
        if conv.state == S.BOT:
            if decision is not None:
                await self.conversations.hand_off(session, conv, decision)
            elif self.settings.auto_answer and (offer := clarify.options(hits, threshold=threshold)):
                question, meta = turn_context.clarifying(offer, numbered=conv.channel == "sms")
                await self.conversations.say(session, conv, question, author_kind="bot", meta=meta)
                await store.log_event(session, kind="bot_clarified", conversation_id=conv.id, data={
                    "articles": [h.article_id for h in offer],
                })
            elif confident and self.settings.auto_answer and top is not None:
                conv.low_confidence_streak = 0
                await self.conversations.say(session, conv, top.answer, author_kind="bot", meta={
                    "kb_article": top.article_id, "confidence": round(top.confidence, 4), "url": top.url,
                })
                await store.log_event(session, kind="bot_answered", conversation_id=conv.id, data={
                    "article_id": top.article_id, "confidence": top.confidence,
                })
            else:
                conv.low_confidence_streak += 1
                await store.log_event(session, kind="bot_unsure", conversation_id=conv.id, data={
                    "confidence": top.confidence if top else None, "streak": conv.low_confidence_streak,
                })
                await self.conversations.say(
                    session, conv,
                    "I'm not sure I have the right answer to that. Could you rephrase it, "
                    "or press \u201ctalk to a human\u201d?",
                    author_kind="bot",
                )
        elif decision is not None:
            await self.conversations.hand_off(session, conv, decision)

    # ---- background work -------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bot turn failed; the message stays unprocessed for recovery", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for every running bot turn (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def recover_unprocessed(self, *, older_than: timedelta = timedelta(seconds=30)) -> int:
        """Re-run bot turns for inbound messages stored but never processed (a crash mid-turn)."""
        cutoff = utcnow() - older_than
        async with self.sessionmaker() as session:
            ids = (
                await session.execute(
                    select(Message.id).where(
                        Message.direction == "in", Message.processed_at.is_(None), Message.created_at < cutoff
                    ).order_by(Message.id).limit(100)
                )
            ).scalars().all()
        for mid in ids:
            await self.process(mid)
        return len(ids)

    async def mark_opted_out(self, *, address: Address, opted_out: bool = True) -> None:
        async with self.sessionmaker() as session, session.begin():
            await store.set_opted_out(
                session, channel=address.channel, address=address.address, opted_out=opted_out
            )
