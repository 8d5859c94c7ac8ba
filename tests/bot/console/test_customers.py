"""The customers pages: search by name, email and phone; a profile with identities and history."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from bot.customers_admin import set_profile
from bot.messages import Address
from bot.models import Conversation
from bot.settings import Settings
from tests.bot.console.support import add, make_app, signed_in


async def test_search_and_profile(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory())
    parts = app.state.parts
    await parts.pipeline.request_human(Address("sms", "+14155550142"))
    await parts.pipeline.request_human(Address("web", "web-session-secret-token"))
    async with parts.sessionmaker() as s, s.begin():
        sms_conv = (await s.scalars(select(Conversation).where(Conversation.channel == "sms"))).one()
        await set_profile(s, customer_id=sms_conv.customer_id, display_name="Rosa Diaz",
                          email="rosa@example.com", phone="+1 415 555 0142", vip=True)
    await add(app, "bob", "agent")
    async for me in signed_in(app, "bob"):
        for q in ("rosa", "ROSA@EXAMPLE", "555 0142"[:3]):
            page = (await me.client.get("/console/customers", params={"q": q})).text
            assert f'data-customer="{sms_conv.customer_id}"' in page, q
        page = (await me.client.get("/console/customers", params={"q": "nobody-like-this"})).text
        assert "No customer found." in page
        profile = await me.client.get(f"/console/customers/{sms_conv.customer_id}")
        assert profile.status_code == 200
        assert "Rosa Diaz" in profile.text and "VIP" not in profile.text.split("Profile")[0]
        assert f'href="/console/c/{sms_conv.id}"' in profile.text and "sms:" in profile.text
        assert "+14155550142" not in profile.text.split("Linked identities")[1]  # the address is masked
        assert (await me.client.get("/console/customers/9999")).status_code == 404
        everyone = (await me.client.get("/console/customers")).text
        assert "web-session-secret-token" not in everyone
