"""The ASGI app factory: the only place that wires settings, storage, the KB, handoff,
channels, the desks, the agent actions, the pipeline and the delivery worker together, in one
pass (`build_parts`): desk -> conversations -> worker -> agents -> pipeline -> channels.

    uvicorn bot.app:create_app --factory
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import log_redact, metrics
from bot.agents import Agents
from bot.console.live import Broadcaster, LiveDesk, make_broadcaster
from bot.console.web import mount as mount_console
from bot.conversations import Conversations
from bot.db import make_engine, make_sessionmaker, with_session
from bot.desk.base import Desk, NullDesk
from bot.desk.slack import SlackDesk
from bot.desk.slack_deliver import SlackDeliverer
from bot.desk.slack_notice import SlackNoticeDeliverer
from bot.engine import Pipeline
from bot.learn_sync import watch_learned
from bot.ops_routes import ops_router
from bot.people_sweep import PeopleSweep, wire_people
from bot.privacy import Redactor
from bot.retention import Retention
from bot.settings import Settings, load_settings
from bot.sla_watch import check_sla
from bot.sms_deliver import SmsDeliverer
from bot.worker import ChannelDeliverer, Deliverer, Worker
from channels.base import BadRequest, Channel, ChannelError
from channels.webchat import WebChatChannel
from handoff.policy import Policy, PolicyConfig
from handoff.sla import SLAPolicy
from kb_index import Embedder, IndexMismatchError, IndexNotFoundError, KnowledgeBase, build_index
from kb_index import store as kb_store
from kb_index.threshold import kb_status
from kb_index.types import Searcher

log = logging.getLogger("switchboard.app")


@dataclass
class Parts:
    """Everything a web or worker process runs, built from one Settings."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    desk: Desk  # the hooks every conversation move calls (the Slack desk, or none; the console's live marks)
    agents: Agents
    pipeline: Pipeline
    worker: Worker
    channels: dict[str, Channel] = field(default_factory=dict)
    kb: Any = None
    extra_routers: list[Any] = field(default_factory=list)
    slack: Any = None
    closers: list[Any] = field(default_factory=list)
    broadcaster: Broadcaster | None = None  # live console updates (bot.console.live)

    async def aclose(self) -> None:
        for ch in self.channels.values():
            with contextlib.suppress(Exception):
                await ch.aclose()
        for closer in self.closers:
            with contextlib.suppress(Exception):
                await closer()
        await self.engine.dispose()


def policy_config(settings: Settings) -> PolicyConfig:
    return PolicyConfig.from_settings(settings)


def load_kb(settings: Settings, embedder: Any = None) -> Any:
    """Open the published KB index (building it from `kb_path` first if there is none).

    Blocking (model load, maybe an ingest): called once at start-up, before the event loop.
    """
    embedder = embedder or Embedder.for_index(
        settings.index_dir, model_path=settings.model_path, backend=settings.embed_backend,
        threads=settings.embed_threads,
    )
    try:
        return KnowledgeBase.open(settings.index_dir, embedder=embedder)
    except (IndexNotFoundError, IndexMismatchError) as exc:  # none yet, or another model/backend: re-embed
        log.info("%s: building the index from %s", exc, settings.kb_path)
    url = settings.database_url
    learned = with_database(url, kb_store.list_phrasings, "learned phrasings not read") or []
    report = build_index(
        settings.kb_path, settings.index_dir, embedder=embedder, extra_phrasings=learned, progress=False
    )
    for err in getattr(report, "errors", []) or []:
        log.warning("ingest: %s", err)

    async def record(*, session: AsyncSession) -> Any:
        return await kb_store.record_version(
            session=session,
            index_dir=settings.index_dir,
            version=report.version,
            articles=report.articles,
            rows=report.rows,
            model=embedder.name,
        )

    with_database(url, record, "index version not recorded")
    return KnowledgeBase.open(settings.index_dir, embedder=embedder)


def with_database(database_url: str, fn: Callable[..., Awaitable[Any]], failure: str) -> Any:
    """``await fn(session=...)`` against ``database_url`` on its own event loop in a worker thread
    (so it works whether or not a loop runs here); None, logged as ``failure``, when the database
    is unreachable or not migrated yet. For start-up work like the first index build."""

    def report(exc: Exception) -> None:
        log.warning("%s (%s)", failure, type(exc).__name__)

    run = with_session(database_url, lambda session: fn(session=session), report)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run).result()


async def watch_kb_versions(parts: Parts, stop: asyncio.Event) -> None:
    """Reload the KB when another process publishes a newer index version (zero downtime)."""
    reload_if_stale = getattr(parts.kb, "reload_if_stale", None)
    if reload_if_stale is None or parts.settings.kb_reload_seconds <= 0:
        return
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=parts.settings.kb_reload_seconds)
        if stop.is_set():
            return
        try:
            async with parts.sessionmaker() as session:
                version = await kb_store.current_version(session=session, index_dir=parts.settings.index_dir)
            if version is not None and await reload_if_stale(version):
                log.info("KB reloaded: index version %s", version)
        except Exception:
            log.exception("KB version check failed; serving the current version")


def build_parts(
    settings: Settings,
    *,
    kb: Searcher | None = None,
    embedder: Any = None,
    load_knowledge_base: bool = True,
    web: bool = True,
) -> Parts:
    engine = make_engine(settings.database_url)
    sessionmaker = make_sessionmaker(engine)
    if kb is None and load_knowledge_base:
        kb = load_kb(settings, embedder)
    policy = Policy(policy_config(settings))

    channels: dict[str, Channel] = {}
    if web:
        channels["web"] = WebChatChannel.from_settings(settings)
    if settings.sms_enabled:
        from channels.sms import SmsChannel  # noqa: PLC0415 optional: Twilio's SDK loads only when SMS is on

        channels["sms"] = SmsChannel.from_settings(settings)

    metrics.install()  # ops hook: committed rows -> Prometheus counters (bot.metrics)
    searcher = metrics.InstrumentedSearcher(kb) if kb is not None else None  # ops hook: KB latency/confidence
    deliverers: dict[str, Deliverer] = {name: ChannelDeliverer(ch) for name, ch in channels.items()}
    if "sms" in channels:  # looks a message up at Twilio before resending it (bot.sms_deliver)
        deliverers["sms"] = SmsDeliverer(channels["sms"], sessionmaker=sessionmaker)

    slack = _slack_hooks(settings) if settings.slack_enabled else None
    # Every desk hook also announces its conversation to open console pages, after the commit.
    broadcaster = make_broadcaster(settings.redis_url)
    desk = LiveDesk(slack or NullDesk(), broadcaster)
    conversations = Conversations(settings=settings, desk=desk)
    worker = Worker(sessionmaker=sessionmaker, settings=settings, deliverers=deliverers,
                    on_failure=conversations.delivery_failed)
    redactor = Redactor.from_settings(settings)  # personal data masked at the door, for customers and agents
    agents = Agents(sessionmaker=sessionmaker, settings=settings, conversations=conversations, policy=policy,
                    redactor=redactor, wake=worker.wake)
    pipeline = Pipeline(sessionmaker=sessionmaker, settings=settings, kb=searcher, policy=policy,
                        conversations=conversations, redactor=redactor, wake=worker.wake)
    parts = Parts(settings=settings, engine=engine, sessionmaker=sessionmaker, desk=desk, agents=agents,
                  pipeline=pipeline, worker=worker, channels=channels, kb=kb, broadcaster=broadcaster)
    parts.closers.append(broadcaster.aclose)
    if slack is not None:
        _wire_slack(parts, slack, deliverers)
    wire_people(parts)  # bot.people_sweep: the web chat contact and feedback routes
    return parts


def _slack_hooks(settings: Settings) -> Desk:
    return SlackDesk(settings=settings)


# Slack's SDKs (slack-bolt, slack_sdk) are imported only when Slack is on: a deployment without
# Slack never loads them. Twilio's, for SMS, likewise (build_parts).
def _wire_slack(parts: Parts, desk: Any, deliverers: dict[str, Deliverer]) -> None:
    """The Slack listeners' host (actions, slash command, App Home) and the Slack outbox deliverers."""
    from bot.desk.slack_home import SlackHome  # noqa: PLC0415 optional: slack-bolt loads only when Slack is on
    from channels.slack import SlackChannel, make_api  # noqa: PLC0415 optional: as above

    settings, sm = parts.settings, parts.sessionmaker
    api = make_api(settings)
    host = SlackHome(kb=parts.kb, settings=settings, sessionmaker=sm, agents=parts.agents, desk=desk, api=api,
                     learn=getattr(parts.kb, "learn", None), wake=parts.worker.wake)
    channel = SlackChannel(settings, host=host, api=api)
    deliverers["slack"] = SlackDeliverer(sessionmaker=sm, api=api, settings=settings)
    deliverers["slack_notice"] = SlackNoticeDeliverer(  # low CSAT notices, the context package
        sessionmaker=sm, api=api, sla_policy=SLAPolicy.from_settings(settings))
    parts.extra_routers.append(channel.router())
    parts.closers.append(channel.aclose)
    parts.slack = channel


def create_app(settings: Settings | None = None, *, kb: Searcher | None = None, embedder: Any = None) -> FastAPI:
    """Build the ASGI app. Settings are read once here unless given."""
    settings = settings or load_settings()
    log_redact.install()  # no token or credential in any log line, uvicorn's access log included
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        parts = state["parts"]
        stop = asyncio.Event()
        task = None
        if parts.slack is not None and settings.slack_app_token:
            await parts.slack.start_socket_mode()
        watcher = asyncio.create_task(watch_kb_versions(parts, stop), name="kb-version-watch")
        # ops hook: phrasings learned by other processes
        learned = asyncio.create_task(watch_learned(parts, stop), name="kb-learned-watch")
        if settings.run_worker_in_web:
            task = asyncio.create_task(parts.worker.run(stop, on_idle=_idle(parts)), name="outbox-worker")
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            await watcher
            await learned
            await parts.pipeline.drain()
            await parts.aclose()

    # Built eagerly, without an event loop (every async client is created lazily on first use),
    # so routers are mounted before serving. Loading the model takes a few seconds.
    parts = build_parts(settings, kb=kb, embedder=embedder)
    state["parts"] = parts
    # The API docs and schema are for development: off in production (issue 13).
    docs = not settings.is_production
    app = FastAPI(title="Switchboard", lifespan=lifespan, docs_url="/api/docs" if docs else None, redoc_url=None,
                  openapi_url="/api/openapi.json" if docs else None)
    app.state.parts = parts
    app.state.settings = settings

    for channel in parts.channels.values():
        app.include_router(channel.router(parts.pipeline))
    for router in parts.extra_routers:
        app.include_router(router)
    app.include_router(ops_router(parts))  # ops hook: /metrics and /readyz
    assert parts.broadcaster is not None
    mount_console(app, parts, parts.broadcaster)  # /console: off until `switchboard users add`
    app.add_middleware(metrics.SocketCounter)  # ops hook: open web chat sockets gauge

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        async with parts.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
        return {"ok": True, "channels": sorted(parts.channels), "kb": parts.kb is not None,
                "kb_status": kb_status(parts.kb, parts.settings.answer_threshold)}

    @app.exception_handler(BadRequest)
    async def bad_request(_: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(ChannelError)
    async def channel_error(_: Request, exc: ChannelError) -> JSONResponse:
        log.warning("channel error: %s", exc)
        return JSONResponse({"error": str(exc)}, status_code=502)

    return app


def _idle(parts: Parts) -> Any:
    """Between deliveries: re-run bot turns a crash interrupted; page SLA breaches (`bot.sla_watch`)."""
    last = {"at": 0.0, "sla": 0.0}
    sla_policy = SLAPolicy.from_settings(parts.settings)  # a bad SLA_* setting fails at start-up
    sla_every = parts.settings.sla_check_seconds  # 0: never
    people = PeopleSweep.from_parts(parts)  # re-pages, auto-assignment, idle timers, CSAT
    retention = Retention(settings=parts.settings, sessionmaker=parts.sessionmaker)  # RETENTION_DAYS

    async def on_idle() -> None:
        loop = asyncio.get_running_loop()
        await retention.tick(now_s=loop.time())
        if sla_every > 0 and loop.time() - last["sla"] >= sla_every:
            last["sla"] = loop.time()
            await check_sla(sessionmaker=parts.sessionmaker, desk=parts.desk, policy=sla_policy,
                            warn_at=parts.settings.sla_warn_fraction)
        await people.tick()
        if loop.time() - last["at"] < 10:
            return
        last["at"] = loop.time()
        await parts.pipeline.recover_unprocessed(older_than=timedelta(seconds=30))

    return on_idle


__all__ = ["create_app", "build_parts", "Parts", "load_kb", "watch_kb_versions"]
