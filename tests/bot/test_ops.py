"""The operator's view: /metrics counters move after a conversation, /readyz, and JSON logs
that carry ids and never a customer's words."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.logs import JsonFormatter
from bot.migrate import upgrade
from bot.settings import Settings
from tests.bot.helpers import TableSearcher

SECRET_WORDS = "my parcel zebra-umbrella never arrived, refund please"
ESCALATE = "I will talk to my lawyer about this chargeback quokka-lantern"


def _sample(body: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus exposition text (0 when absent)."""
    total = 0.0
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old)


def _chat(client: TestClient, text: str, client_id: str) -> list[dict[str, Any]]:
    token = client.post("/api/web/session").json()["token"]
    frames: list[dict[str, Any]] = []
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_json({"type": "auth", "token": token})  # the token travels in the first frame, never the URL
        assert ws.receive_json()["type"] == "ready"
        ws.send_json({"type": "message", "client_id": client_id, "text": text})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            frame = ws.receive_json()
            frames.append(frame)
            if frame["type"] == "message" and frame.get("author_kind") in ("bot", "system"):
                break
    return frames


def test_metrics_move_after_a_conversation_and_logs_are_json_without_text(
    settings_factory: Callable[..., Settings], json_logs: io.StringIO
) -> None:
    settings = settings_factory()
    upgrade(settings.database_url)
    app = create_app(settings, kb=TableSearcher({"refund": ("refunds", 0.9)}))
    with TestClient(app) as client:
        before = client.get("/metrics").text
        answered = _chat(client, SECRET_WORDS, "c-1")
        escalated = _chat(client, ESCALATE, "c-2")
        time.sleep(0.3)  # the in-web worker marks the last delivery
        after = client.get("/metrics").text

    assert any(f["type"] == "message" and f["author_kind"] == "bot" for f in answered)
    assert any(f["type"] == "message" for f in escalated)
    assert _sample(after, "switchboard_inbound_messages_total", channel="web") - \
        _sample(before, "switchboard_inbound_messages_total", channel="web") == 2
    assert _sample(after, "switchboard_outbound_messages_total", channel="web", author="bot") - \
        _sample(before, "switchboard_outbound_messages_total", channel="web", author="bot") >= 1
    assert _sample(after, "switchboard_deliveries_total", channel="web", outcome="delivered") > \
        _sample(before, "switchboard_deliveries_total", channel="web", outcome="delivered")
    assert _sample(after, "switchboard_delivery_latency_seconds_count", channel="web") >= 2
    assert _sample(after, "switchboard_kb_search_seconds_count") - \
        _sample(before, "switchboard_kb_search_seconds_count") >= 2
    assert _sample(after, "switchboard_kb_top_confidence_bucket", le="0.9") >= 1
    assert _sample(after, "switchboard_handoffs_total", reason="keyword") - \
        _sample(before, "switchboard_handoffs_total", reason="keyword") == 1
    assert "switchboard_webchat_sockets" in after
    assert _sample(after, "switchboard_outbox_depth", channel="web") == 0  # all delivered

    lines = [line for line in json_logs.getvalue().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    stored = [r for r in records if r["msg"] == "inbound stored"]
    assert len(stored) == 2 and all(isinstance(r["message_id"], int) and r["conversation_id"] for r in stored)
    assert any(r["msg"] == "delivered" and r.get("outbox_id") for r in records)
    for secret in ("zebra-umbrella", "quokka-lantern", "Answer about refunds"):
        assert secret not in json_logs.getvalue()


def test_readyz_checks_database_redis_and_index(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    upgrade(settings.database_url)
    with TestClient(create_app(settings, kb=TableSearcher({}))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "checks": {"database": "ok", "index": "ok"}}
        assert client.get("/healthz").status_code == 200

    # Redis configured but not answering: not ready (503), yet alive
    down = settings_factory(redis_url="redis://127.0.0.1:1/0")
    app = create_app(down, kb=TableSearcher({}))
    app.state.parts.kb = None
    with TestClient(app) as client:
        resp = client.get("/readyz")
        assert resp.status_code == 503
        checks = resp.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["redis"].startswith("failed")
        assert checks["index"].startswith("failed")


def test_multi_process_mode_sums_every_process(tmp_path: Any) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, a scrape from one process reports what the others counted."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": os.getcwd()}
    count = "from bot import metrics; metrics.record_delivery('sms', 'delivered'); metrics.WEB_SOCKETS.inc()"
    for _ in range(2):  # two "worker" processes
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=60)
    out = subprocess.run([sys.executable, "-c", "from bot import metrics; print(metrics.render()[0].decode())"],
                         env=env, check=True, timeout=60, capture_output=True, text=True).stdout
    assert _sample(out, "switchboard_deliveries_total", channel="sms", outcome="delivered") == 2


def test_the_grafana_dashboard_only_uses_metrics_we_export() -> None:
    from pathlib import Path

    from bot import metrics

    dashboard = json.loads((Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text())
    used = {name for panel in dashboard["panels"] for t in panel["targets"]
            for name in re.findall(r"switchboard_\w+", t["expr"])}
    snapshot = metrics._Snapshot({"web": (1, 2.0)}, {"web": 1})
    exported = set(re.findall(r"^# HELP (switchboard_\w+)", metrics.render(snapshot)[0].decode(), re.M))
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert len(used) >= 12 and families <= exported, families - exported
