"""Console actions are the pipeline's agent actions (the Slack desk's code path) with the same rules,
each audited in its own transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import build_parts
from bot.audit import AuditEntry
from bot.console.actions import Actions
from bot.console.live import LocalBroadcaster
from bot.console.users import ConsoleUser, add_user
from bot.messages import Address
from bot.models import Conversation, Customer, Message, OutboxEntry
from bot.settings import Settings
from tests.bot.helpers import TableSearcher


@pytest.fixture
async def parts(settings_factory: Callable[..., Settings], db: Any) -> AsyncIterator[Any]:
    p = build_parts(settings_factory(), kb=TableSearcher({}), load_knowledge_base=False)
    p.sessionmaker = db
    p.pipeline.sessionmaker = p.agents.sessionmaker = db
    yield p
    await p.aclose()


async def _users(parts: Any) -> tuple[ConsoleUser, ConsoleUser, ConsoleUser]:
    async with parts.sessionmaker() as s, s.begin():
        return (await add_user(s, username="ann", password="long enough pw", role="supervisor"),
                await add_user(s, username="bob", password="long enough pw", role="agent"),
                await add_user(s, username="cat", password="long enough pw", role="agent"))


async def _waiting(parts: Any, who: str = "s1") -> int:
    await parts.pipeline.request_human(Address("web", who))
    async with parts.sessionmaker() as s:
        return max((await s.scalars(select(Conversation.id))).all())


async def _audit(parts: Any) -> list[tuple[str, str, str | None]]:
    async with parts.sessionmaker() as s:
        rows = (await s.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    return [(e.actor, e.action, e.target_id) for e in rows]


async def test_reply_takes_the_conversation_sends_through_the_outbox_once_and_is_audited(parts: Any) -> None:
    ann, bob, cat = await _users(parts)
    cid = await _waiting(parts)
    actions = Actions(parts.agents, parts.sessionmaker, LocalBroadcaster())
    assert (await actions.reply(cid, bob, "  Hello from the console  ", nonce="n1")).ok
    again = await actions.reply(cid, bob, "Hello from the console", nonce="n1")  # a double submit
    assert again.message == "Already sent."
    async with parts.sessionmaker() as s:
        conv = await s.get(Conversation, cid)
        assert conv is not None and (conv.state, conv.assignee_id, conv.assignee_name) == (
            "assigned", "console:bob", "bob")
        replies = (await s.scalars(select(Message).where(Message.author_kind == "agent"))).all()
        assert [(m.text, m.author_id, m.internal) for m in replies] == [
            ("Hello from the console", "console:bob", False)]
        out = (await s.scalars(select(OutboxEntry).where(OutboxEntry.message_id == replies[0].id))).all()
        assert [(o.channel, o.status) for o in out] == [("web", "pending")]
        assert conv.first_human_response_at is not None
    assert await _audit(parts) == [("console:bob", "take", str(cid)), ("console:bob", "reply", str(cid))]

    # someone else's conversation: an agent is refused and nothing is sent; a supervisor may step in
    refused = await actions.reply(cid, cat, "Me too", nonce="n2")
    assert not refused.ok and "NOT sent" in refused.message
    assert (await actions.reply(cid, ann, "Supervisor here", nonce="n3")).ok
    async with parts.sessionmaker() as s:
        texts = (await s.scalars(select(Message.text).where(Message.author_kind.in_(("agent", "supervisor")))))
        assert list(texts) == ["Hello from the console", "Supervisor here"]


async def test_a_note_stays_internal_and_is_announced(parts: Any) -> None:
    _, bob, _ = await _users(parts)
    cid = await _waiting(parts)
    live = LocalBroadcaster()
    actions = Actions(parts.agents, parts.sessionmaker, live)
    async with live.subscribe() as inbox:
        assert (await actions.note(cid, bob, "Customer sounds upset", nonce="x")).ok
        assert inbox.get_nowait() == cid
    async with parts.sessionmaker() as s:
        note = (await s.scalars(select(Message).where(Message.internal.is_(True)))).one()
        assert note.text == "Customer sounds upset"
        assert (await s.scalars(select(OutboxEntry).where(OutboxEntry.message_id == note.id))).first() is None
        assert (await s.get(Conversation, cid)).state == "waiting"  # type: ignore[union-attr]
    assert await _audit(parts) == [("console:bob", "note", str(cid))]


async def test_escalation_assign_and_resolve_follow_the_slack_desks_rules(parts: Any) -> None:
    ann, bob, cat = await _users(parts)
    cid = await _waiting(parts)
    actions = Actions(parts.agents, parts.sessionmaker, LocalBroadcaster())
    assert (await actions.take(cid, bob)).ok
    assert not (await actions.assign(cid, cat, "bob")).ok  # not the owner, not a supervisor
    assert (await actions.assign(cid, bob, "cat")).ok  # the owner hands over
    assert (await actions.escalate(cid, cat, "angry customer")).ok
    assert not (await actions.take(cid, bob)).ok  # escalated: a supervisor's
    assert not (await actions.assign(cid, ann, "bob")).ok  # an escalation goes to a supervisor
    assert (await actions.take(cid, ann)).ok
    assert not (await actions.resolve(cid, bob)).ok  # ann owns it
    assert (await actions.resolve(cid, ann)).ok
    assert not (await actions.resolve(cid, ann)).ok
    async with parts.sessionmaker() as s:
        conv = await s.get(Conversation, cid)
        assert conv is not None and conv.state == "resolved"
    assert [a[:2] for a in await _audit(parts)] == [
        ("console:bob", "take"), ("console:bob", "assign"), ("console:cat", "escalate"),
        ("console:ann", "take"), ("console:ann", "resolve")]


async def test_vip_and_tags_are_set_on_the_customer_and_audited(parts: Any) -> None:
    _, bob, _ = await _users(parts)
    cid = await _waiting(parts)
    actions = Actions(parts.agents, parts.sessionmaker, LocalBroadcaster())
    assert (await actions.set_customer(cid, bob, vip=True, add_tags=["Enterprise", "trial"], remove_tags=[])).ok
    assert (await actions.set_customer(cid, bob, vip=True, add_tags=[], remove_tags=["trial"])).ok
    async with parts.sessionmaker() as s:
        conv = await s.get(Conversation, cid)
        customer = await s.get(Customer, conv.customer_id)  # type: ignore[union-attr]
        assert customer is not None and customer.vip and customer.tags == ["enterprise"]
        entry = (await s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()))).first()
        assert entry is not None and entry.action == "customer.update" and entry.detail["tags"] == ["enterprise"]
