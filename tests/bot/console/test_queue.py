"""The console queue: the routed queue's order, its filters, SLA clocks (warning and breached
distinct), and the page that shows them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.console.queue import QueueFilters, queue_rows
from bot.messages import Address, utcnow
from bot.models import Conversation
from bot.settings import Settings
from handoff.sla import SLAPolicy
from tests.bot.console.support import add, make_app, signed_in

POLICY = SLAPolicy.from_spec(targets="urgent=15m/4h,high=1h/8h,normal=4h/24h,low=8h/72h", hours="24/7")


async def _seed(app: Any) -> dict[str, int]:
    """Four handed-off conversations with known priorities, waits, owners and tags."""
    pipeline = app.state.parts.pipeline
    now = utcnow()
    spec = {  # name: (priority, minutes waiting, state, owner, tags)
        "old_normal": ("normal", 230, "waiting", None, ["billing"]),  # 230 of 240 min: warning
        "new_urgent": ("urgent", 20, "waiting", None, []),  # 20 of 15 min: breached
        "low": ("low", 500, "assigned", "console:bob", []),
        "new_normal": ("normal", 5, "escalated", None, []),
    }
    ids = {}
    for name, (prio, minutes, state, owner, tags) in spec.items():
        await pipeline.request_human(Address("web", name))
        async with app.state.parts.sessionmaker() as s, s.begin():
            conv = (await s.scalars(select(Conversation).order_by(Conversation.id.desc()))).first()
            assert conv is not None
            conv.priority, conv.state, conv.assignee_id, conv.tags = prio, state, owner, tags
            conv.handed_off_at = now - timedelta(minutes=minutes)
            ids[name] = conv.id
    return ids


async def test_order_filters_and_sla_states(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory())
    ids = await _seed(app)
    async with app.state.parts.sessionmaker() as s:
        rows = await queue_rows(s, policy=POLICY, warn_at=0.8)
        assert [r.id for r in rows] == [ids["new_urgent"], ids["old_normal"], ids["new_normal"], ids["low"]]
        clocks = {r.id: {c.name: c.status for c in r.clocks} for r in rows}
        assert clocks[ids["new_urgent"]]["first_response"] == "breached"
        assert clocks[ids["old_normal"]]["first_response"] == "warning"
        assert clocks[ids["new_normal"]]["first_response"] == "ok"
        assert [r.id for r in await queue_rows(s, policy=POLICY, warn_at=0.8,
                                               filters=QueueFilters.parse({"state": "escalated"}))] == [
            ids["new_normal"]]
        assert [r.id for r in await queue_rows(s, policy=POLICY, warn_at=0.8,
                                               filters=QueueFilters.parse({"owner": "console:bob"}))] == [ids["low"]]
        assert [r.id for r in await queue_rows(s, policy=POLICY, warn_at=0.8,
                                               filters=QueueFilters.parse({"tag": "Billing"}))] == [
            ids["old_normal"]]
        assert await queue_rows(s, policy=POLICY, warn_at=0.8, filters=QueueFilters.parse({"channel": "sms"})) == []
        assert len(await queue_rows(s, policy=POLICY, warn_at=0.8, filters=QueueFilters.parse({"state": "x"}))) == 4


async def test_the_queue_page_lists_them_in_order_with_distinct_sla_marks(
        settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory(sla_business_hours="24/7"))
    ids = await _seed(app)
    await add(app, "ann", "supervisor")
    async for me in signed_in(app, "ann"):
        page = (await me.client.get("/console")).text
        positions = [page.index(f'data-conversation="{ids[n]}"') for n in ("new_urgent", "old_normal",
                                                                            "new_normal", "low")]
        assert positions == sorted(positions)
        assert "sla-breached" in page and "BREACHED" in page and "sla-warning" in page
        assert 'sse-connect="/console/events"' in page
        fragment = (await me.client.get("/console/queue", params={"state": "escalated"})).text
        assert f'data-conversation="{ids["new_normal"]}"' in fragment
        assert f'data-conversation="{ids["low"]}"' not in fragment
        detail = await me.client.get(f"/console/c/{ids['old_normal']}")
        assert detail.status_code == 200 and "Transcript" in detail.text and "asked_for_human" in detail.text
        assert (await me.client.get("/console/c/99999")).status_code == 404
