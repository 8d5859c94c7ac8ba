"""Customer profiles: set, tag, link, merge (every message kept), clear errors, and the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from bot import customers_admin as admin
from bot.cli import app
from bot.messages import Address, InboundMessage
from bot.models import ChannelIdentity, Conversation, Customer, Message
from tests.bot.test_engine import Rig


async def new_customer(sm: async_sessionmaker[AsyncSession], channel: str, address: str,
                       name: str | None = None) -> int:
    async with sm() as s, s.begin():
        c = Customer(display_name=name)
        s.add(c)
        await s.flush()
        s.add(ChannelIdentity(customer_id=c.id, channel=channel, address=address))
        return c.id


async def test_set_and_tag_normalise_and_refuse_nonsense(db: async_sessionmaker[AsyncSession]) -> None:
    cid = await new_customer(db, "web", "w-1")
    async with db() as s, s.begin():
        c = await admin.set_profile(s, customer_id=cid, display_name=" Ann Lee ", email="Ann@Example.COM",
                                    phone="(415) 555-0101", vip=True, notes="prefers SMS")
        assert (c.display_name, c.email, c.phone, c.vip, c.notes) == (
            "Ann Lee", "Ann@example.com", "+14155550101", True, "prefers SMS")
        c = await admin.tag(s, customer_id=cid, add=["#Enterprise", "trial", "trial"])
        c = await admin.tag(s, customer_id=cid, remove=["TRIAL"])
        assert c.tags == ["enterprise"]
    async with db() as s, s.begin():
        with pytest.raises(admin.InvalidProfileValue, match="not an email"):
            await admin.set_profile(s, customer_id=cid, email="ann at example")
        with pytest.raises(admin.InvalidProfileValue, match="not a phone"):
            await admin.set_profile(s, customer_id=cid, phone="12")
        with pytest.raises(admin.InvalidProfileValue, match="not a tag"):
            await admin.tag(s, customer_id=cid, add=["two words"])
        with pytest.raises(admin.CustomerNotFound, match="no customer 999"):
            await admin.set_profile(s, customer_id=999, vip=True)


async def test_link_and_its_errors(db: async_sessionmaker[AsyncSession]) -> None:
    ann = await new_customer(db, "web", "w-ann")
    bob = await new_customer(db, "sms", "+14155550199")
    async with db() as s, s.begin():
        ident = await admin.link_identity(s, customer_id=ann, channel="sms", address="415 555 0101")
        assert (ident.channel, ident.address, ident.customer_id) == ("sms", "+14155550101", ann)
        again = await admin.link_identity(s, customer_id=ann, channel="sms", address="+1 415-555-0101")
        assert again.id == ident.id  # linking twice is a no-op
    async with db() as s, s.begin():
        with pytest.raises(admin.IdentityTaken, match=f"belongs to customer {bob}; merge"):
            await admin.link_identity(s, customer_id=ann, channel="sms", address="+14155550199")


async def test_merge_keeps_every_message_and_refuses_bad_merges(rig: Rig) -> None:
    sms_conv = await rig.say("how do refunds work?", "m1", who="sms-person")  # web channel in this rig
    web_conv = await rig.say("shipping?", "m2", who="web-person")
    async with rig.sm() as s:
        convs = {c.id: c.customer_id for c in (await s.execute(select(Conversation))).scalars()}
        before = (await s.execute(select(func.count(Message.id)))).scalar_one()
    source, target = convs[sms_conv], convs[web_conv]
    async with rig.sm() as s, s.begin():
        await admin.set_profile(s, customer_id=source, email="dana@example.com", vip=True)
        await admin.tag(s, customer_id=source, add=["beta"])
        await admin.set_profile(s, customer_id=target, display_name="Dana")
    async with rig.sm() as s, s.begin():
        with pytest.raises(admin.SameCustomer, match="cannot be merged with itself"):
            await admin.merge_customers(s, source_id=target, target_id=target)
        merged = await admin.merge_customers(s, source_id=source, target_id=target)
        assert (merged.display_name, merged.email, merged.vip, merged.tags) == (
            "Dana", "dana@example.com", True, ["beta"])
    async with rig.sm() as s, s.begin():
        with pytest.raises(admin.AlreadyMerged, match=f"merged into customer {target}"):
            await admin.merge_customers(s, source_id=source, target_id=target)
    async with rig.sm() as s:
        after = (await s.execute(select(func.count(Message.id)))).scalar_one()
        summary = await admin.show_customer(s, customer_id=source)  # the old id still finds the profile
        assert summary.customer.id == target
        assert {c.id for c in summary.conversations} == {sms_conv, web_conv}
        assert {i.address for i in summary.identities} == {"sms-person", "web-person"}
    assert after == before
    # The merged person writing again from the old address lands on the surviving profile.
    receipt = await rig.pipeline.receive(InboundMessage(Address("web", "sms-person"), "m3", "thanks"))
    await rig.pipeline.drain()
    async with rig.sm() as s:
        conv = await s.get(Conversation, receipt.conversation_id)
        assert conv is not None and conv.customer_id == target


@pytest.fixture
def rig(any_db: async_sessionmaker[AsyncSession], settings_factory: Any) -> Rig:
    return Rig(any_db, settings_factory(answer_threshold=0.6))


@pytest.fixture
def cli(db: async_sessionmaker[AsyncSession], tmp_path: Path, monkeypatch: Any) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    return CliRunner()


async def call(runner: CliRunner, *args: str) -> Any:
    return await asyncio.to_thread(runner.invoke, app, ["customers", *args])


async def test_cli_round_trip_and_clear_errors(db: async_sessionmaker[AsyncSession], cli: CliRunner) -> None:
    ann = await new_customer(db, "web", "w-ann", name="Ann")
    bob = await new_customer(db, "sms", "+14155550199", name="Bob")
    out = await call(cli, "set", str(ann), "--vip", "--email", "ann@example.com", "--notes", "call after 5")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["vip"] is True
    assert (await call(cli, "tag", str(ann), "enterprise", "trial", "-r", "trial")).output.strip() == \
        f"customer {ann} tags: enterprise"
    out = await call(cli, "link", str(ann), "sms", "+1 415 555 0101")
    assert out.exit_code == 0 and "sms:+14155550101" in out.output
    listed = json.loads((await call(cli, "list", "--vip", "--json")).output)
    assert [(c["id"], c["identities"]) for c in listed] == [(ann, 2)]
    assert [c["id"] for c in json.loads((await call(cli, "list", "--tag", "enterprise", "--json")).output)] == [ann]
    assert [c["id"] for c in json.loads((await call(cli, "list", "-q", "0199", "--json")).output)] == [bob]

    taken = await call(cli, "link", str(ann), "sms", "+14155550199")
    assert taken.exit_code == 1 and f"belongs to customer {bob}" in taken.output
    itself = await call(cli, "merge", str(ann), str(ann))
    assert itself.exit_code == 1 and "cannot be merged with itself" in itself.output
    missing = await call(cli, "show", "4242")
    assert missing.exit_code == 1 and "no customer 4242" in missing.output
    bad = await call(cli, "set", str(ann), "--email", "nope")
    assert bad.exit_code == 1 and "not an email" in bad.output

    out = await call(cli, "merge", str(bob), str(ann))
    assert out.exit_code == 0 and f"customer {bob} merged into {ann}" in out.output
    shown = json.loads((await call(cli, "show", str(bob), "--json")).output)
    assert shown["id"] == ann and {i["address"] for i in shown["identities"]} == {"w-ann", "+14155550101",
                                                                                "+14155550199"}
    text = (await call(cli, "show", str(bob))).output
    assert f"(customer {bob} was merged into {ann})" in text and "[VIP]" in text
