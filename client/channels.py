"""`client.channels`: forum channels (SPEC.md 24).

    ch = await client.channels.create("news", about="launch news", members_post=True)
    await client.channels.join(ch.channel)                 # on another client; or
    await client.channels.join(link)                       # "liaotian:channel/12?invite=..."
    posted = await client.channels.post(ch.channel, "hello")
    await client.channels.comment(ch.channel, posted.pos, "welcome")
    await client.channels.like(ch.channel, posted.pos)
    page = await client.channels.fetch(ch.channel, after=0)
    hits = await client.channels.search(ch.channel, "hello")
    for c in await client.channels.list(): ...            # with unread counts

A channel is one log that members read: posts are not pushed. An online member gets
`ChannelNewsEvent(channel, pos)` events (coalesced, ephemeral: dropped when the event queue
is full, never replayed) and fetches what it has not seen with `fetch(after=...)`, or
`catch_up()`. Joining, leaving and bans, on any of the user's devices, arrive as
`ChannelChanged` log events. A post carries a client message id (cmid) and is repeated with
it until answered, so it is stored once; other writes are not repeated after a lost
connection. Refusals raise RequestError: NOT_MEMBER, BANNED, NOT_ALLOWED, FORBIDDEN,
CONFLICT, GROUP_FULL, SLOW_MODE (with `retry_after`), LIMIT_REACHED, NOT_FOUND, ...
"""

from __future__ import annotations

import asyncio
import builtins
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from liaotian.protocol import ErrorCode, RequestError
from liaotian.protocol.channels import (
    ChannelBan,
    ChannelComment,
    ChannelCreate,
    ChannelDelete,
    ChannelFetch,
    ChannelFind,
    ChannelFound,
    ChannelFoundEntry,
    ChannelHit,
    ChannelHits,
    ChannelInfo,
    ChannelJoin,
    ChannelLeave,
    ChannelLike,
    ChannelLikes,
    ChannelMemberEntry,
    ChannelMemberList,
    ChannelMembers,
    ChannelPage,
    ChannelPin,
    ChannelPost,
    ChannelPosted,
    ChannelPostEntry,
    ChannelRead,
    ChannelSearch,
    ChannelSetRole,
    ChannelTransfer,
    ChannelUpdate,
    GetChannel,
)
from liaotian.protocol.social import ConversationList, ConversationSummary, ListConversations, Ok

from .backoff import Backoff
from .facade import Facade
from .outbox import new_cmid

__all__ = ["ChannelSummary", "Channels", "invite_link", "parse_link"]

_RETRIED = frozenset({ErrorCode.INTERNAL_ERROR, ErrorCode.UNAVAILABLE})
_LINK = re.compile(r"^liaotian:channel/(\d+)(?:\?invite=([A-Za-z0-9_-]+))?$")


def invite_link(channel: int, invite: str | None) -> str:
    """The invitation link of a channel: `liaotian:channel/ID?invite=TOKEN` (just
    `liaotian:channel/ID` for an open channel without a token)."""
    return f"liaotian:channel/{channel}" + (f"?invite={invite}" if invite else "")


def parse_link(link: str) -> tuple[int, str] | None:
    """(channel, invitation token) of a link made by `invite_link`, or None."""
    m = _LINK.match(link.strip())
    return (int(m.group(1)), m.group(2) or "") if m else None


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    """One of the user's channels as the chat list shows it (SPEC.md 24.4)."""

    channel: int
    name: str
    unread: int  # newest position minus the read position (capped like chats)
    read: int
    ts: int  # time of the newest post, or of the channel's creation (ms)


class Channels(Facade):
    """Channel requests of one client. Calling it (`await client.channels()`) lists the
    user's channels."""

    __slots__ = ()

    async def __call__(self) -> builtins.list[ChannelSummary]:
        return await self.list()

    # ------------------------------------------------------------------ the channel

    async def create(
        self,
        name: str,
        *,
        about: str = "",
        rules: str = "",
        open: bool = True,
        members_post: bool = False,
        slow_mode: int = 0,
    ) -> ChannelInfo:
        """A new channel owned by this user (its only member). `open`: anyone may join
        (else only with the invitation, see `invite_link`)."""
        msg = ChannelCreate(
            rid=0,
            name=name,
            about=about,
            rules=rules,
            open=open,
            members_post=members_post,
            slow_mode=slow_mode,
        )
        return await self._ask(msg, ChannelInfo, retry=False)

    async def info(self, channel: int) -> ChannelInfo:
        """The channel as this member sees it: settings, member count, newest position,
        pins, role, read position (and the invitation, for admins)."""
        return await self._ask(GetChannel(rid=0, channel=channel), ChannelInfo, retry=True)

    async def join(self, channel: int | str, invite: str = "") -> ChannelInfo:
        """Join by id (an open channel, or with its `invite` token) or by an invitation
        link. Show the answer's `rules` to the user. Joining twice is CONFLICT."""
        if isinstance(channel, str):
            parsed = parse_link(channel)
            if parsed is None:
                raise ValueError(f"not a channel link: {channel!r}")
            channel, invite = parsed[0], invite or parsed[1]
        return await self._ask(
            ChannelJoin(rid=0, channel=channel, invite=invite), ChannelInfo, retry=False
        )

    async def find(self, name: str) -> builtins.list[ChannelFoundEntry]:
        """Open channels of this name (ASCII case ignored), the most members first: how
        to join one by its name."""
        answer = await self._ask(ChannelFind(rid=0, name=name), ChannelFound, retry=True)
        return builtins.list(answer.channels)

    async def leave(self, channel: int) -> None:
        """Leave the channel (its owner only when nobody else is left: CONFLICT)."""
        await self._ask(ChannelLeave(rid=0, channel=channel), Ok, retry=False)

    async def update(
        self,
        channel: int,
        *,
        name: str | None = None,
        about: str | None = None,
        rules: str | None = None,
        open: bool | None = None,
        members_post: bool | None = None,
        slow_mode: int | None = None,
        new_invite: bool = False,
        no_invite: bool = False,
    ) -> ChannelInfo:
        """Change what is given (admins). `new_invite` replaces the invitation, voiding the
        old links; `no_invite` removes it."""
        msg = ChannelUpdate(
            rid=0,
            channel=channel,
            name=name,
            about=about,
            rules=rules,
            open=open,
            members_post=members_post,
            slow_mode=slow_mode,
            new_invite=new_invite,
            no_invite=no_invite,
        )
        return await self._ask(msg, ChannelInfo, retry=False)

    async def set_role(self, channel: int, user: str, role: str) -> None:
        """Make a member an "admin" or a plain "member" (the owner only)."""
        if role not in ("admin", "member"):
            raise ValueError("role must be 'admin' or 'member'")
        await self._ask(
            ChannelSetRole(rid=0, channel=channel, user=user, role=role), Ok, retry=False
        )

    async def transfer(self, channel: int, user: str) -> None:
        """Hand the channel to the member `user` (the owner only); you become an admin."""
        await self._ask(ChannelTransfer(rid=0, channel=channel, user=user), Ok, retry=False)

    async def members_page(
        self, channel: int, *, after: int | None = None, limit: int | None = None
    ) -> ChannelMemberList:
        """One page of members (admins); pass the answer's `next` as `after`."""
        msg = ChannelMembers(rid=0, channel=channel, after=after, limit=limit)
        return await self._ask(msg, ChannelMemberList, retry=True)

    async def members(
        self, channel: int, *, page_size: int | None = None
    ) -> AsyncIterator[ChannelMemberEntry]:
        """Every member with their role (admins), page by page."""
        after: int | None = None
        while True:
            page = await self.members_page(channel, after=after, limit=page_size)
            for m in page.members:
                yield m
            if page.next is None:
                return
            after = page.next

    async def ban(self, channel: int, user: str) -> None:
        """Remove `user` and keep them out (admins; admins only by the owner)."""
        await self._ask(ChannelBan(rid=0, channel=channel, user=user, ban=True), Ok, retry=False)

    async def unban(self, channel: int, user: str) -> None:
        await self._ask(ChannelBan(rid=0, channel=channel, user=user, ban=False), Ok, retry=False)

    # ------------------------------------------------------------------ writing

    async def post(self, channel: int, text: str, *, cmid: str | None = None) -> ChannelPosted:
        """A post (admins; members where the channel allows it), stored once: repeated with
        its cmid over reconnects and server errors until answered (`duplicate` then says a
        repetition found it done)."""
        msg = ChannelPost(rid=0, channel=channel, cmid=cmid or new_cmid(), text=text)
        session = self._session
        backoff = Backoff()
        async with asyncio.timeout(session.request_timeout):
            while True:
                try:
                    return await session.request(msg, ChannelPosted, retry=True, timeout=None)
                except RequestError as exc:
                    if exc.code not in _RETRIED:
                        raise
                await asyncio.sleep(backoff.next_delay())

    async def comment(self, channel: int, post: int, text: str) -> ChannelPosted:
        """A comment under post `post`; the answer's `n` is its number there."""
        return await self._ask(
            ChannelComment(rid=0, channel=channel, post=post, text=text),
            ChannelPosted,
            retry=False,
        )

    async def like(self, channel: int, post: int) -> int:
        """Like a post (once per member; again changes nothing); returns its like count."""
        msg = ChannelLike(rid=0, channel=channel, post=post, like=True)
        return (await self._ask(msg, ChannelLikes, retry=True)).likes

    async def unlike(self, channel: int, post: int) -> int:
        msg = ChannelLike(rid=0, channel=channel, post=post, like=False)
        return (await self._ask(msg, ChannelLikes, retry=True)).likes

    async def pin(self, channel: int, post: int, pin: bool = True) -> None:
        """Pin (or with pin=False unpin) a post (admins; at most the server's pin limit)."""
        await self._ask(ChannelPin(rid=0, channel=channel, post=post, pin=pin), Ok, retry=True)

    async def delete(self, channel: int, post: int, n: int = 0) -> None:
        """Delete a post (n = 0) or its n-th comment: your own, or any as an admin."""
        await self._ask(ChannelDelete(rid=0, channel=channel, post=post, n=n), Ok, retry=True)

    async def read(self, channel: int, pos: int) -> None:
        """Everything up to post `pos` has been read (the position only moves forward)."""
        await self._ask(ChannelRead(rid=0, channel=channel, pos=pos), Ok, retry=True)

    # ------------------------------------------------------------------ reading

    async def fetch(
        self,
        channel: int,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
    ) -> ChannelPage:
        """Posts after `after` (oldest first), else before `before` (or the newest), at
        most `limit` (the server's default 50, at most 200); `more` says further exist."""
        msg = ChannelFetch(rid=0, channel=channel, after=after, before=before, limit=limit)
        return await self._ask(msg, ChannelPage, retry=True)

    async def comments(
        self, channel: int, post: int, *, after: int = 0, limit: int | None = None
    ) -> ChannelPage:
        """The comments under `post` numbered above `after`."""
        msg = ChannelFetch(rid=0, channel=channel, post=post, after=after, limit=limit)
        return await self._ask(msg, ChannelPage, retry=True)

    async def catch_up(
        self, channel: int, after: int, *, page_size: int = 200
    ) -> AsyncIterator[ChannelPostEntry]:
        """Every post after position `after`, oldest first, page by page (what a
        `ChannelNewsEvent` announced)."""
        while True:
            page = await self.fetch(channel, after=after, limit=page_size)
            for p in page.posts:
                yield p
            if not page.more or not page.posts:
                return
            after = page.posts[-1].pos

    async def search(
        self, channel: int, query: str, *, limit: int | None = None, before_id: int | None = None
    ) -> builtins.list[ChannelHit]:
        """Posts (`n` 0) and comments having every word of `query`, newest first; page on
        with `before_id=` the last hit's id."""
        msg = ChannelSearch(rid=0, channel=channel, query=query, limit=limit, before_id=before_id)
        return builtins.list((await self._ask(msg, ChannelHits, retry=True)).hits)

    # ------------------------------------------------------------------ the chat list

    async def list(self) -> builtins.list[ChannelSummary]:
        """The user's channels with unread counts, newest activity first."""
        out: builtins.list[ChannelSummary] = []
        before: tuple[int, int] | None = None
        while True:
            page = await self.chat_list(limit=100, before=before)
            for e in page.conversations:
                if e.kind == "channel":
                    out.append(_summary(e))
            if not page.more or not page.conversations:
                return out
            last = page.conversations[-1]
            before = (last.ts, last.conv)

    async def chat_list(
        self, limit: int | None = None, before: tuple[int, int] | None = None
    ) -> ConversationList:
        """One page of the chat list with the channels beside the chats (entries of kind
        "channel"), newest first; for the next page pass `before=(ts, conv)` of the last."""
        b_ts, b_conv = before if before is not None else (None, None)
        msg = ListConversations(
            rid=0, limit=limit, before_ts=b_ts, before_conv=b_conv, channels=True
        )
        return await self._ask(msg, ConversationList, retry=True)

    async def resolve(self, channel: int | str) -> int:
        """A channel id from an id, "#ID", or the name of one of the user's channels
        (ValueError when no channel or several have that name)."""
        if isinstance(channel, int):
            return channel
        text = channel.strip()
        if text.removeprefix("#").isdigit():
            return int(text.removeprefix("#"))
        parsed = parse_link(text)
        if parsed is not None:
            return parsed[0]
        found = [c for c in await self.list() if c.name == text]
        if not found:
            found = [c for c in await self.list() if c.name.casefold() == text.casefold()]
        if len(found) == 1:
            return found[0].channel
        if not found:
            raise ValueError(f"you are in no channel named {text!r}")
        ids = ", ".join(f"#{c.channel}" for c in found)
        raise ValueError(f"several of your channels are named {text!r}: {ids}; give the number")


def _summary(e: ConversationSummary) -> ChannelSummary:
    return ChannelSummary(
        channel=e.channel if e.channel is not None else e.conv,
        name=e.name,
        unread=e.unread,
        read=e.read,
        ts=e.ts,
    )
