"""Console accounts: the `console_users` table and every query on it.

    await add_user(session, username="ann", password="...", role="supervisor")
    user = await check_login(session, username="ann", password="...", now=utcnow(), policy=LOCKOUT)

Passwords are hashed with argon2id (argon2-cffi's defaults). `generation` is bumped by
"log out everywhere", a password change and disabling: a session cookie carries the generation it
was issued under and stops working once they differ. Failed logins are counted on the row, so the
lockout holds across every web process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Boolean, Integer, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base
from bot.messages import utcnow

ROLES = ("agent", "supervisor")
MIN_PASSWORD = 10
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_hasher = PasswordHasher()


class ConsoleUser(Base):
    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # agent | supervisor
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)  # sessions of older generations are void
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()

    @property
    def actor(self) -> str:
        """The id the pipeline and the audit log know this person by."""
        return f"console:{self.username}"

    @property
    def name(self) -> str:
        return self.display_name or self.username

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


class UserError(ValueError):
    """A bad username, role or password, or an unknown or duplicate user (the message says which)."""


@dataclass(frozen=True, slots=True)
class Lockout:
    attempts: int = 5  # failed logins in a row before the account locks
    minutes: float = 15.0


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


async def count_active(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count(ConsoleUser.id)).where(ConsoleUser.active.is_(True))) or 0)


async def get_user(session: AsyncSession, *, username: str) -> ConsoleUser:
    user = await session.scalar(select(ConsoleUser).where(ConsoleUser.username == username.strip().lower()))
    if user is None:
        raise UserError(f"no console user {username!r}")
    return user


async def list_users(session: AsyncSession) -> list[ConsoleUser]:
    return list((await session.scalars(select(ConsoleUser).order_by(ConsoleUser.username))).all())


async def add_user(session: AsyncSession, *, username: str, password: str, role: str = "agent",
                   display_name: str | None = None) -> ConsoleUser:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise UserError("a username is 2-64 characters: lower-case letters, digits, '.', '_' or '-'")
    _check_role(role)
    _check_password(password)
    if await session.scalar(select(ConsoleUser.id).where(ConsoleUser.username == name)) is not None:
        raise UserError(f"console user {name!r} already exists")
    user = ConsoleUser(username=name, role=role, display_name=display_name, password_hash=_hasher.hash(password),
                       active=True, generation=1, failed_logins=0)
    session.add(user)
    await session.flush()
    return user


async def set_password(session: AsyncSession, *, username: str, password: str) -> ConsoleUser:
    _check_password(password)
    user = await get_user(session, username=username)
    user.password_hash = _hasher.hash(password)
    user.generation += 1
    user.failed_logins, user.locked_until = 0, None
    return user


async def set_active(session: AsyncSession, *, username: str, active: bool) -> ConsoleUser:
    user = await get_user(session, username=username)
    user.active = active
    user.generation += 1
    return user


async def set_role(session: AsyncSession, *, username: str, role: str) -> ConsoleUser:
    user = await get_user(session, username=username)
    user.role = _check_role(role)
    user.generation += 1
    return user


async def end_sessions(session: AsyncSession, *, user_id: int) -> None:
    """Log out everywhere: every cookie issued so far stops working."""
    user = await session.get(ConsoleUser, user_id)
    if user is not None:
        user.generation += 1


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: ConsoleUser | None
    locked_until: datetime | None = None


async def check_login(session: AsyncSession, *, username: str, password: str, policy: Lockout,
                      now: datetime | None = None) -> LoginResult:
    """Verify a password, counting failures; the caller commits. A locked account refuses even the
    right password until the lock runs out (and says nothing about whether it was right)."""
    now = now or utcnow()
    user = await session.scalar(
        select(ConsoleUser).where(ConsoleUser.username == username.strip().lower()).with_for_update()
    )
    if user is None or not user.active:
        _hasher.hash(password)  # the same work for an unknown name: no timing tell
        return LoginResult(None)
    if user.locked_until is not None and user.locked_until > now:
        return LoginResult(None, user.locked_until)
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= policy.attempts:
            user.locked_until = now + timedelta(minutes=policy.minutes)
            user.failed_logins = 0
            return LoginResult(None, user.locked_until)
        return LoginResult(None)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    return LoginResult(user)


__all__ = ["ConsoleUser", "UserError", "Lockout", "LoginResult", "ROLES", "add_user", "set_password",
           "set_active", "set_role", "end_sessions", "check_login", "count_active", "list_users", "get_user"]
