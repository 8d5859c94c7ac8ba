"""Alembic migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.db import Base, import_all_models, make_engine
from bot.migrate import upgrade


async def _diff(url: str) -> list[Any]:
    import_all_models()
    engine = make_engine(url)

    def compare(conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as conn:
        diff = await conn.run_sync(compare)
    await engine.dispose()
    return diff


async def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await asyncio.to_thread(upgrade, url)
    assert await _diff(url) == []


@pytest.mark.postgres
async def test_postgres_migrations_match_models(pg_url: str) -> None:
    await asyncio.to_thread(upgrade, pg_url)
    assert await _diff(pg_url) == []
