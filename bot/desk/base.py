"""The agents' side of a conversation, as the pipeline and the agent actions see it.

`bot.conversations.Conversations` (and the pipeline, the agent actions and the SLA sweep through
it) calls a `Desk` inside its own transaction at each step that agents should see; a desk writes
outbox entries (`bot.store.enqueue`) so its posts are as durable as the customer's replies. Each
hook does nothing by default; `NullDesk` (no agent workspace) is just that. The Slack desk is
`bot.desk.slack.SlackDesk`; the web console wraps whichever desk runs (`bot.console.live.LiveDesk`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Conversation, Message
from kb_index.types import Hit

if TYPE_CHECKING:
    from handoff.policy import Decision


class Desk(Protocol):
    async def on_customer_message(
        self,
        session: AsyncSession,
        *,
        conversation: Conversation,
        message: Message,
        hits: Sequence[Hit],
        decision: Decision | None,
    ) -> None:
        """A customer message the agents should see (with the bot's suggestions)."""
        return None

    async def on_outbound(self, session: AsyncSession, *, conversation: Conversation, message: Message) -> None:
        """We are sending the customer something (bot answer, agent reply, system notice)."""
        return None

    async def on_state_change(
        self, session: AsyncSession, *, conversation: Conversation, old: str, new: str, reason: str | None
    ) -> None:
        """The conversation changed state (handed off, assigned, escalated, resolved, reopened)."""
        return None

    async def on_delivery_problem(
        self, session: AsyncSession, *, conversation: Conversation, message: Message
    ) -> None:
        """A reply could not be delivered (dead-lettered, undelivered, opted out)."""
        return None

    async def on_sla_breach(
        self, session: AsyncSession, *, conversation: Conversation, clock_name: str, due_at: datetime,
        overdue_seconds: float,
    ) -> None:
        """An SLA clock ("first_response" | "resolution") ran out: page the supervisors (once per clock)."""
        return None

    async def on_sla_warning(
        self, session: AsyncSession, *, conversation: Conversation, clock_name: str, due_at: datetime,
        remaining_seconds: float,
    ) -> None:
        """An SLA clock is close to running out (once per clock): warn the agents."""
        return None


class NullDesk(Desk):
    """No agent workspace: every hook does nothing (the `Desk` defaults)."""
