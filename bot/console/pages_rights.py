"""A person's data-protection rights from the console (supervisors only): Export (JSON) and Erase,
the CLI's `customers export` / `customers erase` through the same `bot.gdpr` functions.

    POST /console/customers/7/export       -> customer-7.json (an attachment), audited
    GET  /console/customers/7/erase        -> the confirmation page: type the customer number
    POST /console/customers/7/erase        -> erased, audited, back to the profile with a message

Both act on the surviving profile when the id was merged into another (as the CLI does). Erasure
rewrites the bot's Slack posts in the person's threads to "[erased]" when Slack is on: `erase_customer`
queues that work in the outbox, in the erasure's own transaction.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.auth import Viewer
from bot.console.context import Console
from bot.console.flash import Flash
from bot.console.forms import RowId, clean
from bot.console.live import mark_changed
from bot.customers_admin import CustomerNotFound, get_customer
from bot.gdpr import Erasure, erase_customer, export_customer, export_json
from bot.models import ChannelIdentity, Conversation, Customer


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _missing(console: Console, request: Request, viewer: Viewer, customer_id: int) -> Response:
    return console.page(request, "error.html", viewer, status_code=404, message=f"There is no customer #{customer_id}.")


async def _counts(session: AsyncSession, customer: Customer) -> dict[str, int]:
    """What the confirmation page tells the supervisor they are about to erase."""
    async def count(model: type[Conversation] | type[ChannelIdentity]) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)
                                        .where(model.customer_id == customer.id)) or 0)

    return {"conversations": await count(Conversation), "identities": await count(ChannelIdentity)}


def router(console: Console) -> APIRouter:
    r = APIRouter()
    flash = Flash(console.settings.secret_key)

    @r.post("/console/customers/{customer_id}/export", include_in_schema=False)
    async def export(request: Request, customer_id: RowId) -> Response:
        viewer = await console.sessions.require(request, supervisor=True)
        try:
            async with console.sessionmaker() as session, session.begin():  # the audit entry commits with it
                data = await export_customer(session, customer_id=customer_id, redactor=console.pipeline.redactor,
                                             actor=viewer.user.actor)
        except CustomerNotFound:
            return _missing(console, request, viewer, customer_id)
        headers = {"Content-Disposition": f'attachment; filename="customer-{data["customer_id"]}.json"',
                   "Cache-Control": "no-store"}
        return Response(export_json(data), media_type="application/json", headers=headers)

    async def confirm_page(request: Request, viewer: Viewer, customer_id: int, *, error: str | None = None,
                           status_code: int = 200) -> Response:
        async with console.sessionmaker() as session:
            try:
                customer = await get_customer(session, customer_id=customer_id)
            except CustomerNotFound:
                return _missing(console, request, viewer, customer_id)
            held = await _counts(session, customer)
        return console.page(request, "customer_erase.html", viewer, status_code=status_code, nav="customers",
                            c=customer, held=held, error=error)

    @r.get("/console/customers/{customer_id}/erase", include_in_schema=False)
    async def erase_form(request: Request, customer_id: RowId) -> Response:
        viewer = await console.sessions.require(request, supervisor=True)
        return await confirm_page(request, viewer, customer_id)

    @r.post("/console/customers/{customer_id}/erase", include_in_schema=False)
    async def erase(request: Request, customer_id: RowId) -> Response:
        viewer = await console.sessions.require(request, supervisor=True)
        typed = clean((await request.form()).get("confirm"), limit=40).lstrip("#").strip()
        done: Erasure | None = None
        try:
            async with console.sessionmaker() as session, session.begin():
                customer = await get_customer(session, customer_id=customer_id)
                if typed == str(customer.id):
                    conversations = (await session.scalars(select(Conversation.id).where(
                        Conversation.customer_id == customer.id))).all()
                    done = await erase_customer(session, customer_id=customer.id, actor=viewer.user.actor,
                                                slack=console.settings.slack_enabled)
                    for cid in conversations:  # open pages re-read the transcript once this commits
                        mark_changed(session, console.broadcaster, cid)
        except CustomerNotFound:
            return _missing(console, request, viewer, customer_id)
        if done is None:
            return await confirm_page(request, viewer, customer_id, status_code=400,
                                      error=f"Type {customer.id} to confirm. Nothing was erased.")
        console.wake()  # the Slack posts' "[erased]" rewrites are queued: out now, not at the next poll
        text = (f"Customer #{done.customer_id} erased: {_n(done.conversations, 'conversation')}, "
                f"{_n(done.messages, 'message')} and {_n(done.identities, 'identity', 'identities')} anonymised"
                + (f"; {_n(done.slack_posts, 'Slack post')} will read “[erased]”." if done.slack_posts else "."))
        return RedirectResponse(flash.url(f"/console/customers/{done.customer_id}", ok=True, text=text),
                                status_code=303)

    return r


__all__ = ["router"]
