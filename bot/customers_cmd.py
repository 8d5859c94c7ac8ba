"""`switchboard customers list|show|set|tag|link|merge|export|erase` (logic in `bot.customers_admin`, `bot.gdpr`).

    switchboard customers list --vip
    switchboard customers show 7 --json
    switchboard customers set 7 --vip --email ann@example.com --name "Ann Lee" --notes "prefers SMS"
    switchboard customers tag 7 enterprise -r trial
    switchboard customers link 7 sms +15551230001
    switchboard customers merge 9 7          # 9 is folded into 7; every message is kept
    switchboard customers export --email ann@example.com -o ann.json
    switchboard customers erase 7 --yes
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.customers_admin import (
    CustomerError,
    link_identity,
    list_customers,
    merge_customers,
    set_profile,
    show_customer,
)
from bot.customers_admin import tag as tag_customer
from bot.db import with_session
from bot.gdpr import erase_customer, export_customer, export_json, find_person
from bot.privacy import Redactor
from bot.settings import Settings

app = typer.Typer(help="Customer profiles and their channel identities.", no_args_is_help=True)


def _run(fn: Callable[[AsyncSession], Awaitable[Any]], *, write: bool = False) -> Any:
    """Run `fn(session)` (in a transaction when `write`); customer errors exit 1 with their message."""
    settings = Settings()
    try:
        return asyncio.run(with_session(settings.database_url, fn, write=write))
    except CustomerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except SQLAlchemyError as exc:
        typer.echo(f"database error (run `switchboard migrate`?): {type(exc).__name__}: "
                   f"{str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(1) from exc


def _region() -> str:
    return Settings().sms_default_region


def _profile(c: Any) -> dict[str, Any]:
    return {"id": c.id, "display_name": c.display_name, "email": c.email, "phone": c.phone, "vip": c.vip,
            "flagged": c.flagged, "tags": list(c.tags or []), "notes": c.notes, "timezone": c.timezone,
            "created_at": c.created_at.isoformat()}


@app.command("list")
def list_(
    query: Annotated[str | None, typer.Option("--query", "-q", help="Name, email, phone or address contains")] = None,
    vip: Annotated[bool | None, typer.Option("--vip/--not-vip", help="Only VIPs / only non-VIPs")] = None,
    tag: Annotated[str | None, typer.Option(help="Only customers with this tag")] = None,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Customers, newest first (merged-away profiles are not listed)."""
    rows = _run(lambda s: list_customers(s, query=query, vip=vip, tag_name=tag, limit=limit))
    if as_json:
        typer.echo(json.dumps([{**_profile(c), "identities": n} for c, n in rows], indent=2))
        return
    typer.echo(f"{'id':>6}  {'name':24} {'email':28} {'vip':3}  {'ids':>3}  tags")
    for c, n in rows:
        typer.echo(f"{c.id:>6}  {(c.display_name or '-')[:24]:24} {(c.email or '-')[:28]:28} "
                   f"{'yes' if c.vip else '':3}  {n:>3}  {', '.join(c.tags or [])}")


@app.command()
def show(customer_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A profile, its identities on every channel and its conversations (newest first)."""
    summary = _run(lambda s: show_customer(s, customer_id=customer_id))
    c = summary.customer
    idents = [{"id": i.id, "channel": i.channel, "address": i.address, "opted_out": i.opted_out}
              for i in summary.identities]
    convs = [{"id": v.id, "channel": v.channel, "state": v.state, "created_at": v.created_at.isoformat(),
              "handoff_reason": v.handoff_reason} for v in summary.conversations]
    if as_json:
        typer.echo(json.dumps({**_profile(c), "identities": idents, "conversations": convs}, indent=2))
        return
    if c.id != customer_id:
        typer.echo(f"(customer {customer_id} was merged into {c.id})")
    typer.echo(f"customer {c.id}: {c.display_name or '-'}" + (" [VIP]" if c.vip else "")
               + (" [flagged]" if c.flagged else ""))
    typer.echo(f"  email {c.email or '-'} · phone {c.phone or '-'} · tags {', '.join(c.tags or []) or '-'}")
    if c.notes:
        typer.echo(f"  notes: {c.notes}")
    for i in idents:
        typer.echo(f"  identity #{i['id']} {i['channel']}:{i['address']}" + (" (opted out)" if i["opted_out"] else ""))
    for v in convs:
        typer.echo(f"  conversation {v['id']} [{v['channel']}] {v['state']} {v['created_at'][:16]}")


@app.command("set")
def set_(
    customer_id: int,
    name: Annotated[str | None, typer.Option(help="Display name ('' clears)")] = None,
    email: Annotated[str | None, typer.Option(help="Email ('' clears)")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone, any format ('' clears)")] = None,
    vip: Annotated[bool | None, typer.Option("--vip/--no-vip")] = None,
    flagged: Annotated[bool | None, typer.Option("--flagged/--no-flagged")] = None,
    notes: Annotated[str | None, typer.Option(help="Free notes for agents ('' clears)")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone (quiet hours)")] = None,
) -> None:
    """Set profile fields (VIP and tags drive routing: docs/customers.md)."""
    region = _region()
    c = _run(lambda s: set_profile(s, customer_id=customer_id, display_name=name, email=email, phone=phone,
                                   vip=vip, flagged=flagged, notes=notes, timezone=timezone, region=region),
             write=True)
    typer.echo(json.dumps(_profile(c)))


@app.command()
def tag(
    customer_id: int,
    tags: Annotated[list[str] | None, typer.Argument(help="Tags to add")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", "-r", help="Tag to remove (repeatable)")] = None,
) -> None:
    """Add (and remove) tags."""
    c = _run(lambda s: tag_customer(s, customer_id=customer_id, add=tags or [], remove=remove or []), write=True)
    typer.echo(f"customer {c.id} tags: {', '.join(c.tags or []) or '-'}")


@app.command()
def link(customer_id: int, channel: str, address: str) -> None:
    """Give the customer an identity on a channel (refused if it belongs to someone else: merge)."""
    region = _region()
    ident = _run(lambda s: link_identity(s, customer_id=customer_id, channel=channel, address=address,
                                         region=region), write=True)
    typer.echo(f"customer {ident.customer_id} has identity #{ident.id} {ident.channel}:{ident.address}")


@app.command()
def merge(source_id: int, target_id: int) -> None:
    """Fold SOURCE into TARGET: identities, conversations and every message move to TARGET."""
    c = _run(lambda s: merge_customers(s, source_id=source_id, target_id=target_id), write=True)
    typer.echo(f"customer {source_id} merged into {c.id}")


Who = Annotated[int | None, typer.Argument(help="Customer id (or use --phone / --email)")]
Phone = Annotated[str | None, typer.Option("--phone", help="Find the customer by phone number")]
Email = Annotated[str | None, typer.Option("--email", help="Find the customer by email address")]
Actor = Annotated[str, typer.Option("--actor", help="Who is asking, for the audit log")]


@app.command()
def export(
    customer_id: Who = None, phone: Phone = None, email: Email = None, actor: Actor = "cli",
    out: Annotated[str | None, typer.Option("--out", "-o", help="Write the JSON here instead of stdout")] = None,
) -> None:
    """Everything held on a person (GDPR access request) as JSON: profile, identities, conversations,
    messages, events, CSAT, deliveries. Audited."""
    settings = Settings()
    redactor = Redactor.from_settings(settings)

    async def go(s: AsyncSession) -> Any:
        person = await find_person(s, customer_id=customer_id, phone=phone, email=email,
                                   region=settings.sms_default_region)
        return await export_customer(s, customer_id=person.id, redactor=redactor, actor=actor)

    data = export_json(_run(go, write=True))
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(data)
        typer.echo(f"wrote {out}", err=True)
    else:
        typer.echo(data, nl=False)


@app.command()
def erase(
    customer_id: Who = None, phone: Phone = None, email: Email = None, actor: Actor = "cli",
    yes: Annotated[bool, typer.Option("--yes", help="Really erase: it cannot be undone")] = False,
) -> None:
    """Irreversibly anonymise a person everywhere we hold their data (GDPR erasure); their Slack thread
    posts become "[erased]"; report figures stay. Audited."""
    if not yes:
        typer.echo("erasure cannot be undone: add --yes", err=True)
        raise typer.Exit(2)
    settings = Settings()

    async def go(s: AsyncSession) -> Any:
        person = await find_person(s, customer_id=customer_id, phone=phone, email=email,
                                   region=settings.sms_default_region)
        return await erase_customer(s, customer_id=person.id, actor=actor, slack=settings.slack_enabled)

    typer.echo(json.dumps(_run(go, write=True).as_dict()))
