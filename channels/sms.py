"""SMS on Twilio: signed webhooks in, the async Twilio REST client out.

Routes (mounted by `SmsChannel.router(host)`):

- ``POST /twilio/sms``: an inbound SMS/MMS. Without an X-Twilio-Signature header: 403, nothing
  read; a body over `sms_params.MAX_BODY`: 413, read no further. The signature is checked against
  the public URL rebuilt from `public_base_url` (so it works behind a TLS-terminating proxy) and
  every posted parameter; a bad one is a 403 and nothing is stored. A foreign AccountSid is a 403,
  a missing field a 400 (`sms_params.require`); values no column can take are made storable and
  flagged (`sms_params.clean`: NUL removed, over-long ids cut with a hash, the original kept in
  ``meta["sms"]["raw"]``). The message is stored through `host.receive` (idempotent on MessageSid:
  Twilio's retries are one message) before we answer with empty TwiML; replies go through the outbox.
- ``POST /twilio/status``: a delivery status callback, checked the same way; stored through
  `host.delivery_status` (which never moves a status backwards); answered 204.

Compliance keywords (STOP, START, HELP and their synonyms) are recognised here and passed on
as ``meta["compliance"]``; `bot.optout` acts on them. Long replies are sent as one
concatenated message up to `max_segments`, else split (`channels.sms_segments`).

    channel = SmsChannel.from_settings(settings)
    app.include_router(channel.router(pipeline))
    worker = Worker(..., deliverers={"sms": ChannelDeliverer(channel)})
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
import phonenumbers
from fastapi import APIRouter, Request, Response
from twilio.base.exceptions import TwilioException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.messages import Address, Attachment, InboundMessage, OutboundMessage, SendResult
from channels import sms_params
from channels.base import ChannelHost, PermanentSendError
from channels.body_limit import Refused, read_capped
from channels.sms_client import RoutedTwilioHttpClient, capture_headers, message_status, to_send_error
from channels.sms_segments import TWILIO_MAX_SEGMENTS, plan_parts

log = logging.getLogger("switchboard.sms")

INBOUND_PATH = "/twilio/sms"
STATUS_PATH = "/twilio/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_SEND_FAILURES = (TwilioException, TimeoutError, aiohttp.ClientError, OSError)


def compliance_keyword(text: str) -> str | None:
    """ "stop" | "start" | "help" when the whole message is one of the carrier keywords (any case)."""
    word = text.strip().strip(".!").strip().upper()
    if word in OPT_OUT_WORDS:
        return "stop"
    if word in OPT_IN_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


def to_e164(number: str, default_region: str = "US") -> str:
    """A phone number in E.164 (+15551234567); short codes and alphanumeric senders are kept as sent."""
    raw = number.strip()
    try:
        parsed = phonenumbers.parse(raw, None if raw.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(parsed):
        return raw
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def to_inbound(params: Mapping[str, str], *, default_region: str = "US") -> InboundMessage:
    """Translate Twilio's inbound webhook parameters into an `InboundMessage` (values made storable
    by `sms_params.clean`; what it changed is in ``meta["sms"]["normalised"]`` and ``["raw"]``)."""
    cleaned = sms_params.clean(params)
    params = cleaned.params
    sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid")
    sender = (params.get("From") or "").strip()
    if not sid or not sid.strip() or not sender:
        raise ValueError("MessageSid and From are required (and not blank)")
    text = params.get("Body", "")
    try:
        num_media = int(params.get("NumMedia") or 0)
    except ValueError:
        num_media = 0
    attachments = tuple(
        Attachment(url=url, content_type=params.get(f"MediaContentType{i}") or "application/octet-stream")
        for i in range(num_media)
        if (url := params.get(f"MediaUrl{i}"))
    )
    meta: dict[str, Any] = {
        "sms": {
            k: params[k]
            for k in (
                "To",
                "From",
                "NumSegments",
                "MessagingServiceSid",
                "FromCountry",
                "FromState",
                "FromCity",
            )
            if params.get(k)
        }
    }
    if cleaned.notes:
        meta["sms"].update(normalised=list(cleaned.notes), raw=cleaned.raw)
        log.warning("inbound SMS %s stored with changes: %s", sid, "; ".join(cleaned.notes))
    keyword = compliance_keyword(text)
    if keyword:
        meta["compliance"] = keyword
    return InboundMessage(
        sender=Address("sms", sms_params.shorten(to_e164(sender, default_region))),
        platform_id=sid,
        text=text,
        attachments=attachments,
        meta=meta,
    )


class SmsChannel:
    name: ClassVar[str] = "sms"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        public_base_url: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_base_url: str | None = None,
        default_region: str = "US",
        send_timeout: float = 10.0,
        max_segments: int = TWILIO_MAX_SEGMENTS,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("SMS needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        self.account_sid = account_sid
        self.public_base_url = public_base_url.rstrip("/")
        self.from_number = to_e164(from_number, default_region) if from_number else None
        self.messaging_service_sid = messaging_service_sid
        self.api_base_url = api_base_url
        self.default_region = default_region
        self.send_timeout = send_timeout
        self.max_segments = max_segments
        self.status_callback_url = self.public_base_url + STATUS_PATH
        self._auth_token = auth_token
        self._validator = RequestValidator(auth_token)
        self._client: Client | None = None
        # Parts of a split reply already accepted, by message id, so a retry after a failure
        # mid-way does not resend them. In memory: a crash mid-way can repeat earlier parts.
        self._parts_sent: dict[int | None, list[str]] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> SmsChannel:
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            public_base_url=settings.public_base_url,
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            api_base_url=settings.twilio_api_base_url,
            default_region=settings.sms_default_region,
            send_timeout=settings.send_timeout,
            max_segments=getattr(settings, "sms_max_segments", TWILIO_MAX_SEGMENTS),
        )

    # ---- inbound -------------------------------------------------------------------------------

    def public_url(self, request: Request) -> str:
        """The URL Twilio signed: our public base URL + the route path (+ query), whatever the proxy did."""
        path = request.url.path
        root = request.scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root) :]
        query = request.url.query
        return self.public_base_url + path + (f"?{query}" if query else "")

    async def verified_params(self, request: Request) -> dict[str, str] | None:
        """The posted parameters if Twilio signed the request (checked against all of them), else None.
        Raises `Refused(413)` for a body over `sms_params.MAX_BODY` before reading (or parsing) it."""
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            return None
        await read_capped(request, limit=sms_params.MAX_BODY)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != (
                "application/x-www-form-urlencoded"):
            return None  # Twilio posts url-encoded fields only
        form = await request.form()
        if any(not isinstance(v, str) for _, v in form.multi_items()):
            return None  # Twilio posts url-encoded fields only
        if not self._validator.validate(self.public_url(request), form, signature):
            return None
        return {k: str(v) for k, v in form.items()}

    async def checked(self, request: Request, required: tuple[str, ...]) -> dict[str, str]:
        """The signed parameters of a webhook for our account with every `required` field, else raises
        `Refused`/`sms_params.Rejected` (403 unsigned or forged, 413 too large, 403 foreign, 400 missing)."""
        params = await self.verified_params(request)
        if params is None:
            log.warning("rejected an unsigned or forged Twilio webhook from %s", request.client)
            raise Refused(403, "invalid signature")
        sms_params.require(params, required, account_sid=self.account_sid)
        return params

    def router(self, host: ChannelHost) -> APIRouter:
        router = APIRouter()

        @router.post(INBOUND_PATH, include_in_schema=False)
        async def inbound(request: Request) -> Response:
            try:
                params = await self.checked(request, sms_params.INBOUND_REQUIRED)
                message = to_inbound(params, default_region=self.default_region)
            except (Refused, sms_params.Rejected) as exc:
                return Response(exc.detail, status_code=exc.status)
            except ValueError as exc:
                return Response(str(exc), status_code=400)
            await host.receive(message)  # stored (or recognised as a retry) before we acknowledge
            return Response(EMPTY_TWIML, media_type="application/xml")

        @router.post(STATUS_PATH, include_in_schema=False)
        async def status(request: Request) -> Response:
            try:
                params = sms_params.clean(await self.checked(request, sms_params.STATUS_REQUIRED)).params
            except (Refused, sms_params.Rejected) as exc:
                return Response(exc.detail, status_code=exc.status)
            state = sms_params.status_of(params)
            if state is None:
                log.warning("ignored a status callback with an unknown status for %s", params["MessageSid"][:64])
                return Response(status_code=204)
            await host.delivery_status(self.name, params["MessageSid"], state,
                                       error_code=sms_params.error_code_of(params))
            return Response(status_code=204)

        return router

    # ---- outbound ------------------------------------------------------------------------------

    def client(self) -> Client:
        """The Twilio client, created on first use (inside the running loop, as aiohttp requires)."""
        if self._client is None:
            http = RoutedTwilioHttpClient(timeout=self.send_timeout, api_base_url=self.api_base_url)
            # A non-empty environment: never let TWILIO_EDGE/REGION from os.environ reroute us.
            self._client = Client(
                self.account_sid, self._auth_token, http_client=http, environment={"SWITCHBOARD": "1"}
            )
        return self._client

    async def send(self, to: Address, message: OutboundMessage) -> SendResult:
        """Send a reply. Raises TransientSendError (retry), RecipientOptedOut or PermanentSendError."""
        parts = plan_parts(message.text, max_segments=self.max_segments)
        if not parts:
            raise PermanentSendError("nothing to send: empty text", code="empty")
        key = message.message_id
        done = self._parts_sent.get(key, []) if key is not None and len(parts) > 1 else []
        result = SendResult()
        try:
            for part in parts[len(done) :]:
                result = await self._create(to.address, part)
                if key is not None and len(parts) > 1:
                    done = [*done, result.platform_id or ""]
                    self._parts_sent[key] = done
        except PermanentSendError:
            self._parts_sent.pop(key, None)  # dead-lettered: no retry will come for the rest
            raise
        self._parts_sent.pop(key, None)
        return result

    async def _create(self, to: str, body: str) -> SendResult:
        kwargs: dict[str, Any] = {"to": to, "body": body, "status_callback": self.status_callback_url}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        with capture_headers() as headers:
            try:
                async with asyncio.timeout(self.send_timeout):
                    created = await self.client().messages.create_async(**kwargs)
            except _SEND_FAILURES as exc:
                raise to_send_error(exc, headers) from exc
        return SendResult(platform_id=created.sid, status=message_status(created.status))

    async def find_sent(self, to: str, body: str, *, since: datetime, limit: int = 20) -> list[SendResult]:
        """Messages Twilio already took for `to` with exactly `body`, created at or after `since` (newest
        first): what a resend after a crash mid-send looks for first. Raises a `SendError` like `send`
        when Twilio cannot say (the caller retries later rather than risk sending twice)."""
        kwargs: dict[str, Any] = {"to": to, "limit": limit, "page_size": limit}
        if not self.messaging_service_sid:
            kwargs["from_"] = self.from_number
        with capture_headers() as headers:
            try:
                async with asyncio.timeout(self.send_timeout):
                    found = await self.client().messages.list_async(**kwargs)
            except _SEND_FAILURES as exc:
                raise to_send_error(exc, headers) from exc
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return [SendResult(platform_id=m.sid, status=message_status(m.status)) for m in found
                if m.body == body and m.sid and (m.date_created is None or m.date_created >= since)]

    async def aclose(self) -> None:
        if self._client is not None:
            http = self._client.http_client
            self._client = None
            await http.close()
