"""The reports page shows the numbers `switchboard report --json` prints (one code path), each chart
with its table and CSV; supervisors only."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Callable
from typing import Any

import pytest

from bot.console.report_view import default_range
from bot.messages import Address
from bot.settings import Settings
from tests.bot.console.support import add, cli_report_json, make_app, signed_in


async def _traffic(app: Any) -> None:
    pipeline, agents = app.state.parts.pipeline, app.state.parts.agents
    for who in ("w1", "w2", "w3"):
        await pipeline.request_human(Address("web", who))
    await pipeline.request_human(Address("sms", "+15550001111"))
    await agents.reply(1, text="Hello", author_id="console:ann", author_name="Ann")
    await agents.resolve(1, by="console:ann")
    await agents.escalate(2, decision=agents.policy.agent_escalation(by="Ann", reason="angry"))


async def test_the_page_shows_the_same_figures_as_report_json(settings_factory: Callable[..., Settings],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_factory()
    app = await make_app(settings)
    await _traffic(app)
    await add(app, "ann", "supervisor")
    _, today = default_range(settings)
    expected = await asyncio.to_thread(cli_report_json, settings, today, monkeypatch)
    assert expected["conversations"] == 4  # the traffic above, so the comparison is not 0 == 0
    async for me in signed_in(app, "ann"):
        page = await me.client.get("/console/reports", params={"from": today, "to": today})
        assert page.status_code == 200
        shown = dict(re.findall(r'<td data-key="([^"]+)">([^<]*)</td>', page.text))
        for key, value in shown.items():
            node: Any = expected
            for part in key.split("."):
                node = node.get(part, 0)
            assert str(node) == value, key
        assert {"conversations", "by_channel.web", "by_channel.sms", "handed_off", "escalated",
                "resolved"} <= set(shown)
        for key in ("volume", "automation", "times", "distribution", "sla", "reasons", "hours"):
            assert f'data-chart="{key}"' in page.text and f"/console/reports/{key}.csv" in page.text
        assert page.text.count("<svg") == 7
        dist = await me.client.get("/console/reports/distribution.csv", params={"from": today, "to": today})
        got_dist = {r["bucket"]: (int(r["first responses"]), int(r["resolutions"]))
                    for r in csv.DictReader(io.StringIO(dist.text))}
        assert got_dist == {k: (expected["first_response"]["buckets"][k], expected["resolution"]["buckets"][k])
                            for k in expected["first_response"]["buckets"]}
        assert sum(v[0] for v in got_dist.values()) == expected["first_response"]["count"] == 1

        volume = await me.client.get("/console/reports/volume.csv", params={"from": today, "to": today})
        assert volume.status_code == 200 and volume.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(volume.text)))
        assert [(r["day"], int(r["web"]), int(r["sms"]), int(r["total"])) for r in rows] == [
            (today, expected["by_channel"]["web"], expected["by_channel"]["sms"], expected["conversations"])]
        reasons = await me.client.get("/console/reports/reasons.csv", params={"from": today, "to": today})
        got = {r["reason"]: int(r["handoffs"]) for r in csv.DictReader(io.StringIO(reasons.text))}
        assert got == expected["handoff_reasons"]
        sla = await me.client.get("/console/reports/sla.csv", params={"from": today, "to": today})
        got_sla = {r["clock"]: (int(r["met"]), int(r["breached"]), int(r["running"]))
                   for r in csv.DictReader(io.StringIO(sla.text))}
        assert got_sla == {k: (v["met"], v["breached"], v["pending"]) for k, v in expected["sla"].items()}
        hours = list(csv.DictReader(io.StringIO((await me.client.get(
            "/console/reports/hours.csv", params={"from": today, "to": today})).text)))
        assert sum(int(v) for k, v in hours[0].items() if k != "day") == expected["conversations"]

        bad = await me.client.get("/console/reports", params={"from": today, "to": "2000-01-01"})
        assert bad.status_code == 400 and "on or before" in bad.text
        assert (await me.client.get("/console/reports/nope.csv")).status_code == 404


async def test_an_agent_cannot_open_reports_or_their_csv(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory())
    await add(app, "bob", "agent")
    async for me in signed_in(app, "bob"):
        assert (await me.client.get("/console/reports")).status_code == 403
        assert (await me.client.get("/console/reports/volume.csv")).status_code == 403
        assert "/console/reports" not in (await me.client.get("/console")).text
