"""The `switchboard` command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Annotated, Any

import typer

from bot import store
from bot.console.users_cli import app as users_app
from bot.console.users_cli import console_status
from bot.customers_cmd import app as customers_app
from bot.db import with_session
from bot.kb_cli import app as kb_app
from bot.learn_sync import watch_learned
from bot.logs import setup_logging
from bot.messages import utcnow
from bot.models import ConversationState
from bot.pii_cmd import app as pii_app
from bot.report_cli import report as report_command
from bot.settings import Settings, load_settings
from bot.sla_watch import describe_clock
from handoff.sla import SLAPolicy, sla_for_conversation

app = typer.Typer(help="Switchboard: omnichannel support assistant.", no_args_is_help=True)
conversations_app = typer.Typer(help="Inspect conversations.", no_args_is_help=True)
outbox_app = typer.Typer(help="Inspect and retry deliveries.", no_args_is_help=True)
app.add_typer(conversations_app, name="conversations")
app.add_typer(outbox_app, name="outbox")
app.add_typer(customers_app, name="customers")
app.add_typer(users_app, name="users")
app.add_typer(pii_app, name="pii")

app.add_typer(kb_app, name="kb", help="Knowledge base: ingest, search, eval, gaps, tune.")


def _settings() -> Settings:
    return load_settings()  # a clear message and exit 2 when the configuration is unsafe


def _setup_logging() -> None:
    setup_logging()  # JSON lines unless LOG_FORMAT=text


def _offline_model_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from bot.migrate import ensure_sqlite_folder, upgrade  # noqa: PLC0415 CLI start-up: Alembic loads for migrate only

    settings = _settings()
    ensure_sqlite_folder(settings.database_url)
    upgrade(settings.database_url)
    typer.echo("database is up to date")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: HOST setting)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT setting)")] = None,
    no_migrate: Annotated[bool, typer.Option("--no-migrate", help="Skip migrating first")] = False,
) -> None:
    """Serve the web app (web chat, webhooks) with the delivery worker inside."""
    import uvicorn  # noqa: PLC0415 CLI start-up: uvicorn loads for serve only

    from bot.app import create_app  # noqa: PLC0415 CLI start-up: the app (FastAPI, every room) loads to serve only

    _offline_model_env()
    _setup_logging()
    settings = _settings()
    if not no_migrate:
        migrate()
    typer.echo(console_status(settings))
    uvicorn.run(
        create_app(settings), host=host or settings.host, port=port or settings.port,
        proxy_headers=True, log_level="info", log_config=None,
        timeout_graceful_shutdown=10,  # then open streams (console pages) are cut; browsers reconnect
    )


@app.command()
def worker() -> None:
    """Run the delivery worker alone (scale-out: several against PostgreSQL)."""
    from bot.app import _idle, build_parts, watch_kb_versions  # noqa: PLC0415 CLI start-up: the app loads here only

    _offline_model_env()
    _setup_logging()
    settings = _settings()
    # Web chat sockets live in the web processes: without Redis to fan replies out, web chat
    # entries are left to the web processes' own workers and this one delivers the other channels.
    parts = build_parts(settings, web=bool(settings.redis_url))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo(f"worker {parts.worker.worker_id} delivering: {', '.join(parts.worker.deliverers) or 'nothing'}")
        # ops hook: the worker runs bot turns too, so it follows new index versions and learned phrasings
        watchers = [asyncio.create_task(watch_kb_versions(parts, stop)),
                    asyncio.create_task(watch_learned(parts, stop))]
        try:
            await parts.worker.run(stop, on_idle=_idle(parts))
        finally:
            stop.set()
            await asyncio.gather(*watchers, return_exceptions=True)
            await parts.aclose()

    asyncio.run(main())


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with_session(fn: Any) -> Any:
    return await with_session(_settings().database_url, fn)


@conversations_app.command("list")
def conversations_list(
    state: Annotated[str | None, typer.Option(help="bot|waiting|assigned|escalated|resolved")] = None,
    limit: int = 50,
) -> None:
    """The latest conversations."""
    async def go(session: Any) -> None:
        rows = await store.list_conversations(session, state=state, limit=limit)
        typer.echo(f"{'id':>6}  {'channel':8} {'state':10} {'priority':8} {'assignee':16} created")
        for c in rows:
            assignee = c.assignee_name or c.assignee_id or "-"
            typer.echo(f"{c.id:>6}  {c.channel:8} {c.state:10} {c.priority:8} {assignee:16} "
                       f"{c.created_at:%Y-%m-%d %H:%M}")

    _run(_with_session(go))


@conversations_app.command("show")
def conversations_show(conversation_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One conversation's transcript (internal notes marked)."""
    async def go(session: Any) -> None:
        conv = await store.get_conversation(session, conversation_id=conversation_id)
        rows = await store.transcript(session, conversation_ids=[conv.id], include_internal=True)
        if as_json:
            typer.echo(json.dumps({
                "id": conv.id, "channel": conv.channel, "state": conv.state, "priority": conv.priority,
                "assignee": conv.assignee_id, "messages": [
                    {"id": m.id, "direction": m.direction, "author": m.author_kind, "text": m.text,
                     "internal": m.internal, "delivery": m.delivery_status, "at": m.created_at.isoformat()}
                    for m in rows
                ]}, indent=2))
            return
        typer.echo(f"conversation {conv.id} [{conv.channel}] state={conv.state} priority={conv.priority}")
        for m in rows:
            mark = " (internal note)" if m.internal else ""
            status = f" [{m.delivery_status}]" if m.direction == "out" and m.delivery_status else ""
            typer.echo(f"  #{m.id} {m.created_at:%H:%M:%S} {m.author_kind}{mark}{status}: {m.text}")

    try:
        _run(_with_session(go))
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option(help="pending|sending|delivered|dead")] = None,
    limit: int = 50,
) -> None:
    """Deliveries, newest first (`--status dead` for the dead letters)."""
    async def go(session: Any) -> None:
        rows = await store.list_outbox(session, status=status, limit=limit)
        typer.echo(f"{'id':>6}  {'channel':8} {'status':9} {'tries':>5}  {'conv':>5}  last error")
        for e in rows:
            typer.echo(f"{e.id:>6}  {e.channel:8} {e.status:9} {e.attempts:>5}  {e.conversation_id or '-':>5}  "
                       f"{(e.last_error or '')[:80]}")

    _run(_with_session(go))


@outbox_app.command("retry")
def outbox_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Entry ids (default: every dead entry)")] = None,
) -> None:
    """Put dead-lettered deliveries back in the queue."""
    from bot.worker import retry_dead  # noqa: PLC0415 CLI start-up: bot.worker loads FastAPI and Prometheus

    async def go(session: Any) -> int:
        async with session.begin():
            return await retry_dead(session, entry_ids=ids or None)

    n = _run(_with_session(go))
    typer.echo(f"{n} entr{'y' if n == 1 else 'ies'} queued again")


app.command("report")(report_command)


@app.command()
def sla(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    limit: int = 200,
) -> None:
    """Open handed-off conversations with their SLA clocks (due, remaining or overdue), oldest first."""
    settings = _settings()
    policy = SLAPolicy.from_settings(settings)
    now = utcnow()

    async def go(session: Any) -> list[dict[str, Any]]:
        rows = []
        for c in await store.open_handoffs(session, states=ConversationState.HUMAN, limit=limit):
            status = sla_for_conversation(c, policy=policy, now=now)
            row: dict[str, Any] = {"id": c.id, "channel": c.channel, "state": c.state, "priority": c.priority,
                                   "assignee": c.assignee_name or c.assignee_id}
            for clock in (status.first_response, status.resolution) if status else ():
                row[clock.name] = {"due_at": clock.due_at.isoformat(),
                                   "met_at": clock.met_at and clock.met_at.isoformat(),
                                   "breached": clock.breached, "remaining_seconds": round(clock.remaining_seconds),
                                   "text": describe_clock(clock)}
            rows.append(row)
        return rows

    rows = _run(_with_session(go))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no open handed-off conversations")
        return
    typer.echo(f"{'id':>6}  {'state':10} {'priority':8} {'first response':44} resolution")
    for r in rows:
        cells = []
        for name in ("first_response", "resolution"):
            clock = r.get(name)
            cells.append(f"{clock['text']} (due {clock['due_at'][:16].replace('T', ' ')} UTC)" if clock else "-")
        typer.echo(f"{r['id']:>6}  {r['state']:10} {r['priority']:8} {cells[0]:44} {cells[1]}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
