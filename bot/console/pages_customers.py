"""The customers pages (/console/customers): search by name, phone, email or address; a profile
with its linked identities and conversation history (`bot.customers_admin`, as the CLI reads them).

Supervisors also see the person's data-protection buttons there, Export (JSON) and Erase; their
routes are `bot.console.pages_rights`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bot.console.context import Console
from bot.console.flash import Flash
from bot.console.forms import RowId, clean
from bot.customers_admin import CustomerNotFound, list_customers, show_customer
from handoff.context import mask_address


def router(console: Console) -> APIRouter:
    r = APIRouter()
    flash = Flash(console.settings.secret_key)

    @r.get("/console/customers", include_in_schema=False)
    async def customers_page(request: Request, q: str | None = None) -> Response:
        viewer = await console.sessions.require(request)
        query = clean(q, limit=100)
        async with console.sessionmaker() as session:
            found = await list_customers(session, query=query or None, limit=50)
        return console.page(request, "customers.html", viewer, nav="customers", query=query, found=found)

    @r.get("/console/customers/{customer_id}", include_in_schema=False)
    async def customer_page(request: Request, customer_id: RowId, m: str | None = None) -> Response:
        viewer = await console.sessions.require(request)
        async with console.sessionmaker() as session:
            try:
                summary = await show_customer(session, customer_id=customer_id, limit=50)
            except CustomerNotFound:
                return console.page(request, "error.html", viewer, status_code=404,
                                    message=f"There is no customer #{customer_id}.")
        identities = [(i, mask_address(i.channel, i.address)) for i in summary.identities]
        return console.page(request, "customer.html", viewer, nav="customers", c=summary.customer,
                            identities=identities, conversations=summary.conversations, flash=flash.read(m))

    return r


__all__ = ["router"]
