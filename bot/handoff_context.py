"""The handoff context package from the database: `bot.store` reads the rows,
`handoff.context.assemble_context` (pure) builds the package.

    pkg = await build_context(session, conversation_id=42, decision=decision)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.messages import utcnow
from handoff.context import PREVIOUS_LIMIT, ContextPackage, assemble_context
from handoff.errors import ConversationNotFound
from handoff.policy import Decision


async def build_context(
    session: AsyncSession,
    *,
    conversation_id: int,
    decision: Decision | None = None,
    now: datetime | None = None,
) -> ContextPackage:
    """Everything a person needs to take the conversation over. Raises ConversationNotFound.

    `now` defaults to the current UTC time (pass it in tests).
    """
    now = now or utcnow()
    conv = await store.conversation_with_customer(session, conversation_id=conversation_id)
    if conv is None:
        raise ConversationNotFound(conversation_id)
    messages = await store.list_messages(session, conversation_id=conversation_id)
    last_handoff = None
    if decision is None:
        event = await store.latest_handoff_event(session, conversation_id=conv.id)
        last_handoff = event.data if event is not None and isinstance(event.data, dict) else None
    previous = await store.previous_conversations(
        session, customer_id=conv.customer.id, before_conversation_id=conv.id, limit=PREVIOUS_LIMIT
    )
    count = await store.count_previous_conversations(
        session, customer_id=conv.customer.id, before_conversation_id=conv.id
    )
    return assemble_context(conv, messages, previous=previous, previous_count=count,
                            last_handoff=last_handoff, decision=decision, now=now)
