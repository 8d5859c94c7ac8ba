"""The queue page (/console), its table fragment (re-read on every live update) and the event stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from bot.console.context import Console
from bot.console.queue import STATES, QueueFilters, QueueRow, filter_choices, queue_rows

HEARTBEAT_SECONDS = 10.0
# A stream ends after this long and the browser reconnects by itself (EventSource): an open console
# tab never holds a server's shutdown for long. Every (re)connect starts with "refresh" events, so an
# announcement made while a page was reconnecting is not missed.
STREAM_SECONDS = 30.0


def router(console: Console) -> APIRouter:
    r = APIRouter()

    async def rows(request: Request) -> tuple[QueueFilters, list[QueueRow]]:
        filters = QueueFilters.parse(dict(request.query_params))
        async with console.sessionmaker() as session:
            found = await queue_rows(session, policy=console.sla_policy,
                                     warn_at=console.settings.sla_warn_fraction, filters=filters)
        return filters, found

    @r.get("/console", include_in_schema=False)
    async def queue_page(request: Request) -> Response:
        viewer = await console.sessions.require(request)
        filters, found = await rows(request)
        async with console.sessionmaker() as session:
            choices = await filter_choices(session)
        return console.page(request, "queue.html", viewer, rows=found, filters=filters, states=STATES,
                            choices=choices, nav="queue")

    @r.get("/console/queue", include_in_schema=False)
    async def queue_fragment(request: Request) -> Response:
        viewer = await console.sessions.require(request)
        _, found = await rows(request)
        return console.page(request, "_queue_table.html", viewer, rows=found)

    @r.get("/console/events", include_in_schema=False)
    async def events(request: Request, c: int | None = None) -> Response:
        await console.sessions.require(request)

        async def stream() -> AsyncIterator[str]:
            loop = asyncio.get_running_loop()
            ends = loop.time() + STREAM_SECONDS
            async with console.broadcaster.subscribe() as inbox:
                yield "retry: 1000\n\nevent: queue\ndata: 0\n\n" + (f"event: c{c}\ndata: {c}\n\n" if c else "")
                while (left := ends - loop.time()) > 0:
                    try:
                        cid = await asyncio.wait_for(inbox.get(), min(HEARTBEAT_SECONDS, left))
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield ": ping\n\n"
                        continue
                    if cid < 0:  # shutting down
                        return
                    yield f"event: queue\ndata: {cid}\n\nevent: c{cid}\ndata: {cid}\n\n"

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    return r


__all__ = ["router"]
