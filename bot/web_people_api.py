"""The web chat customer's people-side requests (the session token proves who they are).

``POST /api/web/contact``: leave an email or phone number (optional; `bot.contact_link`).

    {"token": "v1.<session>.<sig>", "email": "ann@example.com", "phone": "+1 415 555 0101"}
    -> 200 {"ok": true}                 (linked; the answer never says to whom)
    -> 400 {"error": "'12' is not a phone number"}
    -> 401 {"error": "unknown or forged session token"}

``POST /api/web/feedback``: 👍/👎 on one of the bot's answers (`bot.answer_feedback`).

    {"token": "...", "message_id": 42, "helpful": false}  -> 200 {"ok": true}
    -> 404 {"error": "message 42 is not one of the bot's answers in this chat"}

``POST /api/web/csat-comment``: the optional comment under a survey's 1-5 buttons (`bot.csat_comment`).

    {"token": "...", "comment": "quick and kind"}  -> 200 {"ok": true}
    -> 404 no survey in this chat | 409 not rated yet | 410 the survey closed | 400 empty or too long
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.answer_feedback import NoSuchAnswer, rate_answer
from bot.contact_link import link_contact
from bot.csat_comment import CommentError, add_comment
from bot.customers_admin import CustomerError
from bot.messages import Address
from bot.settings import Settings
from channels.body_limit import Refused, read_capped
from channels.webchat_session import SessionSigner

MAX_BODY = 4096


def _origins(settings: Settings) -> set[str]:
    return {o.strip().rstrip("/") for o in settings.web_allowed_origins.split(",") if o.strip()}


def _cors(origins: set[str], request: Request) -> dict[str, str] | None:
    """CORS headers for the widget's origin; None when that origin may not embed the widget."""
    origin = request.headers.get("origin")
    if origin is None:
        return {}
    same = urlsplit(origin).netloc == request.headers.get("host")
    if "*" not in origins and origin.rstrip("/") not in origins and not same:
        return None
    return {"Access-Control-Allow-Origin": "*" if "*" in origins else origin, "Vary": "Origin"}


async def _read(request: Request, signer: SessionSigner) -> tuple[dict[str, Any], str] | JSONResponse:
    """The JSON body and the session id, or the error response. The widget posts JSON as
    text/plain (a simple cross-origin request: no preflight)."""
    try:  # refused before reading past MAX_BODY, whatever Content-Length says
        body = await read_capped(request, limit=MAX_BODY)
    except Refused as exc:
        return JSONResponse({"error": "request too large" if exc.status == 413 else exc.detail},
                            status_code=exc.status)
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: deeply nested brackets
        return JSONResponse({"error": "expected a JSON object"}, status_code=400)
    if not isinstance(data, dict):
        return JSONResponse({"error": "expected a JSON object"}, status_code=400)
    if any(isinstance(v, str) and "\x00" in v for v in data.values()):  # no database stores NUL
        return JSONResponse({"error": "text may not contain NUL characters"}, status_code=400)
    claims = signer.verify(data.get("token"))
    if claims is None:
        return JSONResponse({"error": "unknown, expired or forged session token"}, status_code=401)
    return data, claims.sid


def web_people_router(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> APIRouter:
    router = APIRouter()
    signer = SessionSigner(settings.secret_key)
    origins = _origins(settings)

    def answer(request: Request, body: dict[str, Any], status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=_cors(origins, request) or {})

    async def admitted(request: Request) -> tuple[dict[str, Any], str] | JSONResponse:
        """The body and session id of a request from an allowed origin, or the error answer (403
        for a foreign origin; a bad body or token answered with the widget's CORS headers)."""
        headers = _cors(origins, request)
        if headers is None:
            return JSONResponse({"error": "forbidden_origin"}, status_code=403)
        read = await _read(request, signer)
        if isinstance(read, JSONResponse):
            read.headers.update(headers)
        return read

    @router.post("/api/web/contact")
    async def contact(request: Request) -> JSONResponse:
        read = await admitted(request)
        if isinstance(read, JSONResponse):
            return read
        data, sid = read
        email, phone = data.get("email"), data.get("phone")
        if any(v is not None and not isinstance(v, str) for v in (email, phone)):
            return answer(request, {"error": "email and phone must be text"}, 400)
        try:
            async with sessionmaker() as session, session.begin():
                identity = await store.get_or_create_identity(session, address=Address("web", sid))
                await link_contact(session, identity=identity, email=email, phone=phone,
                                   region=settings.sms_default_region)
        except CustomerError as exc:
            return answer(request, {"error": str(exc)}, 400)
        return answer(request, {"ok": True})

    @router.post("/api/web/feedback")
    async def feedback(request: Request) -> JSONResponse:
        read = await admitted(request)
        if isinstance(read, JSONResponse):
            return read
        data, sid = read
        message_id, helpful = data.get("message_id"), data.get("helpful")
        if (not isinstance(message_id, int) or isinstance(message_id, bool) or not 0 < message_id < 2**31
                or not isinstance(helpful, bool)):
            return answer(request, {"error": "expected message_id (a number) and helpful (true or false)"}, 400)
        try:
            async with sessionmaker() as session, session.begin():
                identity = await store.get_or_create_identity(session, address=Address("web", sid))
                await rate_answer(session, identity=identity, message_id=message_id, helpful=helpful)
        except NoSuchAnswer as exc:
            return answer(request, {"error": str(exc)}, 404)
        return answer(request, {"ok": True})

    @router.post("/api/web/csat-comment")
    async def csat_comment(request: Request) -> JSONResponse:
        read = await admitted(request)
        if isinstance(read, JSONResponse):
            return read
        data, sid = read
        comment = data.get("comment")
        if not isinstance(comment, str):
            return answer(request, {"error": "expected comment (text)"}, 400)
        alerts = settings.slack_supervisors_channel if settings.slack_enabled else None
        try:
            async with sessionmaker() as session, session.begin():
                identity = await store.get_or_create_identity(session, address=Address("web", sid))
                await add_comment(session, identity=identity, comment=comment,
                                  alert_at_or_below=settings.csat_alert_at_or_below, supervisors_channel=alerts)
        except CommentError as exc:
            return answer(request, {"error": str(exc)}, exc.status)
        return answer(request, {"ok": True})

    return router
