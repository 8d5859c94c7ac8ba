"""The web chat channel: a WebSocket endpoint, session tokens, and the embeddable widget.

Routes (mounted by the app with ``app.include_router(channel.router(host))``)::

    POST /api/web/session     -> {"token": "v2.<session id>.<expiry>.<sig>", "expires_at": ...}
                                 (no storage: HMAC-signed; throttled per client address)
    WS   /ws/chat             the chat: the first frame is {"type": "auth", "token": ...} (never a URL
                              query, which access logs record); protocol in `channels.webchat_frames`
    GET  /widget.js           the widget: <script src="https://host/widget.js"></script>
    GET  /                    the demo page embedding the widget

The session id inside the token is the customer's address on the "web" channel. A customer
message's platform id is ``<session id>:<client_id>``, so a widget resending the same client_id
after a reconnect is the same message (and one session can never collide with another's ids).

`send` publishes to every socket open for the session through a `Hub` (`LocalHub` in one
process, `RedisHub` across several); if none is open it still succeeds: the message is stored
and the widget reads it on resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.websockets import WebSocketDisconnect, WebSocketState

from bot.messages import Address, InboundMessage, OutboundMessage, SendResult, utcnow
from channels.base import ChannelHost
from channels.ratelimit import make_limiter
from channels.webchat_frames import (
    Frame,
    FrameError,
    history_frame,
    message_actions,
    message_frame,
    parse_frame,
)
from channels.webchat_hub import OVERFLOW, RESYNC, Hub, LocalHub, RedisHub
from channels.webchat_session import Claims, SessionSigner
from channels.webchat_throttle import LocalThrottle, RedisThrottle, Throttle

log = logging.getLogger("switchboard.webchat")

STATIC = Path(__file__).parent / "web_static"
HISTORY_PAGE = 200

# Close codes (4000-4999 are the application's): the widget starts a new session on 4401.
CLOSE_INVALID_SESSION = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_OVERFLOW = 4408
CLOSE_RESYNC = 4409  # the hub may have missed events for this socket: reconnect and resume
AUTH_TIMEOUT = 10.0  # seconds a socket may stay open before its auth frame
# A resume's cursor stays below messages written this recently (channels.webchat_frames.history_frame):
# longer than any transaction that writes a message, plus the clock skew between processes.
RESUME_SETTLE = 60.0


@cache
def _static(name: str) -> bytes:
    return (STATIC / name).read_bytes()


class WebChatChannel:
    """The "web" customer channel.

    Example::

        web = WebChatChannel(secret_key=settings.secret_key)
        app.include_router(web.router(pipeline))
        await web.send(Address("web", session_id), OutboundMessage("Hello!", message_id=12))
    """

    name: ClassVar[str] = "web"

    def __init__(
        self,
        *,
        secret_key: str,
        max_message_chars: int = 2000,
        rate_per_minute: int = 30,
        allowed_origins: str = "",
        hub: Hub | None = None,
        typing_timeout: float = 10.0,
        host_timeout: float = 15.0,
        session_ttl_seconds: int = 86_400,
        sessions_per_minute: int = 10,
        mint_throttle: Throttle | None = None,
        auth_timeout: float = AUTH_TIMEOUT,
        redis_limits_url: str | None = None,
        resume_settle: float = RESUME_SETTLE,
    ) -> None:
        self.signer = SessionSigner(secret_key, ttl_seconds=session_ttl_seconds)
        self.mints: Throttle = mint_throttle or LocalThrottle(sessions_per_minute)
        self.auth_timeout = auth_timeout
        self.max_message_chars = max_message_chars
        self.hub: Hub = hub or LocalHub()
        self.typing_timeout = typing_timeout
        self.resume_settle = timedelta(seconds=resume_settle)
        self.host_timeout = host_timeout
        self.origins = {o.strip().rstrip("/") for o in allowed_origins.split(",") if o.strip()}
        # per session, shared by all its sockets; in Redis (every process) when redis_limits_url is set
        self._messages = make_limiter(rate_per_minute, redis_url=redis_limits_url, prefix="switchboard:rate:msg:")
        self._resumes = make_limiter(max(60, rate_per_minute * 2), redis_url=redis_limits_url,
                                     prefix="switchboard:rate:resume:")
        self._typing: dict[str, asyncio.Task[None]] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> WebChatChannel:
        """Build from `bot.settings.Settings` (a Redis hub when ``redis_url`` is set)."""
        redis_url = getattr(settings, "redis_url", None)
        hub: Hub | None = RedisHub(redis_url) if redis_url else None
        per_minute = getattr(settings, "web_sessions_per_minute", 10)
        throttle: Throttle = RedisThrottle(redis_url, per_minute) if redis_url else LocalThrottle(per_minute)
        return cls(
            secret_key=settings.secret_key,
            max_message_chars=settings.web_max_message_chars,
            rate_per_minute=settings.web_rate_per_minute,
            allowed_origins=settings.web_allowed_origins,
            hub=hub,
            session_ttl_seconds=getattr(settings, "web_session_ttl_seconds", 86_400),
            mint_throttle=throttle,
            redis_limits_url=redis_url,
        )

    # ---- Channel ---------------------------------------------------------------------------------

    async def send(self, to: Address, message: OutboundMessage) -> SendResult:
        """Push a stored outbound message to the session's open sockets (none open is fine)."""
        frame = message_frame(
            id=message.message_id, author_kind=message.author_kind, author_name=message.author_name,
            text=message.text, created_at=utcnow(), options=button_labels(message.meta),
            actions=message_actions(message.meta or {}),
        )
        self._cancel_typing(to.address)
        receivers = await self.hub.publish(to.address, frame)
        return SendResult(platform_id=None, status="delivered" if receivers else "sent")

    async def aclose(self) -> None:
        for task in list(self._typing.values()):
            task.cancel()
        self._typing.clear()
        await self._messages.aclose()
        await self._resumes.aclose()
        await self.hub.aclose()
        await self.mints.aclose()

    def router(self, host: ChannelHost) -> APIRouter:
        r = APIRouter()

        @r.post("/api/web/session")
        async def new_session(request: Request) -> Response:
            origin = request.headers.get("origin")
            if not self.origin_allowed(origin, request.headers.get("host")):
                return JSONResponse({"error": "forbidden_origin"}, status_code=403)
            client = request.client.host if request.client else "unknown"
            wait = await self.mints.take(client)
            if wait > 0:
                log.warning("web chat session minting throttled for a client (%s)", client)
                return JSONResponse({"error": "rate_limited", "retry_after": math.ceil(wait)}, status_code=429,
                                    headers={**self._cors(origin), "Retry-After": str(math.ceil(wait))})
            token = self.signer.issue()
            claims = self.signer.verify(token)
            assert claims is not None
            return JSONResponse({"token": token, "expires_at": claims.expires_at}, headers=self._cors(origin))

        @r.options("/api/web/session")
        async def preflight(request: Request) -> Response:
            origin = request.headers.get("origin")
            if not self.origin_allowed(origin, request.headers.get("host")):
                return Response(status_code=403)
            headers = {**self._cors(origin), "Access-Control-Allow-Methods": "POST",
                       "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"}
            return Response(status_code=204, headers=headers)

        @r.get("/widget.js", include_in_schema=False)
        async def widget() -> Response:
            return Response(_static("widget.js"), media_type="application/javascript; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})

        @r.get("/", include_in_schema=False)
        async def demo() -> Response:
            return HTMLResponse(_static("index.html"))

        @r.websocket("/ws/chat")
        async def chat(ws: WebSocket) -> None:
            await self._serve(ws, host)

        return r

    # ---- helpers -----------------------------------------------------------------------------------

    def origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        """Browsers always send Origin on websockets; a missing one is a non-browser client."""
        if origin is None or "*" in self.origins:
            return True
        origin = origin.rstrip("/")
        if origin in self.origins:
            return True
        return bool(host_header) and urlsplit(origin).netloc == host_header  # same origin

    def _cors(self, origin: str | None) -> dict[str, str]:
        """CORS headers only for an origin listed in WEB_ALLOWED_ORIGINS (opt-in; same origin needs none)."""
        if origin is None:
            return {}
        if "*" in self.origins:
            return {"Access-Control-Allow-Origin": "*", "Vary": "Origin"}
        if origin.rstrip("/") in self.origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {"Vary": "Origin"}

    def _cancel_typing(self, sid: str) -> None:
        task = self._typing.pop(sid, None)
        if task is not None:
            task.cancel()

    async def _typing_on(self, sid: str) -> None:
        self._cancel_typing(sid)
        try:
            await self.hub.publish(sid, {"type": "typing", "on": True})
        except Exception:  # a cosmetic event: never fail the message for it
            log.warning("could not publish typing for session %s", sid[:6], exc_info=True)
            return

        async def off() -> None:
            await asyncio.sleep(self.typing_timeout)
            if self._typing.get(sid) is asyncio.current_task():
                del self._typing[sid]
            with contextlib.suppress(Exception):
                await self.hub.publish(sid, {"type": "typing", "on": False})

        self._typing[sid] = asyncio.get_running_loop().create_task(off())

    # ---- the socket -------------------------------------------------------------------------------

    async def _serve(self, ws: WebSocket, host: ChannelHost) -> None:
        await ws.accept()
        if not self.origin_allowed(ws.headers.get("origin"), ws.headers.get("host")):
            await _refuse(ws, "forbidden_origin", "this site may not embed the chat", CLOSE_FORBIDDEN_ORIGIN)
            return
        claims = await self._authenticate(ws)
        if claims is None:
            return
        sid = claims.sid
        conn = _Connection(ws, claims)
        async with contextlib.AsyncExitStack() as stack:
            try:
                inbox = await stack.enter_async_context(self.hub.subscribe(sid))
            except Exception:  # e.g. Redis is down: tell the widget, which reconnects with backoff
                log.exception("web chat hub unavailable")
                await _refuse(ws, "unavailable", "the chat is briefly unavailable; reconnecting", 1011)
                return
            pusher = asyncio.get_running_loop().create_task(self._push(conn, inbox))
            try:
                await conn.send({"type": "ready", **self._renewed(conn)})
                while conn.open:
                    event = await ws.receive()
                    if event["type"] == "websocket.disconnect":
                        break
                    await self._handle(conn, host, sid, dict(event))
            except (WebSocketDisconnect, RuntimeError):
                pass  # the client went away mid-send/receive
            finally:
                pusher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pusher

    async def _authenticate(self, ws: WebSocket) -> Claims | None:
        """Wait for the first frame, ``{"type": "auth", "token": ...}``; refuse (and close) anything else."""
        if "token" in ws.query_params:
            await _refuse(ws, "invalid_session", "send the session token in the first frame, not the URL",
                          CLOSE_INVALID_SESSION)
            return None
        try:
            event = await asyncio.wait_for(ws.receive(), self.auth_timeout)
        except (TimeoutError, WebSocketDisconnect, RuntimeError):
            await _refuse(ws, "auth_timeout", "no auth frame; reconnect and send it first", 4400)
            return None
        if event.get("type") == "websocket.disconnect":
            return None
        try:
            token = _auth_token(event)
        except FrameError as exc:
            await _refuse(ws, exc.code, exc.detail, 4400)
            return None
        claims = self.signer.verify(token)
        if claims is None:
            await _refuse(ws, "invalid_session", "unknown, expired or forged session token; start a new session",
                          CLOSE_INVALID_SESSION)
        return claims

    def _renewed(self, conn: _Connection) -> dict[str, Any]:
        """A fresh token for the same session (silent renewal); the widget stores it."""
        token = self.signer.issue(conn.claims.sid)
        claims = self.signer.verify(token)
        assert claims is not None
        conn.claims = claims
        return {"token": token, "expires_at": claims.expires_at}

    async def _push(self, conn: _Connection, inbox: Any) -> None:
        while conn.open:
            event = await inbox.get()
            if event is OVERFLOW or event.get("type") == "_overflow":
                await conn.close(CLOSE_OVERFLOW, "too many undelivered events; reconnect and resume")
                return
            if event is RESYNC:
                await conn.close(CLOSE_RESYNC, "live events may have been missed; reconnect and resume")
                return
            await conn.send(event)

    async def _handle(self, conn: _Connection, host: ChannelHost, sid: str, event: dict[str, Any]) -> None:
        try:
            frame = parse_frame(event, max_chars=self.max_message_chars)
        except FrameError as exc:
            log.info("web chat: refused a frame from session %s (%s)", sid[:6], exc.code)
            await conn.send(exc.to_frame())
            return
        if self.signer.needs_renewal(conn.claims):
            await conn.send({"type": "session", **self._renewed(conn)})
        if frame.type in ("typing", "auth"):
            return
        limiter = self._resumes if frame.type == "resume" else self._messages
        wait = await limiter.take(sid)
        if wait > 0:
            extra = {"client_id": frame.client_id} if frame.client_id else {}
            await conn.send({"type": "error", "code": "rate_limited", "retry_after": math.ceil(wait * 10) / 10,
                             "detail": "you are sending messages too fast; please wait a moment",
                             "for": frame.type, **extra})
            return
        try:
            await asyncio.wait_for(self._act(conn, host, sid, frame), self.host_timeout)
        except Exception:
            log.exception("web chat %s frame failed for session %s", frame.type, sid[:6])
            extra = {"client_id": frame.client_id} if frame.client_id else {}
            await conn.send({"type": "error", "code": "server_error", "for": frame.type, **extra,
                             "detail": "we could not take that just now; it will be retried"})

    async def _act(self, conn: _Connection, host: ChannelHost, sid: str, frame: Frame) -> None:
        address = Address(self.name, sid)
        if frame.type == "message":
            assert frame.client_id is not None and frame.text is not None
            receipt = await host.receive(
                InboundMessage(sender=address, platform_id=f"{sid}:{frame.client_id}", text=frame.text)
            )
            shown = receipt.text if receipt.text is not None else frame.text  # as stored: personal data masked
            await conn.send({"type": "ack", "client_id": frame.client_id, "id": receipt.message_id,
                             "duplicate": receipt.duplicate, "text": shown})
            if not receipt.duplicate:
                # the session's other tabs show the customer's message too (the sender dedupes by id)
                with contextlib.suppress(Exception):
                    await self.hub.publish(sid, message_frame(
                        id=receipt.message_id, author_kind="customer", author_name=None, text=shown,
                        created_at=utcnow(), client_id=frame.client_id,
                    ))
                await self._typing_on(sid)
        elif frame.type == "resume":
            items = await host.history(address, after_id=frame.after, limit=HISTORY_PAGE)
            await conn.send(history_frame(items, after=frame.after, more=len(items) >= HISTORY_PAGE,
                                          platform_prefix=f"{sid}:", now=utcnow(), settle=self.resume_settle))
        elif frame.type == "human":
            await host.request_human(address)
            await conn.send({"type": "human", "ok": True})


class _Connection:
    """Serialises sends on one socket (the reader and the pusher both write)."""

    def __init__(self, ws: WebSocket, claims: Claims) -> None:
        self.ws = ws
        self.claims = claims
        self._lock = asyncio.Lock()
        self.open = True

    async def send(self, frame: dict[str, Any]) -> None:
        if not self.open:
            return
        async with self._lock:
            try:
                await self.ws.send_json(frame)
            except Exception:
                self.open = False  # the peer is gone; the reader loop ends on its disconnect

    async def close(self, code: int, reason: str) -> None:
        async with self._lock:
            self.open = False
            if self.ws.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await self.ws.close(code, reason)


def _auth_token(event: Mapping[str, Any]) -> str:
    raw = event.get("text")
    if not isinstance(raw, str) or len(raw) > 1024:
        raise FrameError("auth_required", "the first frame must be {\"type\": \"auth\", \"token\": ...}")
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        obj = None
    if not isinstance(obj, dict) or obj.get("type") != "auth" or not isinstance(obj.get("token"), str):
        raise FrameError("auth_required", "the first frame must be {\"type\": \"auth\", \"token\": ...}")
    return str(obj["token"])


async def _refuse(ws: WebSocket, code: str, detail: str, close_code: int) -> None:
    with contextlib.suppress(Exception):
        await ws.send_json({"type": "error", "code": code, "detail": detail})
        await ws.close(close_code, detail[:100])


MAX_BUTTONS = 5
MAX_LABEL = 80


def button_labels(meta: dict[str, Any]) -> list[str]:
    """The labels of the buttons an outbound message offers (a clarifying question's options)."""
    opts = meta.get("options")
    if not isinstance(opts, list):
        return []
    labels = [o["label"][:MAX_LABEL] for o in opts if isinstance(o, dict) and isinstance(o.get("label"), str)]
    return [x for x in labels if x.strip()][:MAX_BUTTONS]
