"""Reading a request body with a size cap, before anything parses it (Slack and Twilio routes).

    body = await read_capped(request, limit=64 * 1024)   # Refused(413) past the limit, read no further

`Refused` carries the HTTP status and a short plain-text detail for the 4xx answer.
"""

from __future__ import annotations

from fastapi import Request


class Refused(Exception):
    """A request we answer with `status` and a short plain-text `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def read_capped(request: Request, *, limit: int) -> bytes:
    """The raw body, refusing (413) before reading past `limit` bytes (by Content-Length, then by what
    actually arrives). Cached on the request, so `request.body()`/`request.form()` read it after."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise Refused(400, "bad Content-Length")
        if int(declared) > limit:
            raise Refused(413, "request body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, "request body too large")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # noqa: SLF001 - starlette's cache: `await request.body()` / `.form()` read it
    return body
