"""The audit log page (/console/audit, supervisors): who did what to which record, newest first."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bot.audit import recent
from bot.console.context import Console


def router(console: Console) -> APIRouter:
    r = APIRouter()

    @r.get("/console/audit", include_in_schema=False)
    async def audit_page(request: Request) -> Response:
        viewer = await console.sessions.require(request, supervisor=True)
        async with console.sessionmaker() as session:
            entries = await recent(session, limit=200)
        return console.page(request, "audit.html", viewer, entries=entries, nav="audit")

    return r


__all__ = ["router"]
