"""The reports page (/console/reports, supervisors): the figures of `switchboard report --json` for a
range of days and a channel, each chart with its table and a CSV download."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bot.console.context import Console
from bot.console.forms import clean
from bot.console.report_view import RangeError, default_range, report_view


def router(console: Console) -> APIRouter:
    r = APIRouter()

    def params(request: Request) -> tuple[str, str, str | None]:
        start, end = default_range(console.settings)
        q = request.query_params
        channel = clean(q.get("channel"), limit=32) or None
        return clean(q.get("from"), limit=32) or start, clean(q.get("to"), limit=32) or end, channel

    @r.get("/console/reports", include_in_schema=False)
    async def reports_page(request: Request) -> Response:
        viewer = await console.sessions.require(request, supervisor=True)
        from_day, to_day, channel = params(request)
        try:
            async with console.sessionmaker() as session:
                view = await report_view(session, from_day=from_day, to_day=to_day, channel=channel,
                                         settings=console.settings, policy=console.sla_policy)
        except RangeError as exc:
            return console.page(request, "reports.html", viewer, status_code=400, nav="reports", view=None,
                                error=str(exc), from_day=from_day, to_day=to_day, channel=channel)
        return console.page(request, "reports.html", viewer, nav="reports", view=view, error=None,
                            from_day=from_day, to_day=to_day, channel=channel, query=request.url.query)

    @r.get("/console/reports/{key}.csv", include_in_schema=False)
    async def chart_csv(request: Request, key: str) -> Response:
        await console.sessions.require(request, supervisor=True)
        from_day, to_day, channel = params(request)
        try:
            async with console.sessionmaker() as session:
                view = await report_view(session, from_day=from_day, to_day=to_day, channel=channel,
                                         settings=console.settings, policy=console.sla_policy)
        except RangeError as exc:
            return Response(str(exc), status_code=400, media_type="text/plain")
        chart = next((c for c in view.charts if c.key == key), None)
        if chart is None:
            return Response("No such chart.", status_code=404, media_type="text/plain")
        name = f"switchboard-{key}-{from_day}-{to_day}{'-' + channel if channel else ''}.csv"
        return Response(chart.csv(), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return r


__all__ = ["router"]
