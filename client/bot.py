"""A small bot framework on top of `Client`.

    bot = Bot("echo", password="...", state_file="echo-session.json")

    @bot.command("help")
    async def help_(ctx: Context) -> None:
        await ctx.reply("send me anything")

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from liaotian.protocol import ChatMessage, Sent

from .client import DEFAULT_PORT, Client, InitialSync
from .cursor import FileStore, SessionStore
from .events import ClientEvent, MessageReceived

__all__ = ["Bot", "Context", "EventHandler", "Handler"]

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

    async def reply(self, text: str, meta: dict[str, Any] | None = None) -> Sent:
        """Send `text` back where the message came from: into the same group, or to
        whoever wrote a direct message."""
        if self.message.group is not None:
            return await self.client.send_group(self.message.group, text, meta)
        return await self.client.send(self.message.sender, text, meta)

    async def reply_privately(self, text: str, meta: dict[str, Any] | None = None) -> Sent:
        """Send `text` to the sender directly, even for a group message."""
        return await self.client.send(self.message.sender, text, meta)


Handler = Callable[[Context], Awaitable[Any]]
EventHandler = Callable[[Client, ClientEvent], Awaitable[Any]]


class Bot:
    """Register handlers with the decorators, then `run()` (or `await run_async()`)."""

    def __init__(
        self,
        username: str,
        password: str | None = None,
        *,
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
        self._client: Client | None = None
        self._stopping = False

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

    def command(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator: call `func(ctx)` for messages "<prefix><name> [args]"."""
        if not name or any(c.isspace() for c in name):
            raise ValueError("a command name is one word")

        def register(func: Handler) -> Handler:
            self._commands[name] = func
            return func

        return register

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
        if not parts or text[len(self.prefix)].isspace() or parts[0] not in self._commands:
            return None
        return parts[0], parts[1].strip() if len(parts) > 1 else ""

    async def dispatch(self, client: Client, event: ClientEvent) -> None:
        """Handle one event (public so that tests can drive a bot without a server)."""
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
            await self._call(self._commands[name], ctx)
            return
        ctx = Context(self, client, event.seq, msg)
        for handler in self._message_handlers:
            await self._call(handler, ctx)

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
            device=self.device,
            store=self.store,
            initial_sync=self.initial_sync,
            **options,
        )
        async with client:
            self._client = client
            try:
                log.info("bot %s connected to %s:%d", client.user, self.host, self.port)
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
