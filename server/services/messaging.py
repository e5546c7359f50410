"""1:1 messaging: SEND into the group-commit writer, fan-out after commit, SYNC, ACK, HISTORY.

The hot path allocates no task per message: SEND validates and queues; the writer commits
a batch and calls `committed()`, which answers every sender and pushes to every live
connection in one pass. The message map is encoded once (by the store, and that same blob
is what sync and history read back); a recipient's update header is encoded once per user;
each connection gets one UPDATES frame per batch, in seq order with its SENT answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import msgpack
from liaotian.protocol import (
    Ack,
    Error,
    ErrorCode,
    History,
    MessageType,
    RequestError,
    Send,
    Sync,
    UpdateKind,
    encode_history_frame,
    encode_update,
    encode_updates_frame,
    pack_frame,
    validate_username,
)

from ..store import SendRequest, SendResult, StoreClosed
from .throttle import TokenBucket

if TYPE_CHECKING:
    from ..app import Server
    from ..transport import ServerConnection

_UPDATES = int(MessageType.UPDATES)
_SENT = int(MessageType.SENT)
_ERROR = int(MessageType.ERROR)
_WITH_EXTRAS = frozenset((ErrorCode.RATE_LIMITED, ErrorCode.LIMIT_REACHED))
_SYNC_READS = 3  # reads for one SYNC page at most (see sync)
_packb = msgpack.packb


class MessagingService:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.store = server.store
        self.hub = server.hub
        self.limits = server.limits
        # pages are cut by size too, so an answer always fits in one frame
        self._page_bytes = self.limits.max_frame_size - 1024
        self.store.on_sends_committed = self.committed
        self._buckets: dict[int, tuple[TokenBucket, TokenBucket]] = {}
        self._known = self.store._user_ids  # names already resolved need no syntax check
        self._groups = self.store._groups  # the writer's group images (member counts)
        r = server.router
        r.route(Send, self.send)
        r.route(Sync, self.sync)
        r.route(Ack, self.ack)
        r.route(History, self.history)

    # ------------------------------------------------------------------ send

    def send(self, conn: ServerConnection, msg: Send) -> None:
        limits = self.limits
        text = msg.text
        meta_size = len(_packb(msg.meta)) if msg.meta else 0  # encoded once, used twice
        self._charge(conn, len(text) + meta_size, self._rows(msg.group))
        if len(text) * 4 > limits.max_text_len and len(text.encode()) > limits.max_text_len:
            raise RequestError(ErrorCode.MESSAGE_TOO_LARGE,
                               f"text above {limits.max_text_len} bytes")
        if meta_size > limits.max_meta_size:
            raise RequestError(ErrorCode.MESSAGE_TOO_LARGE,
                               f"meta above {limits.max_meta_size} bytes")
        if msg.group is None and msg.to not in self._known and not validate_username(msg.to):
            raise RequestError(ErrorCode.UNKNOWN_USER)
        try:
            self.store.submit_send(SendRequest(
                sender_id=conn.user_id, sender_name=conn.username, to_name=msg.to,
                cmid=msg.cmid, text=text, meta=msg.meta, origin=conn, rid=msg.rid,
                group=msg.group))
        except StoreClosed:
            raise RequestError(ErrorCode.UNAVAILABLE) from None

    def _charge(self, conn: ServerConnection, size: int, rows: int) -> None:
        """Per-user token buckets for messages, bytes and update-log rows (shared with every
        other write, throttle.WriteBudget); refusal says when to retry."""
        now = self.server.loop.time()
        uid = conn.user_id
        buckets = self._buckets.get(uid)
        if buckets is None:
            if len(self._buckets) > 100_000:
                self._buckets.clear()  # idle users' full buckets: nothing lost by forgetting
            cfg = self.server.config
            buckets = self._buckets[uid] = (
                TokenBucket(cfg.send_rate, cfg.send_burst, now),
                TokenBucket(cfg.send_bytes_rate, cfg.send_bytes_burst, now))
        count, volume = buckets
        wait = count.take(now)
        if wait is None:
            wait = volume.take(now, size)
            if wait is not None:
                count.tokens += 1  # refund: the message was not sent
            else:
                wait = self.server.writes.rows(uid, now, rows)  # the update-log rows
                if wait is not None:
                    count.tokens += 1
                    volume.tokens += size
        if wait is not None:
            raise RequestError(ErrorCode.RATE_LIMITED, "sending too fast",
                               retry_after=round(wait, 3))

    def _rows(self, group: int | None) -> int:
        """Update-log rows a SEND writes: sender and recipient, or one per group member
        (the writer's image of the group when loaded; one until it is)."""
        if group is None:
            return 2
        g = self._groups.get(group)
        return len(g.members) if g is not None else 1

    def committed(self, ops: list[Any]) -> None:
        """After a commit: answer every op, push to live connections, in seq order."""
        out: dict[ServerConnection, list[Any]] = {}
        of_user = self.hub.of_user
        for req in ops:
            origin: ServerConnection | None = req.origin
            if req.error is not None:
                if origin is not None:
                    code = req.error
                    extra: dict[str, Any] = {}
                    if code in _WITH_EXTRAS:  # set by throttle.refuse in a WriteOp's plan
                        extra = {"retry_after": getattr(req, "error_retry_after", None),
                                 "data": getattr(req, "error_data", None) or {}}
                    _part(out, origin).append((
                        Error(rid=req.rid, code=int(code),
                              message=req.error_message or code.explanation,
                              **extra).encode(),
                        _ERROR, req.rid))
                continue
            if not isinstance(req, SendRequest):
                if origin is not None:
                    frame, msg_type = req.answer_frame()
                    _part(out, origin).append((frame, msg_type, req.rid))
                for p in req.pushes:
                    targets: Sequence[ServerConnection] = of_user(p.user)
                    if targets:
                        upd = encode_update(p.seq, p.kind, p.data)
                        for c in targets:
                            if c.live and p.seq > c.sent_upto and not (
                                    p.skip_origin and c is origin):
                                _push(out, c, p.seq, upd)
                continue
            res = req.result
            assert res is not None and origin is not None
            _part(out, origin).append((_sent_frame(req.rid, res), _SENT, req.rid))
            if res.duplicate:
                continue
            if res.fanout:
                self._fan_out(out, res, origin)
            targets = of_user(res.recipient_id) if res.recipient_id else ()
            if targets:
                upd = encode_update(res.recipient_seq, UpdateKind.MESSAGE, res.body)
                for c in targets:
                    if c.live and c is not origin and res.recipient_seq > c.sent_upto:
                        _push(out, c, res.recipient_seq, upd)
            if res.recipient_id and res.recipient_id != req.sender_id:
                targets = of_user(req.sender_id)
                if len(targets) > 1:
                    upd = encode_update(res.sender_seq, UpdateKind.MESSAGE, res.body)
                    for c in targets:
                        if c.live and c is not origin and res.sender_seq > c.sent_upto:
                            _push(out, c, res.sender_seq, upd)
        cached_head = self.store.cached_head
        counted = self.server.counters.frames_out  # ops: frames sent, by type
        pushes = 0
        for c, parts in out.items():
            head = cached_head(c.user_id) or c.sent_upto
            conn = c.conn
            for p in parts:
                if type(p) is tuple:
                    conn.send_frame(*p)
                    counted[p[1]] += 1  # ops
                else:
                    conn.send_frame(encode_updates_frame(0, p, head), _UPDATES)
                    pushes += 1  # ops
            c.flush()
        self.server.counters.pushes += pushes  # ops

    def _fan_out(self, out: dict[ServerConnection, list[Any]], res: SendResult,
                 origin: ServerConnection) -> None:
        """A group message: one encoded body, a per-member update header, one frame part per
        live connection; the sender's other connections get the sender's entry."""
        of_user = self.hub.of_user
        body = res.body
        for uid, seq in res.fanout:
            targets = of_user(uid)
            if targets:
                upd = encode_update(seq, UpdateKind.MESSAGE, body)
                for c in targets:
                    if c.live and seq > c.sent_upto:
                        _push(out, c, seq, upd)
        targets = of_user(origin.user_id)
        if len(targets) > 1:
            upd = encode_update(res.sender_seq, UpdateKind.MESSAGE, body)
            for c in targets:
                if c.live and c is not origin and res.sender_seq > c.sent_upto:
                    _push(out, c, res.sender_seq, upd)

    # ------------------------------------------------------------------ sync

    async def sync(self, conn: ServerConnection, msg: Sync) -> None:
        if conn.syncing:
            raise RequestError(ErrorCode.BAD_STATE, "a SYNC is already running")
        uid = conn.user_id
        head = max(await self.store.head(uid), conn.head_at_auth)
        if msg.since > head:  # maybe seen in a page of a batch not yet published
            head = max(head, await self.store.committed_head(uid))
        if msg.since > head:
            raise RequestError(ErrorCode.INVALID_CURSOR,
                               f"since {msg.since} is ahead of head {head}")
        limit = msg.limit or self.limits.default_sync_page
        conn.syncing = True
        conn.live = False
        try:
            self.store.record_position(uid, conn.device, msg.since)
            for _ in range(_SYNC_READS):
                page = await self.store.read_updates(uid, msg.since, limit, self._page_bytes)
                # Rows published while the read awaited the database may be in neither
                # its copy of the recent tail nor its snapshot of the folded logs. An
                # empty page tells the client it is caught up (it asks for no next page),
                # so with newer rows published, read again: they are in the tail now.
                published = self.store.cached_head(uid)
                if page.resync or page.updates or published is None or \
                        published <= msg.since:
                    break
        finally:
            conn.syncing = False
        # No await from here on: deciding "caught up" and going live must be atomic with
        # respect to commits, which publish heads and push in one step.
        committed = self.store.cached_head(uid)
        if page.resync:
            if committed is None:
                committed = await self.store.head(uid)
                committed = self.store.cached_head(uid) or committed
            self._go_live(conn, committed)
            conn.send_frame(encode_updates_frame(msg.rid, [], committed, resync=True),
                            _UPDATES, msg.rid)
            return
        if committed is None:  # nothing committed for this user since start-up
            more = len(page.updates) >= limit
            head = max(head, page.last_seq)
        else:
            more = page.last_seq < committed
            head = max(committed, page.last_seq)  # the page may hold a batch not yet published
        if not more:
            self._go_live(conn, max(page.last_seq, head))
        conn.send_frame(encode_updates_frame(msg.rid, page.updates, head, more=more),
                        _UPDATES, msg.rid)

    @staticmethod
    def _go_live(conn: ServerConnection, upto: int) -> None:
        conn.live = True
        conn.sent_upto = max(conn.sent_upto, upto)

    # ------------------------------------------------------------------ ack

    def ack(self, conn: ServerConnection, msg: Ack) -> Awaitable[None] | None:
        head = max(self.store.cached_head(conn.user_id) or 0, conn.head_at_auth)
        if msg.seq > head:  # rare: ask the database (a coroutine, run as a task)
            return self._ack_past_published_head(conn, msg)
        self.store.record_position(conn.user_id, conn.device, msg.seq)
        return None

    async def _ack_past_published_head(self, conn: ServerConnection, msg: Ack) -> None:
        """A batch is in the database from its COMMIT on, and in the caches only once the
        loop has published it; a SYNC page read in between shows its entries, and the
        device may acknowledge them before the publication. The database decides."""
        head = await self.store.committed_head(conn.user_id)
        if msg.seq > head:
            raise RequestError(ErrorCode.INVALID_CURSOR, f"ack {msg.seq} is ahead of {head}")
        self.store.record_position(conn.user_id, conn.device, msg.seq)

    # ------------------------------------------------------------------ history

    async def history(self, conn: ServerConnection, msg: History) -> None:
        min_pos = 1
        if msg.group is not None:
            g = await self.store.group_state(msg.group)
            member = g.members.get(conn.user_id) if g is not None else None
            if member is None:
                raise RequestError(ErrorCode.NOT_MEMBER)
            conv: int | None = msg.group
            min_pos = member.joined_pos
        else:
            peer = await self.store.user_id(msg.with_user) \
                if validate_username(msg.with_user) else None
            if peer is None:
                raise RequestError(ErrorCode.UNKNOWN_USER)
            conv = await self.store.direct_conv(conn.user_id, peer)
        limit = msg.limit or self.limits.default_history_page
        rows: list[bytes]
        if conv is None:
            rows, more = [], False
        else:
            rows, more = await self.store.history(conv, msg.before, msg.after, limit,
                                                  self._page_bytes, min_pos)
        conn.send_frame(encode_history_frame(msg.rid, rows, more), int(MessageType.HISTORY_PAGE),
                        msg.rid)


def _sent_frame(rid: int, res: SendResult) -> bytes:
    """SENT without building the dataclass: the same bytes as Sent(...).encode()."""
    frame: bytes = pack_frame(_SENT, rid, {"id": res.id, "conv": res.conv, "pos": res.pos,
                                           "ts": res.ts, "seq": res.sender_seq,
                                           "cmid": res.cmid, "duplicate": res.duplicate})
    return frame


def _part(out: dict[ServerConnection, list[Any]], c: ServerConnection) -> list[Any]:
    parts = out.get(c)
    if parts is None:
        parts = out[c] = []
    return parts


def _push(out: dict[ServerConnection, list[Any]], c: ServerConnection, seq: int,
          upd: bytes) -> None:
    parts = _part(out, c)
    if parts and type(parts[-1]) is list:
        parts[-1].append(upd)
    else:
        parts.append([upd])
    c.sent_upto = seq
