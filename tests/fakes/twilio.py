"""A fake Twilio REST API (Messages) on 127.0.0.1, and helpers that sign webhooks like Twilio.

The real `twilio` client reaches it through `channels.sms_client.RoutedTwilioHttpClient`
(`api_base_url=fake.url`). It checks HTTP Basic auth, records every create request, answers
201 with the message JSON Twilio returns, and can be told to fail the next requests:

    fake.fail_next(500)                       # a 500 (code 20500)
    fake.fail_next(429, retry_after=1)        # 429 + Retry-After: 1 (code 20429)
    fake.stall_next(2.0)                      # hold the request 2 s; a client that gave up is not served
    fake.opted_out.add("+15551230000")        # 400, code 21610, until removed
    fake.answer_late(0.8)                     # take the message at once, answer 0.8 s later (at-least-once)

The list endpoint (``GET .../Messages.json?To=&From=&PageSize=``) answers newest first, as Twilio does.

Fault mode (tests/fakes/faults.py): a request carrying ``X-Fault`` (added by a `FaultProxy` in front)
gets a 503, a 429 with Retry-After, a late but normal answer (``fault_slow`` s), or an answer after
``fault_late`` s (longer than the client's timeout) that Twilio never took (a 504, nothing accepted).

Status callbacks are sent to the message's StatusCallback, signed with the auth token:
``await fake.fire_status(sid, "delivered")``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from twilio.request_validator import RequestValidator

from bot.messages import utcnow
from tests.fakes.server import serve

API = "/2010-04-01/Accounts/{account}/Messages"


@dataclass
class Recorded:
    """One create request as the fake saw it."""

    form: dict[str, str]
    outcome: str  # "pending" | "accepted" | "error <status> <code>" | "abandoned" | "unauthorised"
    at: float  # arrival (event loop time)
    sid: str | None = None


@dataclass
class _Plan:
    kind: str = "error"  # "error" | "stall" | "accept" | "late" (taken, answered late) | "timeout" (never taken)
    status: int = 500
    code: int | None = None
    retry_after: float | None = None
    stall: float = 0.0


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    opted_out: set[str] = field(default_factory=set)
    status_posts: list[tuple[str, int]] = field(default_factory=list)  # (status, HTTP answer)
    list_calls: int = 0
    url: str = ""
    # (public base URL, local base URL): callbacks are signed for the public URL and posted to the
    # local one, as a TLS-terminating proxy in front of the app would forward them.
    proxy: tuple[str, str] | None = None
    fault_slow: float = 0.5
    fault_late: float = 4.0
    on_accept: Callable[[dict[str, Any]], None] | None = None  # told of every accepted message
    _plans: deque[_Plan] = field(default_factory=deque)

    # ---- scripting ------------------------------------------------------------------------------

    def fail_next(
        self, status: int = 500, *, code: int | None = None, retry_after: float | None = None, times: int = 1
    ) -> None:
        default_code = {429: 20429, 500: 20500, 503: 20503}.get(status)
        for _ in range(times):
            self._plans.append(_Plan(status=status, code=code or default_code, retry_after=retry_after))

    def stall_next(self, seconds: float, *, times: int = 1) -> None:
        for _ in range(times):
            self._plans.append(_Plan(kind="stall", stall=seconds))

    def answer_late(self, seconds: float, *, times: int = 1) -> None:
        """Accept the next messages at once but answer `seconds` later (a client may give up first:
        the message is sent anyway, as a platform that was slow to answer would)."""
        for _ in range(times):
            self._plans.append(_Plan(kind="late", stall=seconds))

    def accept_next(self, times: int = 1) -> None:
        """Let the next requests through before the failures planned after them."""
        for _ in range(times):
            self._plans.append(_Plan(kind="accept"))

    def bodies(self, to: str | None = None) -> list[str]:
        """Bodies of accepted messages, in the order accepted (optionally to one number)."""
        return [m["body"] for m in self.messages if to is None or m["to"] == to]

    def outcomes(self) -> list[str]:
        return [r.outcome for r in self.requests]

    # ---- the API ----------------------------------------------------------------------------------

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post(API + ".json")
        async def create(account: str, request: Request) -> Response:
            form = {k: str(v) for k, v in (await request.form()).items()}
            record = Recorded(form, "pending", asyncio.get_running_loop().time())
            self.requests.append(record)  # in order of arrival
            if not self._authorised(request, account):
                record.outcome = "unauthorised"
                return _error(401, 20003, "Authenticate")
            plan = self._plans.popleft() if self._plans else _fault_plan(request, self)
            if plan is not None and plan.kind == "timeout":
                await asyncio.sleep(plan.stall)
                record.outcome = "error 504 late"  # the client gave up long ago; nothing was taken
                return _error(504, None, "Injected timeout")
            if plan is not None and plan.kind == "stall":
                await asyncio.sleep(plan.stall)
                if await request.is_disconnected():
                    record.outcome = "abandoned"  # the client gave up: Twilio never took it
                    return Response(status_code=499)
                plan = None
            if plan is not None and plan.kind == "error":
                record.outcome = f"error {plan.status} {plan.code}"
                headers = {"Retry-After": f"{plan.retry_after:g}"} if plan.retry_after is not None else None
                return _error(plan.status, plan.code, "Injected failure", headers=headers)
            problem = self._invalid(form)
            if problem is not None:
                record.outcome = f"error 400 {problem[0]}"
                return _error(400, *problem)
            message = self._accept(account, form)
            record.outcome, record.sid = "accepted", message["sid"]
            if plan is not None and plan.kind == "late":
                await asyncio.sleep(plan.stall)
            return JSONResponse(message, status_code=201)

        @app.get(API + ".json")
        async def list_messages(account: str, request: Request) -> Response:
            if not self._authorised(request, account):
                return _error(401, 20003, "Authenticate")
            self.list_calls += 1
            q = request.query_params
            size = min(int(q.get("PageSize") or 50), 1000)
            found = [m for m in reversed(self.messages)
                     if (not q.get("To") or m["to"] == q["To"]) and (not q.get("From") or m["from"] == q["From"])]
            uri = API.format(account=account) + ".json"
            return JSONResponse({"messages": found[:size], "page": 0, "page_size": size, "start": 0,
                                 "end": max(0, min(size, len(found)) - 1), "uri": uri, "first_page_uri": uri,
                                 "next_page_uri": None, "previous_page_uri": None})

        @app.get(API + "/{sid}.json")
        async def fetch(account: str, sid: str, request: Request) -> Response:
            if not self._authorised(request, account):
                return _error(401, 20003, "Authenticate")
            for m in self.messages:
                if m["sid"] == sid:
                    return JSONResponse(m)
            return _error(404, 20404, "The requested resource was not found")

        return app

    def _authorised(self, request: Request, account: str) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return account == self.account_sid and request.headers.get("authorization") == expected

    def _invalid(self, form: Mapping[str, str]) -> tuple[int, str] | None:
        if not form.get("To"):
            return 21604, "A 'To' phone number is required."
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return 21603, "A 'From' phone number is required."
        if not form.get("Body"):
            return 21602, "Message body is required."
        if len(form["Body"]) > 1600:
            return 21617, "The concatenated message body exceeds the 1600 character limit."
        if form["To"] in self.opted_out:
            return 21610, "Attempt to send to unsubscribed recipient"
        return None

    def _accept(self, account: str, form: Mapping[str, str]) -> dict[str, Any]:
        from channels.sms_segments import segment_count

        sid = "SM" + secrets.token_hex(16)
        message = {
            "sid": sid,
            "account_sid": account,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "direction": "outbound-api",
            "date_created": email.utils.format_datetime(utcnow()),
            "date_updated": email.utils.format_datetime(utcnow()),
            "date_sent": None,
            "num_segments": str(segment_count(form["Body"])),
            "num_media": "0",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "api_version": "2010-04-01",
            "uri": f"{API.format(account=account)}/{sid}.json",
            "status_callback": form.get("StatusCallback"),  # kept for fire_status (not in Twilio's JSON)
        }
        self.messages.append(message)
        if self.on_accept is not None:
            self.on_accept(message)
        return message

    # ---- status callbacks ---------------------------------------------------------------------

    async def fire_status(
        self, sid: str, status: str, *, error_code: str | None = None, url: str | None = None
    ) -> int:
        """POST a signed status callback for an accepted message; returns our app's HTTP status."""
        message = next(m for m in self.messages if m["sid"] == sid)
        target = url or message["status_callback"]
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": self.account_sid,
            "From": message["from"] or "+15550000000",
            "To": message["to"],
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": "2010-04-01",
            "RawDlrDoneDate": "2401011200",  # Twilio adds fields without notice: all must be signed
        }
        if message.get("messaging_service_sid"):
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if error_code:
            params["ErrorCode"] = error_code
        post_url = target
        if self.proxy is not None and target.startswith(self.proxy[0]):
            post_url = self.proxy[1] + target[len(self.proxy[0]) :]
        response = await signed_post(target, params, self.auth_token, post_url=post_url)
        self.status_posts.append((status, response.status_code))
        return response.status_code


def _fault_plan(request: Request, fake: FakeTwilio) -> _Plan | None:
    kind = request.headers.get("x-fault")
    if kind == "5xx":
        return _Plan(status=503, code=20503)
    if kind == "429":
        return _Plan(status=429, code=20429, retry_after=1)
    if kind == "slow":
        return _Plan(kind="stall", stall=fake.fault_slow)
    if kind == "timeout":
        return _Plan(kind="timeout", stall=fake.fault_late)
    return None


def _error(status: int, code: int | None, message: str, *, headers: dict[str, str] | None = None) -> Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=headers)


# ---- signing, like Twilio ---------------------------------------------------------------------------


def sign(url: str, params: Mapping[str, str], token: str) -> str:
    return str(RequestValidator(token).compute_signature(url, dict(params)))


async def signed_post(
    url: str,
    params: Mapping[str, str],
    token: str,
    *,
    signed_url: str | None = None,
    signed_params: Mapping[str, str] | None = None,
    post_url: str | None = None,
) -> httpx.Response:
    """POST form `params` to `url` with an X-Twilio-Signature computed over `signed_url`/`signed_params`
    (default: the same URL and params: a genuine request). `post_url` sends it somewhere else
    (a proxy in front: the public URL is signed, the local one is requested)."""
    signature = sign(signed_url or url, signed_params if signed_params is not None else params, token)
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            post_url or url, data=dict(params), headers={"X-Twilio-Signature": signature}
        )


def inbound_params(
    *, sid: str, from_: str, to: str, body: str, account_sid: str, media: tuple[tuple[str, str], ...] = ()
) -> dict[str, str]:
    """The fields Twilio posts to a messaging webhook for one inbound SMS/MMS."""
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": str(len(media)),
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
        "FromCountry": "US",
        "FromState": "CA",
        "ToCountry": "US",
    }
    for i, (url, content_type) in enumerate(media):
        params[f"MediaUrl{i}"] = url
        params[f"MediaContentType{i}"] = content_type
    return params


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)


@contextlib.asynccontextmanager
async def running_fake(account_sid: str, auth_token: str) -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio(account_sid=account_sid, auth_token=auth_token)
    async with serve(fake.app(), ws="none") as url:
        fake.url = url
        yield fake
