"""The settings page (/console/settings, supervisors): the configuration this process runs with,
read-only (settings come from the environment, read once at start-up). Credentials are never shown:
only whether they are set; a URL's password is masked."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bot.console.context import Console
from bot.settings import Settings

SECRET = re.compile(r"(secret|token|password|auth|_sid$|_key$|api_key)", re.IGNORECASE)


def _mask_url(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        return "(set)"
    if parts.password is None:
        return value
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def shown_settings(settings: Settings) -> list[tuple[str, str, str]]:
    """(ENV NAME, value as shown, description) for every setting; secrets as "set" / "not set"."""
    rows = []
    for name, field in type(settings).model_fields.items():
        value: Any = getattr(settings, name)
        if SECRET.search(name):
            shown = "set" if value else "not set"
        elif name.endswith("_url") and isinstance(value, str):
            shown = _mask_url(value)
        else:
            shown = "" if value is None else str(value)
        rows.append((name.upper(), shown, field.description or ""))
    return rows


def router(console: Console) -> APIRouter:
    r = APIRouter()

    @r.get("/console/settings", include_in_schema=False)
    async def settings_page(request: Request) -> Response:
        viewer = await console.sessions.require(request, supervisor=True)
        return console.page(request, "settings.html", viewer, nav="settings", rows=shown_settings(console.settings))

    return r


__all__ = ["router", "shown_settings"]
