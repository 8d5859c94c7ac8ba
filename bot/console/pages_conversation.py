"""The conversation page (/console/c/<id>): transcript, the context package (the Slack card's
builder), the customer, the bot's suggestions, and the actions (`bot.console.actions`)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.actions import MAX_TEXT, Outcome
from bot.console.auth import Viewer
from bot.console.context import Console
from bot.console.flash import Flash
from bot.console.forms import RowId, clean
from bot.console.queue import clocks_for, customer_label
from bot.console.users import list_users
from bot.desk.agent_context import customer_history
from bot.handoff_context import build_context
from bot.messages import utcnow
from bot.models import Conversation, Customer
from bot.models import ConversationState as S
from bot.store import list_messages
from handoff.permissions import NotAllowed

ACTIONS = ("take", "reply", "note", "assign", "escalate", "resolve", "release", "customer")


def _split_tags(value: object) -> list[str]:
    return [t for t in (p.strip() for p in clean(value).replace(";", ",").split(",")) if t][:20]


def router(console: Console) -> APIRouter:
    r = APIRouter()
    flash = Flash(console.settings.secret_key)

    async def details(session: AsyncSession, conv: Conversation) -> dict[str, Any]:
        package = await build_context(session, conversation_id=conv.id)
        customer = await session.get(Customer, conv.customer_id)
        history = await customer_history(session, conversation=conv)
        messages = await list_messages(session, conversation_id=conv.id)
        return {"conv": conv, "package": package, "customer": customer, "history": history,
                "messages": messages, "who": customer_label(conv),
                "clocks": clocks_for(conv, console.sla_policy, utcnow(), console.settings.sla_warn_fraction)}

    async def suggestions(conv: Conversation, messages: list[Any]) -> list[Any]:
        """The KB's hits for the customer's latest message, with the answers to send (open conversations)."""
        if console.kb is None or conv.state not in S.HUMAN:
            return []
        last = next((m for m in reversed(messages) if m.author_kind == "customer" and not m.internal), None)
        if last is None:
            return []
        try:
            hits = await console.kb.search(last.text)
        except Exception:  # the page works without suggestions
            return []
        return [h for h in hits[:3] if h.confidence >= console.settings.suggest_threshold]

    async def load(conversation_id: int) -> Conversation | None:
        async with console.sessionmaker() as session:
            conv = await session.get(Conversation, conversation_id)
            if conv is not None:
                await session.refresh(conv, ["customer", "identity"])
            return conv

    @r.get("/console/c/{conversation_id}", include_in_schema=False)
    async def conversation_page(request: Request, conversation_id: RowId, m: str | None = None) -> Response:
        viewer = await console.sessions.require(request)
        conv = await load(conversation_id)
        if conv is None:
            return console.page(request, "error.html", viewer, status_code=404,
                                message=f"There is no conversation #{conversation_id}.")
        async with console.sessionmaker() as session:
            values = await details(session, conv)
            users = [u for u in await list_users(session) if u.active]
        return console.page(request, "conversation.html", viewer, nav="queue", flash=flash.read(m), users=users,
                            nonce=secrets.token_urlsafe(12), max_text=MAX_TEXT,
                            suggestions=await suggestions(conv, values["messages"]), **values)

    @r.get("/console/c/{conversation_id}/live", include_in_schema=False)
    async def conversation_fragment(request: Request, conversation_id: RowId) -> Response:
        viewer = await console.sessions.require(request)
        conv = await load(conversation_id)
        if conv is None:
            return Response("", status_code=404)
        async with console.sessionmaker() as session:
            values = await details(session, conv)
        return console.page(request, "_conversation_live.html", viewer, **values)

    @r.post("/console/c/{conversation_id}/{action}", include_in_schema=False)
    async def act(request: Request, conversation_id: RowId, action: str) -> Response:
        viewer = await console.sessions.require(request)
        if action not in ACTIONS:
            return Response("Unknown action.", status_code=404)
        form = await request.form()
        try:
            outcome = await run(viewer, conversation_id, action, dict(form.items()))
        except NotAllowed as exc:  # the pipeline's permission rule, checked under the row lock
            outcome = Outcome(False, exc.reason.replace("<@", "").replace(">", "") + " Nothing was done.")
        target = flash.url(f"/console/c/{conversation_id}", ok=outcome.ok, text=outcome.message)
        return RedirectResponse(target, status_code=303)

    async def run(viewer: Viewer, cid: int, action: str, form: dict[str, object]) -> Outcome:
        a, user = console.actions, viewer.user
        nonce = clean(form.get("nonce"), limit=40) or secrets.token_urlsafe(12)
        if action == "take":
            return await a.take(cid, user)
        if action == "reply":
            return await a.reply(cid, user, clean(form.get("text"), multiline=True), nonce=nonce)
        if action == "note":
            return await a.note(cid, user, clean(form.get("text"), multiline=True), nonce=nonce)
        if action == "assign":
            return await a.assign(cid, user, clean(form.get("to"), limit=100))
        if action == "escalate":
            return await a.escalate(cid, user, clean(form.get("reason"), limit=300))
        if action == "resolve":
            return await a.resolve(cid, user)
        if action == "release":
            return await a.release(cid, user)
        return await a.set_customer(cid, user, vip=form.get("vip") == "on",
                                    add_tags=_split_tags(form.get("add_tags")),
                                    remove_tags=_split_tags(form.get("remove_tags")))

    return r


__all__ = ["router"]
