"""Channels (SPEC.md section 24): CHANNEL_* requests become operations (chat/ops.py)
planned by chat/rules/channels.py inside the group commit; GET_CHANNEL, CHANNEL_FETCH and
CHANNEL_SEARCH are reads. `NewsFanOut` tells online members that a channel has news.

The news fan-out: a post is one row, and its members are told of it by one small frame,
CHANNEL_NEWS {channel, pos}, encoded ONCE per channel and interval and written to every
online member's connections, as it is (no re-framing per connection), a thousand
connections per loop turn so that a flush to 10,000 members does not stall the loop. The
first news after a quiet interval leaves at once; posts within the interval after it are
coalesced into the newest position. Who is online in which channel is an index built
when a user comes online (one read of their channels) and kept by joins, leaves and bans
as they commit: a post never looks members up.

In a cluster (docs/cluster.md) a channel's members are spread over the nodes. The node
that committed posts, when it tells its own members, also hands the same {channel: pos}
to `publish` (one NATS notice per channel and interval, to the channel's subject), and
`interest(conv, on)` says when this node starts and stops holding a member of a channel
(its subscription to that subject). What another node publishes arrives in `heard` and
is told here like a local post, coalesced in the same interval, but not published again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from liaotian.protocol import ErrorCode, MessageType, RequestError
from liaotian.protocol.channels import (
    ChannelBan,
    ChannelComment,
    ChannelCommentEntry,
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
    ChannelNews,
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
from liaotian.protocol.text import check_field

from ..chat import ops
from ..chat.model import ROLE_ADMIN, ROLE_NAMES, ChannelMember, ChannelState
from ..chat.policy import Policy
from ..net.peer import Peer
from ..net.router import Router
from ..store import Store
from .throttle import WriteBudget

log = logging.getLogger("liaotian.channels")
PAGE = 50  # CHANNEL_FETCH / CHANNEL_SEARCH items when the request gives no limit
FIND_MAX = 20  # CHANNEL_FOUND entries at most
MEMBERS_PAGE = 200  # CHANNEL_MEMBERS entries when the request gives no limit
NEWS_INTERVAL = 0.05  # seconds: news is flushed at most once per interval
NEWS_CHUNK = 1000  # connections a news flush writes to per loop turn
_NEWS = int(MessageType.CHANNEL_NEWS)
_WATCHED = frozenset(
    {ops.Post, ops.CreateChannel, ops.JoinChannel, ops.LeaveChannel, ops.BanMember}
)


def new_invite() -> str:
    return secrets.token_urlsafe(16)


def channel_info(rid: int, ch: ChannelState, m: ChannelMember, owner: str) -> ChannelInfo:
    return ChannelInfo(
        rid=rid,
        channel=ch.conv,
        name=ch.name,
        about=ch.about,
        rules=ch.rules,
        owner=owner,
        created=ch.created,
        open=ch.open,
        members_post=ch.members_post,
        slow_mode=ch.slow_mode,
        members=ch.members,
        pos=ch.last_pos,
        pins=ch.pins,
        role=ROLE_NAMES[m.role],
        read=m.read_pos,
        invite=ch.invite or None if m.role >= ROLE_ADMIN else None,
    )


# ---------------------------------------------------------------------------- requests -> ops


def _create(c: Peer, m: ChannelCreate) -> ops.Op:
    return ops.CreateChannel(
        actor=c.user_id,
        name=m.name,
        about=m.about,
        rules=m.rules,
        open=m.open,
        members_post=m.members_post,
        slow_mode=m.slow_mode,
        invite=new_invite(),
    )


def _update(c: Peer, m: ChannelUpdate) -> ops.Op:
    invite = new_invite() if m.new_invite else "" if m.no_invite else None
    return ops.UpdateChannel(
        actor=c.user_id,
        channel=m.channel,
        name=m.name,
        about=m.about,
        rules=m.rules,
        open=m.open,
        members_post=m.members_post,
        slow_mode=m.slow_mode,
        invite=invite,
    )


MAKERS: dict[type, Callable[[Peer, Any], ops.Op]] = {
    ChannelCreate: _create,
    ChannelUpdate: _update,
    ChannelJoin: lambda c, m: ops.JoinChannel(actor=c.user_id, channel=m.channel, invite=m.invite),
    ChannelLeave: lambda c, m: ops.LeaveChannel(actor=c.user_id, channel=m.channel),
    ChannelSetRole: lambda c, m: ops.SetChannelRole(
        actor=c.user_id, channel=m.channel, user=m.user, role=m.role
    ),
    ChannelTransfer: lambda c, m: ops.TransferChannel(
        actor=c.user_id, channel=m.channel, user=m.user
    ),
    ChannelBan: lambda c, m: ops.BanMember(
        actor=c.user_id, channel=m.channel, user=m.user, ban=m.ban
    ),
    ChannelPost: lambda c, m: ops.Post(
        actor=c.user_id, channel=m.channel, text=m.text, cmid=m.cmid
    ),
    ChannelComment: lambda c, m: ops.Comment(
        actor=c.user_id, channel=m.channel, post=m.post, text=m.text
    ),
    ChannelLike: lambda c, m: ops.Like(
        actor=c.user_id, channel=m.channel, post=m.post, like=m.like
    ),
    ChannelPin: lambda c, m: ops.Pin(actor=c.user_id, channel=m.channel, post=m.post, pin=m.pin),
    ChannelDelete: lambda c, m: (
        ops.DeleteComment(actor=c.user_id, channel=m.channel, post=m.post, n=m.n)
        if m.n
        else ops.DeletePost(actor=c.user_id, channel=m.channel, post=m.post)
    ),
    ChannelRead: lambda c, m: ops.ReadChannel(actor=c.user_id, channel=m.channel, read_pos=m.pos),
}


# ---------------------------------------------------------------------------- answers


def _info_answer(op: ops.CreateChannel | ops.JoinChannel | ops.UpdateChannel) -> tuple[bytes, int]:
    assert op.state is not None and op.member is not None
    return channel_info(op.rid, op.state, op.member, op.owner_name).encode(), int(
        MessageType.CHANNEL_INFO
    )


def _posted_answer(op: ops.Post | ops.Comment) -> tuple[bytes, int]:
    n = op.n if isinstance(op, ops.Comment) else 0
    dup = op.duplicate if isinstance(op, ops.Post) else False
    return ChannelPosted(
        rid=op.rid, channel=op.channel, pos=op.pos, n=n, id=op.id, ts=op.ts, duplicate=dup
    ).encode(), int(MessageType.CHANNEL_POSTED)


def _likes_answer(op: ops.Like) -> tuple[bytes, int]:
    return ChannelLikes(rid=op.rid, channel=op.channel, post=op.post, likes=op.likes).encode(), int(
        MessageType.CHANNEL_LIKES
    )


ANSWERS: dict[type, Callable[[Any], tuple[bytes, int]]] = {
    ops.CreateChannel: _info_answer,
    ops.JoinChannel: _info_answer,
    ops.UpdateChannel: _info_answer,
    ops.Post: _posted_answer,
    ops.Comment: _posted_answer,
    ops.Like: _likes_answer,
}


class ChannelHandlers:
    def __init__(
        self, store: Store, writes: WriteBudget, policy: Policy, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.writes = writes
        self.policy = policy
        self.clock = clock  # monotonic seconds (the loop's)

    def route(self, r: Router) -> None:
        for cls in MAKERS:
            r.route(cls, self._submitter(MAKERS[cls]))
        r.route(GetChannel, self.get_channel)
        r.route(ChannelFetch, self.fetch)
        r.route(ChannelSearch, self.search)
        r.route(ChannelMembers, self.members)
        r.route(ChannelFind, self.find)

    def _submitter(self, make: Callable[[Peer, Any], ops.Op]) -> Any:
        def handler(conn: Peer, msg: Any) -> None:
            for name in ("name", "about", "rules"):  # shown to every member
                value = getattr(msg, name, None)
                if isinstance(value, str):
                    check_field(name, value)
            self.writes.charge(conn.user_id, self.clock())
            op = make(conn, msg)
            op.session, op.rid, op.policy = conn.id, msg.rid, self.policy
            self.store.submit(op)

        return handler

    async def _membership(self, conn: Peer, channel: int) -> tuple[ChannelState, ChannelMember]:
        ch = await self.store.channel(channel)
        m = await self.store.channel_member(channel, conn.user_id) if ch is not None else None
        if ch is None or m is None:
            if ch is not None and await self.store.channel_banned(channel, conn.user_id):
                raise RequestError(ErrorCode.BANNED)
            raise RequestError(ErrorCode.NOT_MEMBER)
        return ch, m

    async def get_channel(self, conn: Peer, msg: GetChannel) -> None:
        ch, m = await self._membership(conn, msg.channel)
        owner = (await self.store.usernames([ch.owner])).get(ch.owner, "")
        conn.send(channel_info(msg.rid, ch, m, owner))

    async def fetch(self, conn: Peer, msg: ChannelFetch) -> None:
        ch, _m = await self._membership(conn, msg.channel)
        limit = msg.limit or PAGE
        if msg.post is not None:
            rows = await self.store.channel_comments(ch.conv, msg.post, msg.after or 0, limit + 1)
            conn.send(
                ChannelPage(
                    rid=msg.rid,
                    channel=ch.conv,
                    post=msg.post,
                    more=len(rows) > limit,
                    comments=tuple(
                        ChannelCommentEntry(
                            n=c.n, id=c.id, author=c.author, ts=c.ts, text=c.text, deleted=c.deleted
                        )
                        for c in rows[:limit]
                    ),
                )
            )
            return
        posts = await self.store.channel_posts(
            ch.conv, after=msg.after, before=msg.before, limit=limit + 1
        )
        more = len(posts) > limit
        posts = (
            posts[:limit]
            if msg.after is not None
            else posts[len(posts) - limit :]
            if more
            else posts
        )
        liked = await self.store.channel_liked(ch.conv, conn.user_id, [p.pos for p in posts])
        conn.send(
            ChannelPage(
                rid=msg.rid,
                channel=ch.conv,
                more=more,
                posts=tuple(
                    ChannelPostEntry(
                        pos=p.pos,
                        id=p.id,
                        author=p.author,
                        ts=p.ts,
                        text=p.text,
                        likes=p.likes,
                        comments=p.comments,
                        deleted=p.deleted,
                        liked=p.pos in liked,
                    )
                    for p in posts
                ),
            )
        )

    async def find(self, conn: Peer, msg: ChannelFind) -> None:
        """Open channels by name, so a user joins one by its name (closed ones stay
        unlisted: their invitation is the way in)."""
        found = await self.store.channels_named(msg.name, FIND_MAX)
        conn.send(
            ChannelFound(
                rid=msg.rid,
                channels=tuple(
                    ChannelFoundEntry(
                        channel=ch.conv, name=ch.name, about=ch.about, members=ch.members
                    )
                    for ch in found
                ),
            )
        )

    async def members(self, conn: Peer, msg: ChannelMembers) -> None:
        """A page of members, for admins (a member list of a forum is not every reader's
        to collect). Paged by user id: one index range read, however large the channel."""
        ch, m = await self._membership(conn, msg.channel)
        if m.role < ROLE_ADMIN:
            raise RequestError(ErrorCode.FORBIDDEN, "only admins list the members")
        limit = msg.limit or MEMBERS_PAGE
        rows = await self.store.channel_members(ch.conv, msg.after or 0, limit + 1)
        page = rows[:limit]
        conn.send(
            ChannelMemberList(
                rid=msg.rid,
                channel=ch.conv,
                members=tuple(
                    ChannelMemberEntry(user=name, role=ROLE_NAMES[role]) for _u, name, role in page
                ),
                next=page[-1][0] if len(rows) > limit else None,
            )
        )

    async def search(self, conn: Peer, msg: ChannelSearch) -> None:
        ch, _m = await self._membership(conn, msg.channel)
        hits = await self.store.channel_search(ch.conv, msg.query, msg.limit or PAGE, msg.before_id)
        conn.send(
            ChannelHits(
                rid=msg.rid,
                channel=ch.conv,
                hits=tuple(
                    ChannelHit(post=h.post, n=h.n, id=h.id, author=h.author, ts=h.ts, text=h.text)
                    for h in hits
                ),
            )
        )


# ---------------------------------------------------------------------------- news


class NewsFanOut:
    """Coalesced CHANNEL_NEWS to the online members of channels with new posts."""

    def __init__(
        self,
        store: Store,
        of_user: Callable[[int], Sequence[Any]],
        loop: asyncio.AbstractEventLoop,
        interval: float = NEWS_INTERVAL,
        chunk: int = NEWS_CHUNK,
    ) -> None:
        self.store = store
        self.of_user = of_user
        self.loop = loop
        self.interval = interval
        self.online: dict[int, set[int]] = {}  # channel -> its members with a connection
        self.channels_of: dict[int, set[int]] = {}  # online user -> their channels
        self.pending: dict[int, int] = {}  # channel -> newest position not yet told
        self.remote: dict[int, int] = {}  # the same, of posts other nodes committed
        # a cluster's (app.py): whether a member of a channel is here; news to publish
        self.interest: Callable[[int, bool], None] = lambda conv, on: None
        self.publish: Callable[[dict[int, int]], None] = lambda news: None
        self.chunk = chunk
        self._timer: asyncio.TimerHandle | None = None
        self._last = -interval  # loop time of the last flush
        # news being written: [frame, the members to tell, how many were told], in order
        self._work: deque[list[Any]] = deque()
        self._writing = False  # a _write_some is scheduled or running
        self.sent = 0  # frames written (for tests and the bench)

    # who is online where

    def presence(self, uid: int, online: bool) -> None:
        """The hub's presence callback: index a user's channels while they are online."""
        if online:
            self.channels_of.setdefault(uid, set())
            self.loop.create_task(self._load(uid))
        else:
            for conv in self.channels_of.pop(uid, ()):
                self._leave(uid, conv)

    async def _load(self, uid: int) -> None:
        try:
            rows = await self.store.channels_of(uid)
        except Exception:
            log.exception("loading the channels of user %d failed", uid)
            return
        for row in rows:
            self._watch(uid, row[0])

    def _watch(self, uid: int, conv: int) -> None:
        mine = self.channels_of.get(uid)
        if mine is not None:  # still online
            mine.add(conv)
            members = self.online.get(conv)
            if members is None:
                members = self.online[conv] = set()
                self.interest(conv, True)
            members.add(uid)

    def _unwatch(self, uid: int, conv: int) -> None:
        self.channels_of.get(uid, set()).discard(conv)
        self._leave(uid, conv)

    def _leave(self, uid: int, conv: int) -> None:
        members = self.online.get(conv)
        if members is not None:
            members.discard(uid)
            if not members:
                del self.online[conv]
                self.interest(conv, False)

    def heard(self, conv: int, pos: int) -> None:
        """Another node committed posts up to `pos` in a channel with members here."""
        if conv in self.online and pos > self.remote.get(conv, 0):
            self.remote[conv] = pos
            self._schedule()

    # after each commit

    def committed(self, done: list[Any]) -> None:
        for op in done:
            t = type(op)
            if t not in _WATCHED or op.error is not None:
                continue  # a SEND's commit pays one set lookup per op here
            if t is ops.Post and not op.duplicate:
                if op.pos > self.pending.get(op.channel, 0):
                    self.pending[op.channel] = op.pos
            elif t is ops.CreateChannel:
                self._watch(op.actor, op.state.conv)
            elif t is ops.JoinChannel:
                self._watch(op.actor, op.channel)
            elif t is ops.LeaveChannel:
                self._unwatch(op.actor, op.channel)
            elif t is ops.BanMember and op.ban:
                self._unwatch(op.target, op.channel)
        if self.pending:
            self._schedule()

    def _schedule(self) -> None:
        """The first news after a quiet interval goes out at once; more within the
        interval wait for its end and go out together (newest position)."""
        if self._timer is None:
            wait = self._last + self.interval - self.loop.time()
            self._timer = self.loop.call_later(max(0.0, wait), self.flush)

    def flush(self) -> None:
        """Tell each channel's online members its newest position: one frame per channel,
        the same bytes for all of them, written over as many loop turns as it takes."""
        self._timer = None
        self._last = self.loop.time()
        pending, self.pending = self.pending, {}
        if pending:
            self.publish(pending)  # the other nodes' members (a cluster's; else nothing)
        told = pending
        if self.remote:
            told = dict(pending)
            for conv, pos in self.remote.items():
                if pos > told.get(conv, 0):
                    told[conv] = pos
            self.remote = {}
        for conv, pos in told.items():
            members = self.online.get(conv)
            if members:
                frame = ChannelNews(rid=0, channel=conv, pos=pos).encode()
                self._work.append([frame, list(members), 0])
        if self._work and not self._writing:
            self._writing = True
            self._write_some()

    def _write_some(self) -> None:
        """Write the queued news to at most `chunk` connections, then yield the loop: a
        flush to 10,000 members must not hold up every other connection for its whole
        length. Members are those online when the flush began (one who left meanwhile
        may still hear of a post from before they left); a connection closed meanwhile
        writes nothing."""
        t0 = time.perf_counter()
        sent = self.sent
        of_user = self.of_user
        work = self._work
        budget = self.chunk
        while work and budget > 0:
            item = work[0]
            frame, uids, i = item
            end = min(len(uids), i + budget)
            for uid in uids[i:end]:
                for c in of_user(uid):
                    c.write_shared(frame, _NEWS)  # to the socket as it is (transport.py)
                    self.sent += 1
            budget -= end - i
            if end < len(uids):
                item[2] = end
            else:
                work.popleft()
        if work:
            self.loop.call_soon(self._write_some)
        else:
            self._writing = False
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "news: %d frames in %.1f ms", self.sent - sent, (time.perf_counter() - t0) * 1000
            )
