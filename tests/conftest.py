"""Shared fixtures: clean environment, settings built from a dict, a fresh database per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import Base, import_all_models, make_engine, make_sessionmaker
from bot.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_here = Path(__file__).parent
pytest_plugins = ["tests.fixtures.pg"] + (
    ["tests.fixtures.kb"] if (_here / "fixtures" / "kb.py").exists() else []
)

_SETTINGS_ENV = {name.upper() for name in Settings.model_fields}


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's Switchboard settings (DATABASE_URL, SLACK_*, TWILIO_*...)."""
    for key in list(os.environ):
        if key.upper() in _SETTINGS_ENV:
            monkeypatch.delenv(key, raising=False)
    yield


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'test.db'}",
            "index_dir": tmp_path / "index",
            "outbox_backoff_initial": 0.05,
            "outbox_backoff_max": 0.5,
            "outbox_poll_seconds": 0.05,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


async def _fresh_db(url: str) -> tuple[Any, async_sessionmaker[AsyncSession]]:
    import_all_models()
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return engine, make_sessionmaker(engine)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on a fresh SQLite file."""
    engine, sm = await _fresh_db(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    yield sm
    await engine.dispose()


@pytest.fixture
async def pg_db(pg_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on a fresh PostgreSQL database."""
    engine, sm = await _fresh_db(pg_url)
    yield sm
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine, sm = await _fresh_db(url)
    yield sm
    await engine.dispose()
