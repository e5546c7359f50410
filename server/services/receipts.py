"""Read markers, receipts and the chat list.

Read state is one "read up to position N" marker per user and conversation. Moving it adds
a READ entry to the reader's own log (their other devices follow) and, in a direct
conversation, to the other participant's log (the sender learns it was read). Group
markers are not fanned out: members ask with GET_RECEIPTS, so a large group reading does
not turn into a storm of updates. Delivered is derived from device positions.

Who sees a user's positions is that user's privacy `receipts` (SPEC.md 18.5): read
positions go to the viewers it allows; delivered positions, which move when a device
connects, also need the user's presence privacy to allow the viewer. Hidden positions are
answered as 0 ("nothing yet"), so neither the setting nor a block shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgpack
from liaotian.protocol import ChatMessage, ErrorCode, MessageType, RequestError, UpdateKind
from liaotian.protocol.social import (
    ConversationList,
    ConversationSummary,
    GetReceipts,
    ListConversations,
    Marker,
    Ok,
    Read,
    Receipts,
)

from ..store import StoreClosed
from ..store.base import Needs, Refused, WriteOp
from ..store.batch import Batch
from ..store.state import Social

if TYPE_CHECKING:
    from ..app import Server
    from ..transport import ServerConnection

_packb = msgpack.packb
DEFAULT_CONVERSATIONS = 20
# `unread` is counted up to this many (SPEC 19.1): the count reads each unread message,
# so uncapped, one chat list could read a whole conversation's backlog.
UNREAD_CAP = 1000


def shows_read(owner: Social, viewer: int) -> bool:
    """Whether `viewer` may see the read positions of the user whose settings are `owner`."""
    return owner.shows(owner.receipts, viewer)


def shows_delivered(owner: Social, viewer: int) -> bool:
    """Delivered positions move when a device connects: presence privacy applies too."""
    return owner.shows(owner.receipts, viewer) and owner.shows(owner.presence, viewer)


class ReadOp(WriteOp):
    def __init__(self, conn: ServerConnection, msg: Read, peer: int | None) -> None:
        self.origin = conn
        self.rid = msg.rid
        self.actor = conn.user_id
        self.conv = msg.conv
        self.pos = msg.pos
        self.peer = peer  # the other participant of a direct conversation

    def needs(self, n: Needs, batch: Batch) -> None:
        n.convs.add(self.conv)
        n.users.add(self.actor)
        if self.peer is not None:
            n.users.add(self.peer)
            n.social.add(self.actor)

    def plan(self, batch: Batch) -> None:
        if self.pos > batch.last_pos(self.conv):
            raise Refused(ErrorCode.INVALID_FIELD, "pos is beyond the conversation's end")
        data = _packb({"conv": self.conv, "user": batch.username(self.actor), "pos": self.pos})
        batch.log(self.actor, UpdateKind.READ, data)
        if self.peer is not None and self.peer != self.actor \
                and shows_read(batch.social_ro(self.actor), self.peer):
            batch.log(self.peer, UpdateKind.READ, data)
        batch.stage("INSERT INTO read_markers (user_id, conv_id, pos) VALUES (?, ?, ?) "
                    "ON CONFLICT (user_id, conv_id) DO UPDATE SET pos = max(pos, excluded.pos)",
                    (self.actor, self.conv, self.pos))

    def answer_frame(self) -> tuple[bytes, int]:
        return Ok(rid=self.rid).encode(), int(MessageType.OK)


class ReceiptService:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.store = server.store
        r = server.router
        r.route(Read, self.read)
        r.route(GetReceipts, self.receipts)
        r.route(ListConversations, self.conversations)

    async def participants(self, uid: int, conv: int) -> tuple[str, list[int]]:
        """("direct"|"group", the other participants) or NOT_MEMBER."""
        found = await self.store.conversation(conv)
        if found is not None and found[0] == 1 and uid in (found[1], found[2]):
            other = found[2] if found[1] == uid else found[1]
            return "direct", [other] if other is not None and other != uid else []
        if found is not None and found[0] == 2:
            g = await self.store.group_state(conv)
            if g is not None and uid in g.members:
                return "group", [u for u in g.members if u != uid]
        raise RequestError(ErrorCode.NOT_MEMBER)

    async def read(self, conn: ServerConnection, msg: Read) -> None:
        kind, others = await self.participants(conn.user_id, msg.conv)
        if msg.pos <= await self.store.read_marker(conn.user_id, msg.conv):
            conn.send(Ok(rid=msg.rid))  # markers only move forward
            return
        peer = (others[0] if others else conn.user_id) if kind == "direct" else None
        wait = self.server.writes.rows(conn.user_id, self.server.loop.time(),
                                       1 if peer is None else 2)  # log rows, throttle.py
        if wait is not None:
            raise RequestError(ErrorCode.RATE_LIMITED, "writing too fast",
                               retry_after=round(wait, 3))
        try:
            self.store.submit(ReadOp(conn, msg, peer))
        except StoreClosed:
            raise RequestError(ErrorCode.UNAVAILABLE) from None

    async def receipts(self, conn: ServerConnection, msg: GetReceipts) -> None:
        _kind, others = await self.participants(conn.user_id, msg.conv)
        others = others[: self.server.config.max_group_size]
        markers = await self.store.read_markers(msg.conv)
        names = await self.store.usernames(others)
        me = conn.user_id
        read, delivered = [], []
        for u in others:  # hidden positions are 0: nothing tells them from "not yet"
            soc = await self.store.social_of(u)
            read.append(Marker(user=names[u],
                               pos=markers.get(u, 0) if shows_read(soc, me) else 0))
            delivered.append(Marker(user=names[u], pos=await self.store.delivered_pos(
                u, msg.conv) if shows_delivered(soc, me) else 0))
        conn.send(Receipts(rid=msg.rid, conv=msg.conv, read=tuple(read),
                          delivered=tuple(delivered)))

    async def conversations(self, conn: ServerConnection, msg: ListConversations) -> None:
        limit = msg.limit or DEFAULT_CONVERSATIONS
        before = None
        if msg.before_ts is not None:
            before = (msg.before_ts, msg.before_conv if msg.before_conv is not None else 1 << 62)
        rows = await self.store.conversations_of(conn.user_id, limit, before)
        more = len(rows) > limit
        rows = rows[:limit]
        names = await self.store.usernames({r[2] for r in rows if r[2] is not None})
        out = []
        for conv, kind, peer, gname, ts, body, last_pos, read_pos, joined_pos in rows:
            seen = max(read_pos, joined_pos - 1)
            unread = await self.store.unread_count(conn.user_id, conv, seen, cap=UNREAD_CAP) \
                if last_pos > seen else 0
            last = ChatMessage.from_wire(msgpack.unpackb(body, raw=False), 0) if body else None
            out.append(ConversationSummary(
                conv=conv, kind="direct" if kind == 1 else "group",
                name=names.get(peer, "") if kind == 1 else gname, ts=ts, unread=unread,
                read=read_pos, last=last, peer=names.get(peer) if kind == 1 else None,
                group=conv if kind == 2 else None))
        conn.send(ConversationList(rid=msg.rid, conversations=tuple(out), more=more))
