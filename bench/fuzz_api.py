"""Schemathesis over the HTTP API: the app's own OpenAPI (`/api/...`, /healthz, /readyz, /metrics)
plus the webhooks (Twilio /twilio/sms and /twilio/status, Slack /slack/events, /slack/commands,
/slack/interactivity), which FastAPI leaves out of the schema, described here so schemathesis
generates their bodies too. Every generated webhook request is signed the way the platform signs
it (Twilio's RequestValidator over the public URL and the form; Slack's v0 HMAC over the raw body),
so the fuzz reaches the handlers behind the signature checks. Promise: no 5xx, and no ERROR log
record (an unhandled exception) while the fuzz runs.

    .venv/bin/python bench/fuzz_api.py [--examples 200] [--no-write]

Runs the app in-process (starlette's TestClient, lifespan on: the delivery worker runs) on a fresh
SQLite database, with fake Slack and Twilio on 127.0.0.1 in a background thread; a small
table-driven KB stands in for the model (the fuzz is about the HTTP layer). Prints per-operation
counts and updates "## API fuzzing" in bench/RESULTS.md. tests/bot/test_api_fuzz.py runs the same
with few examples.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECTION = "## API fuzzing"
BASE = "http://testserver"
SLACK_SECRET = "fuzz-signing-secret"
TWILIO_SID = "AC" + "f" * 32
TWILIO_TOKEN = "fuzz-twilio-token"

_S = {"type": "string"}
# Our own account, so the handlers behind the account check (403) are reached; a foreign account is
# tests/channels/test_fuzz.py's.
_ACCOUNT = {"enum": [TWILIO_SID]}
WEBHOOKS: dict[str, tuple[str, dict[str, Any]]] = {
    "/twilio/sms": ("application/x-www-form-urlencoded", {
        "type": "object", "required": ["AccountSid", "MessageSid", "From", "To", "Body"],
        "properties": {"AccountSid": _ACCOUNT} | {k: _S for k in (
            "MessageSid", "SmsSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MediaContentType0",
            "NumSegments")}}),
    "/twilio/status": ("application/x-www-form-urlencoded", {
        "type": "object", "required": ["AccountSid", "MessageSid", "MessageStatus"],
        "properties": {"AccountSid": _ACCOUNT,
                       "MessageStatus": {"enum": ["queued", "sent", "delivered", "undelivered", "failed", "bogus"]}}
        | {k: _S for k in ("MessageSid", "SmsStatus", "ErrorCode", "To")}}),
    "/slack/events": ("application/json", {
        "type": "object", "required": ["type"],
        "properties": {
            "type": {"enum": ["event_callback", "url_verification", "app_rate_limited", "other"]},
            "challenge": _S, "event_id": _S, "team_id": _S, "api_app_id": _S,
            "event": {"type": "object", "properties": {
                "type": {"enum": ["message", "app_home_opened", "app_mention", "reaction_added"]},
                "subtype": {"enum": ["message_changed", "message_deleted", "file_share", "bot_message",
                                    "thread_broadcast"]},
                "channel": _S, "user": _S, "text": _S, "ts": _S, "thread_ts": _S, "bot_id": _S,
                "message": {"type": "object"}, "previous_message": {"type": "object"},
                "files": {"type": "array", "items": {"type": "object"}}}}}}),
    "/slack/commands": ("application/x-www-form-urlencoded", {
        "type": "object",
        "properties": {k: _S for k in ("command", "text", "user_id", "user_name", "channel_id", "team_id",
                                       "trigger_id", "response_url")}}),
    "/slack/interactivity": ("application/x-www-form-urlencoded", {
        "type": "object", "required": ["payload"], "properties": {"payload": _S}}),
}


_TOKEN = {"anyOf": [{"enum": ["VALID"]}, _S]}  # "VALID": replaced by a freshly minted session token
WEB_BODIES: dict[str, dict[str, Any]] = {  # these read raw JSON, so FastAPI documents no body
    "/api/web/contact": {"type": "object", "properties": {"token": _TOKEN, "email": _S, "phone": _S}},
    "/api/web/feedback": {"type": "object", "properties": {
        "token": _TOKEN, "message_id": {"anyOf": [{"type": "integer"}, _S]}, "helpful": {}}},
}


def full_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    raw = json.loads(json.dumps(openapi))
    for path, schema in WEB_BODIES.items():
        raw["paths"][path]["post"]["requestBody"] = {"content": {"application/json": {"schema": schema}}}
    for path, (media, schema) in WEBHOOKS.items():
        raw["paths"][path] = {"post": {
            "operationId": "webhook" + path.replace("/", "_"),
            "requestBody": {"required": True, "content": {media: {"schema": schema}}},
            "responses": {"200": {"description": "ok"}, "204": {"description": "ok"},
                          "400": {"description": "bad input"}, "403": {"description": "bad signature"}}}}
    return raw


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)

    def add(self, label: str, status: int, detail: str) -> None:
        self.calls[label] += 1
        self.statuses.setdefault(label, Counter())[status] += 1
        if status >= 500:
            self.server_errors.append(f"{label} -> {status}: {detail[:300]}")


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()[:300]}")


def sign_request(path: str, media: str | None, body: Any) -> tuple[bytes, dict[str, str]]:
    """The raw body and the platform's signature headers for a generated webhook request."""
    from tests.fakes import slack as fake_slack
    from tests.fakes.twilio import sign as twilio_sign

    if body is None:
        return b"", {}
    if media == "application/json":
        raw = json.dumps(body).encode()
    elif isinstance(body, dict):
        raw = urlencode({str(k): str(v) for k, v in body.items()}).encode()
    else:
        raw = str(body).encode()
    headers = {"Content-Type": media or "application/octet-stream"}
    if path.startswith("/twilio/") and isinstance(body, dict):
        params = {str(k): str(v) for k, v in body.items()}
        headers["X-Twilio-Signature"] = twilio_sign(BASE + path, params, TWILIO_TOKEN)
    elif path.startswith("/slack/"):
        headers.update(fake_slack.sign(SLACK_SECRET, raw))
    return raw, headers


@contextlib.contextmanager
def fakes_in_thread() -> Iterator[tuple[str, str]]:
    """Fake Slack and Twilio on 127.0.0.1, served from a background thread's event loop."""
    from tests.fakes import slack as fake_slack
    from tests.fakes.twilio import running_fake

    ready = threading.Event()
    stop: dict[str, Any] = {}
    urls: list[str] = []

    async def main() -> None:
        async with fake_slack.running(fake_slack.FakeSlack(users={"U0AGENT": "Ann"})) as slack, \
                running_fake(TWILIO_SID, TWILIO_TOKEN) as twilio:
            urls.extend([slack.base_url, twilio.url])
            stop["event"] = asyncio.Event()
            stop["loop"] = asyncio.get_running_loop()
            ready.set()
            await stop["event"].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("fake platforms did not start")
    try:
        yield urls[0], urls[1]
    finally:
        stop["loop"].call_soon_threadsafe(stop["event"].set)
        thread.join(15)


def run(examples: int, folder: Path, *, seed: int | None = 14) -> dict[str, Any]:
    import schemathesis
    from fastapi.testclient import TestClient

    from bot.app import create_app
    from bot.migrate import upgrade
    from bot.settings import Settings
    from tests.bot.helpers import TableSearcher
    from tests.fakes import slack as fake_slack

    tally, errors = Tally(), ErrorRecords()
    root = logging.getLogger()
    t0 = time.perf_counter()
    with fakes_in_thread() as (slack_url, twilio_url):
        s = Settings(_env_file=None, environment="development", database_url=f"sqlite+aiosqlite:///{folder / 'f.db'}",
                     index_dir=folder / "index", public_base_url=BASE, secret_key="fuzz-" + "k" * 40,
                     slack_bot_token=fake_slack.BOT_TOKEN, slack_signing_secret=SLACK_SECRET,
                     slack_api_base_url=slack_url, slack_agents_channel="C0AGENTS", slack_timeout=2,
                     twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN,
                     twilio_from_number="+15550001111", twilio_api_base_url=twilio_url, send_timeout=2,
                     outbox_poll_seconds=0.2, web_sessions_per_minute=1_000_000, sla_check_seconds=0)
        upgrade(s.database_url)
        app = create_app(s, kb=TableSearcher({"refund": ("refunds", 0.9), "order": ("orders", 0.5)}))
        schema = schemathesis.openapi.from_dict(full_schema(app.openapi()))
        root.addHandler(errors)
        try:
            with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
                for result in schema.get_all_operations():
                    _fuzz_operation(result.ok(), client, tally, examples, seed)
        finally:
            root.removeHandler(errors)
    return {"examples": examples, "tally": tally, "errors": errors.records, "seconds": time.perf_counter() - t0}


def _fuzz_operation(op: Any, client: Any, tally: Tally, examples: int, seed: int | None) -> None:
    from hypothesis import HealthCheck, given, settings

    label = f"{op.method.upper()} {op.path}"

    @settings(max_examples=examples, deadline=None, database=None, derandomize=seed is not None,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def check(case: Any) -> None:
        body = None if type(case.body).__name__ == "NotSet" else case.body
        if isinstance(body, dict) and body.get("token") == "VALID":
            body = {**body, "token": client.post("/api/web/session").json()["token"]}
        raw, headers = sign_request(op.path, case.media_type, body)
        extra = {str(k): str(v) for k, v in (case.headers or {}).items()
                 if str(k).lower() not in ("content-type", "content-length", "host")}
        resp = client.request(op.method.upper(), op.path, params=case.query or None,
                              content=raw or None, headers={**extra, **headers})
        tally.add(label, resp.status_code, resp.text)

    check()


def table(r: dict[str, Any]) -> str:
    tally: Tally = r["tally"]
    rows = ["| operation | requests | answers |", "|---|---|---|"]
    for label in sorted(tally.calls):
        answers = ", ".join(f"{code}: {n}" for code, n in sorted(tally.statuses[label].items()))
        rows.append(f"| `{label}` | {tally.calls[label]} | {answers} |")
    total = sum(tally.calls.values())
    notes = [
        "",
        f"- {total} requests over {len(tally.calls)} operations (at most {r['examples']} generated examples each, "
        f"schemathesis + hypothesis, derandomized), {r['seconds']:.0f} s; webhooks signed like the platform.",
        f"- 5xx answers: {len(tally.server_errors)}"
        + (f" (first: {tally.server_errors[0]})" if tally.server_errors else "")
        + f"; ERROR log records: {len(r['errors'])}" + (f" (first: {r['errors'][0]})" if r["errors"] else "") + ".",
    ]
    return "\n".join(rows + notes)


def main() -> int:
    from bench.webchat_roundtrip import update_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=200, help="generated examples per operation (max 2000)")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sb-fuzz-") as folder:
        r = run(max(1, min(args.examples, 2000)), Path(folder))
    body = table(r)
    print(body)
    if not args.no_write:
        update_results(args.results, body, "python bench/fuzz_api.py " + " ".join(sys.argv[1:]), section=SECTION)
    return 1 if r["tally"].server_errors or r["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
