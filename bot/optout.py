"""SMS opt-out and the other carrier keywords (STOP, START, HELP), applied at the start of a bot turn.

The SMS channel marks a stored inbound message with ``meta["compliance"]`` = "stop" | "start" |
"help" when its whole text is a carrier keyword (`channels.sms.compliance_keyword`). The
pipeline calls `apply_compliance` first thing in its turn, inside the turn's transaction:

- stop: the number is opted out (`ChannelIdentity.opted_out`); replies still owed to it are
  cancelled; from now on `Conversations.say` stores replies as "suppressed" and sends nothing.
  No reply is sent (Twilio itself confirms the opt-out to the handset).
- start: the number is opted back in. Only handled when it was opted out: "yes" is also an
  ordinary answer, and then the bot turn runs as usual.
- help: the configured help text (`Settings.sms_help_text`) is said (not if it is empty).

Agents see every handled keyword: the message goes to the desk (`on_customer_message`, with
``message.meta["compliance"]`` set and no hits/decision), and an event is logged
("opted_out", "opted_in", "help_requested").
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.conversations import Conversations
from bot.messages import utcnow
from bot.models import ChannelIdentity, Conversation, Message, OutboxEntry, OutboxStatus

KEYWORDS = ("stop", "start", "help")


async def apply_compliance(
    conversations: Conversations, session: AsyncSession, conversation: Conversation, message: Message
) -> bool:
    """Act on a compliance keyword. True: handled, the pipeline must skip the bot turn."""
    kind = (message.meta or {}).get("compliance")
    if kind not in KEYWORDS or message.direction != "in":
        return False
    identity = await session.get(ChannelIdentity, conversation.identity_id)
    if identity is None:
        return False
    if kind == "start" and not identity.opted_out:
        return False
    # The agents see the customer's keyword first, then whatever we answer.
    await conversations.desk.on_customer_message(
        session, conversation=conversation, message=message, hits=[], decision=None
    )
    if kind == "stop":
        if not identity.opted_out:
            identity.opted_out = True
            identity.opted_out_at = utcnow()
        cancelled = await _cancel_owed(session, identity)
        await store.log_event(
            session,
            kind="opted_out",
            conversation_id=conversation.id,
            data={"channel": identity.channel, "via": "keyword", "cancelled": cancelled},
        )
    elif kind == "start":
        identity.opted_out = False
        identity.opted_out_at = None
        await store.log_event(
            session,
            kind="opted_in",
            conversation_id=conversation.id,
            data={"channel": identity.channel, "via": "keyword"},
        )
    else:
        await store.log_event(
            session,
            kind="help_requested",
            conversation_id=conversation.id,
            data={"channel": identity.channel},
        )
        help_text = conversations.settings.sms_help_text or ""
        if help_text.strip():
            await conversations.say(
                session, conversation, help_text, author_kind="system", meta={"compliance": "help"}
            )
    return True


async def _cancel_owed(session: AsyncSession, identity: ChannelIdentity) -> int:
    """Cancel replies not yet handed to the platform for this address; mark their messages suppressed."""
    order_key = store.customer_order_key(identity.channel, identity.address)
    result = await session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.order_key == order_key, OutboxEntry.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.CANCELLED, last_error="recipient opted out")
        .returning(OutboxEntry.message_id)
    )
    rows = list(result.scalars())
    ids = [mid for mid in rows if mid is not None]
    if ids:
        await session.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(delivery_status="suppressed")
            .execution_options(synchronize_session=False)
        )
    return len(rows)
