"""A fake Slack Web API on 127.0.0.1 (port 0), and helpers that sign requests like Slack.

The real slack_sdk `AsyncWebClient` reaches it with ``base_url=fake.base_url``. It records every
call, answers like Slack (auth.test, chat.postMessage with a ts, chat.update, chat.postEphemeral,
views.open, views.publish, usergroups.users.list, users.info, conversations.replies/history with
message metadata) and can be told to misbehave:

    fake.fail_next("chat.postMessage", 503)                   # a 5xx (nothing is stored)
    fake.fail_next("chat.postMessage", 429, retry_after=1)    # rate limited + Retry-After
    fake.fail_next("chat.postMessage", 200, error="channel_not_found")
    fake.stall_next("chat.postMessage", 2.0)                  # stores the post, answers 2 s late

Fault mode (tests/fakes/faults.py): a call carrying ``X-Fault`` (added by a `FaultProxy` in front)
gets a 503, a 429 with Retry-After, a late but normal answer (``fault_slow`` s) or, for ``timeout``,
is done (a post is stored) and answered after ``fault_late`` s, later than the client's timeout.

Inbound requests (events, interactivity, slash commands) are signed with the v0 algorithm by
`sign()` / `signed_headers()`, exactly as Slack signs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes.server import serve

BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
TEAM = "T0FAKE"

BOT_TOKEN = "xoxb-test-token"  # the only bot token this fake accepts


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    outcome: str  # "ok" | "error <status> <code>"
    at: float


@dataclass
class _Plan:
    status: int
    error: str | None = None
    retry_after: float | None = None
    stall: float = 0.0


@dataclass
class FakeSlack:
    users: dict[str, str] = field(default_factory=dict)  # id -> display name
    groups: dict[str, list[str]] = field(default_factory=dict)  # usergroup id -> member ids
    missing_channels: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel -> messages
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""
    fault_slow: float = 0.5
    fault_late: float = 4.0
    _plans: dict[str, deque[_Plan]] = field(default_factory=dict)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _views: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # ---- scripting -------------------------------------------------------------------------------

    def fail_next(self, method: str, status: int = 500, *, times: int = 1, error: str | None = None,
                  retry_after: float | None = None) -> None:
        for _ in range(times):
            self._plans.setdefault(method, deque()).append(_Plan(status, error, retry_after))

    def stall_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        for _ in range(times):
            self._plans.setdefault(method, deque()).append(_Plan(200, stall=seconds))

    # ---- reading back ----------------------------------------------------------------------------

    def called(self, method: str, *, ok_only: bool = True) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method and (c.outcome == "ok" or not ok_only)]

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every message stored (by chat.postMessage), in order."""
        out = []
        for ch, msgs in self.messages.items():
            if channel is None or ch == channel:
                out.extend(msgs)
        return sorted(out, key=lambda m: float(m["ts"]))

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.messages.get(channel, []) if m.get("thread_ts") == thread_ts]

    def roots(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.messages.get(channel, []) if not m.get("thread_ts")]

    # ---- the API -----------------------------------------------------------------------------------

    def app(self) -> FastAPI:
        api = FastAPI()

        @api.api_route("/api/{method}", methods=["GET", "POST"])
        async def call(method: str, request: Request) -> JSONResponse:
            params = await _params(request)
            plans = self._plans.get(method)
            plan = plans.popleft() if plans else self._fault_plan(request)
            if request.headers.get("authorization", "") != f"Bearer {BOT_TOKEN}":
                self.calls.append(Call(method, params, "error 200 invalid_auth", time.time()))
                return JSONResponse({"ok": False, "error": "invalid_auth"})
            if plan is not None and (plan.status != 200 or plan.error):
                self.calls.append(Call(method, params, f"error {plan.status} {plan.error}", time.time()))
                headers = {"Retry-After": str(int(plan.retry_after))} if plan.retry_after is not None else {}
                body = {"ok": False, "error": plan.error or ("ratelimited" if plan.status == 429 else "fatal")}
                return JSONResponse(body, status_code=plan.status, headers=headers)
            result = self._answer(method, params)
            self.calls.append(Call(method, params, "ok" if result.get("ok") else
                                   f"error 200 {result.get('error')}", time.time()))
            if plan is not None and plan.stall:
                await asyncio.sleep(plan.stall)  # the work is done; only the answer is late
            return JSONResponse(result)

        return api

    def _fault_plan(self, request: Request) -> _Plan | None:
        kind = request.headers.get("x-fault")
        if kind == "5xx":
            return _Plan(503)
        if kind == "429":
            return _Plan(429, retry_after=1)
        if kind == "slow":
            return _Plan(200, stall=self.fault_slow)
        if kind == "timeout":
            return _Plan(200, stall=self.fault_late)
        return None

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{1_700_000_000 + n}.{n:06d}"

    def _answer(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID, "team": "Fake",
                    "user": "switchboard", "url": "https://fake.example/"}
        channel = str(p.get("channel") or "")
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "conversations.replies",
                      "conversations.history") and (not channel or channel in self.missing_channels):
            return {"ok": False, "error": "channel_not_found"}
        if method == "chat.postMessage":
            msg = {"ts": self._next_ts(), "channel": channel, "text": p.get("text"), "blocks": p.get("blocks"),
                   "thread_ts": p.get("thread_ts"), "metadata": p.get("metadata"), "bot_id": BOT_ID,
                   "user": BOT_USER}
            self.messages.setdefault(channel, []).append(msg)
            return {"ok": True, "channel": channel, "ts": msg["ts"], "message": msg}
        if method == "chat.update":
            for msg in self.messages.get(channel, []):
                if msg["ts"] == p.get("ts"):
                    msg.update(text=p.get("text"), blocks=p.get("blocks"), edited=True)
                    return {"ok": True, "channel": channel, "ts": msg["ts"]}
            return {"ok": False, "error": "message_not_found"}
        if method == "chat.postEphemeral":
            self.ephemerals.append(p)
            return {"ok": True, "message_ts": self._next_ts()}
        if method in ("views.open", "views.publish"):
            view = {**(p.get("view") or {}), "id": f"V{next(self._views):08d}"}
            self.views.append({"method": method, **p, "view": view})
            return {"ok": True, "view": view}
        if method == "usergroups.users.list":
            group = p.get("usergroup")
            if group not in self.groups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.groups[group]}
        if method == "users.info":
            uid = str(p.get("user"))
            if uid not in self.users:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {"id": uid, "name": uid.lower(), "profile": {
                "display_name": self.users[uid], "real_name": self.users[uid]}}}
        if method in ("conversations.replies", "conversations.history"):
            msgs = self.messages.get(channel, [])
            if method == "conversations.replies":
                root = p.get("ts")
                msgs = [m for m in msgs if m["ts"] == root or m.get("thread_ts") == root]
            else:
                msgs = [m for m in msgs if not m.get("thread_ts")][::-1]
            keep = str(p.get("include_all_metadata")).lower() == "true"
            return {"ok": True, "messages": [
                {k: v for k, v in m.items() if k != "metadata" or keep} for m in msgs]}
        return {"ok": False, "error": "unknown_method"}


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if not body:
        return params
    ctype = request.headers.get("content-type", "")
    if "json" in ctype:
        params.update(json.loads(body))
    else:
        for key, value in parse_qsl(body.decode()):
            try:
                params[key] = json.loads(value) if value[:1] in "[{" else value
            except ValueError:
                params[key] = value
    return params


@contextlib.asynccontextmanager
async def running(fake: FakeSlack) -> AsyncIterator[FakeSlack]:
    """Serve the fake on 127.0.0.1:<free port> for the duration of the block."""
    async with serve(fake.app()) as url:
        fake.base_url = f"{url}/api/"
        yield fake


# ---- signing inbound requests like Slack ------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def event_request(secret: str, event: dict[str, Any], *, event_id: str, retry: int | None = None,
                  timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({
        "token": "legacy", "team_id": TEAM, "api_app_id": "A0APP", "type": "event_callback",
        "event_id": event_id, "event_time": int(time.time()), "event": event,
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
    }).encode()
    headers = {"Content-Type": "application/json", **sign(secret, body, timestamp)}
    if retry is not None:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
    return body, headers


def interactive_request(secret: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return body, {"Content-Type": "application/x-www-form-urlencoded", **sign(secret, body)}


def command_request(secret: str, *, user: str, text: str, channel: str = "C0AGENTS",
                    command: str = "/switchboard") -> tuple[bytes, dict[str, str]]:
    body = urlencode({
        "token": "legacy", "team_id": TEAM, "channel_id": channel, "user_id": user, "user_name": user.lower(),
        "command": command, "text": text, "response_url": "http://127.0.0.1:9/response",
        "trigger_id": "trigger-1",
    }).encode()
    return body, {"Content-Type": "application/x-www-form-urlencoded", **sign(secret, body)}


def block_action(*, user: str, action_id: str, value: str, channel: str, message_ts: str,
                 thread_ts: str | None = None, name: str | None = None) -> dict[str, Any]:
    return {
        "type": "block_actions", "team": {"id": TEAM}, "api_app_id": "A0APP",
        "user": {"id": user, "username": (name or user).lower(), "name": name or user.lower(), "team_id": TEAM},
        "channel": {"id": channel}, "container": {"type": "message", "channel_id": channel,
                                                  "message_ts": message_ts},
        "message": {"ts": message_ts, **({"thread_ts": thread_ts} if thread_ts else {})},
        "trigger_id": f"trigger-{message_ts}", "response_url": "http://127.0.0.1:9/response",
        "actions": [{"type": "button", "action_id": action_id, "value": value, "block_id": "b",
                     "action_ts": str(time.time())}],
    }


def view_submission(*, user: str, view: dict[str, Any], text: str, name: str | None = None) -> dict[str, Any]:
    """Submit a view the fake recorded from views.open, with `text` typed into its input."""
    from channels import slack_blocks as kit

    return {
        "type": "view_submission", "team": {"id": TEAM}, "api_app_id": "A0APP",
        "user": {"id": user, "username": (name or user).lower(), "name": name or user.lower(), "team_id": TEAM},
        "trigger_id": "trigger-view",
        "view": {**view, "state": {"values": {kit.INPUT_BLOCK: {kit.INPUT_ACTION: {
            "type": "plain_text_input", "value": text}}}}},
    }
