"""Read markers, receipts and the chat list: READ becomes an operation (chat/ops.py)
planned by chat/rules/receipts.py inside the group commit; GET_RECEIPTS and
LIST_CONVERSATIONS are reads, filtered by the same rules.
"""

from __future__ import annotations

from collections.abc import Callable

import msgpack
from liaotian.protocol import ChatMessage, ErrorCode, RequestError
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

from ..chat import ops
from ..chat.model import KIND_DIRECT, KIND_GROUP
from ..chat.rules.receipts import shows_delivered, shows_read, unread_after
from ..net.peer import Peer
from ..net.router import Router
from ..store import Store
from .throttle import WriteBudget

DEFAULT_CONVERSATIONS = 20
# `unread` is counted up to this many (SPEC 19.1): the count reads each unread message,
# so uncapped, one chat list could read a whole conversation's backlog.
UNREAD_CAP = 1000


class ReceiptHandlers:
    def __init__(
        self, store: Store, writes: WriteBudget, max_group_size: int, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.writes = writes
        self.max_group_size = max_group_size
        self.clock = clock  # monotonic seconds (the loop's)

    def route(self, r: Router) -> None:
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

    async def read(self, conn: Peer, msg: Read) -> None:
        kind, others = await self.participants(conn.user_id, msg.conv)
        if msg.pos <= await self.store.read_marker(conn.user_id, msg.conv):
            conn.send(Ok(rid=msg.rid))  # markers only move forward
            return
        peer = (others[0] if others else conn.user_id) if kind == "direct" else None
        # log rows, throttle.py
        self.writes.charge_rows(conn.user_id, self.clock(), 1 if peer is None else 2)
        self.store.submit(
            ops.MarkRead(
                actor=conn.user_id,
                session=conn.id,
                rid=msg.rid,
                conv=msg.conv,
                read_pos=msg.pos,
                peer=peer,
            )
        )

    async def receipts(self, conn: Peer, msg: GetReceipts) -> None:
        _kind, others = await self.participants(conn.user_id, msg.conv)
        others = others[: self.max_group_size]
        markers = await self.store.read_markers(msg.conv)
        names = await self.store.usernames(others)
        me = conn.user_id
        read, delivered = [], []
        for u in others:  # hidden positions are 0: nothing tells them from "not yet"
            soc = await self.store.social_of(u)
            read.append(Marker(user=names[u], pos=markers.get(u, 0) if shows_read(soc, me) else 0))
            delivered.append(
                Marker(
                    user=names[u],
                    pos=await self.store.delivered_pos(u, msg.conv)
                    if shows_delivered(soc, me)
                    else 0,
                )
            )
        conn.send(
            Receipts(rid=msg.rid, conv=msg.conv, read=tuple(read), delivered=tuple(delivered))
        )

    async def conversations(self, conn: Peer, msg: ListConversations) -> None:
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
            seen = unread_after(read_pos, joined_pos)
            unread = (
                await self.store.unread_count(conn.user_id, conv, seen, cap=UNREAD_CAP)
                if last_pos > seen
                else 0
            )
            last = ChatMessage.from_wire(msgpack.unpackb(body, raw=False), 0) if body else None
            peer_name = names.get(peer) if kind == KIND_DIRECT and peer is not None else None
            out.append(
                ConversationSummary(
                    conv=conv,
                    kind="direct" if kind == KIND_DIRECT else "group",
                    name=(peer_name or "") if kind == KIND_DIRECT else (gname or ""),
                    ts=ts,
                    unread=unread,
                    read=read_pos,
                    last=last,
                    peer=peer_name,
                    group=conv if kind == KIND_GROUP else None,
                )
            )
        if msg.channels:
            out, more = await self._with_channels(conn.user_id, out, more, limit, before)
        conn.send(ConversationList(rid=msg.rid, conversations=tuple(out), more=more))

    async def _with_channels(
        self,
        uid: int,
        chats: list[ConversationSummary],
        more: bool,
        limit: int,
        before: tuple[int, int] | None,
    ) -> tuple[list[ConversationSummary], bool]:
        """The page with the user's channels merged in by (ts, conv): unread from positions
        (SPEC 24.4). A chat page cut at `limit` bounds what may come before its last entry."""
        b = before or (1 << 62, 1 << 62)
        mine = [
            ConversationSummary(
                conv=conv,
                kind="channel",
                name=name,
                ts=ts,
                unread=min(max(0, last - read), UNREAD_CAP),
                read=read,
                channel=conv,
            )
            for conv, name, _role, _n, last, read, ts in await self.store.channels_of(uid)
            if (ts, conv) < b
        ]
        if more and chats:  # chats beyond this page may be newer than some channels
            floor = (chats[-1].ts, chats[-1].conv)
            mine = [x for x in mine if (x.ts, x.conv) > floor]
        merged = sorted([*chats, *mine], key=lambda x: (x.ts, x.conv), reverse=True)
        return merged[:limit], more or len(merged) > limit
