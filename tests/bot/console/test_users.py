"""Console accounts: argon2 hashes, roles, lockout, session generations, and `switchboard users`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.audit import AuditEntry
from bot.console import users
from bot.console.users import Lockout, UserError, add_user, check_login, set_password
from bot.messages import utcnow
from bot.migrate import upgrade
from bot.settings import Settings

LOCK = Lockout(attempts=3, minutes=10)


async def test_a_password_is_stored_as_an_argon2_hash_and_checked(any_db) -> None:  # type: ignore[no-untyped-def]
    async with any_db() as s, s.begin():
        user = await add_user(s, username="Ann", password="long enough pw", role="supervisor")
        assert user.username == "ann" and user.password_hash.startswith("$argon2id$")
        assert "long enough pw" not in user.password_hash
    async with any_db() as s, s.begin():
        assert (await check_login(s, username="ann", password="long enough pw", policy=LOCK)).user is not None
        assert (await check_login(s, username="ann", password="wrong password", policy=LOCK)).user is None
        assert (await check_login(s, username="nobody", password="long enough pw", policy=LOCK)).user is None


@pytest.mark.parametrize("kwargs, error", [
    ({"username": "a", "password": "long enough pw"}, "username"),
    ({"username": "bob", "password": "short"}, "at least 10"),
    ({"username": "bob", "password": "long enough pw", "role": "admin"}, "unknown role"),
])
async def test_bad_accounts_are_refused_with_a_reason(db, kwargs, error) -> None:  # type: ignore[no-untyped-def]
    async with db() as s, s.begin():
        with pytest.raises(UserError, match=error):
            await add_user(s, **kwargs)


async def test_failed_logins_lock_the_account_even_for_the_right_password_until_it_runs_out(db) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    async with db() as s, s.begin():
        await add_user(s, username="ann", password="long enough pw")
    for i in range(LOCK.attempts):
        async with db() as s, s.begin():
            result = await check_login(s, username="ann", password=f"wrong {i} xxxxx", policy=LOCK, now=now)
            assert result.user is None
    assert result.locked_until is not None
    async with db() as s, s.begin():
        locked = await check_login(s, username="ann", password="long enough pw", policy=LOCK, now=now)
        assert locked.user is None and locked.locked_until is not None
    later = now + timedelta(minutes=LOCK.minutes + 1)
    async with db() as s, s.begin():
        assert (await check_login(s, username="ann", password="long enough pw", policy=LOCK, now=later)).user


async def test_a_new_password_or_disabling_bumps_the_session_generation(db) -> None:  # type: ignore[no-untyped-def]
    async with db() as s, s.begin():
        gen = (await add_user(s, username="ann", password="long enough pw")).generation
        assert (await set_password(s, username="ann", password="another long one")).generation == gen + 1
        assert (await users.set_active(s, username="ann", active=False)).generation == gen + 2
        assert (await check_login(s, username="ann", password="another long one", policy=LOCK)).user is None


def test_the_users_command_adds_lists_disables_and_resets(settings_factory: Callable[..., Settings],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import app

    settings = settings_factory()
    upgrade(settings.database_url)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    runner = CliRunner()
    r = runner.invoke(app, ["users", "add", "ann", "--role", "supervisor"],
                      input="long enough pw\nlong enough pw\n")
    assert r.exit_code == 0, r.output
    assert "added ann (supervisor)" in r.output
    r = runner.invoke(app, ["users", "add", "bob"], env={"SWITCHBOARD_USER_PASSWORD": "bobs long pw"})
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["users", "add", "bob"], env={"SWITCHBOARD_USER_PASSWORD": "bobs long pw"})
    assert r.exit_code == 1 and "already exists" in r.output
    assert runner.invoke(app, ["users", "disable", "bob"]).exit_code == 0
    r = runner.invoke(app, ["users", "set-password", "ann"], input="a new long pw\na new long pw\n")
    assert r.exit_code == 0, r.output
    listing = runner.invoke(app, ["users", "list"]).output
    assert "ann\tsupervisor\tactive" in listing and "bob\tagent\tdisabled" in listing
    r = runner.invoke(app, ["users", "set-password", "nobody"], input="a new long pw\na new long pw\n")
    assert r.exit_code == 1 and "no console user" in r.output

    import asyncio

    from bot.db import make_engine, make_sessionmaker

    async def actions() -> list[str]:
        engine = make_engine(settings.database_url)
        async with make_sessionmaker(engine)() as s:
            rows = (await s.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
        await engine.dispose()
        return list(rows)

    assert asyncio.run(actions()) == ["user.add", "user.add", "user.disable", "user.set_password"]


def test_serve_says_how_to_switch_the_console_on(settings_factory: Callable[..., Settings]) -> None:
    from bot.console.users_cli import console_status

    settings = settings_factory()
    upgrade(settings.database_url)
    line = console_status(settings)
    assert "switchboard users add NAME --role supervisor" in line
