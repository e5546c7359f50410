"""A small bot framework on top of `Client`.

    bot = Bot("echobot", token="...", state_file="echo-session.json")  # a bot account
    # (or Bot("alice", password="...") for an ordinary account acting as a bot)

    @bot.command("help", "what I do")
    async def help_(ctx: Context) -> None:
        await ctx.reply("send me anything", buttons=[[("Again", "again")]])

    @bot.on_callback
    async def pressed(cb: CallbackContext) -> None:
        await cb.answer(f"you pressed {cb.data}")      # a notice to the presser
        await cb.edit("pressed!")                      # or an edit of the message

    @bot.on_mention
    async def mentioned(ctx: Context) -> None:        # "@echobot ..." in a group
        await ctx.reply("you called?")

    @bot.on_message
    async def echo(ctx: Context) -> None:
        await ctx.reply(f"echo: {ctx.text}")

    @bot.on_event
    async def greet(client: Client, event: ClientEvent) -> None:
        if isinstance(event, GroupChanged) and event.type == "added":
            await client.groups.send(event.group, f"welcome, {', '.join(event.users)}")

    bot.run()

Group messages work like direct ones: `ctx.group` is the group's id (None for a direct
message) and `ctx.reply()` answers into the same conversation, so an echo bot added to a
group echoes there. Group timeline events (someone was added, the group was renamed, ...)
are not messages: they arrive as `GroupChanged` events and go to `on_event` handlers, which
also receive every other event (read receipts, contact requests, typing, presence; the
connection state events only with `state_events=True` in the client options).

Commands: "/name args", or "/name@bot args" (a command addressed to another bot is not
ours); the names and descriptions given to `command` are declared to the server when the
bot starts (SPEC.md 26.2), so users see them. A bot account in a group in privacy mode
receives only commands and mentions of it (the server filters); a group message that
mentions the bot goes to `on_mention` handlers (to `on_message` handlers if there are
none). Button presses under the bot's messages arrive as `CallbackQuery` events and go to
`on_callback` handlers; a press they leave unanswered is answered with an empty notice,
and presses still unanswered when the bot starts (it crashed, or they came while it was
away: the server keeps them for a day) are handled first. While a handler of a message or
a press runs, the bot shows "typing" in that conversation (`typing=False` turns that off;
`ctx.typing()` does it by hand).

Messages are handled one at a time, in log order, inside the `async for` loop of the
client: no task per message, so a handler may await replies (the client's reader never
waits for the bot) and nothing runs concurrently with it. A message that starts with the
command prefix and a registered name goes to that command only; every other message goes to
each `on_message` handler in registration order. The bot's own messages (from its other
devices, or its own earlier runs) are ignored so that it can never answer itself. A handler
that raises is logged and the bot carries on; because the cursor covers a message as soon
as it is handed to the bot, a crash in a handler does not make the message come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from liaotian.protocol import ChatMessage, ErrorCode, RequestError, Sent

from .bot_events import CallbackQuery
from .bots import Button, buttons_meta
from .client import DEFAULT_PORT, Client, InitialSync
from .cursor import FileStore, SessionStore
from .events import ClientEvent, MessageReceived

__all__ = ["Bot", "CallbackContext", "CallbackHandler", "Context", "EventHandler", "Handler"]

log = logging.getLogger("liaotian.bot")


@dataclass(frozen=True, slots=True)
class Context:
    """One incoming message as a handler sees it."""

    bot: Bot
    client: Client
    seq: int
    message: ChatMessage
    command: str | None = None  # the command name, for command handlers
    args: str = ""  # the text after the command name, stripped

    @property
    def sender(self) -> str:
        return self.message.sender

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def group(self) -> int | None:
        """The group the message was sent in; None for a direct message."""
        return self.message.group

    @property
    def is_group(self) -> bool:
        return self.message.group is not None

    async def reply(
        self,
        text: str,
        meta: dict[str, Any] | None = None,
        *,
        buttons: Sequence[Sequence[Button]] | None = None,
    ) -> Sent:
        """Send `text` back where the message came from: into the same group, or to
        whoever wrote a direct message; `buttons`: rows of (text, data) under it."""
        if buttons:
            meta = {**(meta or {}), **buttons_meta(buttons)}
        if self.message.group is not None:
            return await self.client.send_group(self.message.group, text, meta)
        return await self.client.send(self.message.sender, text, meta)

    @contextlib.asynccontextmanager
    async def typing(self) -> AsyncIterator[None]:
        """Show "typing" in the message's conversation while the block runs."""
        await _typing(self.client, self.message, True)
        try:
            yield
        finally:
            await _typing(self.client, self.message, False)

    async def reply_privately(self, text: str, meta: dict[str, Any] | None = None) -> Sent:
        """Send `text` to the sender directly, even for a group message."""
        return await self.client.send(self.message.sender, text, meta)


async def _typing(client: Client, msg: ChatMessage, on: bool) -> None:
    if msg.group is not None:
        await client.presence.typing(group=msg.group, typing=on)
    else:
        await client.presence.typing(to=msg.sender, typing=on)


@dataclass(slots=True)
class CallbackContext:
    """A press of a button under one of the bot's messages, as a handler sees it."""

    bot: Bot
    client: Client
    query: CallbackQuery
    answered: bool = False  # answer() was called (else the bot answers "" after handlers)

    @property
    def sender(self) -> str:
        return self.query.sender

    @property
    def data(self) -> str:
        return self.query.data

    @property
    def group(self) -> int | None:
        return self.query.group

    async def answer(self, text: str = "", *, alert: bool = False) -> None:
        """A short notice to the presser (once per press)."""
        self.answered = True
        await self.client.bots.answer(self.query.callback, text, alert=alert)

    async def edit(self, text: str, *, buttons: Sequence[Sequence[Button]] | None = None) -> None:
        """Replace the text (and buttons) of the message whose button was pressed."""
        await self.client.bots.edit(self.query.conv, self.query.pos, text, buttons=buttons)

    async def reply(self, text: str, *, buttons: Sequence[Sequence[Button]] | None = None) -> Sent:
        """A new message where the pressed message is (the group, or the presser)."""
        meta = buttons_meta(buttons) if buttons else None
        if self.query.group is not None:
            return await self.client.send_group(self.query.group, text, meta)
        return await self.client.send(self.query.sender, text, meta)


Handler = Callable[[Context], Awaitable[Any]]
EventHandler = Callable[[Client, ClientEvent], Awaitable[Any]]
CallbackHandler = Callable[[CallbackContext], Awaitable[Any]]


class Bot:
    """Register handlers with the decorators, then `run()` (or `await run_async()`)."""

    def __init__(
        self,
        username: str,
        password: str | None = None,
        *,
        token: str | None = None,
        typing: bool = True,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        device: str = "bot",
        store: SessionStore | None = None,
        state_file: str | os.PathLike[str] | None = None,
        prefix: str = "/",
        initial_sync: InitialSync = "new",
        **client_options: Any,
    ) -> None:
        if store is not None and state_file is not None:
            raise ValueError("give store or state_file, not both")
        self.username = username
        self.password = password
        self.token = token  # a bot account's token (or a stored session token)
        self.typing = typing  # show typing while a message handler runs
        self.host = host
        self.port = port
        self.device = device
        self.store = (
            store
            if store is not None
            else (FileStore(state_file) if state_file is not None else None)
        )
        self.prefix = prefix
        self.initial_sync = initial_sync
        self.client_options = client_options
        self._message_handlers: list[Handler] = []
        self._event_handlers: list[EventHandler] = []
        self._commands: dict[str, Handler] = {}
        self._descriptions: dict[str, str] = {}
        self._callback_handlers: list[CallbackHandler] = []
        self._mention_handlers: list[Handler] = []
        self._client: Client | None = None
        self._stopping = False
        self._handled: set[int] = set()  # callbacks handled from the pending list

    # ------------------------------------------------------------------ registration

    def on_message(self, func: Handler) -> Handler:
        """Decorator: call `func(ctx)` for every message that is not a command."""
        self._message_handlers.append(func)
        return func

    def on_event(self, func: EventHandler) -> EventHandler:
        """Decorator: call `func(client, event)` for every event that is not an ordinary
        message: group timeline events (`GroupChanged`), read receipts, contact events,
        typing and presence (and the connection state events, if switched on)."""
        self._event_handlers.append(func)
        return func

    def command(self, name: str, description: str = "") -> Callable[[Handler], Handler]:
        """Decorator: call `func(ctx)` for messages "<prefix><name> [args]" (also
        "<prefix><name>@<this bot> [args]"); the description is what users see."""
        if not name or any(c.isspace() for c in name):
            raise ValueError("a command name is one word")

        def register(func: Handler) -> Handler:
            self._commands[name] = func
            self._descriptions[name] = description
            return func

        return register

    def on_callback(self, func: CallbackHandler) -> CallbackHandler:
        """Decorator: call `func(cb)` for every press of a button under our messages."""
        self._callback_handlers.append(func)
        return func

    def on_mention(self, func: Handler) -> Handler:
        """Decorator: call `func(ctx)` for group messages that mention "@<this bot>"."""
        self._mention_handlers.append(func)
        return func

    # ------------------------------------------------------------------ dispatch

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("the bot is not running")
        return self._client

    def parse_command(self, text: str) -> tuple[str, str] | None:
        """(name, args) if `text` invokes a registered command, else None."""
        if not self.prefix or not text.startswith(self.prefix):
            return None
        parts = text[len(self.prefix) :].split(None, 1)
        if not parts or text[len(self.prefix)].isspace():
            return None
        name, _, target = parts[0].partition("@")
        me = self._client.user if self._client is not None else None
        if target and target not in (me or self.username, self.username):
            return None  # addressed to another bot
        if name not in self._commands:
            return None
        return name, parts[1].strip() if len(parts) > 1 else ""

    def mentioned(self, text: str) -> bool:
        """Whether `text` mentions this bot ("@name" as a word)."""
        me = (self._client.user if self._client is not None else None) or self.username
        at = "@" + me
        i = text.find(at)
        while i >= 0:
            end = i + len(at)
            if end == len(text) or not (text[end].isalnum() or text[end] in "_.-"):
                return True
            i = text.find(at, end)
        return False

    async def dispatch(self, client: Client, event: ClientEvent) -> None:
        """Handle one event (public so that tests can drive a bot without a server)."""
        if isinstance(event, CallbackQuery) and self._callback_handlers:
            if event.callback in self._handled:
                return  # handled at start, from the pending list
            await self._press(client, event)
            return
        if not isinstance(event, MessageReceived) or event.message.event is not None:
            for on_event in self._event_handlers:
                await self._call_event(on_event, client, event)
            return
        msg = event.message
        if msg.sender == (client.user or self.username):
            return  # never answer ourselves
        parsed = self.parse_command(msg.text)
        if parsed is not None:
            name, args = parsed
            ctx = Context(self, client, event.seq, msg, name, args)
            await self._handle([self._commands[name]], ctx)
            return
        ctx = Context(self, client, event.seq, msg)
        if msg.group is not None and self._mention_handlers and self.mentioned(msg.text):
            await self._handle(self._mention_handlers, ctx)
        else:
            await self._handle(self._message_handlers, ctx)

    async def _handle(self, handlers: list[Handler], ctx: Context) -> None:
        """Run the handlers, showing typing meanwhile (if on and there are any)."""
        if not handlers:
            return
        if self.typing:
            with contextlib.suppress(Exception):
                await _typing(ctx.client, ctx.message, True)
        try:
            for handler in handlers:
                await self._call(handler, ctx)
        finally:
            if self.typing:
                with contextlib.suppress(Exception):
                    await _typing(ctx.client, ctx.message, False)

    async def _press(self, client: Client, event: CallbackQuery) -> None:
        """Run the callback handlers on a press, typing meanwhile; a press they did not
        answer is answered with an empty notice, so that it is no longer pending."""
        cb = CallbackContext(self, client, event)
        where: dict[str, Any] = (
            {"group": event.group} if event.group is not None else {"to": event.sender}
        )
        if self.typing:
            with contextlib.suppress(Exception):
                await client.presence.typing(**where, typing=True)
        try:
            for on_callback in self._callback_handlers:
                await self._call_callback(on_callback, cb)
            if not cb.answered:
                with contextlib.suppress(RequestError):
                    await client.bots.answer(event.callback)
        finally:
            if self.typing:
                with contextlib.suppress(Exception):
                    await client.presence.typing(**where, typing=False)

    async def handle_pending(self, client: Client) -> None:
        """At start: the presses still waiting for an answer (the bot stopped or crashed
        before answering them, or they came while it was away) are handled now, oldest
        first; their CALLBACK entries, if they come through the log too, are skipped."""
        if not self._callback_handlers:
            return
        try:
            pending = await client.bots.pending(1000)
        except RequestError as exc:
            if exc.code != ErrorCode.BOTS_ONLY:
                raise
            return  # not a bot account: nobody presses our buttons
        for p in pending:
            if p.callback in self._handled:
                continue
            self._handled.add(p.callback)
            query = CallbackQuery(0, p.callback, p.sender, p.conv, p.pos, p.id, p.data, p.group)
            await self._press(client, query)

    @staticmethod
    async def _call_callback(handler: CallbackHandler, cb: CallbackContext) -> None:
        try:
            await handler(cb)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "bot callback handler %s failed on a press by %s",
                getattr(handler, "__name__", handler),
                cb.sender,
            )

    async def declare_commands(self, client: Client) -> None:
        """Tell the server our commands (with descriptions), if we are a bot account."""
        if not self._commands:
            return
        try:
            await client.bots.set_commands(
                [(n, self._descriptions.get(n, "")) for n in self._commands]
            )
        except RequestError as exc:
            if exc.code != ErrorCode.BOTS_ONLY:
                raise
            log.info("not a bot account: commands not declared")

    @staticmethod
    async def _call(handler: Handler, ctx: Context) -> None:
        try:
            await handler(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "bot handler %s failed on message %d from %s%s",
                getattr(handler, "__name__", handler),
                ctx.seq,
                ctx.sender,
                f" in group {ctx.group}" if ctx.group is not None else "",
            )

    @staticmethod
    async def _call_event(handler: EventHandler, client: Client, event: ClientEvent) -> None:
        try:
            await handler(client, event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "bot event handler %s failed on %r", getattr(handler, "__name__", handler), event
            )

    # ------------------------------------------------------------------ running

    async def run_async(self) -> None:
        """Connect (reconnecting as needed) and handle messages until `stop()` or a fatal
        error (which is raised)."""
        self._stopping = False
        options: dict[str, Any] = {"state_events": False, **self.client_options}
        client = Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            token=self.token,
            device=self.device,
            store=self.store,
            initial_sync=self.initial_sync,
            **options,
        )
        async with client:
            self._client = client
            try:
                log.info("bot %s connected to %s:%d", client.user, self.host, self.port)
                await self.declare_commands(client)
                await self.handle_pending(client)
                async for event in client:
                    await self.dispatch(client, event)
                    if self._stopping:
                        break
            finally:
                self._client = None

    async def stop(self) -> None:
        """Finish the current message, then close."""
        self._stopping = True
        if self._client is not None:
            await self._client.close()

    def run(self) -> None:
        """Run until Ctrl-C or SIGTERM, then close cleanly (the position is ACKed and saved,
        so a restarted bot neither answers a message twice nor misses one)."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            stopping: set[asyncio.Task[None]] = set()

            def stop() -> None:
                task = loop.create_task(self.stop())
                stopping.add(task)
                task.add_done_callback(stopping.discard)

            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, stop)
            await self.run_async()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
