"""Schemathesis over the HTTP API and the signed webhooks (bench/fuzz_api.py, few examples here):
no 5xx and no ERROR log record, whatever the bodies, and every operation was reached."""

from __future__ import annotations

from pathlib import Path

from bench.fuzz_api import WEBHOOKS, run, table


def test_fuzzed_api_and_signed_webhooks_never_answer_5xx_nor_log_errors(tmp_path: Path) -> None:
    r = run(25, tmp_path)
    print(table(r))
    tally = r["tally"]
    assert tally.server_errors == []
    assert r["errors"] == []
    labels = set(tally.calls)
    assert {f"POST {path}" for path in WEBHOOKS} <= labels
    assert {"POST /api/web/session", "POST /api/web/contact", "POST /api/web/feedback", "GET /readyz"} <= labels
    # the signatures were good: the handlers behind them answered, not only the 403 of a bad signature
    assert any(code in (200, 204) for code in tally.statuses["POST /twilio/sms"])
    assert 403 not in tally.statuses["POST /twilio/sms"]
    assert 401 not in tally.statuses["POST /slack/events"]
    assert sum(tally.calls.values()) >= 100
