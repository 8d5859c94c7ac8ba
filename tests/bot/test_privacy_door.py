"""Personal data is masked at the door: before a customer's message or an agent's reply is stored, before
the KB search, and kept kinds are stored only encrypted (bot.privacy, bot.pii_vault)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import policy_config
from bot.messages import Address, InboundMessage
from bot.models import Message, OutboxEntry
from bot.pii_vault import Vault, VaultError
from bot.privacy import Redactor
from bot.settings import Settings
from bot.worker import ChannelDeliverer, Worker
from handoff.policy import Policy
from tests.bot.helpers import Core, ScriptedChannel, TableSearcher, make_core

CARD = "4111 1111 1111 1111"
TEXT = f"My card number is {CARD}, why was I charged twice?? mail me at jo.doe@example.com"


def make_pipeline(sm: async_sessionmaker[AsyncSession], settings: Settings) -> tuple[Core, TableSearcher,
                                                                                     Worker, ScriptedChannel]:
    kb = TableSearcher({"charged": ("billing", 0.3)})
    channel = ScriptedChannel()
    worker = Worker(sessionmaker=sm, settings=settings, deliverers={"web": ChannelDeliverer(channel)})
    core = make_core(sm, settings, kb=kb, policy=Policy(policy_config(settings)), wake=worker.wake)
    return core, kb, worker, channel


async def test_customer_message_is_masked_before_storage_and_search(
    any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    core, kb, worker, _ = make_pipeline(any_db, settings_factory(answer_threshold=0.9))
    pipeline = core.pipeline
    receipt = await pipeline.receive(InboundMessage(Address("web", "s1"), "m-1", TEXT))
    await pipeline.drain()
    assert receipt.text == ("My card number is \u2022\u2022\u2022\u2022 \u2022\u2022\u2022\u2022 "
                            "\u2022\u2022\u2022\u2022 1111, why was I charged twice?? mail me at j***@example.com")
    again = await pipeline.receive(InboundMessage(Address("web", "s1"), "m-1", TEXT))
    assert again.duplicate and again.text == receipt.text  # a retry's ack shows the stored text too
    async with any_db() as s:
        row = (await s.execute(select(Message).where(Message.id == receipt.message_id))).scalar_one()
    assert row.text == receipt.text and row.sealed_text is None and row.meta["pii"] == ["card", "email"]
    assert kb.queries and all(CARD not in q and "jo.doe" not in q for q, _ in kb.queries)


async def test_agent_reply_and_note_are_masked(
    any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    core, _, worker, channel = make_pipeline(any_db, settings_factory())
    pipeline, agents = core.pipeline, core.agents
    receipt = await pipeline.receive(InboundMessage(Address("web", "s2"), "m-1", "hello"))
    await pipeline.drain()
    cid = receipt.conversation_id
    await agents.reply(cid, text=f"Card {CARD} noted; write to help@shop.example", author_id="U1")
    await agents.note(cid, text="note: customer said pin is 4455, email jo@example.com", author_id="U1")
    while await worker.run_once():
        pass
    async with any_db() as s:
        rows = (await s.execute(select(Message).where(Message.conversation_id == cid,
                                                      Message.author_kind == "agent"))).scalars().all()
        payloads = [e.payload for e in (await s.execute(select(OutboxEntry))).scalars()]
    reply, note = sorted(rows, key=lambda m: m.id)
    assert "4111" not in reply.text.replace(" 1111", "") and "help@shop.example" in reply.text  # contact kept
    assert "4455" not in note.text and "jo@example.com" not in note.text
    assert all(CARD not in str(p) for p in payloads)
    assert [m.text for _, m in channel.sent][-1] == reply.text


async def test_kept_kinds_are_stored_encrypted(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = settings_factory(pii_policy="email=keep,phone=keep", pii_keys=old)
    core, _, _, _ = make_pipeline(db, settings)
    pipeline = core.pipeline
    receipt = await pipeline.receive(InboundMessage(Address("web", "s3"), "m-1", TEXT))
    await pipeline.drain()
    async with db() as s:
        row = await s.get(Message, receipt.message_id)
    assert row is not None and row.sealed_text and "jo.doe@example.com" not in row.sealed_text
    assert "jo.doe@example.com" not in row.text
    original = Vault.from_keys(old).open(row.sealed_text)
    assert "jo.doe@example.com" in original and CARD not in original  # the card is never kept, even sealed
    rotated = Vault.from_keys(f"{new},{old}").rotate(row.sealed_text)
    assert Vault.from_keys(new).open(rotated) == original
    with pytest.raises(VaultError):
        Vault.from_keys(new).open(row.sealed_text)
    redactor = Redactor.from_settings(settings)
    assert redactor.original(row.text, row.sealed_text) == original


@pytest.mark.parametrize("overrides,needle", [
    ({"pii_policy": "card=keep"}, "always masked"),
    ({"pii_policy": "email=keep"}, "PII_KEYS"),
    ({"pii_policy": "email=keep", "pii_keys": "not-a-key"}, "Fernet"),
    ({"pii_policy": "fingerprint=keep"}, "kind=mask|keep"),
])
def test_settings_refuse_a_bad_policy(settings_factory: Callable[..., Settings], overrides: dict[str, str],
                                      needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        settings_factory(**overrides)


async def test_rotate_re_encrypts_with_the_newest_key(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    from bot.pii_cmd import rotate_sealed

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    core, _, _, _ = make_pipeline(db, settings_factory(pii_policy="email=keep", pii_keys=old))
    pipeline = core.pipeline
    for n in range(3):
        await pipeline.receive(InboundMessage(Address("web", f"r{n}"), f"m-{n}", f"mail r{n}@example.com"))
    await pipeline.drain()
    assert await rotate_sealed(db, Vault.from_keys(f"{new},{old}"), batch=2) == 3
    async with db() as s:
        sealed = [m.sealed_text for m in (await s.execute(select(Message))).scalars() if m.sealed_text]
    assert sorted(Vault.from_keys(new).open(t) for t in sealed) == [f"mail r{n}@example.com" for n in range(3)]


async def test_the_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    from bot.db import make_engine

    loose = tmp_path / "loose.db"
    loose.write_bytes(b"")
    loose.chmod(0o644)
    for path in (tmp_path / "new" / "fresh.db", loose):
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x TEXT)")
        await engine.dispose()
        assert path.stat().st_mode & 0o777 == 0o600


async def test_profile_notes_are_masked(db: async_sessionmaker[AsyncSession]) -> None:
    from bot import customers_admin as admin
    from bot.models import ChannelIdentity, Customer

    async with db() as s, s.begin():
        c = Customer()
        s.add(c)
        await s.flush()
        s.add(ChannelIdentity(customer_id=c.id, channel="web", address="n-1"))
        saved = await admin.set_profile(s, customer_id=c.id, notes=f"paid with {CARD}, prefers SMS")
    assert saved.notes == ("paid with \u2022\u2022\u2022\u2022 \u2022\u2022\u2022\u2022 \u2022\u2022\u2022\u2022 1111, "
                           "prefers SMS")


def test_door_meta_drops_the_senders_second_copy() -> None:
    from bot.privacy import door_meta

    meta = {"sms": {"From": "+14155550123", "To": "+15550001111"}, "compliance": "HELP"}
    assert door_meta(meta, ("card",)) == {"sms": {"To": "+15550001111"}, "compliance": "HELP", "pii": ["card"]}
    assert door_meta({}, ()) == {}
