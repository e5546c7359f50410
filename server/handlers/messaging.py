"""Messaging: SEND into the group-commit writer (answered and pushed by fanout.py after
the commit), SYNC, ACK, HISTORY.

The hot path allocates no task per message: SEND checks its size and budget and queues
a SendRequest (chat/ops.py), planned by chat/rules/send.py. A SEND with `media` (SPEC.md
25.5) is the one that waits: its blobs are read and checked (`media`, handlers/media.py's
prepare_send) before it is queued, so a text SEND pipelined behind it may commit first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
from liaotian.protocol import (
    Ack,
    ErrorCode,
    History,
    Limits,
    MessageType,
    RequestError,
    Send,
    Sync,
    encode_history_frame,
    encode_updates_frame,
    validate_username,
)

from ..chat.ledger import WalletPolicy
from ..chat.model import BotView
from ..chat.ops import SendRequest
from ..chat.rules.bots import check_buttons
from ..config import Config
from ..net.peer import Peer
from ..net.router import Router
from ..store import Store
from .throttle import TokenBucket, WriteBudget

_UPDATES = int(MessageType.UPDATES)
_SYNC_READS = 3  # reads for one SYNC page at most (see sync)
_packb = msgpack.packb
# a SEND's media: (the message map's media map, the blobs it references), or RequestError
MediaSend = Callable[[Peer, Send], Awaitable[tuple[dict[str, Any], tuple[bytes, ...]]]]


class MessagingHandlers:
    def __init__(
        self,
        store: Store,
        limits: Limits,
        config: Config,
        writes: WriteBudget,
        clock: Callable[[], float],
        media: MediaSend | None = None,
        rewards: WalletPolicy | None = None,
        bots: BotView | None = None,
    ) -> None:
        self.store = store
        # bots (SPEC.md 26): their own send limits, buttons, privacy mode in groups
        self.bots = bots if bots is not None else BotView()
        self.media = media  # None: this server has no media (SEND with media is 5001)
        # tasks a SEND completes (rules/tasks.py); None when none is configured
        self._rewards = rewards if rewards is not None and rewards.on_message else None
        self.limits = limits
        self.config = config
        self.writes = writes
        self.clock = clock  # monotonic seconds (the loop's)
        # pages are cut by size too, so an answer always fits in one frame
        self._page_bytes = self.limits.max_frame_size - 1024
        self._buckets: dict[int, tuple[TokenBucket, TokenBucket]] = {}
        self._known_user = self.store.known_user  # names resolved need no syntax check
        self._members_hint = self.store.members_hint

    def route(self, r: Router) -> None:
        r.route(Send, self.send)
        r.route(Sync, self.sync)
        r.route(Ack, self.ack)
        r.route(History, self.history)

    # ------------------------------------------------------------------ send

    def send(self, conn: Peer, msg: Send) -> Awaitable[None] | None:
        if msg.media is not None:
            return self._send_media(conn, msg)
        limits = self.limits
        text = msg.text
        meta_size = len(_packb(msg.meta)) if msg.meta else 0  # encoded once, used twice
        self._charge(conn, len(text) + meta_size, self._rows(msg.group))
        if len(text) * 4 > limits.max_text_len and len(text.encode()) > limits.max_text_len:
            raise RequestError(
                ErrorCode.MESSAGE_TOO_LARGE, f"text above {limits.max_text_len} bytes"
            )
        if meta_size > limits.max_meta_size:
            raise RequestError(
                ErrorCode.MESSAGE_TOO_LARGE, f"meta above {limits.max_meta_size} bytes"
            )
        if meta_size and "buttons" in msg.meta:
            self._check_buttons(conn, msg.meta["buttons"])
        if msg.group is None and not self._known_user(msg.to) and not validate_username(msg.to):
            raise RequestError(ErrorCode.UNKNOWN_USER)
        self.store.submit(
            SendRequest(
                sender_id=conn.user_id,
                sender_name=conn.username,
                to_name=msg.to,
                cmid=msg.cmid,
                text=text,
                meta=msg.meta,
                session=conn.id,
                rid=msg.rid,
                group=msg.group,
                rewards=self._rewards,
                bots=self._bots_of(msg.group),
            )
        )
        return None

    async def _send_media(self, conn: Peer, msg: Send) -> None:
        """A media message: the checks and charges of a text SEND (the media map counts as
        bytes), then its blobs' (which reads the store), then queued like any SEND."""
        if self.media is None:
            raise RequestError(ErrorCode.INTERNAL_ERROR, "this server has no media")
        limits = self.limits
        text = msg.text
        meta_size = len(_packb(msg.meta)) if msg.meta else 0
        media_size = len(_packb(msg.media.to_wire())) if msg.media is not None else 0
        self._charge(conn, len(text) + meta_size + media_size, self._rows(msg.group))
        if len(text.encode()) > limits.max_text_len:
            raise RequestError(
                ErrorCode.MESSAGE_TOO_LARGE, f"text above {limits.max_text_len} bytes"
            )
        if meta_size > limits.max_meta_size:
            raise RequestError(
                ErrorCode.MESSAGE_TOO_LARGE, f"meta above {limits.max_meta_size} bytes"
            )
        if meta_size and "buttons" in msg.meta:
            self._check_buttons(conn, msg.meta["buttons"])
        if msg.group is None and not self._known_user(msg.to) and not validate_username(msg.to):
            raise RequestError(ErrorCode.UNKNOWN_USER)
        media, refs = await self.media(conn, msg)
        self.store.submit(
            SendRequest(
                sender_id=conn.user_id,
                sender_name=conn.username,
                to_name=msg.to,
                cmid=msg.cmid,
                text=text,
                meta=msg.meta,
                session=conn.id,
                rid=msg.rid,
                group=msg.group,
                media=media,
                blob_refs=refs,
                rewards=self._rewards,
                bots=self._bots_of(msg.group),
            )
        )

    def _charge(self, conn: Peer, size: int, rows: int) -> None:
        """Per-user token buckets for messages, bytes and update-log rows (shared with every
        other write, throttle.WriteBudget); refusal says when to retry."""
        now = self.clock()
        uid = conn.user_id
        buckets = self._buckets.get(uid)
        if buckets is None:
            if len(self._buckets) > 100_000:
                self._buckets.clear()  # idle users' full buckets: nothing lost by forgetting
            cfg = self.config
            bot = uid in self.bots.names  # a bot has its own limits
            buckets = self._buckets[uid] = (
                TokenBucket(
                    cfg.bot_send_rate if bot else cfg.send_rate,
                    cfg.bot_send_burst if bot else cfg.send_burst,
                    now,
                ),
                TokenBucket(cfg.send_bytes_rate, cfg.send_bytes_burst, now),
            )
        count, volume = buckets
        wait = count.take(now)
        if wait is None:
            wait = volume.take(now, size)
            if wait is not None:
                count.tokens += 1  # refund: the message was not sent
            else:
                wait = self.writes.rows(uid, now, rows)  # the update-log rows
                if wait is not None:
                    count.tokens += 1
                    volume.tokens += size
        if wait is not None:
            raise RequestError(
                ErrorCode.RATE_LIMITED, "sending too fast", retry_after=round(wait, 3)
            )

    def _bots_of(self, group: int | None) -> BotView | None:
        """The bot view for a group send while any bot exists (rules/bots.py)."""
        return self.bots if group is not None and self.bots.names else None

    def _check_buttons(self, conn: Peer, buttons: Any) -> None:
        """Buttons are a bot's (SPEC.md 26.3), and well formed."""
        if conn.user_id not in self.bots.names:
            raise RequestError(ErrorCode.BOTS_ONLY, "only a bot's messages carry buttons")
        problem = check_buttons(buttons)
        if problem is not None:
            raise RequestError(ErrorCode.INVALID_FIELD, problem)

    def _rows(self, group: int | None) -> int:
        """Update-log rows a SEND writes: sender and recipient, or one per group member
        (the writer's image of the group when loaded; one until it is)."""
        if group is None:
            return 2
        members = self._members_hint(group)
        return members if members is not None else 1

    # ------------------------------------------------------------------ sync

    async def sync(self, conn: Peer, msg: Sync) -> None:
        if conn.syncing:
            raise RequestError(ErrorCode.BAD_STATE, "a SYNC is already running")
        uid = conn.user_id
        head = max(await self.store.head(uid), conn.head_at_auth)
        if msg.since > head:  # maybe seen in a page of a batch not yet published
            head = max(head, await self.store.committed_head(uid))
        if msg.since > head:
            raise RequestError(
                ErrorCode.INVALID_CURSOR, f"since {msg.since} is ahead of head {head}"
            )
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
                if page.resync or page.updates or published is None or published <= msg.since:
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
            conn.send_frame(
                encode_updates_frame(msg.rid, [], committed, resync=True), _UPDATES, msg.rid
            )
            return
        if committed is None:  # nothing committed for this user since start-up
            more = len(page.updates) >= limit
            head = max(head, page.last_seq)
        else:
            more = page.last_seq < committed
            head = max(committed, page.last_seq)  # the page may hold a batch not yet published
        if not more:
            self._go_live(conn, max(page.last_seq, head))
        conn.send_frame(
            encode_updates_frame(msg.rid, page.updates, head, more=more), _UPDATES, msg.rid
        )

    @staticmethod
    def _go_live(conn: Peer, upto: int) -> None:
        conn.live = True
        conn.sent_upto = max(conn.sent_upto, upto)

    # ------------------------------------------------------------------ ack

    def ack(self, conn: Peer, msg: Ack) -> Awaitable[None] | None:
        head = max(self.store.cached_head(conn.user_id) or 0, conn.head_at_auth)
        if msg.seq > head:  # rare: ask the database (a coroutine, run as a task)
            return self._ack_past_published_head(conn, msg)
        self.store.record_position(conn.user_id, conn.device, msg.seq)
        return None

    async def _ack_past_published_head(self, conn: Peer, msg: Ack) -> None:
        """A batch is in the database from its COMMIT on, and in the caches only once the
        loop has published it; a SYNC page read in between shows its entries, and the
        device may acknowledge them before the publication. The database decides."""
        head = await self.store.committed_head(conn.user_id)
        if msg.seq > head:
            raise RequestError(ErrorCode.INVALID_CURSOR, f"ack {msg.seq} is ahead of {head}")
        self.store.record_position(conn.user_id, conn.device, msg.seq)

    # ------------------------------------------------------------------ history

    async def history(self, conn: Peer, msg: History) -> None:
        min_pos = 1
        if msg.group is not None:
            g = await self.store.group_state(msg.group)
            member = g.members.get(conn.user_id) if g is not None else None
            if member is None:
                raise RequestError(ErrorCode.NOT_MEMBER)
            conv: int | None = msg.group
            min_pos = member.joined_pos
        else:
            peer = (
                await self.store.user_id(msg.with_user)
                if validate_username(msg.with_user)
                else None
            )
            if peer is None:
                raise RequestError(ErrorCode.UNKNOWN_USER)
            conv = await self.store.direct_conv(conn.user_id, peer)
        limit = msg.limit or self.limits.default_history_page
        rows: list[bytes]
        if conv is None:
            rows, more = [], False
        else:
            rows, more = await self.store.history(
                conv, msg.before, msg.after, limit, self._page_bytes, min_pos
            )
        conn.send_frame(
            encode_history_frame(msg.rid, rows, more), int(MessageType.HISTORY_PAGE), msg.rid
        )
