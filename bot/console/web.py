"""Mount the console on the app: its routes, static files and error pages.

    mount(app, parts)   # in bot.app.create_app
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from bot.console import (
    pages_audit,
    pages_auth,
    pages_conversation,
    pages_customers,
    pages_kb,
    pages_queue,
    pages_reports,
    pages_rights,
    pages_settings,
)
from bot.console.actions import Actions
from bot.console.auth import Forbidden, LoginRequired, Sessions
from bot.console.context import HERE, Console, make_templates
from bot.console.live import Broadcaster
from bot.console.users import Lockout
from channels.ratelimit import make_limiter
from handoff.sla import SLAPolicy


def build_console(parts: Any, broadcaster: Broadcaster) -> Console:
    settings = parts.settings
    limiter = make_limiter(settings.console_logins_per_minute, redis_url=settings.redis_url,
                           prefix="switchboard:console-login:")
    parts.closers.append(limiter.aclose)
    return Console(
        settings=settings, sessionmaker=parts.sessionmaker, pipeline=parts.pipeline, broadcaster=broadcaster,
        sessions=Sessions(settings, parts.sessionmaker),
        actions=Actions(parts.agents, parts.sessionmaker, broadcaster),
        templates=make_templates(), login_limiter=limiter,
        lockout=Lockout(settings.console_login_attempts, settings.console_lockout_minutes),
        sla_policy=SLAPolicy.from_settings(settings), kb=parts.kb, wake=parts.worker.wake,
    )


def mount(app: FastAPI, parts: Any, broadcaster: Broadcaster) -> Console:
    console = build_console(parts, broadcaster)
    app.state.console = console
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for module in (pages_auth, pages_queue, pages_conversation, pages_customers, pages_rights, pages_kb,
                   pages_audit, pages_reports, pages_settings):
        app.include_router(module.router(console))

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _: LoginRequired) -> Response:
        if not await console.has_users():
            return console.page(request, "off.html", None, status_code=503, hint=pages_auth.OFF_HINT)
        return pages_auth.login_redirect(request)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return console.page(request, "error.html", None, status_code=403, message=exc.reason)

    return console


__all__ = ["mount", "build_console"]
