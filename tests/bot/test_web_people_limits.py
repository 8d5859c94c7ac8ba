"""The widget's contact and feedback routes take no token, so their bodies are capped before they are
read and odd JSON is a 400, never a 500 (issue 13, class 6)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.settings import Settings
from bot.web_people_api import MAX_BODY, web_people_router


async def test_odd_or_huge_bodies_are_4xx(db: async_sessionmaker[AsyncSession],
                                          settings_factory: Callable[..., Settings]) -> None:
    app = FastAPI()
    app.include_router(web_people_router(settings_factory(), db))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://t") as http:
        for route in ("/api/web/contact", "/api/web/feedback"):
            nested = await http.post(route, content="[" * 4000, headers={"content-type": "text/plain"})
            assert nested.status_code == 400, nested.text

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
                for _ in range(100):
                    yield b" " * 1024

            streamed = await http.post(route, content=chunks())
            assert streamed.status_code == 413
            declared = await http.post(route, content=b"{}" + b" " * MAX_BODY)
            assert declared.status_code == 413
