"""The chat app's channels and bot buttons, a part of `ChatController` (controller.py).

Channels (SPEC.md 24) sit in the chat list beside chats with unread counts (the server's:
newest position minus the read position). Opening one fetches its newest posts, marks them
read and tells whether the user may post (admins, or members where the channel allows it);
a CHANNEL_NEWS push fetches what is new when it is open, else raises its unread count.
Posts are shown as messages (author, time, text) with their likes and comments.

Bot messages (SPEC.md 26) carry buttons: the app shows them and `press` sends a PRESS;
the bot's answer arrives as a notice, its edit replaces the message on screen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import TypeVar

from liaotian.protocol import ChatMessage
from liaotian.protocol.channels import ChannelPostEntry

from ..client import Client
from ..events import CallbackAnswered, ChannelNewsEvent, MessageEdited
from .model import ChatList, Conversation
from .names import Names

__all__ = ["ChannelsAndButtons", "post_message"]

T = TypeVar("T")
PAGE = 50  # posts per fetch


def post_message(channel: int, p: ChannelPostEntry) -> ChatMessage:
    """A channel post as the conversation view's message."""
    return ChatMessage(
        id=p.id,
        conv=channel,
        pos=p.pos,
        sender=p.author,
        to="",
        ts=p.ts,
        cmid="",
        text="" if p.deleted else p.text,
    )


def _note(p: ChannelPostEntry) -> str:
    if p.deleted:
        return "deleted"
    parts = []
    if p.likes:
        parts.append(f"♥ {p.likes}")
    if p.comments:
        parts.append(f"{p.comments} comment{'s' if p.comments != 1 else ''}")
    return ", ".join(parts)


class ChannelsAndButtons:
    """Mixed into ChatController (which provides these)."""

    client: Client
    me: str
    names: Names
    chats: ChatList
    conv: Conversation | None
    channel_members: dict[int, int]

    def changed(self) -> None:
        raise NotImplementedError

    def note(self, text: str) -> None:
        raise NotImplementedError

    async def _try(self, what: str, request: Awaitable[T]) -> T | None:
        raise NotImplementedError

    def _background(self, work: Awaitable[None]) -> None:
        raise NotImplementedError

    async def fetch_names(self, users: Iterable[str]) -> None:
        raise NotImplementedError

    async def reload_list(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ channels

    def _add_posts(self, conv: Conversation, posts: Iterable[ChannelPostEntry]) -> int:
        assert conv.conv is not None
        n = 0
        for p in posts:
            n += conv.add([post_message(conv.conv, p)])
            conv.notes[p.pos] = _note(p)
        return n

    async def open_channel(self, conv: Conversation) -> None:
        channel = conv.target.channel
        assert channel is not None
        info = await self._try("channel", self.client.channels.info(channel))
        if info is not None:
            self.names.channels[channel] = info.name
            self.channel_members[channel] = info.members
            conv.can_post = info.role in ("owner", "admin") or info.members_post
        page = await self._try("posts", self.client.channels.fetch(channel, limit=PAGE))
        if page is None or self.conv is not conv:
            return
        conv.more_before = page.more
        self._add_posts(conv, page.posts)
        conv.loaded = True
        self.changed()
        await self._read_channel(conv)
        await self.fetch_names(m.sender for m in conv.messages.values())

    async def _read_channel(self, conv: Conversation) -> None:
        channel = conv.target.channel
        assert channel is not None
        newest = conv.newest
        self.chats.news(channel, newest, viewing=True)
        if newest > conv.marked:  # the list's count may be local: tell the server once
            conv.marked = newest
            await self._try("mark read", self.client.channels.read(channel, newest))
        self.changed()

    async def older_posts(self, conv: Conversation) -> int:
        channel = conv.target.channel
        assert channel is not None
        page = await self._try(
            "posts", self.client.channels.fetch(channel, before=conv.oldest, limit=PAGE)
        )
        if page is None:
            return 0
        conv.more_before = page.more
        n = self._add_posts(conv, page.posts)
        self.changed()
        self._background(self.fetch_names(p.author for p in page.posts))
        return n

    async def post(self, conv: Conversation, text: str) -> None:
        """Post `text` to the open channel; shown as pending until it is stored."""
        channel = conv.target.channel
        assert channel is not None
        pending = conv.pend(text)
        self.changed()
        if not conv.can_post:
            conv.settle(pending, None, "only the channel's admins post here")
            self.changed()
            return
        try:
            posted = await self.client.channels.post(channel, text)
        except Exception as exc:  # RequestError, ConnectionClosed, TimeoutError
            conv.settle(pending, None, str(exc) or type(exc).__name__)
            self.changed()
            return
        entry = ChannelPostEntry(
            pos=posted.pos,
            id=posted.id,
            author=self.me,
            ts=posted.ts,
            text=text,
            likes=0,
            comments=0,
        )
        conv.pending = [p for p in conv.pending if p.key != pending.key]
        self._add_posts(conv, [entry])
        await self._read_channel(conv)

    async def channel_news(self, event: ChannelNewsEvent) -> None:
        conv = self.conv
        if conv is not None and conv.target.channel == event.channel and conv.loaded:
            if event.pos > conv.newest:
                page = await self._try(
                    "posts", self.client.channels.fetch(event.channel, after=conv.newest)
                )
                if page is not None:
                    self._add_posts(conv, page.posts)
                    self._background(self.fetch_names(p.author for p in page.posts))
                await self._read_channel(conv)
            return
        if not self.chats.news(event.channel, event.pos):
            self._background(self.reload_list())

    # ------------------------------------------------------------------ bot buttons

    async def press(self, pos: int, data: str) -> None:
        """Press the button with `data` of the bot message at `pos` of the open chat."""
        conv = self.conv
        if conv is None or conv.conv is None:
            return
        if await self._try("press", self.client.bots.press(conv.conv, pos, data)) is not None:
            self.note(f"pressed: {data}")

    def bot_event(self, event: CallbackAnswered | MessageEdited) -> None:
        if isinstance(event, CallbackAnswered):
            if event.text:
                self.note(f"{self.names.person(event.bot)}: {event.text}")
            return
        self.chats.edited(event.conv, event.pos, event.text, event.meta, event.edited)
        conv = self.conv
        if conv is not None and conv.conv == event.conv:
            conv.edit(event.pos, event.text, event.meta, event.edited)
