"""The settings page: supervisors only, read-only, and no credential on it."""

from __future__ import annotations

from collections.abc import Callable

from bot.settings import Settings
from tests.bot.console.support import add, make_app, signed_in

SECRET = "a-very-long-secret-key-for-this-test-0123456789"


async def test_supervisors_see_settings_without_secrets(settings_factory: Callable[..., Settings]) -> None:
    app = await make_app(settings_factory(secret_key=SECRET, redis_url="redis://:hunter2pw@127.0.0.1:6390/0",
                                          twilio_auth_token="twilio-token-value"))
    await add(app, "ann", "supervisor")
    await add(app, "bob", "agent")
    async for me in signed_in(app, "bob"):
        assert (await me.client.get("/console/settings")).status_code == 403
    async for me in signed_in(app, "ann"):
        page = (await me.client.get("/console/settings")).text
        for secret in (SECRET, "hunter2pw", "twilio-token-value"):
            assert secret not in page
        assert '<tr data-setting="SECRET_KEY"><th scope="row"><code>SECRET_KEY</code></th><td>set</td>' in page
        assert "redis://:***@127.0.0.1:6390/0" in page and "CONSOLE_LOGIN_ATTEMPTS" in page
