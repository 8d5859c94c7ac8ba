"""The soak's accounting: what the customers sent and saw, what the fakes received, what the database
holds. Every figure in the soak table comes from here (bench/soak.py)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import text

from bench.soak_clients import Record


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile, None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


async def count(sessionmaker: Any, rec: Record, twilio: Any, slack: Any) -> dict[str, Any]:
    async with sessionmaker() as session:
        inbound = (await session.execute(text(
            "SELECT id, channel, platform_id, processed_at IS NOT NULL FROM messages WHERE direction = 'in'"))).all()
        outbox = (await session.execute(text(
            "SELECT id, channel, order_key, message_id, status, platform_id, last_error, delivered_at, payload "
            "FROM outbox ORDER BY id"))).all()
    outbox = [(*r[:8], json.loads(r[8]) if isinstance(r[8], str) else r[8]) for r in outbox]
    out: dict[str, Any] = {}

    # ---- inbound: every message sent is stored exactly once, and processed ------------------------
    sent_ids = [s["platform_id"] for s in rec.sent]
    stored = Counter((row[1], row[2]) for row in inbound)
    by_pid = {row[2]: row for row in inbound}
    out["inbound_sent"] = len(set(sent_ids))
    out["inbound_sent_web"] = len({s["platform_id"] for s in rec.sent if s["channel"] == "web"})
    out["inbound_sent_sms"] = len({s["platform_id"] for s in rec.sent if s["channel"] == "sms"})
    out["sms_twice"] = rec.twice
    out["stored_once"] = sum(1 for s in rec.sent if stored[(s["channel"], s["platform_id"])] == 1)
    out["inbound_missing"] = sum(1 for s in rec.sent if stored[(s["channel"], s["platform_id"])] == 0)
    out["inbound_doubled"] = sum(1 for n in stored.values() if n > 1)
    out["inbound_unexpected"] = len({(r[1], r[2]) for r in inbound} - {(s["channel"], s["platform_id"])
                                                                         for s in rec.sent})
    out["inbound_unprocessed"] = sum(1 for r in inbound if not r[3])

    # ---- owed replies: delivered, and seen by the customer -------------------------------------------
    customer = [r for r in outbox if r[1] in ("web", "sms")]
    out["replies_owed"] = len(customer)
    out["replies_delivered"] = sum(1 for r in customer if r[4] == "delivered")
    out["replies_not_delivered"] = Counter(r[4] for r in customer if r[4] != "delivered")
    accepted = list(twilio.messages)
    sids = {r[5]: r for r in customer if r[1] == "sms" and r[5]}
    out["sms_accepted_at_fake"] = len(accepted)
    out["sms_delivered_not_at_fake"] = sum(1 for sid in sids if sid not in {m["sid"] for m in accepted})
    out["duplicates_sms"] = sum(1 for m in accepted if m["sid"] not in sids)
    missing_web = 0
    for r in customer:
        if r[1] == "web" and r[4] == "delivered":
            session_id = (r[8] or {}).get("to")
            if r[3] not in rec.web_seen.get(session_id, set()):
                missing_web += 1
    out["web_delivered_not_seen"] = missing_web
    out["web_live_dupes"] = rec.web_live_dupes

    # ---- duplicates on the agents' side (Slack posts made twice for one outbox entry) ------------------
    markers = Counter()
    for m in slack.posts():
        meta = m.get("metadata") or {}
        marker = (meta.get("event_payload") or {}).get("outbox") if isinstance(meta, dict) else None
        if marker is not None:
            markers[str(marker)] += 1
    out["slack_posts"] = sum(markers.values())
    out["duplicates_slack"] = sum(n - 1 for n in markers.values() if n > 1)

    # ---- order ----------------------------------------------------------------------------------------
    violations = 0
    per_customer: dict[str, list[int]] = defaultdict(list)
    for s in rec.sent:
        row = by_pid.get(s["platform_id"])
        if row is not None:
            per_customer[s["customer"]].append(row[0])
    violations += sum(1 for ids in per_customer.values() for a, b in zip(ids, ids[1:], strict=False) if b < a)
    out["order_violations_inbound"] = violations
    fake_order: dict[str, list[int]] = defaultdict(list)
    for m in accepted:
        if m["sid"] in sids:
            fake_order[m["to"]].append(sids[m["sid"]][0])
    out["order_violations_sms_fake"] = sum(1 for ids in fake_order.values()
                                          for a, b in zip(ids, ids[1:], strict=False) if b < a)
    by_key: dict[str, list[tuple[Any, int]]] = defaultdict(list)
    for r in outbox:
        if r[4] == "delivered" and r[7] is not None:
            by_key[r[2]].append((r[7], r[0]))
    out["order_violations_outbox"] = sum(
        1 for rows in by_key.values() for (_, a), (_, b) in zip(sorted(rows), sorted(rows)[1:], strict=False)
        if b < a)
    out["order_violations"] = (out["order_violations_inbound"] + out["order_violations_sms_fake"]
                               + out["order_violations_outbox"])

    # ---- dead letters: only for permanent errors --------------------------------------------------------
    dead = [r for r in outbox if r[4] == "dead"]
    permanent = ("PermanentSendError", "RecipientOptedOut")
    out["dead_letters"] = len(dead)
    out["dead_letters_not_permanent"] = sum(1 for r in dead if not str(r[6] or "").startswith(permanent))
    out["dead_letter_errors"] = [f"{r[1]} #{r[0]}: {str(r[6] or '')[:160]}" for r in dead]
    out["owed_not_delivered_all"] = Counter((r[1], r[4]) for r in outbox if r[4] not in ("delivered", "cancelled"))

    # ---- what the customers saw --------------------------------------------------------------------------
    out["no_reply"] = rec.no_reply
    out["agent_replies_expected"] = len(rec.agent_posts)
    out["agent_reply_missing"] = rec.agent_missing
    out["reconnects"] = rec.reconnects
    out["resume_below_highest"] = rec.resume_below_highest
    out["client_errors"] = list(rec.errors)
    for name, values in (("bot", rec.bot_latency), ("agent", rec.agent_latency)):
        out[f"{name}_n"] = len(values)
        out[f"{name}_p50"] = pct(values, 50)
        out[f"{name}_p99"] = pct(values, 99)
    return out


def invariants(c: dict[str, Any], *, kills_of_senders: int) -> list[str]:
    """The soak's promises; an empty list means they all held."""
    bad = []
    if c["inbound_missing"] or c["inbound_doubled"] or c["stored_once"] != c["inbound_sent"]:
        bad.append(f"inbound not stored exactly once: missing {c['inbound_missing']}, doubled {c['inbound_doubled']}")
    if c["inbound_unprocessed"]:
        bad.append(f"{c['inbound_unprocessed']} inbound messages never processed")
    if c["replies_delivered"] != c["replies_owed"]:
        bad.append(f"replies owed {c['replies_owed']}, delivered {c['replies_delivered']}: "
                   f"{dict(c['replies_not_delivered'])}")
    if c["sms_delivered_not_at_fake"] or c["web_delivered_not_seen"]:
        bad.append(f"delivered but never received: sms {c['sms_delivered_not_at_fake']}, "
                   f"web {c['web_delivered_not_seen']}")
    if c["order_violations"]:
        bad.append(f"{c['order_violations']} order violations")
    if c["dead_letters_not_permanent"]:
        bad.append(f"{c['dead_letters_not_permanent']} dead letters for transient errors")
    # the documented window: a send accepted by the platform, then the process killed before its commit.
    # Each kill of a delivering process can leave at most its in-flight sends (worker concurrency 16).
    if c["duplicates_sms"] > 16 * kills_of_senders:
        bad.append(f"{c['duplicates_sms']} duplicate SMS for {kills_of_senders} kills")
    if c["agent_reply_missing"]:
        bad.append(f"{c['agent_reply_missing']} agent replies never reached the customer")
    if c["client_errors"]:
        bad.append(f"client errors: {c['client_errors'][:3]}")
    return bad
