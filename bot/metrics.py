"""Prometheus metrics: what an operator watches (`/metrics`, see docs/operations.md).

Multi-process: with ``PROMETHEUS_MULTIPROC_DIR`` set (before the first import of
prometheus_client, i.e. in the environment of every web and worker process, pointing at one
empty folder per host), every process writes its samples to files there and a scrape of any
web process reports the sum over all of them. Without it, each process reports its own.

Where the numbers come from, so the pipeline stays free of metric calls:

- inbound / outbound messages, handoffs by reason, SLA warnings and breaches: an ORM listener
  (`install`) counts the `Message` and `Event` rows a transaction *commits* (rolled-back work
  and duplicates, which store nothing, are not counted);
- deliveries (by channel and outcome) and delivery latency: `record_delivery`, called by the
  worker after the outbox row is updated;
- KB search latency and top-hit confidence: `InstrumentedSearcher`, wrapped around the KB;
- open web chat sockets: `SocketCounter`, an ASGI middleware;
- outbox depth, oldest owed entry, dead letters: read from the database at scrape time
  (`outbox_snapshot`), so every process sees the same shared queue.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.messages import utcnow
from bot.models import Event, Message, OutboxEntry, OutboxStatus

log = logging.getLogger("switchboard.metrics")

INBOUND = Counter("switchboard_inbound_messages_total", "Customer messages stored (duplicates excluded)",
                  ["channel"])
OUTBOUND = Counter("switchboard_outbound_messages_total", "Messages written for customers (bot, agent, system)",
                   ["channel", "author"])
DELIVERIES = Counter("switchboard_deliveries_total", "Outbox delivery attempts by outcome",
                     ["channel", "outcome"])  # delivered | retry | dead
DEAD_LETTERS = Counter("switchboard_dead_letters_total", "Outbox entries dead-lettered", ["channel", "reason"])
DELIVERY_LATENCY = Histogram(
    "switchboard_delivery_latency_seconds", "Outbox entry created -> platform accepted it", ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
KB_LATENCY = Histogram("switchboard_kb_search_seconds", "KB search wall time",
                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
KB_CONFIDENCE = Histogram("switchboard_kb_top_confidence", "Confidence of the best KB hit per search",
                          buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0))
KB_ERRORS = Counter("switchboard_kb_search_errors_total", "KB searches that raised")
HANDOFFS = Counter("switchboard_handoffs_total", "Conversations handed to people", ["kind", "reason"])
SLA = Counter("switchboard_sla_events_total", "SLA warnings and breaches paged", ["kind", "clock"])
WEB_SOCKETS = Gauge("switchboard_webchat_sockets", "Open web chat WebSockets", multiprocess_mode="livesum")

_SLA_KINDS = {"sla_warning": "warning", "sla_breached": "breached"}
_HANDOFF_KINDS = {"handed_off", "escalated"}


# --- committed rows -> counters ---------------------------------------------------------------

def _pending(session: Session) -> list[tuple[str, Any]]:
    return session.info.setdefault("switchboard_metrics", [])  # type: ignore[no-any-return]


def _after_flush(session: Session, _ctx: Any) -> None:
    pending = _pending(session)
    for obj in session.new:
        if isinstance(obj, Message) and not obj.internal:
            pending.append(("message", (obj.direction, obj.channel, obj.author_kind, obj.id,
                                        obj.conversation_id)))
        elif isinstance(obj, Event):
            pending.append(("event", (obj.kind, dict(obj.data or {}), obj.conversation_id)))


def _after_commit(session: Session) -> None:
    pending = session.info.pop("switchboard_metrics", None)
    for what, values in pending or ():
        if what == "message":
            direction, channel, author, message_id, conversation_id = values
            if direction == "in":
                INBOUND.labels(channel).inc()
                log.info("inbound stored", extra={"message_id": message_id, "conversation_id": conversation_id,
                                                  "channel": channel})
            else:
                OUTBOUND.labels(channel, author).inc()
        else:
            kind, data, conversation_id = values
            if kind in _HANDOFF_KINDS:
                reason = str(data.get("trigger") or "unknown")
                HANDOFFS.labels(kind, reason).inc()
                log.info("handed off", extra={"conversation_id": conversation_id, "reason": reason})
            elif kind in _SLA_KINDS:
                SLA.labels(_SLA_KINDS[kind], str(data.get("clock") or "unknown")).inc()


def _after_rollback(session: Session) -> None:
    session.info.pop("switchboard_metrics", None)


def install() -> None:
    """Count committed rows of every session (idempotent). Called once by the app factory."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", lambda s, _t: _after_rollback(s))


# --- deliveries ----------------------------------------------------------------------------------

def record_delivery(channel: str, outcome: str, *, created_at: datetime | None = None,
                    permanent: bool = False) -> None:
    """One outbox attempt's outcome: ``delivered`` (with its latency), ``retry`` or ``dead``."""
    DELIVERIES.labels(channel, outcome).inc()
    if outcome == "delivered" and created_at is not None:
        DELIVERY_LATENCY.labels(channel).observe(max(0.0, (utcnow() - created_at).total_seconds()))
    elif outcome == "dead":
        DEAD_LETTERS.labels(channel, "permanent" if permanent else "attempts").inc()


# --- the KB ----------------------------------------------------------------------------------------

class InstrumentedSearcher:
    """Wraps a `kb_index.types.Searcher`: times each search and records the best hit's confidence.
    Everything else (reload_if_stale, learn, ...) is the wrapped object's."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def search(
        self, query: str, *, history: Sequence[str] = (), last_article: str | None = None, k: int = 3
    ) -> list[Any]:
        started = time.perf_counter()
        try:
            hits: list[Any] = await self.inner.search(query, history=history, last_article=last_article, k=k)
        except Exception:
            KB_ERRORS.inc()
            raise
        finally:
            KB_LATENCY.observe(time.perf_counter() - started)
        KB_CONFIDENCE.observe(float(hits[0].confidence) if hits else 0.0)
        return hits

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# --- web chat sockets --------------------------------------------------------------------------------

class SocketCounter:
    """ASGI middleware: the number of open WebSockets on this process (a live-summed gauge)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "websocket":
            await self.app(scope, receive, send)
            return
        WEB_SOCKETS.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            WEB_SOCKETS.dec()


# --- the shared queue, read at scrape time -----------------------------------------------------------

class _Snapshot(Collector):
    def __init__(self, rows: dict[str, tuple[int, float]], dead: dict[str, int]) -> None:
        self.rows = rows
        self.dead = dead

    def collect(self) -> Any:
        depth = GaugeMetricFamily("switchboard_outbox_depth", "Outbox entries owed (pending or sending)",
                                  labels=["channel"])
        oldest = GaugeMetricFamily("switchboard_outbox_oldest_age_seconds", "Age of the oldest owed entry",
                                   labels=["channel"])
        dead = GaugeMetricFamily("switchboard_outbox_dead", "Dead-lettered entries waiting for an operator",
                                 labels=["channel"])
        for channel, (count, age) in sorted(self.rows.items()):
            depth.add_metric([channel], count)
            oldest.add_metric([channel], age)
        for channel, count in sorted(self.dead.items()):
            dead.add_metric([channel], count)
        yield from (depth, oldest, dead)


async def outbox_snapshot(session: AsyncSession) -> Collector:
    now = utcnow()
    owed = await session.execute(
        select(OutboxEntry.channel, func.count(), func.min(OutboxEntry.created_at))
        .where(OutboxEntry.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)))
        .group_by(OutboxEntry.channel)
    )
    rows: dict[str, tuple[int, float]] = {}
    for channel, count, first in owed:
        age = 0.0
        if first is not None:
            first = first if first.tzinfo else first.replace(tzinfo=now.tzinfo)
            age = max(0.0, (now - first).total_seconds())
        rows[str(channel)] = (int(count), age)
    dead_rows = await session.execute(
        select(OutboxEntry.channel, func.count()).where(OutboxEntry.status == OutboxStatus.DEAD)
        .group_by(OutboxEntry.channel)
    )
    return _Snapshot(rows, {str(c): int(n) for c, n in dead_rows})


def render(extra: Collector | None = None) -> tuple[bytes, str]:
    """The exposition text: every process's samples (multi-process mode) or this one's, plus `extra`."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    if extra is not None:
        registry.register(extra)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Default(Collector):
    """This process's default registry, re-exposed inside a per-scrape registry."""

    def collect(self) -> Any:
        yield from REGISTRY.collect()


def mark_process_dead(pid: int | None = None) -> None:
    """On a clean exit in multi-process mode: drop this process's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


__all__ = ["InstrumentedSearcher", "SocketCounter", "install", "outbox_snapshot", "record_delivery", "render",
           "mark_process_dead"]
