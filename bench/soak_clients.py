"""The soak's customers (web chat over WebSocket, SMS over signed Twilio webhooks) and its agent
(signed Slack thread replies). Each customer sends its messages one after another: a web message
is resent with the same client_id until acknowledged, an SMS webhook is re-posted until a web
process answers 200 (5 % are also delivered a second time, as Twilio retries do); then it waits
for the reply. A customer whose conversation went to people sends the rest without waiting and
finally waits for the agent's reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from sqlalchemy import text

from bench.soak_stack import (
    AGENT_USER,
    HANDOFF_TEXT,
    PUBLIC_URL,
    SLACK_SECRET,
    TWILIO_FROM,
    TWILIO_SID,
    TWILIO_TOKEN,
)
from tests.fakes.slack import event_request
from tests.fakes.twilio import inbound_params, new_sid, sign

HUMAN = "I want to talk to a human please"
AGENT_MARK = "Agent reply for conversation"


@dataclass
class Record:
    """What the customers and the agent saw; the checks compare it with the database and the fakes."""

    sent: list[dict[str, Any]] = field(default_factory=list)  # customer, channel, platform_id, t
    twice: int = 0  # SMS webhooks delivered a second time
    bot_latency: list[float] = field(default_factory=list)
    agent_latency: list[float] = field(default_factory=list)
    no_reply: int = 0
    agent_posts: dict[int, float] = field(default_factory=dict)  # conversation id -> event posted at
    agent_missing: int = 0
    web_seen: dict[str, set[int]] = field(default_factory=dict)  # session id -> message ids shown
    web_live_dupes: int = 0  # the same message id pushed twice to a socket (the widget dedupes by id)
    reconnects: int = 0
    # messages a resume listed below the highest id the socket had been pushed before it: the old rule
    # (resume after the highest id seen) skipped these for good
    resume_below_highest: int = 0
    errors: list[str] = field(default_factory=list)


class Pacer:
    """At most `rate` inbound messages per second across all customers."""

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.gap:
            return
        async with self.lock:
            now = time.monotonic()
            self.next = max(self.next, now) + self.gap
            delay = self.next - self.gap - now
        if delay > 0:
            await asyncio.sleep(delay)


class WebCustomer:
    def __init__(self, idx: int, urls: list[str], rec: Record, rng: random.Random, limit: float) -> None:
        self.idx, self.urls, self.rec, self.rng, self.limit = idx, urls, rec, rng, limit
        self.token: str | None = None
        self.sid = ""
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.acks: dict[str, asyncio.Future[int]] = {}
        self.replies: list[tuple[int, str, str, float]] = []  # id, author_kind, text, arrived
        self.changed = asyncio.Event()
        self.history = asyncio.Event()
        self.seen: set[int] = set()
        self.cursor = 0  # the resume `after`, from history frames only (as the widget keeps it)
        self.paging = False
        self.highest_before_resume = 0

    async def _connect(self, client: httpx.AsyncClient) -> None:
        # a customer keeps trying for a while: both web processes can be restarting at once
        deadline = time.monotonic() + max(self.limit, 300.0)
        while time.monotonic() < deadline:
            url = self.rng.choice(self.urls)
            try:
                if self.token is None:
                    got = (await client.post(url + "/api/web/session")).raise_for_status().json()
                    self.token = got["token"]
                ws = await websockets.connect(url.replace("http://", "ws://") + "/ws/chat", open_timeout=5,
                                              max_size=2**20, ping_interval=None)
                await ws.send(json.dumps({"type": "auth", "token": self.token}))
                ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if ready.get("type") != "ready":
                    raise RuntimeError(f"no ready frame: {ready}")
                self.token = ready["token"]
                self.sid = self.token.split(".")[1]
                self.ws = ws
                self.reader = asyncio.create_task(self._read(ws))
                self.paging = False
                self.highest_before_resume = max(self.seen, default=0)
                await ws.send(json.dumps({"type": "resume", "after": self.cursor}))
                return
            except (OSError, httpx.HTTPError, websockets.WebSocketException, TimeoutError, RuntimeError):
                await asyncio.sleep(0.5 + self.rng.random())
        raise TimeoutError(f"web customer {self.idx}: no web process answered")

    async def _read(self, ws: Any) -> None:
        with contextlib.suppress(websockets.WebSocketException, OSError):
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "ack":
                    fut = self.acks.get(frame.get("client_id"))
                    if fut is not None and not fut.done():
                        fut.set_result(int(frame["id"]))
                elif kind == "message":
                    self._shown(frame, live=True)
                elif kind == "history":
                    items = frame.get("messages", [])
                    for item in items:
                        mid = item.get("id")
                        if isinstance(mid, int) and mid not in self.seen and mid < self.highest_before_resume:
                            self.rec.resume_below_highest += 1
                        self._shown(item, live=False)
                    if not self.paging:
                        self.cursor = max(self.cursor, int(frame.get("cursor", 0)))
                    if frame.get("more") and items:
                        last = int(items[-1]["id"])
                        self.paging = self.paging or self.cursor < last
                        await ws.send(json.dumps({"type": "resume", "after": last}))
                    else:
                        self.paging = False
                        self.history.set()
        self.changed.set()  # the socket is gone: waiters reconnect

    def _shown(self, frame: dict[str, Any], *, live: bool) -> None:
        mid = frame.get("id")
        if not isinstance(mid, int):
            return
        if mid in self.seen:
            self.rec.web_live_dupes += live
            return
        self.seen.add(mid)
        if frame.get("author_kind") != "customer":
            self.replies.append((mid, str(frame.get("author_kind")), str(frame.get("text")), time.monotonic()))
        self.changed.set()

    def _alive(self) -> bool:
        return self.reader is not None and not self.reader.done()

    async def ensure(self, client: httpx.AsyncClient) -> None:
        if not self._alive():
            if self.ws is not None:
                self.rec.reconnects += 1
                with contextlib.suppress(Exception):
                    await self.ws.close()
            await self._connect(client)

    async def send(self, client: httpx.AsyncClient, text_: str) -> int:
        """Send one message until acknowledged; returns its stored id."""
        client_id = uuid.uuid4().hex
        deadline = time.monotonic() + self.limit
        while time.monotonic() < deadline:
            await self.ensure(client)
            fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self.acks[client_id] = fut
            with contextlib.suppress(websockets.WebSocketException, OSError):
                await self.ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text_}))
            done, _ = await asyncio.wait({fut, self.reader}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            if fut in done:
                self.acks.pop(client_id, None)
                self.rec.sent.append({"customer": f"web:{self.sid}", "channel": "web",
                                      "platform_id": f"{self.sid}:{client_id}", "t": time.monotonic()})
                return fut.result()
            if self._alive():  # no ack in 10 s on a live socket (a slow server): resend, same client_id
                continue
        raise TimeoutError(f"web customer {self.idx}: message never acknowledged")

    async def wait_reply(self, client: httpx.AsyncClient, after_id: int, *, kind: str | None = None,
                         limit: float) -> tuple[int, str, str, float] | None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for r in self.replies:
                if r[0] > after_id and (kind is None or r[1] == kind):
                    return r
            self.changed.clear()
            if not self._alive():
                with contextlib.suppress(TimeoutError):
                    await self.ensure(client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(5.0, max(0.1, deadline - time.monotonic())))
        return None

    async def sync(self, client: httpx.AsyncClient) -> None:
        """At the end: open a fresh socket and read the history, as the widget does on resume."""
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.reader, 5)
        self.history.clear()
        with contextlib.suppress(TimeoutError):
            await self._connect(client)
            await asyncio.wait_for(self.history.wait(), 20)
        await self.close()

    async def close(self) -> None:
        self.rec.web_seen[self.sid] = self.seen
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader


class SmsCustomer:
    def __init__(self, idx: int, urls: list[str], rec: Record, rng: random.Random, limit: float) -> None:
        self.idx, self.urls, self.rec, self.rng, self.limit = idx, urls, rec, rng, limit
        self.number = f"+1555{7000000 + idx:07d}"
        self.replies: list[tuple[int, str, str, float]] = []  # n, "sms", body, arrived
        self.changed = asyncio.Event()

    def on_sms(self, message: dict[str, Any]) -> None:
        self.replies.append((len(self.replies) + 1, "sms", str(message["body"]), time.monotonic()))
        self.changed.set()

    async def _post(self, client: httpx.AsyncClient, params: dict[str, str]) -> None:
        path = "/twilio/sms"
        headers = {"X-Twilio-Signature": sign(PUBLIC_URL + path, params, TWILIO_TOKEN)}
        deadline = time.monotonic() + self.limit
        while time.monotonic() < deadline:
            try:
                r = await client.post(self.rng.choice(self.urls) + path, data=params, headers=headers)
                if r.status_code == 200:
                    return
                if 400 <= r.status_code < 500:
                    raise RuntimeError(f"webhook refused: {r.status_code} {r.text[:200]}")
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3 + self.rng.random())  # Twilio retries a failed webhook
        raise TimeoutError(f"sms customer {self.idx}: webhook never accepted")

    async def send(self, client: httpx.AsyncClient, text_: str) -> int:
        sid = new_sid()
        params = inbound_params(sid=sid, from_=self.number, to=TWILIO_FROM, body=text_, account_sid=TWILIO_SID)
        before = len(self.replies)
        await self._post(client, params)
        self.rec.sent.append({"customer": f"sms:{self.number}", "channel": "sms", "platform_id": sid,
                              "t": time.monotonic()})
        if self.rng.random() < 0.05:
            self.rec.twice += 1

            async def again() -> None:
                await asyncio.sleep(self.rng.uniform(0.05, 2.0))
                with contextlib.suppress(Exception):
                    await self._post(client, params)

            asyncio.create_task(again())  # noqa: RUF006 - awaited through the event loop's end of run
        return before

    async def wait_reply(self, client: httpx.AsyncClient, after_id: int, *, kind: str | None = None,
                         limit: float) -> tuple[int, str, str, float] | None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for r in self.replies:
                if r[0] > after_id and (kind is None or AGENT_MARK in r[2]):
                    return r
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), max(0.1, deadline - time.monotonic()))
        return None

    async def sync(self, client: httpx.AsyncClient) -> None:
        return None

    async def close(self) -> None:
        return None


async def run_customer(cust: WebCustomer | SmsCustomer, texts: list[str], rec: Record, pacer: Pacer,
                       client: httpx.AsyncClient, reply_limit: float) -> None:
    handed_off = False
    last = 0
    try:
        for t in texts:
            await pacer.wait()
            start = time.monotonic()
            last = await cust.send(client, t)
            if handed_off:
                continue
            reply = await cust.wait_reply(client, last, limit=reply_limit)
            if reply is None:
                rec.no_reply += 1
                continue
            rec.bot_latency.append(reply[3] - start)
            handed_off = HANDOFF_TEXT in reply[2]
        if handed_off:
            reply = await cust.wait_reply(client, 0, kind="agent", limit=reply_limit * 2)
            if reply is None:
                rec.agent_missing += 1
                rec.errors.append(f"{type(cust).__name__} {cust.idx}: no agent reply")
            else:
                cid = int(reply[2].rsplit(" ", 1)[-1].strip("."))
                posted = rec.agent_posts.get(cid)
                if posted is not None:
                    rec.agent_latency.append(reply[3] - posted)
    except Exception as exc:  # counted and reported; the checks then show what is missing
        rec.errors.append(f"{type(cust).__name__} {cust.idx}: {type(exc).__name__}: {exc}")


async def run_agent(sessionmaker: Any, urls: list[str], rec: Record, stop: asyncio.Event,
                    rng: random.Random) -> None:
    """Reply once, from the Slack thread, to every conversation handed to people."""
    answered: set[int] = set()
    n = 0
    async with httpx.AsyncClient(timeout=10) as client:
        while not stop.is_set():
            async with sessionmaker() as session:
                rows = (await session.execute(text(
                    "SELECT t.conversation_id, t.channel_id, t.thread_ts FROM slack_threads t "
                    "JOIN conversations c ON c.id = t.conversation_id "
                    "WHERE t.thread_ts IS NOT NULL AND c.state IN ('waiting', 'escalated')"))).all()
            todo = [r for r in rows if r[0] not in answered]
            await asyncio.gather(*(_agent_reply(client, urls, rec, rng, cid, ch, ts, (n := n + 1))
                                   for cid, ch, ts in todo))
            answered.update(r[0] for r in todo)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


async def _agent_reply(client: httpx.AsyncClient, urls: list[str], rec: Record, rng: random.Random,
                       cid: int, channel: str, thread_ts: str, n: int) -> None:
    ts = f"{1_800_000_000 + n}.{n:06d}"
    event = {"type": "message", "channel": channel, "user": AGENT_USER, "text": f"{AGENT_MARK} {cid}",
             "ts": ts, "thread_ts": thread_ts, "event_ts": ts, "channel_type": "channel"}
    rec.agent_posts[cid] = time.monotonic()
    for attempt in range(12):  # Slack retries an event that did not get a 2xx (X-Slack-Retry-Num)
        body, headers = event_request(SLACK_SECRET, event, event_id=f"Ev{cid:08d}",
                                      retry=attempt or None)
        with contextlib.suppress(httpx.HTTPError):
            if (await client.post(rng.choice(urls) + "/slack/events", content=body, headers=headers)).is_success:
                return
        await asyncio.sleep(1 + attempt)
    rec.errors.append(f"agent: the event for conversation {cid} was never accepted")
