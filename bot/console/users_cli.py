"""`switchboard users add|list|disable|enable|set-password|set-role` (logic in `bot.console.users`).

    switchboard users add ann --role supervisor          # asks for the password twice
    switchboard users list
    switchboard users set-password ann                   # also ends ann's sessions everywhere
    switchboard users disable bob
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.audit import record as audit_record
from bot.console import users
from bot.db import make_engine, make_sessionmaker
from bot.settings import Settings

app = typer.Typer(help="Web console accounts (roles: agent, supervisor).", no_args_is_help=True)
PASSWORD_ENV = "SWITCHBOARD_USER_PASSWORD"  # for scripts; otherwise the password is asked for (not echoed)

Password = Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                       envvar=PASSWORD_ENV, help=f"The password (or set {PASSWORD_ENV})")]


def _run(fn: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    settings = Settings()

    async def go() -> Any:
        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                return await fn(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except users.UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except SQLAlchemyError as exc:
        typer.echo(f"database error (run `switchboard migrate`?): {type(exc).__name__}", err=True)
        raise typer.Exit(1) from exc


async def _audit(session: AsyncSession, action: str, user: users.ConsoleUser, **detail: Any) -> None:
    await audit_record(session, actor="cli", action=action, target_kind="user", target_id=user.id,
                       detail={"username": user.username, **detail})


@app.command("add")
def add(
    username: str,
    password: Password,
    role: Annotated[str, typer.Option(help="agent or supervisor")] = "agent",
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
) -> None:
    """Create a console user."""
    async def go(session: AsyncSession) -> users.ConsoleUser:
        user = await users.add_user(session, username=username, password=password, role=role, display_name=name)
        await _audit(session, "user.add", user, role=role)
        return user

    user = _run(go)
    typer.echo(f"added {user.username} ({user.role}); sign in at {Settings().public_base_url}/console")


@app.command("list")
def list_() -> None:
    """Every console user with role and state."""
    async def go(session: AsyncSession) -> list[users.ConsoleUser]:
        return await users.list_users(session)

    for u in _run(go):
        state = "active" if u.active else "disabled"
        last = u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "never"
        typer.echo(f"{u.username}\t{u.role}\t{state}\tlast login {last}")


@app.command("disable")
def disable(username: str) -> None:
    """Disable a user (their sessions end at once)."""
    async def go(session: AsyncSession) -> None:
        await _audit(session, "user.disable", await users.set_active(session, username=username, active=False))

    _run(go)
    typer.echo(f"disabled {username}")


@app.command("enable")
def enable(username: str) -> None:
    """Enable a disabled user again."""
    async def go(session: AsyncSession) -> None:
        await _audit(session, "user.enable", await users.set_active(session, username=username, active=True))

    _run(go)
    typer.echo(f"enabled {username}")


@app.command("set-password")
def set_password(username: str, password: Password) -> None:
    """Set a new password (ends the user's sessions everywhere and lifts a lockout)."""
    async def go(session: AsyncSession) -> None:
        await _audit(session, "user.set_password", await users.set_password(session, username=username,
                                                                            password=password))

    _run(go)
    typer.echo(f"password set for {username}")


@app.command("set-role")
def set_role(username: str, role: str) -> None:
    """Change a user's role (agent or supervisor)."""
    async def go(session: AsyncSession) -> None:
        await _audit(session, "user.set_role", await users.set_role(session, username=username, role=role),
                     role=role)

    _run(go)
    typer.echo(f"{username} is now {role}")


def console_status(settings: Settings) -> str:
    """One line for `serve`: where the console is, or how to switch it on (no user yet)."""
    async def go() -> int:
        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                return await users.count_active(session)
        finally:
            await engine.dispose()

    url = f"{settings.public_base_url.rstrip('/')}/console"
    try:
        count = asyncio.run(go())
    except SQLAlchemyError:
        count = 0
    if count:
        return f"console: {url} ({count} user{'s' if count != 1 else ''})"
    return ("console: off until a user exists; create the first one with\n"
            "    switchboard users add NAME --role supervisor\n"
            f"  then sign in at {url}")
