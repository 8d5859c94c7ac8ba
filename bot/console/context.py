"""What every console page needs, built once per app by `bot.console.web.mount`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.console.actions import Actions
from bot.console.auth import Sessions, Viewer
from bot.console.live import Broadcaster
from bot.console.users import Lockout, count_active
from bot.engine import Pipeline
from bot.messages import utcnow
from bot.settings import Settings
from bot.sla_watch import human_duration
from channels.ratelimit import Limiter
from handoff.sla import SLAPolicy

HERE = Path(__file__).parent


def _ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "-"
    return human_duration(((now or utcnow()) - value).total_seconds())


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["ago"] = _ago
    templates.env.filters["hhmm"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else "-"
    return templates


@dataclass
class Console:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    pipeline: Pipeline
    broadcaster: Broadcaster
    sessions: Sessions
    actions: Actions
    templates: Jinja2Templates
    login_limiter: Limiter
    lockout: Lockout
    sla_policy: SLAPolicy
    kb: Any = None
    wake: Callable[[], None] = lambda: None  # the outbox worker: what an action queued goes out now

    async def has_users(self) -> bool:
        async with self.sessionmaker() as session:
            return await count_active(session) > 0

    def page(self, request: Request, name: str, viewer: Viewer | None, status_code: int = 200,
             **values: Any) -> HTMLResponse:
        return self.templates.TemplateResponse(
            request, name,
            {"viewer": viewer, "csrf": viewer.csrf if viewer else "", "status_code": status_code, **values},
            status_code=status_code,
        )


__all__ = ["Console", "make_templates"]
