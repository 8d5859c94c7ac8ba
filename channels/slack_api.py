"""Outbound Slack Web API calls, with every failure mapped to the channel errors.

`SlackApi` wraps slack_sdk's `AsyncWebClient` (a timeout on every call, no hidden retries: the
outbox retries) and turns what Slack says into `channels.base` errors::

    TransientSendError   5xx, 429 (retry_after from Retry-After), timeouts, connection errors,
                         Slack's own transient codes (ratelimited, service_unavailable, ...)
    PermanentSendError   everything else Slack refuses (channel_not_found, not_in_channel,
                         invalid_auth, is_archived, ...): retrying cannot help

Example::

    api = SlackApi(make_client(token="xoxb-...", base_url=None, timeout=10))
    ts = (await api.call("chat.postMessage", channel="C123", text="hi"))["ts"]
"""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from channels.base import PermanentSendError, TransientSendError

log = logging.getLogger("switchboard.slack")

TRANSIENT_CODES = frozenset(
    {"ratelimited", "rate_limited", "service_unavailable", "fatal_error", "internal_error", "request_timeout"}
)


def make_client(*, token: str | None, base_url: str | None, timeout: float) -> AsyncWebClient:
    """The one place a Slack client is built: explicit timeout, no SDK retries (the outbox retries)."""
    kwargs: dict[str, Any] = {"token": token, "timeout": timeout, "retry_handlers": []}
    if base_url:
        kwargs["base_url"] = base_url
    return AsyncWebClient(**kwargs)


def map_api_error(method: str, exc: SlackApiError) -> TransientSendError | PermanentSendError:
    resp = exc.response
    status = getattr(resp, "status_code", None) or 0
    data = resp.data if isinstance(getattr(resp, "data", None), dict) else {}
    code = str(data.get("error") or status or "unknown")
    detail = f"Slack {method} failed: {code} (HTTP {status})"
    if status == 429 or code in ("ratelimited", "rate_limited"):
        retry_after = _retry_after(getattr(resp, "headers", None) or {})
        return TransientSendError(detail, code=code, retry_after=retry_after)
    if status >= 500 or code in TRANSIENT_CODES:
        return TransientSendError(detail, code=code)
    return PermanentSendError(detail, code=code)


def _retry_after(headers: Any) -> float | None:
    for key in ("Retry-After", "retry-after"):
        value = headers.get(key) if hasattr(headers, "get") else None
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


class SlackApi:
    """Calls Slack and raises `TransientSendError`/`PermanentSendError`; keeps a small user-name cache."""

    def __init__(self, client: AsyncWebClient, *, name_ttl: float = 3600.0, name_cache_size: int = 2000) -> None:
        self.client = client
        self._names: dict[str, tuple[float, str | None]] = {}
        self._name_ttl = name_ttl
        self._name_cache_size = name_cache_size

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One Web API call (JSON body). Returns the response data; raises a `SendError`."""
        params = {k: v for k, v in params.items() if v is not None}
        try:
            if method in ("usergroups.users.list", "users.info", "conversations.replies", "conversations.history"):
                query = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()}
                resp = await self.client.api_call(method, http_verb="GET", params=query)
            else:
                resp = await self.client.api_call(method, json=params)
        except SlackApiError as exc:
            raise map_api_error(method, exc) from exc
        except TimeoutError as exc:
            raise TransientSendError(f"Slack {method} timed out", code="timeout") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransientSendError(f"Slack {method}: {type(exc).__name__}: {exc}", code="connection") from exc
        data = resp.data
        return data if isinstance(data, dict) else {}

    # ---- conveniences -------------------------------------------------------------------------------

    async def post_message(
        self, *, channel: str, text: str, blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None, metadata: dict[str, Any] | None = None,
    ) -> str:
        data = await self.call(
            "chat.postMessage", channel=channel, text=text, blocks=blocks, thread_ts=thread_ts,
            metadata=metadata, unfurl_links=False, unfurl_media=False,
        )
        return str(data.get("ts") or "")

    async def update_message(
        self, *, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        await self.call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)

    async def post_ephemeral(self, *, channel: str, user: str, text: str, thread_ts: str | None = None) -> bool:
        """Best effort (a notice to one person): failures are logged, never raised."""
        try:
            await self.call("chat.postEphemeral", channel=channel, user=user, text=text, thread_ts=thread_ts)
            return True
        except (TransientSendError, PermanentSendError) as exc:
            log.warning("ephemeral notice to %s in %s failed: %s", user, channel, exc)
            return False

    async def find_marked(self, *, channel: str, thread_ts: str | None, marker: str) -> str | None:
        """The ts of a message we already posted with metadata `{"outbox": marker}`, if any.

        After an ambiguous failure (a timeout after Slack accepted the post) a retry looks here
        first, so a retried post never appears twice.
        """
        if thread_ts:
            data = await self.call(
                "conversations.replies", channel=channel, ts=thread_ts, limit=200, include_all_metadata=True
            )
        else:
            data = await self.call("conversations.history", channel=channel, limit=100, include_all_metadata=True)
        for message in data.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if str(payload.get("outbox")) == marker:
                return str(message.get("ts"))
        return None

    async def group_members(self, group_id: str) -> set[str]:
        data = await self.call("usergroups.users.list", usergroup=group_id)
        return {str(u) for u in data.get("users") or []}

    async def user_name(self, user_id: str) -> str | None:
        """Display name (cached); None when Slack does not know the user or cannot be reached."""
        now = time.monotonic()
        cached = self._names.get(user_id)
        if cached is not None and now - cached[0] < self._name_ttl:
            return cached[1]
        try:
            data = await self.call("users.info", user=user_id)
        except (TransientSendError, PermanentSendError) as exc:
            log.info("users.info %s failed: %s", user_id, exc)
            return None
        user = data.get("user") or {}
        profile = user.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
        if len(self._names) >= self._name_cache_size:
            self._names.clear()
        self._names[user_id] = (now, name or None)
        return name or None
