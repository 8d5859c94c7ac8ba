"""The agents' workspace on Slack: protocol only (bolt listeners in, Web API calls out).

`SlackChannel` mounts a slack-bolt `AsyncApp` on ``POST /slack/events`` (Events API),
``/slack/interactivity`` (buttons, modals) and ``/slack/commands`` (``/switchboard``); all three
go to the same bolt handler, which verifies the v0 signature (forged or older than 5 min -> 401).
Listeners translate Slack payloads into calls on an `AgentHost` (implemented by
`bot.desk.slack_home.SlackHome`, which owns the database) and answer fast: with
``process_before_response=True`` (default) Slack gets its 200 only once the host has stored
what matters, so a crash before that makes Slack retry, and the host dedupes the retry.

What the listeners ignore, deliberately: the bot's own messages and every message with a
`bot_id` or a non-reply subtype; top-level channel messages (only thread replies are replies);
messages without a user. Edits and deletions of a thread reply cannot unsend what reached the
customer: the host answers with a notice shown to the author only (ephemeral). Reply text reaches the
host decoded from Slack's wire format (`channels.slack_format.to_plain`).

Example::

    api = make_api(settings)          # built first: the host uses it too (the supervisors' user group)
    channel = SlackChannel(settings, host=host, api=api)
    app.include_router(channel.router())
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, Request, Response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError

from channels import slack_blocks as kit
from channels import slack_customer as customer_kit
from channels import slack_guard as guard
from channels.body_limit import Refused
from channels.slack_api import SlackApi, make_client
from channels.slack_format import storable, to_plain, user_ids

log = logging.getLogger("switchboard.slack")

REPLY_SUBTYPES = (None, "file_share", "thread_broadcast")
NAME_LOOKUP_TIMEOUT = 1.5


class SlackUnavailable(RuntimeError):
    """The Slack API did not answer auth.test: the request fails (500) so that Slack retries it."""
STALE_BUTTON = "That button is out of date or not one of ours; nothing was changed."


@dataclass(frozen=True, slots=True)
class SlackUser:
    id: str
    name: str | None = None  # None: Slack could not tell us (unknown or unreachable)


@dataclass(frozen=True, slots=True)
class Draft:
    """What the Edit & send modal opens with."""

    conversation_id: int
    suggestion_ref: str
    text: str


Notice = str | None  # text shown to the acting user only (ephemeral); None = nothing to say


class AgentHost(Protocol):
    """What the Slack listeners need from the application. Implemented by `bot.desk.slack_home.SlackHome`.

    Every method is idempotent for a retried Slack delivery of the same event or click.
    """

    async def thread_reply(self, *, channel: str, thread_ts: str, ts: str, user: SlackUser, text: str,
                           files: Sequence[dict[str, Any]] = ()) -> Notice:
        """A human replied in a conversation thread: relay it to the customer (source id slack:<channel>:<ts>)."""
        ...

    async def thread_edit(self, *, channel: str, thread_ts: str, ts: str, user: SlackUser, text: str) -> Notice: ...

    async def thread_delete(self, *, channel: str, thread_ts: str, ts: str, user: SlackUser) -> Notice: ...

    async def send_suggestion(self, *, suggestion_ref: str, user: SlackUser) -> Notice: ...

    async def open_edit(self, *, suggestion_ref: str, user: SlackUser) -> Draft | None: ...

    async def edit_and_send(self, *, conversation_id: int, suggestion_ref: str | None, text: str,
                            user: SlackUser, view_id: str) -> Notice: ...

    async def not_helpful(self, *, suggestion_ref: str, user: SlackUser) -> Notice: ...

    async def escalate(self, *, conversation_id: int, user: SlackUser, reason: str | None = None) -> Notice: ...

    async def resolve(self, *, conversation_id: int, user: SlackUser) -> Notice: ...

    async def take(self, *, conversation_id: int, user: SlackUser) -> Notice: ...

    async def note(self, *, conversation_id: int, text: str, user: SlackUser, view_id: str) -> Notice: ...

    async def command(self, *, user: SlackUser, text: str, channel: str | None) -> str: ...

    async def home(self, *, user: SlackUser) -> dict[str, Any]: ...

    # The "Customer profile" modal: its form (None: no such conversation); save -> (notice, field errors)
    async def open_customer(self, *, conversation_id: int, user: SlackUser) -> customer_kit.CustomerForm | None: ...

    async def save_customer(self, *, conversation_id: int, values: dict[str, Any],
                            user: SlackUser) -> tuple[Notice, dict[str, str]]: ...


class SlackConfig(Protocol):
    """The settings the adapter reads (`bot.settings.Settings` has them; channels never import it)."""

    @property
    def slack_bot_token(self) -> str | None: ...
    @property
    def slack_signing_secret(self) -> str | None: ...
    @property
    def slack_app_token(self) -> str | None: ...
    @property
    def slack_api_base_url(self) -> str | None: ...
    @property
    def slack_timeout(self) -> float: ...
    @property
    def slack_process_before_response(self) -> bool: ...


def make_api(settings: SlackConfig) -> SlackApi:
    """The workspace's Web API client (bot token, base URL and timeout from the settings)."""
    return SlackApi(make_client(token=settings.slack_bot_token, base_url=settings.slack_api_base_url,
                                timeout=settings.slack_timeout))


class SlackChannel:
    """Bolt app + Web API client for one workspace (bot token + signing secret from a `SlackConfig`)."""

    name = "slack"

    def __init__(self, settings: SlackConfig, *, host: AgentHost, api: SlackApi | None = None,
                 command: str = "/switchboard") -> None:
        if not settings.slack_signing_secret:
            raise ValueError("SLACK_SIGNING_SECRET is required (bolt would answer 500 to every request)")
        self.settings = settings
        self.host = host
        self.command_name = command
        self.api = api or make_api(settings)
        self.client = self.api.client
        self._auth: AuthorizeResult | None = None
        self.app = AsyncApp(
            signing_secret=settings.slack_signing_secret,
            client=self.client,
            process_before_response=settings.slack_process_before_response,
            authorize=self._authorizer(),
        )
        self.handler = AsyncSlackRequestHandler(self.app)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._socket: Any = None
        self._register()

    # ---- mounting ------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter()

        secret = str(self.settings.slack_signing_secret)

        async def slack(request: Request) -> Response:
            # Size, then the signature on the raw bytes, then the shape: bolt parses only what passed.
            try:
                body = await guard.read_body(request)
                guard.verify(secret, body, request.headers.get("x-slack-request-timestamp"),
                             request.headers.get("x-slack-signature"))
                guard.check_shape(request.url.path, body, request.headers.get("content-type"))
            except Refused as exc:
                if exc.status == 401:
                    log.warning("refused a Slack request to %s: %s", request.url.path, exc.detail)
                return Response(exc.detail, status_code=exc.status, media_type="text/plain")
            return await self.handler.handle(request)

        for path in ("/slack/events", "/slack/interactivity", "/slack/commands"):
            router.add_api_route(path, slack, methods=["POST"], include_in_schema=False)
        return router

    async def start_socket_mode(self) -> None:
        """Local development without a public URL: connect over Socket Mode (needs an xapp- token)."""
        if not self.settings.slack_app_token:
            raise ValueError("SLACK_APP_TOKEN (xapp-...) is required for Socket Mode")
        self._socket = AsyncSocketModeHandler(self.app, self.settings.slack_app_token)
        await self._socket.connect_async()

    async def drain(self) -> None:
        """Wait for the best-effort notices still being posted (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None

    # ---- helpers ------------------------------------------------------------------------------

    def _authorizer(self) -> Any:
        async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
            return await self._authorize()

        return authorize  # bolt passes arguments by their names: a plain function, not a bound method

    async def _authorize(self) -> AuthorizeResult:
        """Our one workspace: auth.test once, then cached. Bolt's own single-team check answers 200
        (and drops the event) when auth.test fails, so a Slack 5xx/429 at that moment lost an agent's
        reply (found by bench/soak.py); raising something other than SlackApiError makes bolt answer
        500 instead, and Slack retries the event."""
        if self._auth is None:
            try:
                found = await self.client.auth_test()
            except SlackApiError as exc:
                raise SlackUnavailable(f"auth.test failed: {exc.response.get('error')}") from None
            self._auth = AuthorizeResult.from_auth_test_response(auth_test_response=found,
                                                                 bot_token=self.client.token)
        return self._auth

    def _later(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(self, notice: Notice, *, channel: str | None, user: str, thread_ts: str | None) -> None:
        if notice and channel:
            self._later(self.api.post_ephemeral(channel=channel, user=user, text=notice, thread_ts=thread_ts))

    async def _user(self, user_id: str, name: str | None = None) -> SlackUser:
        if name:
            return SlackUser(user_id, name)
        try:
            name = await asyncio.wait_for(self.api.user_name(user_id), NAME_LOOKUP_TIMEOUT)
        except TimeoutError:
            name = None
        return SlackUser(user_id, name)

    async def _plain(self, text: str) -> str:
        """An agent's Slack text as the customer should read it: entities decoded, mentions as names."""
        ids = user_ids(text)[:10]
        found = await asyncio.gather(*(self._user(uid) for uid in ids))
        return to_plain(text, {u.id: u.name for u in found})

    async def _actor(self, body: dict[str, Any]) -> SlackUser:
        """The clicking user, with their display name (users.info, cached) or else their handle."""
        u = body.get("user") or {}
        found = await self._user(str(u.get("id")))
        return found if found.name else SlackUser(found.id, u.get("name") or u.get("username"))

    @staticmethod
    def _where(body: dict[str, Any]) -> tuple[str | None, str | None]:
        channel = (body.get("channel") or body.get("container") or {}).get("id") or (
            body.get("container") or {}).get("channel_id")
        msg = body.get("message") or {}
        return channel, msg.get("thread_ts") or msg.get("ts")

    # ---- listeners -----------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.event("message")(self._on_message)
        app.event("app_home_opened")(self._on_home)
        app.action(kit.A_SEND)(self._simple_action(lambda ref, u: self.host.send_suggestion(
            suggestion_ref=str(ref), user=u)))
        app.action(kit.A_NOT_HELPFUL)(self._simple_action(lambda ref, u: self.host.not_helpful(
            suggestion_ref=str(ref), user=u)))
        app.action(kit.A_ESCALATE)(self._simple_action(lambda cid, u: self.host.escalate(
            conversation_id=cid, user=u)))
        app.action(kit.A_RESOLVE)(self._simple_action(lambda cid, u: self.host.resolve(
            conversation_id=cid, user=u)))
        app.action(kit.A_TAKE)(self._simple_action(lambda cid, u: self.host.take(
            conversation_id=cid, user=u)))
        app.action(kit.A_EDIT)(self._on_edit)
        app.action(kit.A_NOTE)(self._on_note)
        app.view(kit.V_EDIT)(self._on_edit_submit)
        app.view(kit.V_NOTE)(self._on_note_submit)
        app.action(customer_kit.A_CUSTOMER)(self._on_customer)
        app.view(customer_kit.V_CUSTOMER)(self._on_customer_submit)
        app.command(self.command_name)(self._on_command)

    async def _on_message(self, event: dict[str, Any], context: dict[str, Any]) -> None:
        subtype = event.get("subtype")
        channel = str(event.get("channel") or "")
        if subtype in ("message_changed", "message_deleted"):
            await self._on_edit_or_delete(event, channel, context)
            return
        if subtype not in REPLY_SUBTYPES or event.get("bot_id") or not event.get("user"):
            return  # bots (ours included), joins, topic changes, workflow posts: never relayed
        thread_ts, ts = event.get("thread_ts"), event.get("ts")
        if not thread_ts or thread_ts == ts:
            return  # a top-level channel message is not a reply to anyone
        user = await self._user(str(event["user"]))
        notice = await self.host.thread_reply(
            channel=channel, thread_ts=str(thread_ts), ts=str(ts), user=user,
            text=await self._plain(str(event.get("text") or "")),
            files=list(event.get("files") or []),
        )
        self._notify(notice, channel=channel, user=user.id, thread_ts=str(thread_ts))

    async def _on_edit_or_delete(self, event: dict[str, Any], channel: str, context: dict[str, Any]) -> None:
        deleted = event.get("subtype") == "message_deleted"
        msg = (event.get("previous_message") if deleted else event.get("message")) or {}
        if msg.get("bot_id") or not msg.get("user") or msg.get("user") == context.get("bot_user_id"):
            return  # our own card updates arrive as message_changed too
        thread_ts, ts = str(msg.get("thread_ts") or ""), str(msg.get("ts") or "")
        if not thread_ts or not ts or thread_ts == ts:
            return
        user = SlackUser(str(msg["user"]))
        if deleted:
            notice = await self.host.thread_delete(channel=channel, thread_ts=thread_ts, ts=ts, user=user)
        else:
            before = (event.get("previous_message") or {}).get("text")
            if before is not None and before == msg.get("text"):
                return  # an unfurl or a reaction-like change, not an edit
            notice = await self.host.thread_edit(channel=channel, thread_ts=thread_ts, ts=ts, user=user,
                                                 text=await self._plain(str(msg.get("text") or "")))
        self._notify(notice, channel=channel, user=user.id, thread_ts=thread_ts)

    async def _on_home(self, event: dict[str, Any], client: Any) -> None:
        if event.get("tab") not in (None, "home"):
            return
        user = await self._user(str(event.get("user")))
        view = await self.host.home(user=user)
        self._later(self.api.call("views.publish", user_id=user.id, view=view))

    def _simple_action(self, call: Any) -> Any:
        async def listener(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            user = await self._actor(body)
            channel, thread_ts = self._where(body)
            value = guard.parse_id(action.get("value"))  # every button value is a positive integer id
            notice = STALE_BUTTON if value is None else await call(value, user)
            self._notify(notice, channel=channel, user=user.id, thread_ts=thread_ts)

        return listener

    async def _on_edit(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = await self._actor(body)
        channel, thread_ts = self._where(body)
        ref = guard.parse_id(action.get("value"))
        draft = None if ref is None else await self.host.open_edit(suggestion_ref=str(ref), user=user)
        if draft is None:
            self._notify("That suggestion is no longer available.", channel=channel, user=user.id,
                         thread_ts=thread_ts)
            return
        view = kit.edit_modal(conversation_id=draft.conversation_id, suggestion_ref=draft.suggestion_ref,
                              text=draft.text, channel=channel, thread_ts=thread_ts)
        await self._open(body, view, channel=channel, user=user.id, thread_ts=thread_ts)

    async def _on_note(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = await self._actor(body)
        channel, thread_ts = self._where(body)
        cid = guard.parse_id(action.get("value"))
        if cid is None:
            self._notify(STALE_BUTTON, channel=channel, user=user.id, thread_ts=thread_ts)
            return
        view = kit.note_modal(conversation_id=cid, channel=channel, thread_ts=thread_ts)
        await self._open(body, view, channel=channel, user=user.id, thread_ts=thread_ts)

    async def _open(self, body: dict[str, Any], view: dict[str, Any], *, channel: str | None, user: str,
                    thread_ts: str | None) -> None:
        try:  # inline: the trigger_id expires after 3 s
            await self.api.call("views.open", trigger_id=body.get("trigger_id"), view=view)
        except Exception as exc:
            log.warning("views.open failed: %s", exc)
            self._notify("Slack did not open the dialog; please try again.", channel=channel, user=user,
                         thread_ts=thread_ts)

    @staticmethod
    def _submitted(view: dict[str, Any]) -> str:
        values = ((view.get("state") or {}).get("values") or {}).get(kit.INPUT_BLOCK) or {}
        return storable(str((values.get(kit.INPUT_ACTION) or {}).get("value") or "")).strip()

    async def _on_edit_submit(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        text = self._submitted(view)
        if not text:
            await ack(response_action="errors", errors={kit.INPUT_BLOCK: "Write something to send."})
            return
        await ack()
        meta = kit.parse_metadata(view.get("private_metadata"))
        user = await self._actor(body)
        cid, ref = guard.parse_id(meta.get("c")), meta.get("s")
        ref_ok = ref is None or guard.parse_id(ref) is not None
        notice = STALE_BUTTON if cid is None or not ref_ok else await self.host.edit_and_send(
            conversation_id=cid, suggestion_ref=None if ref is None else str(ref), text=text, user=user,
            view_id=str(view.get("id")),
        )
        self._notify(notice, channel=meta.get("ch"), user=user.id, thread_ts=meta.get("th"))

    async def _on_note_submit(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        text = self._submitted(view)
        if not text:
            await ack(response_action="errors", errors={kit.INPUT_BLOCK: "The note is empty."})
            return
        await ack()
        meta = kit.parse_metadata(view.get("private_metadata"))
        user = await self._actor(body)
        cid = guard.parse_id(meta.get("c"))
        notice = STALE_BUTTON if cid is None else await self.host.note(
            conversation_id=cid, text=text, user=user, view_id=str(view.get("id")))
        self._notify(notice, channel=meta.get("ch"), user=user.id, thread_ts=meta.get("th"))

    async def _on_customer(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = await self._actor(body)
        channel, thread_ts = self._where(body)
        cid = guard.parse_id(action.get("value"))
        form = None if cid is None else await self.host.open_customer(conversation_id=cid, user=user)
        if form is None:
            self._notify(STALE_BUTTON, channel=channel, user=user.id, thread_ts=thread_ts)
            return
        view = customer_kit.customer_modal(form, channel=channel, thread_ts=thread_ts)
        await self._open(body, view, channel=channel, user=user.id, thread_ts=thread_ts)

    async def _on_customer_submit(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = kit.parse_metadata(view.get("private_metadata"))
        user = await self._actor(body)
        cid = guard.parse_id(meta.get("c"))
        notice, errors = (STALE_BUTTON, {}) if cid is None else await self.host.save_customer(
            conversation_id=cid, values=customer_kit.read_customer_form(view), user=user)
        fields = {customer_kit.block_id(k): v for k, v in errors.items() if k in customer_kit.FIELDS}
        if fields:  # shown under each field; the modal stays open and nothing was saved
            await ack(response_action="errors", errors=fields)
            return
        await ack()
        self._notify(notice, channel=meta.get("ch"), user=user.id, thread_ts=meta.get("th"))

    async def _on_command(self, ack: Any, command: dict[str, Any]) -> None:
        user = SlackUser(str(command.get("user_id")), command.get("user_name"))
        reply = await self.host.command(user=user, text=storable(str(command.get("text") or "")),
                                        channel=command.get("channel_id"))
        await ack(text=reply)


__all__ = ["AgentHost", "Draft", "Notice", "SlackChannel", "SlackUser"]
