"""`switchboard pii scan|rotate`: check text the way the door does; re-encrypt kept personal data.

    switchboard pii scan "my card is 4111 1111 1111 1111"   # what would be masked, and how
    switchboard pii rotate                                   # after putting a new key first in PII_KEYS
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import make_engine, make_sessionmaker
from bot.models import Message
from bot.pii_vault import Vault, VaultError
from bot.settings import Settings
from handoff.pii import detect, redact

app = typer.Typer(help="Personal data: scan text, rotate the encryption key.", no_args_is_help=True)


@app.command()
def scan(text: Annotated[str, typer.Argument(help="Text to check")]) -> None:
    """Show what the door would detect in TEXT (kinds and positions) and the masked text."""
    region = Settings().sms_default_region
    spans = [{"kind": s.kind, "start": s.start, "end": s.end, "masked": s.masked} for s in detect(text, region=region)]
    typer.echo(json.dumps({"masked": redact(text, region=region), "found": spans}, ensure_ascii=False, indent=2))


async def rotate_sealed(sessionmaker: async_sessionmaker[AsyncSession], vault: Vault, *, batch: int = 500) -> int:
    """Re-encrypt every messages.sealed_text with the newest key, batch by batch. Returns the count."""
    done, last = 0, 0
    while True:
        async with sessionmaker() as session, session.begin():
            rows = list((await session.execute(select(Message).where(
                Message.id > last, Message.sealed_text.is_not(None)).order_by(Message.id).limit(batch))).scalars())
            for m in rows:
                m.sealed_text = vault.rotate(m.sealed_text or "")
        if not rows:
            return done
        done, last = done + len(rows), rows[-1].id


@app.command()
def rotate() -> None:
    """Re-encrypt kept personal data with the first key in PII_KEYS (then the old keys can be removed)."""
    settings = Settings()
    if not settings.pii_keys:
        typer.echo("PII_KEYS is not set: nothing is encrypted", err=True)
        raise typer.Exit(2)
    vault = Vault.from_keys(settings.pii_keys)

    async def go() -> int:
        engine = make_engine(settings.database_url)
        try:
            return await rotate_sealed(make_sessionmaker(engine), vault)
        finally:
            await engine.dispose()

    try:
        count = asyncio.run(go())
    except (VaultError, SQLAlchemyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"re-encrypted {count} messages with the newest key")
