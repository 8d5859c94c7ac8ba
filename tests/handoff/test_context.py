"""The context package against a scripted conversation in an in-memory SQLite database: every field."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import Base, import_all_models, make_engine, make_sessionmaker
from bot.handoff_context import build_context
from bot.models import ChannelIdentity, Conversation, Customer, Event, Message
from handoff import (
    BotAttempt,
    ConversationNotFound,
    CustomerProfile,
    Decision,
    PreviousConversation,
    Suggestion,
    TranscriptLine,
    mask_address,
)

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
async def sessionmaker() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    import_all_models()
    engine = make_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


def kb(query: str, answered: bool, *hits: tuple[str, str, float, float]) -> dict[str, Any]:
    return {
        "kb": {
            "query": query,
            "answered": answered,
            "hits": [{"article_id": a, "title": t, "confidence": c, "score": s} for a, t, c, s in hits],
        }
    }


RETURNS = ("returns", "Returns and refunds", 0.42, 3.1)
DAMAGE = ("damaged-parcel", "Damaged parcels", 0.38, 2.9)
ELIGIBLE = ("return-eligibility", "Which items can be returned", 0.71, 4.4)

# (minute, direction, author_kind, author_name, text, internal, meta)
SCRIPT: list[tuple[float, str, str, str | None, str, bool, dict[str, Any]]] = [
    (0, "in", "customer", "Ana", "Hi", False, kb("Hi", False)),
    (
        1,
        "in",
        "customer",
        "Ana",
        "My order 48213 arrived with a cracked screen. I want a refund for the cracked phone.",
        False,
        kb(
            "My order 48213 arrived with a cracked screen. I want a refund for the cracked phone.",
            False,
            RETURNS,
            DAMAGE,
        ),
    ),
    (1.1, "out", "bot", None, "I'm not sure I have the right answer to that.", False, {}),
    (
        3,
        "in",
        "customer",
        "Ana",
        "I already tried the returns page but it says the order is not eligible.",
        False,
        kb("I want a refund for the cracked phone. I already tried the returns page", True, ELIGIBLE),
    ),
    (
        3.1,
        "out",
        "bot",
        None,
        "Items can be returned within 30 days unless marked final sale.",
        False,
        {"kb_article": "return-eligibility"},
    ),
    (
        6,
        "in",
        "customer",
        "Ana",
        "This is the second cracked phone you sent me, I am really annoyed. Agent please!",
        False,
        kb("This is the second cracked phone you sent me", False, DAMAGE),
    ),
    (6.1, "out", "system", None, "Thanks, I've passed this to our team.", False, {}),
    (7, "out", "agent", "Dana", "Customer had a replacement in March, same fault.", True, {}),
    (7.5, "out", "agent", "Dana", "Sorry about this, Ana. Let me check with my supervisor.", False, {}),
]


async def script(sm: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sm() as session, session.begin():
        ana = Customer(
            display_name="Ana Lima",
            email="ana.lima@example.com",
            vip=True,
            flagged=False,
            timezone="Europe/Lisbon",
            created_at=at(-60 * 24 * 90),
        )
        other = Customer(display_name="Bo", created_at=at(-10))
        session.add_all([ana, other])
        await session.flush()
        sms = ChannelIdentity(customer_id=ana.id, channel="sms", address="+15551234567")
        web = ChannelIdentity(customer_id=ana.id, channel="web", address="9f2c1ab07d3e44d1aa")
        bo_web = ChannelIdentity(customer_id=other.id, channel="web", address="0000111122223333")
        session.add_all([sms, web, bo_web])
        await session.flush()
        old_sms = Conversation(
            customer_id=ana.id,
            identity_id=sms.id,
            channel="sms",
            state="resolved",
            created_at=at(-60 * 24 * 60),
            updated_at=at(-60 * 24 * 59),
            resolved_at=at(-60 * 24 * 59.5),
        )
        old_web = Conversation(
            customer_id=ana.id,
            identity_id=web.id,
            channel="web",
            state="resolved",
            handoff_reason="low_confidence",
            created_at=at(-60 * 24 * 7),
            updated_at=at(-60 * 24 * 6),
            resolved_at=at(-60 * 24 * 6.5),
        )
        bo_conv = Conversation(
            customer_id=other.id,
            identity_id=bo_web.id,
            channel="web",
            state="bot",
            created_at=at(-5),
            updated_at=at(-5),
        )
        session.add_all([old_sms, old_web, bo_conv])
        await session.flush()
        conv = Conversation(
            customer_id=ana.id,
            identity_id=sms.id,
            channel="sms",
            state="escalated",
            priority="high",
            handoff_reason="agent_escalate",
            created_at=at(0),
            updated_at=at(8),
            handed_off_at=at(6),
        )
        session.add(conv)
        await session.flush()
        later = Conversation(
            customer_id=ana.id,
            identity_id=web.id,
            channel="web",
            state="bot",
            created_at=at(20),
            updated_at=at(20),
        )
        session.add(later)
        ids = {"conv": conv.id, "old_sms": old_sms.id, "old_web": old_web.id, "customer": ana.id}
        for i, (minute, direction, kind, name, text, internal, meta) in enumerate(SCRIPT):
            msg = Message(
                conversation_id=conv.id,
                channel="sms",
                direction=direction,
                author_kind=kind,
                author_name=name,
                text=text,
                internal=internal,
                meta=meta,
                created_at=at(minute),
                platform_id=f"SM{i}" if direction == "in" else None,
            )
            session.add(msg)
            await session.flush()
            ids[f"m{i}"] = msg.id
        session.add_all(
            [
                Event(
                    conversation_id=conv.id,
                    kind="handed_off",
                    at=at(6),
                    data={
                        "trigger": "asked_for_human",
                        "evidence": "asked for a person: 'Agent please'",
                        "target": "agent",
                        "priority": "normal",
                    },
                ),
                Event(
                    conversation_id=conv.id,
                    kind="escalated",
                    at=at(8),
                    data={
                        "trigger": "agent_escalate",
                        "evidence": "escalated by U42 (Dana): second faulty unit",
                        "target": "supervisor",
                        "priority": "high",
                    },
                ),
                Event(
                    conversation_id=bo_conv.id,
                    kind="escalated",
                    at=at(9),
                    data={
                        "trigger": "keyword",
                        "evidence": "someone else's",
                        "target": "supervisor",
                        "priority": "high",
                    },
                ),
            ]
        )
    return ids


async def test_every_field_of_the_package(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ids = await script(sessionmaker)
    now = at(10)
    async with sessionmaker() as session:
        pkg = await build_context(session, conversation_id=ids["conv"], now=now)

    assert pkg.conversation_id == ids["conv"]
    assert pkg.channel == "sms"
    assert pkg.state == "escalated"
    assert pkg.priority == "high"
    # the newest handoff event of THIS conversation
    assert pkg.trigger == "agent_escalate"
    assert pkg.evidence == "escalated by U42 (Dana): second faulty unit"
    assert pkg.waiting_seconds == (now - at(6)).total_seconds() == 240.0
    assert pkg.handed_off_at == at(6)
    assert pkg.generated_at == now

    assert pkg.customer == CustomerProfile(
        customer_id=ids["customer"],
        display_name="Ana Lima",
        channel="sms",
        address="+1******4567",
        email="a***@example.com",
        vip=True,
        flagged=False,
        timezone="Europe/Lisbon",
        previous_conversations=2,  # not the later one, not Bo's
        previous=[
            PreviousConversation(
                id=ids["old_web"],
                channel="web",
                state="resolved",
                created_at=at(-60 * 24 * 7),
                last_activity_at=at(-60 * 24 * 6.5),
                handoff_reason="low_confidence",
            ),
            PreviousConversation(
                id=ids["old_sms"],
                channel="sms",
                state="resolved",
                created_at=at(-60 * 24 * 60),
                last_activity_at=at(-60 * 24 * 59.5),
                handoff_reason=None,
            ),
        ],
    )

    assert pkg.transcript == [
        TranscriptLine(
            message_id=ids[f"m{i}"],
            at=at(minute),
            direction=direction,
            author_kind=kind,
            author_name=name,
            text=text,
            internal=internal,
        )
        for i, (minute, direction, kind, name, text, internal, _meta) in enumerate(SCRIPT)
    ]
    notes = [line for line in pkg.transcript if line.internal]
    assert [n.text for n in notes] == ["Customer had a replacement in March, same fault."]

    def suggestions(*hits: tuple[str, str, float, float]) -> list[Suggestion]:
        return [Suggestion(article_id=a, title=t, confidence=c, score=s) for a, t, c, s in hits]

    assert pkg.bot_attempts == [
        BotAttempt(
            message_id=ids["m0"],
            at=at(0),
            customer_text="Hi",
            query="Hi",
            answered=False,
            suggestions=[],
            top_confidence=None,
        ),
        BotAttempt(
            message_id=ids["m1"],
            at=at(1),
            customer_text=SCRIPT[1][4],
            query=SCRIPT[1][4],
            answered=False,
            suggestions=suggestions(RETURNS, DAMAGE),
            top_confidence=0.42,
        ),
        BotAttempt(
            message_id=ids["m3"],
            at=at(3),
            customer_text=SCRIPT[3][4],
            query="I want a refund for the cracked phone. I already tried the returns page",
            answered=True,
            suggestions=suggestions(ELIGIBLE),
            top_confidence=0.71,
        ),
        BotAttempt(
            message_id=ids["m5"],
            at=at(6),
            customer_text=SCRIPT[5][4],
            query="This is the second cracked phone you sent me",
            answered=False,
            suggestions=suggestions(DAMAGE),
            top_confidence=0.38,
        ),
    ]

    # the three sentences that carry the problem, in the order the customer wrote them; not the
    # greeting, not "I want a refund..." (weaker than its neighbour), never an agent's words
    assert pkg.summary == [
        "My order 48213 arrived with a cracked screen.",
        "I already tried the returns page but it says the order is not eligible.",
        "This is the second cracked phone you sent me, I am really annoyed.",
    ]


async def test_an_explicit_decision_wins_over_stored_events(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ids = await script(sessionmaker)
    decision = Decision("keyword", "keyword 'chargeback'", "supervisor", "urgent")
    async with sessionmaker() as session:
        pkg = await build_context(session, conversation_id=ids["conv"], decision=decision, now=at(6))
    assert (pkg.trigger, pkg.evidence, pkg.priority, pkg.waiting_seconds) == (
        "keyword",
        "keyword 'chargeback'",
        "urgent",
        0.0,
    )


async def test_to_dict_is_json_safe(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ids = await script(sessionmaker)
    async with sessionmaker() as session:
        pkg = await build_context(session, conversation_id=ids["conv"], now=at(10))
    data = json.loads(json.dumps(pkg.to_dict()))
    assert data["conversation_id"] == ids["conv"]
    assert data["customer"]["address"] == "+1******4567"
    assert data["customer"]["previous"][0]["created_at"] == at(-60 * 24 * 7).isoformat()
    assert data["transcript"][7] == {
        "message_id": ids["m7"],
        "at": at(7).isoformat(),
        "direction": "out",
        "author_kind": "agent",
        "author_name": "Dana",
        "text": SCRIPT[7][4],
        "internal": True,
    }
    assert data["bot_attempts"][1]["suggestions"][0] == {
        "article_id": "returns",
        "title": "Returns and refunds",
        "confidence": 0.42,
        "score": 3.1,
    }
    assert data["waiting_seconds"] == 240.0 and data["handed_off_at"] == at(6).isoformat()
    assert data["summary"] == pkg.summary


async def test_a_conversation_still_with_the_bot(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        customer = Customer()
        session.add(customer)
        await session.flush()
        identity = ChannelIdentity(customer_id=customer.id, channel="web", address="abc")
        session.add(identity)
        await session.flush()
        conv = Conversation(customer_id=customer.id, identity_id=identity.id, channel="web")
        session.add(conv)
        await session.flush()
        session.add(
            Message(
                conversation_id=conv.id,
                channel="web",
                direction="in",
                author_kind="customer",
                text="hello?",
                platform_id="w1",
            )
        )
        conv_id = conv.id
    async with sessionmaker() as session:
        pkg = await build_context(session, conversation_id=conv_id)
    assert (pkg.state, pkg.priority, pkg.trigger, pkg.evidence, pkg.waiting_seconds) == (
        "bot",
        "normal",
        None,
        "",
        0.0,
    )
    assert pkg.customer.address == "abc" and pkg.customer.display_name is None and pkg.customer.email is None
    assert pkg.customer.previous_conversations == 0 and pkg.customer.previous == []
    assert pkg.bot_attempts == []  # not processed yet: no meta["kb"]
    assert [line.text for line in pkg.transcript] == ["hello?"]
    assert pkg.summary == []  # nothing informative


async def test_unknown_conversation(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        with pytest.raises(ConversationNotFound) as info:
            await build_context(session, conversation_id=999)
    assert info.value.conversation_id == 999


@pytest.mark.parametrize(
    ("channel", "address", "masked"),
    [
        ("sms", "+15551234567", "+1******4567"),
        ("sms", "+447700900123", "+44******0123"),
        ("sms", "+1 (555) 123-4567", "+1******4567"),
        ("sms", "5551234567", "******4567"),  # no country code: digits only
        ("sms", "+123", "+1**"),  # too short to show any digit
        ("web", "9f2c1ab07d3e44d1aa", "9f2c1a\u2026"),
        ("web", "abcdefgh", "abcd\u2026"),
        ("web", "abc", "abc"),
        ("email", "ana.lima@example.com", "a***@example.com"),
        ("slack", "U0123456789", "*******6789"),
        ("sms", "", ""),
    ],
)
def test_mask_address(channel: str, address: str, masked: str) -> None:
    assert mask_address(channel, address) == masked
    if len(address) > 4:
        assert mask_address(channel, address) != address


async def test_to_text_carries_the_essentials(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ids = await script(sessionmaker)
    async with sessionmaker() as session:
        pkg = await build_context(session, conversation_id=ids["conv"], now=at(10))
    text = pkg.to_text(max_transcript=3)
    assert text.splitlines()[0] == f"#{ids['conv']} HIGH via sms (escalated), waiting 4 min"
    assert "Customer: Ana Lima [VIP], +1******4567, 2 previous conversation(s)" in text
    assert "Why: agent_escalate - escalated by U42 (Dana): second faulty unit" in text
    assert all(f"  - {s}" in text for s in pkg.summary)
    assert "Which items can be returned (71%), answered" in text
    assert "  [note] Dana: Customer had a replacement in March, same fault." in text
    assert "Hi" not in text.split("Transcript:")[1]  # only the last three lines
    assert "+15551234567" not in text and "ana.lima@" not in text


def test_handoff_never_imports_bot_or_channels() -> None:
    import ast
    from pathlib import Path

    import handoff

    forbidden = ("bot", "channels")
    for path in Path(handoff.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)]
            assert not bad, f"{path.name} imports {bad}"
