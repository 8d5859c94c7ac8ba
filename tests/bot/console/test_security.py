"""The console's doors, driven with httpx against the real app: no page or action without a session,
roles, CSRF, brute force, cookie flags, logging out everywhere, and the off state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from bot.audit import AuditEntry
from bot.messages import Address
from bot.models import Conversation
from bot.settings import Settings
from tests.bot.console.support import PASSWORD, add, client, csrf_of, login, make_app, signed_in


async def _waiting(app) -> int:  # type: ignore[no-untyped-def]
    await app.state.parts.pipeline.request_human(Address("web", "sess-1"))
    async with app.state.parts.sessionmaker() as s:
        return int(await s.scalar(select(func.max(Conversation.id))))


async def _audit_count(app) -> int:  # type: ignore[no-untyped-def]
    async with app.state.parts.sessionmaker() as s:
        return int(await s.scalar(select(func.count(AuditEntry.id))))


async def test_the_console_is_off_and_says_how_to_switch_it_on_until_a_user_exists(
        settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory())
    async with client(app) as c:
        for path in ("/console", "/console/login", "/console/c/1"):
            r = await c.get(path)
            assert r.status_code == 503 and "switchboard users add" in r.text, path
        await add(app, "ann", "supervisor")
        assert (await c.get("/console/login")).status_code == 200


async def test_no_page_or_action_without_a_session(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory())
    await add(app, "ann", "supervisor")
    cid = await _waiting(app)
    async with client(app) as c:
        for path in ("/console", "/console/queue", f"/console/c/{cid}", f"/console/c/{cid}/live", "/console/audit",
                     "/console/events"):
            r = await c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next="), path
        for action in ("take", "reply", "note", "resolve", "escalate", "assign", "customer"):
            r = await c.post(f"/console/c/{cid}/{action}", data={"text": "hi", "csrf": "x"})
            assert r.status_code == 401, action
        r = await c.get("/console/queue", headers={"HX-Request": "true"})
        assert r.status_code == 401 and r.headers["HX-Redirect"].startswith("/console/login")
    async with app.state.parts.sessionmaker() as s:
        assert (await s.get(Conversation, cid)).state == "waiting"  # type: ignore[union-attr]
    assert await _audit_count(app) == 0


async def test_an_agent_cannot_open_supervisor_pages(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory())
    await add(app, "bob", "agent")
    await add(app, "ann", "supervisor")
    async for me in signed_in(app, "bob"):
        r = await me.client.get("/console/audit")
        assert r.status_code == 403 and "Only supervisors" in r.text
        assert "/console/audit" not in (await me.client.get("/console")).text  # not offered either
    async for me in signed_in(app, "ann"):
        r = await me.client.get("/console/audit")
        assert r.status_code == 200 and "console:ann" in r.text and "login" in r.text


async def test_an_action_or_login_without_the_csrf_token_is_refused(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory())
    await add(app, "ann", "supervisor")
    cid = await _waiting(app)
    async with client(app) as c:
        page = await c.get("/console/login")
        r = await c.post("/console/login", data={"username": "ann", "password": PASSWORD})
        assert r.status_code == 403
        r = await c.post("/console/login", data={"username": "ann", "password": PASSWORD, "csrf": "forged"})
        assert r.status_code == 403
        assert csrf_of(page.text)
    async for me in signed_in(app, "ann"):
        before = await _audit_count(app)
        r = await me.client.post(f"/console/c/{cid}/take", data={})
        assert r.status_code == 403 and "security token" in r.text
        r = await me.client.post(f"/console/c/{cid}/resolve", data={"csrf": "not-the-token"})
        assert r.status_code == 403
        r = await me.client.post(f"/console/c/{cid}/resolve", headers={"X-CSRF-Token": "nope"})
        assert r.status_code == 403
        r = await me.client.post("/console/logout", data={})
        assert r.status_code == 403
        async with app.state.parts.sessionmaker() as s:
            assert (await s.get(Conversation, cid)).state == "waiting"  # type: ignore[union-attr]
        assert await _audit_count(app) == before
        r = await me.client.post(f"/console/c/{cid}/take", data={"csrf": me.csrf})
        assert r.status_code == 303
        async with app.state.parts.sessionmaker() as s:
            conv = await s.get(Conversation, cid)
            assert conv is not None and (conv.state, conv.assignee_id) == ("assigned", "console:ann")
            entry = (await s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()))).first()
            assert entry is not None and (entry.actor, entry.action, entry.target_id) == (
                "console:ann", "take", str(cid))


async def test_login_brute_force_is_locked_out(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(console_login_attempts=3, console_lockout_minutes=5)
    app = await make_app(settings)
    await add(app, "ann", "supervisor")
    async with client(app) as c:
        for i in range(3):
            r = await login(c, "ann", f"guess number {i}")
            assert r.status_code in (401, 429)
        assert r.status_code == 429 and "locked" in r.text
        r = await login(c, "ann", PASSWORD)  # the right password does not get in while locked
        assert r.status_code == 429 and "locked" in r.text
        assert (await c.get("/console")).status_code == 303
    async with app.state.parts.sessionmaker() as s:
        actions = list((await s.scalars(select(AuditEntry.action))).all())
    assert "login.locked" in actions and "login" not in actions


async def test_login_attempts_from_one_address_are_rate_limited(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory(console_logins_per_minute=4))
    await add(app, "ann", "supervisor")
    async with client(app) as c:
        codes = [(await login(c, f"user{i}", "whatever pw")).status_code for i in range(6)]
    assert codes[:4] == [401] * 4 and codes[4:] == [429, 429]


async def test_session_cookie_flags(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    for i, (base, secure) in enumerate((("http://127.0.0.1:8000", False), ("https://support.example.com", True))):
        app = await make_app(settings_factory(public_base_url=base,
                                              database_url=f"sqlite+aiosqlite:///{tmp_path / f'flags{i}.db'}"))
        await add(app, "ann", "supervisor")
        async with client(app, base) as c:  # a Secure cookie only comes back over https
            r = await login(c, "ann")
            assert r.status_code == 303
            cookie = r.headers["set-cookie"]
            parts = {p.strip().split("=")[0].lower() for p in cookie.split(";")}
            assert cookie.startswith("sb_console=")
            assert {"httponly", "samesite", "path", "max-age"} <= parts
            assert "samesite=lax" in cookie.lower() and "path=/console" in cookie.lower()
            assert ("secure" in parts) is secure


async def test_logout_everywhere_ends_every_session(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory())
    await add(app, "ann", "supervisor")
    sessions = [signed_in(app, "ann"), signed_in(app, "ann")]
    first, second = [await anext(s) for s in sessions]
    assert (await second.client.get("/console")).status_code == 200
    r = await first.client.post("/console/logout-everywhere", data={"csrf": first.csrf})
    assert r.status_code == 303
    assert (await second.client.get("/console")).status_code == 303  # the other browser is out too
    for s in sessions:
        await s.aclose()


async def test_a_tampered_cookie_is_not_a_session(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory())
    await add(app, "ann", "supervisor")
    async for me in signed_in(app, "ann"):
        value = me.client.cookies.get("sb_console", path="/console")
        assert value
        # the second-last character: every one of its bits is signature (the last may be padding bits)
        tampered = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
        me.client.cookies.set("sb_console", tampered, path="/console")
        assert (await me.client.get("/console")).status_code == 303


async def test_login_only_returns_to_a_console_page(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory())
    await add(app, "ann", "supervisor")
    for target, expected in (("/console/c/1", "/console/c/1"), ("//evil.example/console", "/console"),
                             ("https://evil.example/", "/console"), ("/console\\@evil", "/console")):
        async with client(app) as c:
            page = await c.get("/console/login", params={"next": target})
            r = await c.post("/console/login", data={"username": "ann", "password": PASSWORD,
                                                     "csrf": csrf_of(page.text), "next": target})
            assert r.status_code == 303 and r.headers["location"] == expected, target
