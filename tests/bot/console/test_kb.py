"""The knowledge-base page: per-article served / 👎 / handed-off-after counts from the event log,
the gaps, and teaching (supervisors only, only articles of the published KB)."""

from __future__ import annotations

from collections.abc import Callable

from bot.messages import Address, InboundMessage
from bot.settings import Settings
from tests.bot.console.support import add, make_app, signed_in


async def _talk(app, who: str, *texts: str) -> None:  # type: ignore[no-untyped-def]
    pipeline = app.state.parts.pipeline
    for i, text in enumerate(texts):
        await pipeline.receive(InboundMessage(Address("web", who), f"{who}-{i}", text))
        await pipeline.drain()


async def test_article_counts_gaps_and_who_may_teach(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory(answer_threshold=0.6))
    await _talk(app, "a", "how do refunds work?")  # served
    await _talk(app, "b", "refund please")  # served, then handed off right after
    await app.state.parts.pipeline.request_human(Address("web", "b"))
    await _talk(app, "c", "where is my parrot", "where is my parrot")  # unanswered twice: a gap
    await add(app, "ann", "supervisor")
    await add(app, "bob", "agent")
    async for me in signed_in(app, "bob"):
        page = await me.client.get("/console/kb")
        assert page.status_code == 200
        assert '<tr data-article="refunds"><td>refunds</td><td>2</td><td>0</td><td>1</td></tr>' in page.text
        assert "where is my parrot" in page.text and "Add as a phrasing" not in page.text
        r = await me.client.post("/console/kb/teach", data={"csrf": me.csrf, "article_id": "refunds",
                                                             "question": "where is my parrot"})
        assert r.status_code == 403
    async for me in signed_in(app, "ann"):
        r = await me.client.post("/console/kb/teach", data={"csrf": me.csrf, "article_id": "refunds",
                                                             "question": "where is my parrot"})
        assert r.status_code == 303  # refused: this KB publishes no article list (a table searcher)
        page = await me.client.get(r.headers["location"])
        assert "Choose an article of the published KB." in page.text
