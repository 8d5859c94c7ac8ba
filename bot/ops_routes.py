"""The operator's endpoints: ``/metrics`` (Prometheus) and ``/readyz`` (may this process take traffic?).

``/healthz`` (in bot.app) says the process is alive; ``/readyz`` says it can serve: the database
answers, Redis answers when ``REDIS_URL`` is set, and a KB index is loaded. A load balancer sends
traffic only to ready processes; an orchestrator restarts only unhealthy ones.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from bot import metrics

log = logging.getLogger("switchboard.ops")
CHECK_TIMEOUT = 2.0


async def _database(parts: Any) -> None:
    async with parts.sessionmaker() as session:
        await session.execute(text("SELECT 1"))


async def _redis(url: str) -> None:
    from redis.asyncio import Redis  # noqa: PLC0415 optional: redis loads only when REDIS_URL is set

    client = Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _check(name: str, coro: Any) -> tuple[str, str]:
    try:
        await asyncio.wait_for(coro, timeout=CHECK_TIMEOUT)
    except Exception as exc:  # reported, not raised: /readyz answers 503 with the reason
        log.warning("readiness check %s failed: %s", name, type(exc).__name__)
        return name, f"failed: {type(exc).__name__}"
    return name, "ok"


def ops_router(parts: Any) -> APIRouter:
    r = APIRouter()

    @r.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = [_check("database", _database(parts))]
        if parts.settings.redis_url:
            checks.append(_check("redis", _redis(parts.settings.redis_url)))
        results = dict(await asyncio.gather(*checks))
        results["index"] = "ok" if parts.kb is not None else "failed: no index loaded"
        ready = all(v == "ok" for v in results.values())
        return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)

    @r.get("/metrics")
    async def scrape() -> Response:
        extra = None
        try:
            async with parts.sessionmaker() as session:
                extra = await asyncio.wait_for(metrics.outbox_snapshot(session), timeout=CHECK_TIMEOUT)
        except Exception as exc:  # the counters still scrape when the database does not answer
            log.warning("outbox snapshot for /metrics failed: %s", type(exc).__name__)
        body, content_type = metrics.render(extra)
        return Response(body, media_type=content_type)

    return r


__all__ = ["ops_router"]
