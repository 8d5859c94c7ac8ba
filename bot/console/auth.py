"""Who is asking: the signed session cookie, its CSRF token, and role checks.

The cookie (``sb_console``) is signed with SECRET_KEY (itsdangerous) and holds the user id, the
user's session generation when it was issued, and a random CSRF token; nothing is kept in process
memory, so any web process accepts it. Every POST must echo the token (form field ``csrf`` or
header ``X-CSRF-Token``), else 403. Before login the cookie carries only a CSRF token (the login
form is protected too). Bumping the user's generation (log out everywhere, a new password,
disabling) voids every cookie issued before.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.console.users import ConsoleUser
from bot.settings import Settings

COOKIE = "sb_console"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, actions answer 401."""


class Forbidden(Exception):
    """Signed in, but not allowed (a role, or a missing/wrong CSRF token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Cookie:
    user_id: int | None
    generation: int
    csrf: str


@dataclass(frozen=True, slots=True)
class Viewer:
    user: ConsoleUser
    csrf: str

    @property
    def is_supervisor(self) -> bool:
        return self.user.is_supervisor


class Sessions:
    """Issues and reads the console cookie."""

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.max_age = int(settings.console_session_hours * 3600)
        self.secure = settings.public_base_url.lower().startswith("https://")
        self._signer = URLSafeTimedSerializer(settings.secret_key, salt="switchboard.console.session")

    def read(self, request: Request) -> Cookie | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data: Any = self._signer.loads(raw, max_age=self.max_age)
        except BadSignature:  # SignatureExpired is a BadSignature
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        uid = data.get("u")
        return Cookie(uid if isinstance(uid, int) else None, int(data.get("g") or 0), data["c"])

    def write(self, response: Response, cookie: Cookie) -> None:
        value = self._signer.dumps({"u": cookie.user_id, "g": cookie.generation, "c": cookie.csrf})
        response.set_cookie(COOKIE, value, max_age=self.max_age, path="/console", httponly=True,
                            samesite="lax", secure=self.secure)

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="lax", secure=self.secure)

    @staticmethod
    def fresh(user: ConsoleUser | None = None) -> Cookie:
        return Cookie(user.id if user else None, user.generation if user else 0, secrets.token_urlsafe(24))

    async def viewer(self, request: Request) -> Viewer | None:
        cookie = self.read(request)
        if cookie is None or cookie.user_id is None:
            return None
        async with self.sessionmaker() as session:
            user = await session.get(ConsoleUser, cookie.user_id)
        if user is None or not user.active or user.generation != cookie.generation:
            return None
        return Viewer(user, cookie.csrf)

    async def require(self, request: Request, *, supervisor: bool = False) -> Viewer:
        """The signed-in viewer (checking CSRF on anything but GET/HEAD), or raise."""
        viewer = await self.viewer(request)
        if viewer is None:
            raise LoginRequired()
        if request.method not in ("GET", "HEAD"):
            await check_csrf(request, viewer.csrf)
        if supervisor and not viewer.is_supervisor:
            raise Forbidden("Only supervisors can open this page.")
        return viewer


async def check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("The form's security token is missing or out of date. Reload the page and try again.")


__all__ = ["Sessions", "Viewer", "Cookie", "LoginRequired", "Forbidden", "check_csrf", "COOKIE"]
