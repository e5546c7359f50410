"""The chat app's logic between a `Client` and the model, without a terminal.

`ChatController` loads the chat list, opens conversations (history, receipts, presence,
marking read), sends, pages back through history and applies every client event to the
model; after each change it calls `on_change` so that the screen can redraw. It uses only
the public `Client` API (send, send_group, history, history_group, conversations, mark_read,
receipts, typing, presence, groups, group_info, profile, `async for event in client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TypeVar

from liaotian.protocol import ChatMessage, ConnectionClosed, RequestError
from liaotian.protocol.social import GroupSummary

from ..client import Client
from ..events import (
    CallbackAnswered,
    ChannelChanged,
    ChannelNewsEvent,
    ClientEvent,
    ContactEvent,
    Disconnected,
    GroupChanged,
    MessageEdited,
    MessageReceived,
    PresenceChanged,
    ReadReceipt,
    Reconnected,
    Resync,
    TypingEvent,
)
from ..mediacli import default_name
from .extras import ChannelsAndButtons
from .model import ChatList, Conversation
from .names import Names, Target, TargetError, resolve_group

__all__ = ["HISTORY_PAGE", "MAX_CHATS", "ChatController", "resolve_target"]

log = logging.getLogger("liaotian.client.tui")

HISTORY_PAGE = 50  # messages per history request
MAX_CHATS = 500  # conversations loaded into the list at most

T = TypeVar("T")

_CONTACT_NOTES = {
    "request": "{u} asks to be your contact (liaotian contact accept {u})",
    "accepted": "{u} accepted your contact request",
    "declined": "{u} declined your contact request",
    "cancelled": "{u} withdrew their contact request",
    "removed": "{u} removed you from their contacts",
}


async def resolve_target(
    client: Client, with_user: str | None = None, group: str | None = None
) -> Target | None:
    """The conversation `--with USER` or `--group NAME` names (None: neither). A group is
    looked up by name among the user's groups (TargetError if none or several match); a
    user is checked by asking for one message of the chat (RequestError UNKNOWN_USER)."""
    if group is not None:
        return Target(group=resolve_group(await client.groups(), group).group)
    if with_user is not None:
        if not with_user:
            raise TargetError("--with needs a username")
        await client.history(with_user, limit=1)
        return Target(peer=with_user)
    return None


class ChatController(ChannelsAndButtons):
    """Holds what the chat app shows (`chats`, `conv`, `names`, `online`, `state`) and
    keeps it current; channels and bot buttons are extras.py's part."""

    def __init__(
        self,
        client: Client,
        *,
        on_change: Callable[[], None] | None = None,
        on_note: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.me = client.user or ""
        self.names = Names()
        self.chats = ChatList()
        self.conv: Conversation | None = None
        self.groups: dict[int, GroupSummary] = {}
        self.channel_members: dict[int, int] = {}
        self.online: dict[str, bool] = {}
        self.last_seen: dict[str, int] = {}
        self.state = "connected" if client.connected else "reconnecting"
        self.detail = ""
        self.clock = clock
        self._on_change = on_change or (lambda: None)
        self._on_note = on_note or (lambda text: None)
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ plumbing

    def changed(self) -> None:
        self._on_change()

    def note(self, text: str) -> None:
        """A one-off notice for the user (raw text: whoever shows it makes it safe)."""
        self._on_note(text)

    async def _try(self, what: str, request: Awaitable[T]) -> T | None:
        """A request whose failure is shown as a note, not raised (the client reconnects
        by itself; what failed is fetched again on the next occasion)."""
        try:
            return await request
        except RequestError as exc:
            self.note(f"{what}: {exc.code.name}: {exc.message or exc.code.explanation}")
        except (ConnectionClosed, TimeoutError) as exc:
            if not self.client.closed:
                self.note(f"{what}: {exc or 'timed out'}")
        return None

    def _background(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ loading

    async def load(self) -> None:
        """The chat list, group names, the peers' presence and everyone's display names."""
        await self._load_groups()
        await self._load_list()
        peers = [e.peer for e in self.chats.entries.values() if e.peer]
        senders = [e.last.sender for e in self.chats.entries.values() if e.last]
        self._background(self._presence(peers))
        self._background(self.fetch_names([self.me, *peers, *senders]))

    async def _load_groups(self) -> None:
        groups = await self._try("groups", self.client.groups())
        if groups is not None:
            self.groups = {g.group: g for g in groups}
            self.names.groups.update({g.group: g.name for g in groups})

    async def _load_list(self) -> None:
        entries = []
        try:
            async for entry in self.client.iter_conversations(100, channels=True):
                entries.append(entry)
                if len(entries) >= MAX_CHATS:
                    break
        except (RequestError, ConnectionClosed, TimeoutError) as exc:
            self.note(f"chat list: {exc}")
            return
        self.chats.load(entries)
        for e in entries:
            if e.kind == "channel":
                self.names.channels[e.conv] = e.name
        self.changed()

    async def reload_list(self) -> None:
        await self._load_groups()
        await self._load_list()
        if self.conv is not None and self.conv.conv is not None:
            self.chats.opened(self.conv.conv)  # on screen, so read
            self.changed()

    async def fetch_names(self, users: Iterable[str]) -> None:
        """Ask for the display names of users not asked about yet."""
        wanted = self.names.wanted(users)
        for user in wanted:
            profile = await self._try("profile", self.client.profile(user))
            if profile is not None:
                self.names.set_display(user, profile.display_name)
        if wanted:
            self.changed()

    async def _presence(self, users: list[str]) -> None:
        users = [u for u in dict.fromkeys(users) if u and u != self.me]
        if not users:
            return
        entries = await self._try("presence", self.client.presence(users))
        for p in entries or ():
            self.online[p.user] = p.online
            self.last_seen[p.user] = p.last_seen
        self.changed()

    # ------------------------------------------------------------------ a conversation

    async def open(self, target: Target) -> None:
        """Show a conversation: its newest page, receipts, presence; mark it read."""
        entry = self.chats.find(target)
        conv = Conversation(target, conv=entry.conv if entry is not None else None)
        self.conv = conv
        self.changed()
        if target.channel is not None:
            await self.open_channel(conv)
            return
        if target.group is not None:
            page = await self._try(
                "history", self.client.history_group(target.group, limit=HISTORY_PAGE)
            )
        else:
            assert target.peer is not None
            page = await self._try("history", self.client.history(target.peer, limit=HISTORY_PAGE))
        if page is None or self.conv is not conv:
            return
        conv.add_page(page.messages, page.more)
        self.changed()
        await self._mark_read(conv)
        await self.refresh_receipts()
        users = [m.sender for m in conv.messages.values()]
        if target.group is not None:
            info = await self._try("group", self.client.group_info(target.group))
            if info is not None:
                self.names.groups[info.group] = info.name
                users.extend(mb.user for mb in info.members)
        else:
            assert target.peer is not None
            users.append(target.peer)
            await self._presence([target.peer])
        await self.fetch_names(users)

    async def _mark_read(self, conv: Conversation) -> None:
        if conv.conv is None:
            return
        entry = self.chats.entries.get(conv.conv)
        newest = conv.newest
        behind = newest > 0 and (entry is None or entry.read < newest or entry.unread > 0)
        self.chats.opened(conv.conv)
        if behind:
            if entry is not None:
                entry.read = max(entry.read, newest)
            await self._try("mark read", self.client.mark_read(conv.conv, newest))
        self.changed()

    async def refresh_receipts(self) -> None:
        conv = self.conv
        if conv is None or conv.conv is None:
            return
        r = await self._try("receipts", self.client.receipts(conv.conv))
        if r is not None:
            conv.receipts(r.read, r.delivered)
            self.changed()

    async def older(self) -> int:
        """Load the page before the oldest message shown; returns how many were new."""
        conv = self.conv
        if conv is None or not conv.more_before or conv.oldest is None:
            return 0
        if conv.target.channel is not None:
            return await self.older_posts(conv)
        if conv.target.group is not None:
            request = self.client.history_group(
                conv.target.group, before=conv.oldest, limit=HISTORY_PAGE
            )
        else:
            assert conv.target.peer is not None
            request = self.client.history(conv.target.peer, before=conv.oldest, limit=HISTORY_PAGE)
        page = await self._try("history", request)
        if page is None:
            return 0
        n = conv.add_page(page.messages, page.more)
        self.changed()
        self._background(self.fetch_names(m.sender for m in page.messages))
        return n

    async def send(self, text: str) -> None:
        """Send `text` to the open conversation; shown as pending until it is stored."""
        conv = self.conv
        if conv is None or not text.strip():
            return
        if conv.target.channel is not None:
            await self.post(conv, text)
            return
        pending = conv.pend(text)
        self.changed()
        target = conv.target
        with contextlib.suppress(ConnectionClosed, RequestError):
            await self.typed(False)
        try:
            if target.group is not None:
                sent = await self.client.send_group(target.group, text)
            else:
                assert target.peer is not None
                sent = await self.client.send(target.peer, text)
        except RequestError as exc:
            conv.settle(pending, None, f"{exc.code.name}: {exc.message}")
            self.changed()
            return
        except (ConnectionClosed, TimeoutError) as exc:
            conv.settle(pending, None, str(exc) or "timed out")
            self.changed()
            return
        m = ChatMessage(
            id=sent.id,
            conv=sent.conv,
            pos=sent.pos,
            sender=self.me,
            to=target.peer or "",
            ts=sent.ts,
            cmid=sent.cmid,
            text=text,
            group=target.group,
        )
        conv.settle(pending, m)
        if not self.chats.message(m, self.me, viewing=m.conv):
            self._background(self.reload_list())
        self.changed()

    def last_media(self) -> ChatMessage | None:
        """The newest message with media in the open conversation (what a download saves)."""
        conv = self.conv
        if conv is None:
            return None
        for pos in sorted(conv.messages, reverse=True):
            m = conv.messages[pos]
            if m.media is not None and isinstance(m.media.get("blob"), bytes):
                return m
        return None

    async def download(self, directory: str) -> str | None:
        """Save the newest media message of the open conversation into `directory`, under
        the name its sender gave (made harmless: mediacli.default_name) or, when that is
        taken, the first free `name-N`; notes where it went (or why not). Returns the path."""
        m = self.last_media()
        if m is None or m.media is None:
            self.note("no media in this chat to download")
            return None
        base = default_name(m.media)
        stem, dot, ext = base.partition(".")
        path = os.path.join(directory, base)
        n = 1
        while os.path.exists(path) or os.path.exists(path + ".part"):
            path = os.path.join(directory, f"{stem}-{n}{dot}{ext}")
            n += 1
        self.note(f"downloading {base} (#{m.pos})…")
        try:
            size = await self.client.media.download(m.media, path)
        except (RequestError, ConnectionClosed, OSError, TimeoutError) as exc:
            why = f"{exc.code.name}: {exc.message}" if isinstance(exc, RequestError) else str(exc)
            self.note(f"download of #{m.pos} failed: {why}")
            return None
        self.note(f"saved #{m.pos} ({size} bytes) to {path}")
        return path

    async def typed(self, typing: bool) -> None:
        """The user typed in (or cleared) the message line of the open conversation."""
        conv = self.conv
        if conv is None or not self.client.connected or conv.target.channel is not None:
            return  # no typing in channels
        if conv.target.group is not None:
            await self.client.typing(group=conv.target.group, typing=typing)
        else:
            await self.client.typing(to=conv.target.peer, typing=typing)

    def typing_now(self) -> list[str]:
        return self.conv.typing_now(self.clock()) if self.conv is not None else []

    # ------------------------------------------------------------------ events

    async def run(self) -> None:
        """Apply every client event until the client ends (raises what ended it)."""
        async for event in self.client:
            await self.handle(event)

    async def handle(self, event: ClientEvent) -> None:
        if isinstance(event, MessageReceived | GroupChanged):
            await self._message(event.message)  # a group change is a line of its timeline
        elif isinstance(event, ReadReceipt):
            self._read(event)
        elif isinstance(event, TypingEvent):
            conv = self.conv
            if conv is not None and (
                (event.group is not None and conv.target.group == event.group)
                or (event.group is None and conv.target.peer == event.user)
            ):
                conv.typing_event(event.user, event.typing, event.ttl, self.clock())
        elif isinstance(event, PresenceChanged):
            self.online[event.user] = event.online
            self.last_seen[event.user] = event.last_seen
        elif isinstance(event, ContactEvent):
            text = _CONTACT_NOTES.get(event.event)
            if text is not None:
                self.note(text.format(u=event.user))
            if event.event == "accepted":
                self._background(self._presence([event.user]))
        elif isinstance(event, Disconnected):
            self.state = "reconnecting"
            self.detail = event.reason or (str(event.code) if event.code else "connection lost")
        elif isinstance(event, Reconnected):
            self.state, self.detail = "connected", ""
            peers = [e.peer for e in self.chats.entries.values() if e.peer]
            self._background(self._presence(peers))  # changes meanwhile were not pushed
            if self.conv is not None and not self.conv.loaded:
                self._background(self.open(self.conv.target))  # its history had failed
            elif self.conv is not None and self.conv.target.channel is not None:
                # news while away was not pushed (it is ephemeral): fetch what is new
                channel = self.conv.target.channel
                self._background(self.channel_news(ChannelNewsEvent(channel, 1 << 62)))
            if any(e.kind == "channel" for e in self.chats.entries.values()):
                self._background(self.reload_list())  # channels' counts moved meanwhile
        elif isinstance(event, Resync):
            self._background(self._resync())
        elif isinstance(event, ChannelNewsEvent):
            self._background(self.channel_news(event))
        elif isinstance(event, ChannelChanged):
            self._background(self.reload_list())
        elif isinstance(event, CallbackAnswered | MessageEdited):
            self.bot_event(event)
        self.changed()

    async def _message(self, m: ChatMessage) -> None:
        ev_name = m.event.get("name") if m.event is not None else None
        if m.group is not None and isinstance(ev_name, str) and ev_name:
            self.names.groups[m.group] = ev_name
        conv = self.conv
        here = conv is not None and conv.belongs(m, self.me)
        viewing = m.conv if here else None
        if not self.chats.message(m, self.me, viewing=viewing):
            self._background(self.reload_list())  # a group we just joined
        added = conv is not None and here and conv.add_live(m)
        if conv is not None and added and m.sender != self.me and m.event is None:
            await self._mark_read(conv)  # it is on screen
            if conv.target.group is not None:
                self._background(self.refresh_receipts())
        self._background(self.fetch_names([m.sender]))

    def _read(self, event: ReadReceipt) -> None:
        if event.user == self.me:
            if not self.chats.read(event.conv, event.pos):
                self._background(self.reload_list())  # partly read elsewhere: recount
            return
        conv = self.conv
        if conv is not None and conv.conv == event.conv:
            conv.peer_read(event.user, event.pos)

    async def _resync(self) -> None:
        await self.reload_list()
        if self.conv is not None:
            await self.open(self.conv.target)

    def last_seen_text(self, user: str) -> str | None:
        seen = self.last_seen.get(user)
        return datetime.fromtimestamp(seen / 1000).strftime("%Y-%m-%d %H:%M") if seen else None
