"""Every console text input goes through one cleaner (`bot.console.forms.clean`): control characters
dropped (a NUL would be a 500 on PostgreSQL), trimmed, capped; ids beyond the INTEGER range are refused
before any query; and one signed flash message helper."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from bot.console.flash import Flash, FlashMessage
from bot.console.forms import clean
from bot.messages import Address
from bot.models import Conversation, Customer, Message
from bot.settings import Settings
from tests.bot.console.support import add, make_app, signed_in


@pytest.mark.parametrize(("raw", "kwargs", "expected"), [
    ("  hi\x00 there ", {}, "hi there"),
    ("a\nb\tc\rd", {}, "a b c d"),  # one-line fields: line breaks and tabs become spaces
    ("line 1\r\nline 2\x07\n\tindented ", {"multiline": True}, "line 1\nline 2\n\tindented"),
    ("\x1b[31mred\x7f\x85", {}, "[31mred"),  # escape, DEL, a C1 control
    ("emoji 👩‍💻 and accents é", {}, "emoji 👩‍💻 and accents é"),  # format characters (ZWJ) stay
    ("abcdef", {"limit": 3}, "abc"),
    (None, {}, ""),
    (42, {}, ""),
])
def test_clean(raw: object, kwargs: dict[str, object], expected: str) -> None:
    assert clean(raw, **kwargs) == expected  # type: ignore[arg-type]


def test_a_flash_message_is_signed() -> None:
    flash = Flash("k" * 32)
    token = flash.dumps(ok=True, text="Sent.")
    assert flash.read(token) == FlashMessage(True, "Sent.")
    assert flash.url("/console/kb", ok=False, text="No.") == f"/console/kb?m={flash.dumps(ok=False, text='No.')}"
    assert flash.read(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]) is None
    assert flash.read(Flash("x" * 32).dumps(ok=True, text="forged")) is None
    assert flash.read(None) is None and flash.read("") is None and flash.read("garbage") is None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> dict[str, str]:
    return {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}


async def test_control_characters_never_reach_the_database(settings_factory: Callable[..., Settings],
                                                           database: dict[str, str]) -> None:
    app = await make_app(settings_factory(**database))
    parts = app.state.parts
    await parts.pipeline.request_human(Address("web", "sess-nul"))
    async with parts.sessionmaker() as s:
        cid = (await s.scalars(select(Conversation.id))).one()
    await add(app, "ann", "supervisor")
    try:
        async for ann in signed_in(app, "ann"):
            for path, data in (("note", {"text": "first\x00 line\r\nsecond"}),
                               ("reply", {"text": "hello\x00 there", "nonce": "n\x001"}),
                               ("customer", {"add_tags": "gold\x00, sil\x1bver"})):
                r = await ann.client.post(f"/console/c/{cid}/{path}", data={"csrf": ann.csrf, **data})
                assert r.status_code == 303, (path, r.text)
            for page, params in (("/console/customers", {"q": "da\x00na"}), ("/console", {"tag": "x\x00"}),
                                 ("/console/reports", {"channel": "web\x00", "from": "2026-01-01\x00"})):
                assert (await ann.client.get(page, params=params)).status_code in (200, 400), page
            for path in (f"/console/c/{2**31}", f"/console/c/{2**31}/live"):  # beyond INTEGER: refused, no query
                assert (await ann.client.get(path)).status_code == 422, path
            assert (await ann.client.post(f"/console/c/{2**31}/take", data={"csrf": ann.csrf})).status_code == 422
            login = await ann.client.post("/console/login", data={"username": "ann\x00", "password": "x",
                                                                   "csrf": ann.csrf})
            assert login.status_code in (401, 403)
        async with parts.sessionmaker() as s:
            texts = (await s.scalars(select(Message.text).where(Message.author_kind != "system")
                                     .order_by(Message.id))).all()
            customer = (await s.scalars(select(Customer))).one()
        assert "first line\nsecond" in texts and "hello there" in texts
        assert sorted(customer.tags or []) == ["gold", "silver"]
    finally:
        await parts.aclose()
