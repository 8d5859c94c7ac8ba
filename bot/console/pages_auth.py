"""Login, logout, and "log out everywhere"; the page shown while the console is off (no user yet)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from bot.audit import record as audit_record
from bot.console.auth import Forbidden, Sessions, check_csrf
from bot.console.context import Console
from bot.console.forms import clean
from bot.console.users import check_login, end_sessions

OFF_HINT = "switchboard users add NAME --role supervisor"


def safe_next(value: str | None) -> str:
    """Only a path inside the console (never another site: no scheme, no //host)."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def router(console: Console) -> APIRouter:
    r = APIRouter()

    def off(request: Request) -> Response:
        return console.page(request, "off.html", None, status_code=503, hint=OFF_HINT)

    def login_form(request: Request, *, error: str | None = None, status_code: int = 200,
                   next_path: str = "/console") -> Response:
        cookie = console.sessions.read(request)
        if cookie is None or cookie.user_id is not None:
            cookie = Sessions.fresh()
        response = console.templates.TemplateResponse(
            request, "login.html", {"viewer": None, "csrf": cookie.csrf, "error": error, "next": next_path},
            status_code=status_code)
        console.sessions.write(response, cookie)
        return response

    @r.get("/console/login", include_in_schema=False)
    async def login_page(request: Request, next: str | None = None) -> Response:
        if not await console.has_users():
            return off(request)
        return login_form(request, next_path=safe_next(next))

    @r.post("/console/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if not await console.has_users():
            return off(request)
        cookie = console.sessions.read(request)
        if cookie is None:
            raise Forbidden("Your session expired before you signed in. Reload the page and try again.")
        await check_csrf(request, cookie.csrf)
        form = await request.form()
        username, password = clean(form.get("username"), limit=200), str(form.get("password") or "")
        next_path = safe_next(str(form.get("next") or ""))
        wait = await console.login_limiter.take(f"console-login:{client_ip(request)}")
        if wait > 0:
            return login_form(request, status_code=429, next_path=next_path,
                              error=f"Too many sign-in attempts from here. Try again in {int(wait) + 1} s.")
        async with console.sessionmaker() as session, session.begin():
            result = await check_login(session, username=username, password=password, policy=console.lockout)
            if result.user is not None:
                await audit_record(session, actor=result.user.actor, action="login", target_kind="user",
                                   target_id=result.user.id, detail={"ip": client_ip(request)})
            elif result.locked_until is not None:
                await audit_record(session, actor=f"console:{username.strip().lower()[:64]}",
                                   action="login.locked", target_kind="user",
                                   detail={"ip": client_ip(request)})
        if result.locked_until is not None:
            return login_form(request, status_code=429, next_path=next_path,
                              error="This account is locked after too many failed attempts. "
                                    "Try again later, or ask a supervisor to reset the password.")
        if result.user is None:
            return login_form(request, status_code=401, next_path=next_path,
                              error="Wrong username or password.")
        response = RedirectResponse(next_path, status_code=303)
        console.sessions.write(response, Sessions.fresh(result.user))  # a new CSRF token after login
        return response

    @r.post("/console/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        viewer = await console.sessions.require(request)
        async with console.sessionmaker() as session, session.begin():
            await audit_record(session, actor=viewer.user.actor, action="logout", target_kind="user",
                               target_id=viewer.user.id)
        response = RedirectResponse("/console/login", status_code=303)
        console.sessions.clear(response)
        return response

    @r.post("/console/logout-everywhere", include_in_schema=False)
    async def logout_everywhere(request: Request) -> Response:
        viewer = await console.sessions.require(request)
        async with console.sessionmaker() as session, session.begin():
            await end_sessions(session, user_id=viewer.user.id)
            await audit_record(session, actor=viewer.user.actor, action="logout.everywhere", target_kind="user",
                               target_id=viewer.user.id)
        response = RedirectResponse("/console/login", status_code=303)
        console.sessions.clear(response)
        return response

    return r


def login_redirect(request: Request) -> Response:
    target = "/console/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if request.method == "GET" and "hx-request" not in request.headers:
        return RedirectResponse(target, status_code=303)
    return Response("Sign in first.", status_code=401, headers={"HX-Redirect": target})


__all__ = ["router", "login_redirect", "safe_next", "OFF_HINT"]
