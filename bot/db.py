"""Persistence setup: the declarative Base, the async engine and the session factory.

Every owner keeps its own tables (`bot/models.py`, `bot/*_models.py`, `bot/audit.py`,
`kb_index/models.py`) on this one `Base`. Use one `AsyncSession` per request or task.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncAttrs,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps on every backend (SQLite returns naive values; we re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}
        if url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"):
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        else:
            _owner_only(engine_file(url))
        engine = create_async_engine(url, echo=echo, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True)


def engine_file(url: str) -> Path | None:
    """The SQLite database file a URL names (None for an in-memory database)."""
    path = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
    return Path(path) if path and path != ":memory:" else None


def _owner_only(path: Path | None) -> None:
    """The SQLite file (and its -wal/-shm/-journal, which SQLite creates with the same mode) readable
    by its owner only: it holds customers' messages. Created empty here if it does not exist yet."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        for suffix in ("", "-wal", "-shm", "-journal"):
            candidate = path.with_name(path.name + suffix)
            if candidate.exists() and candidate.stat().st_mode & 0o077:
                candidate.chmod(0o600)
    except OSError:  # a read-only mount or a file someone else owns: SQLite reports the real problem
        pass


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def with_session(
    url: str,
    fn: Callable[[AsyncSession], Awaitable[Any]],
    on_error: Callable[[SQLAlchemyError], None] | None = None,
    *,
    write: bool = False,
) -> Any:
    """``await fn(session)`` on a short-lived engine for ``url``: one-off work outside a running
    app (CLI commands, the start-up index build), in one transaction when ``write``. The one
    session helper for such work. When the database is unreachable or not migrated, ``on_error``
    gets the error and the result is None; without ``on_error`` the error propagates."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            if not write:
                return await fn(session)
            async with session.begin():
                return await fn(session)
    except SQLAlchemyError as exc:
        if on_error is None:
            raise
        on_error(exc)
        return None
    finally:
        await engine.dispose()


def import_all_models() -> None:
    """Import every module that declares tables so `Base.metadata` knows them all (migrations,
    create_all). Imported here, not at the top: each of them imports `Base` from this module."""
    import bot.audit  # noqa: F401, PLC0415 cycle: the table module imports Base from here
    import bot.console.users  # noqa: F401, PLC0415 cycle: the table module imports Base from here
    import bot.csat_models  # noqa: F401, PLC0415 cycle: the table module imports Base from here
    import bot.models  # noqa: F401, PLC0415 cycle: the table module imports Base from here
    import bot.presence_models  # noqa: F401, PLC0415 cycle: the table module imports Base from here
    import bot.slack_models  # noqa: F401, PLC0415 cycle: the table module imports Base from here
    import kb_index.models  # noqa: F401, PLC0415 cycle: the table module imports Base from here


__all__ = [
    "Base",
    "Engine",
    "make_engine",
    "make_sessionmaker",
    "with_session",
    "import_all_models",
    "UTCDateTime",
]
