"""The async Twilio REST client as the SMS channel uses it, and the mapping of its errors.

`RoutedTwilioHttpClient` is the SDK's own `AsyncTwilioHttpClient` with three changes:
a timeout on every request (the SDK's default is none), an optional base-URL override (tests
point it at a fake Twilio on 127.0.0.1; edges and regions keep working because only the
scheme and host are replaced), and the response headers of the current send kept in a
context variable so a 429's Retry-After reaches the outbox (the SDK's exceptions drop headers).
It must be created inside a running event loop (aiohttp's session needs one).
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response

from channels.base import PermanentSendError, RecipientOptedOut, SendError, TransientSendError

log = logging.getLogger("switchboard.sms")

OPTED_OUT_CODE = 21610  # "Attempt to send to unsubscribed recipient"

# Headers of the last response seen in this task (set per send by `capture_headers`).
_headers: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "twilio_headers", default=None
)


class RoutedTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    def __init__(self, *, timeout: float, api_base_url: str | None = None) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        self.api_base_url = api_base_url

    def _route(self, url: str) -> tuple[str, dict[str, str]]:
        if not self.api_base_url:
            return url, {}
        base, original = urlsplit(self.api_base_url), urlsplit(url)
        routed = urlunsplit((base.scheme, base.netloc, original.path, original.query, original.fragment))
        return routed, {"X-Original-Host": original.netloc}

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the SDK calls us with this signature)
        allow_redirects: bool = False,
    ) -> Response:
        url, extra = self._route(url)
        headers = {**(headers or {}), **extra}
        if auth is not None:  # a plain header: aiohttp's BasicAuth parameter is deprecated
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        total = timeout if timeout is not None else self.timeout
        assert self.session is not None
        async with self.session.request(
            method.upper(),
            url,
            params=params,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=total),
            allow_redirects=allow_redirects,
        ) as response:
            text = await response.text()
            captured = _headers.get()
            if captured is not None:
                captured.clear()
                captured.update({k.lower(): v for k, v in response.headers.items()})
            self.log_response(response.status, response)
            return Response(response.status, text, response.headers)


class capture_headers:
    """Context manager: collect the response headers of Twilio calls made inside it (this task only)."""

    def __enter__(self) -> dict[str, str]:
        self.box: dict[str, str] = {}
        self._token = _headers.set(self.box)
        return self.box

    def __exit__(self, *exc: object) -> None:
        _headers.reset(self._token)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date: rare for Twilio; let the worker's backoff decide
        return None


def to_send_error(exc: BaseException, headers: Mapping[str, str]) -> SendError:
    """Map what the SDK raised to the outbox's terms: retry (transient) or dead-letter (permanent)."""
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status, code = int(exc.status), exc.code
        detail = (
            f"Twilio {status}" + (f" error {code}" if code else "") + f": {getattr(exc, 'msg', '') or exc}"
        )
        if code == OPTED_OUT_CODE:
            return RecipientOptedOut(detail, code=code)
        if status == 429 or status >= 500 or code == 20429:
            return TransientSendError(detail, code=code or status, retry_after=retry_after_seconds(headers))
        return PermanentSendError(detail, code=code or status)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return TransientSendError("Twilio did not answer in time", code="timeout")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return TransientSendError(f"cannot reach Twilio: {type(exc).__name__}: {exc}", code="connection")
    if isinstance(exc, TwilioException):
        return TransientSendError(f"Twilio client error: {exc}", code="client")
    raise exc


def message_status(raw: Any) -> str:
    """Twilio's status of an accepted message in the pipeline's vocabulary (queued | sent)."""
    value = str(raw or "queued")
    return "sent" if value in ("sent", "delivered", "read") else "queued"
