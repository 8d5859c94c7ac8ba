"""GDPR Export and Erase from the console (supervisors only), against the full app with Slack pointed at
the fake: the export is the CLI's JSON as a download; erasure needs the typed customer number, leaves
no trace of the person in any column, rewrites our Slack posts to "[erased]"; both are audited;
agents, a missing CSRF token and unknown ids are refused with a clear page, never a 500."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot import audit
from bot.cli import app as cli
from bot.customers_admin import set_profile
from bot.messages import Address, InboundMessage
from bot.models import Conversation, Message, OutboxEntry
from bot.settings import Settings
from tests.bot.console.support import add, client, make_app, signed_in
from tests.bot.privacy_scan import every_cell, found
from tests.fakes.slack import FakeSlack, running

EMAIL, WHO = "dana.planted@example.org", "sess-dana"
WORDS = "my parcel is late and Dana needs it for Friday"


@dataclass
class Person:
    app: Any
    fake: FakeSlack
    customer_id: int
    conversation_id: int

    async def settle(self) -> None:
        """Run the bot turns and deliver what is owed (bounded: web chat has no socket here)."""
        parts = self.app.state.parts
        for _ in range(20):
            await parts.pipeline.drain()
            if not await parts.worker.run_once():
                return


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def person(settings_factory: Callable[..., Settings], request: pytest.FixtureRequest) -> AsyncIterator[Person]:
    db = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    async with running(FakeSlack(users={})) as fake:
        app = await make_app(settings_factory(
            **db,
            slack_bot_token="xoxb-test-token", slack_signing_secret="s" * 32, slack_api_base_url=fake.base_url,
            slack_agents_channel="C0AGENTS", slack_supervisors_channel="C0SUPER", slack_timeout=2.0))
        parts = app.state.parts
        receipt = await parts.pipeline.receive(InboundMessage(sender=Address("web", WHO), platform_id="m1",
                                                              text=WORDS, display_name="Dana"))
        await parts.pipeline.request_human(Address("web", WHO))
        async with parts.sessionmaker() as s, s.begin():
            conv = await s.get(Conversation, receipt.conversation_id)
            assert conv is not None
            await set_profile(s, customer_id=conv.customer_id, display_name="Dana Planted", email=EMAIL)
        me = Person(app, fake, conv.customer_id, conv.id)
        await me.settle()
        assert fake.called("chat.postMessage"), "the handoff card reached the Slack fake"
        await add(app, "ann", "supervisor")
        await add(app, "bob", "agent")
        try:
            yield me
        finally:
            await parts.aclose()


async def _audit(app: Any, customer_id: int) -> list[tuple[str, str]]:
    async with app.state.parts.sessionmaker() as s:
        entries = await audit.recent(s, target_kind="customer", target_id=customer_id)
    return [(e.actor, e.action) for e in reversed(entries)]


async def test_a_supervisor_exports_the_persons_data_as_a_json_download(person: Person) -> None:
    async for ann in signed_in(person.app, "ann"):
        profile = await ann.client.get(f"/console/customers/{person.customer_id}")
        assert "Export (JSON)" in profile.text and "Erase…" in profile.text
        r = await ann.client.post(f"/console/customers/{person.customer_id}/export", data={"csrf": ann.csrf})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["content-disposition"] == f'attachment; filename="customer-{person.customer_id}.json"'
        assert r.headers["cache-control"] == "no-store"
        data = json.loads(r.text)
        assert data["customer_id"] == person.customer_id and data["profiles"][0]["email"] == EMAIL
        assert WORDS in {m["text"] for m in data["messages"]}
        assert data["identities"][0]["address"] == WHO
    assert await _audit(person.app, person.customer_id) == [("console:ann", "customer.export")]


async def test_the_cli_and_the_console_write_the_same_json(person: Person, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", person.app.state.settings.database_url)
    printed = await asyncio.to_thread(CliRunner().invoke, cli, ["customers", "export", str(person.customer_id)])
    assert printed.exit_code == 0, printed.output
    async for ann in signed_in(person.app, "ann"):
        r = await ann.client.post(f"/console/customers/{person.customer_id}/export", data={"csrf": ann.csrf})
    assert r.text == printed.stdout


async def test_erase_needs_the_typed_number_then_nothing_of_the_person_is_left(person: Person) -> None:
    app, cid = person.app, person.customer_id
    async for ann in signed_in(app, "ann"):
        form = await ann.client.get(f"/console/customers/{cid}/erase")
        assert form.status_code == 200 and f"Type the customer number, {cid}, to confirm" in form.text
        for wrong in ({}, {"confirm": ""}, {"confirm": str(cid + 1)}, {"confirm": "\x00"}):
            r = await ann.client.post(f"/console/customers/{cid}/erase", data={"csrf": ann.csrf, **wrong})
            assert r.status_code == 400 and "Nothing was erased." in r.text, wrong
        async with app.state.parts.sessionmaker() as s:
            assert WORDS in (await s.scalars(select(Message.text))).all()  # still there

        r = await ann.client.post(f"/console/customers/{cid}/erase", data={"csrf": ann.csrf, "confirm": f" #{cid} "})
        assert r.status_code == 303 and r.headers["location"].startswith(f"/console/customers/{cid}?m=")
        after = await ann.client.get(r.headers["location"])
        assert after.status_code == 200 and f"Customer #{cid} erased:" in after.text
        said = re.search(
            r"1 conversation, 2 messages and 1 identity anonymised; (\d+) Slack posts will read “\[erased\]”\.",
            after.text,
        )  # the messages: theirs and the handoff notice
        assert said is not None, after.text
        slack_posts = int(said.group(1))
        assert "Dana" not in after.text and EMAIL not in after.text

    async with app.state.parts.sessionmaker() as s:
        queued = (await s.scalars(select(OutboxEntry).where(OutboxEntry.kind == "slack.erase"))).all()
        assert [e.conversation_id for e in queued] == [person.conversation_id]
    before = len(person.fake.calls)
    await person.settle()
    updates = [c.params for c in person.fake.calls[before:] if c.method == "chat.update"]
    assert all(u["text"] == "[erased]" for u in updates)
    assert len({u["ts"] for u in updates}) == slack_posts >= 1  # the card and the posts in its thread

    leaks = found([EMAIL, WHO, "Dana", "parcel is late", "Friday"],
                  [(f"{t}.{c}", v) for t, c, v in await every_cell(app.state.parts.sessionmaker)])
    assert leaks == []
    assert await _audit(app, cid) == [("console:ann", "customer.erase")]


async def test_agents_get_403_and_no_buttons(person: Person) -> None:
    cid = person.customer_id
    async for bob in signed_in(person.app, "bob"):
        profile = await bob.client.get(f"/console/customers/{cid}")
        assert profile.status_code == 200
        assert "Export (JSON)" not in profile.text and "Erase" not in profile.text
        for method, path, data in (("POST", "export", {"csrf": bob.csrf}), ("GET", "erase", None),
                                   ("POST", "erase", {"csrf": bob.csrf, "confirm": str(cid)})):
            r = await bob.client.request(method, f"/console/customers/{cid}/{path}", data=data)
            assert r.status_code == 403 and "Only supervisors" in r.text, (method, path)
    assert await _audit(person.app, cid) == []


async def test_without_the_csrf_token_nothing_happens(person: Person) -> None:
    cid = person.customer_id
    async for ann in signed_in(person.app, "ann"):
        for path, data in (("export", {}), ("erase", {"confirm": str(cid)}),
                           ("erase", {"confirm": str(cid), "csrf": "not-the-token"})):
            r = await ann.client.post(f"/console/customers/{cid}/{path}", data=data)
            assert r.status_code == 403 and "security token" in r.text, (path, data)
    async with person.app.state.parts.sessionmaker() as s:
        assert WORDS in (await s.scalars(select(Message.text))).all()
    assert await _audit(person.app, cid) == []


async def test_unknown_customers_are_404_and_signed_out_users_are_sent_to_sign_in(person: Person) -> None:
    async for ann in signed_in(person.app, "ann"):
        for method, path, data in (("POST", "export", {"csrf": ann.csrf}), ("GET", "erase", None),
                                   ("POST", "erase", {"csrf": ann.csrf, "confirm": "9999"})):
            r = await ann.client.request(method, f"/console/customers/9999/{path}", data=data)
            assert r.status_code == 404 and "There is no customer #9999." in r.text, (method, path)
        for bad in ("abc", "0", str(2**31)):  # not an id, or beyond the INTEGER column (a 500 on PostgreSQL)
            for method, path in (("POST", "export"), ("GET", "erase"), ("POST", "erase"), ("GET", "")):
                r = await ann.client.request(method, f"/console/customers/{bad}/{path}".rstrip("/"),
                                             data={"csrf": ann.csrf} if method == "POST" else None)
                assert r.status_code == 422, (bad, method, path)
    async with client(person.app) as anonymous:
        r = await anonymous.post(f"/console/customers/{person.customer_id}/export")  # an action: 401, not a page
        assert r.status_code == 401 and r.headers["hx-redirect"].startswith("/console/login")
        r = await anonymous.get(f"/console/customers/{person.customer_id}/erase")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
