"""The worker's people-side chores, every `PEOPLE_CHECK_SECONDS`: re-page breached SLAs nobody has
taken, auto-assign the queue, close idle conversations, owe / send / expire CSAT surveys.

Wired with two hooks in `bot.app`: `wire_people(parts)` when the parts are built (the web chat
contact and feedback routes), and `PeopleSweep.from_parts(parts).tick()` in the worker's idle hook.
Each chore is independent: one failing is logged and the others still run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agents import Agents
from bot.auto_assign import auto_assign
from bot.csat import CsatConfig, expire_surveys, schedule_surveys, send_due_surveys
from bot.idle_close import close_idle
from bot.settings import Settings
from bot.sla_repage import repage_breaches
from bot.web_people_api import web_people_router
from handoff.assign import STRATEGIES, Strategy
from handoff.sla import SLAPolicy

log = logging.getLogger("switchboard.people")


class PeopleSweep:
    def __init__(self, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], agents: Agents) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.agents = agents
        self.sla_policy = SLAPolicy.from_settings(settings)  # a bad SLA_* setting fails at start-up
        self.csat = CsatConfig.from_settings(settings)
        self._last = float("-inf")

    @classmethod
    def from_parts(cls, parts: Any) -> PeopleSweep:
        return cls(settings=parts.settings, sessionmaker=parts.sessionmaker, agents=parts.agents)

    async def tick(self) -> None:
        """Run the chores if `PEOPLE_CHECK_SECONDS` have passed since the last run (0: never)."""
        every = self.settings.people_check_seconds
        now = asyncio.get_running_loop().time()
        if every <= 0 or now - self._last < every:
            return
        self._last = now
        await self.run()

    async def run(self, *, now: datetime | None = None) -> dict[str, Any]:
        s, sm, out = self.settings, self.sessionmaker, {}

        async def guard(name: str, work: Awaitable[Any]) -> None:
            try:
                out[name] = await work
            except Exception:
                log.exception("people sweep: %s failed; the next sweep tries again", name)

        await guard("repaged", repage_breaches(sessionmaker=sm, desk=self.agents.desk, policy=self.sla_policy,
                                               every=timedelta(minutes=s.sla_repage_minutes), now=now))
        if s.auto_assign in STRATEGIES:
            strategy: Strategy = "round_robin" if s.auto_assign == "round_robin" else "least_loaded"
            await guard("auto_assigned", auto_assign(sessionmaker=sm, agents=self.agents, strategy=strategy,
                                                     default_cap=s.auto_assign_cap))
        await guard("closed", close_idle(sessionmaker=sm, agents=self.agents,
                                         bot_idle=timedelta(hours=s.bot_idle_close_hours),
                                         waiting_on_customer=timedelta(days=s.waiting_on_customer_close_days),
                                         message=s.waiting_on_customer_message, now=now))
        await guard("surveys_owed", schedule_surveys(sm, self.csat, now=now))
        await guard("surveys_sent", send_due_surveys(sm, self.agents.conversations, self.csat, now=now))
        await guard("surveys_expired", expire_surveys(sm, now=now))
        self.agents.wake()
        return out


def wire_people(parts: Any) -> None:
    """What the people side adds to the web app: the web chat contact and feedback routes."""
    if "web" in getattr(parts, "channels", {}):
        parts.extra_routers.append(web_people_router(parts.settings, parts.sessionmaker))
