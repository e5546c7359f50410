"""Keeping each live session's stream gap-free when other nodes write to its user's log.

On one node every entry of a user's log is committed, and pushed, by that node, so the
fan-out may push whatever is above a connection's `sent_upto`. With several nodes writing,
the entries of one log come from several places: this node may commit seq 7 while seq 6,
written by another node, has not reached the session yet. So in a cluster the fan-out
pushes only the *next* entry (`push`: seq == sent_upto + 1); anything else, and every
notice from another node, asks this module to read the log from the session's position
(`behind`), the way SYNC does (SPEC.md 10.4): the log is the truth, a notice only says
"look". Each connection has at most one reader at a time; a request that arrives while it
reads makes it read once more.

The session's own sends: SENT carries the sender's entry and the sending connection gets
no push of it (SPEC.md 10.5). In order, SENT moves `sent_upto` like a push would; out of
order, its seq is remembered (`own`) and skipped when a read reaches it.

A notice that arrives while the session is not live (its SYNC runs) waits in `waiting`;
the node's ticker hands it over once the SYNC has made the session live (`tick`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgpack
from liaotian.protocol import CloseCode, MessageType, encode_updates_frame

from ..fanout import Out, _push
from ..net.peer import Peer
from ..store import Store, StoreUnavailable

log = logging.getLogger("liaotian.cluster")

_UPDATES = int(MessageType.UPDATES)
PAGE = 500  # entries per read
MAX_RETRIES = 20  # ticks a hint above what the log shows is retried before it is dropped


def seq_of(update: bytes) -> int:
    """The seq of a pre-encoded update ([seq, kind, data])."""
    u = msgpack.Unpacker()
    u.feed(update)
    u.read_array_header()
    seq: int = u.unpack()
    return seq


class CatchUp:
    def __init__(
        self,
        store: Store,
        is_open: Callable[[Peer], bool],
        max_bytes: int,
    ) -> None:
        self.store = store
        self.is_open = is_open  # whether a connection is still open (the hub's sessions)
        self.max_bytes = max_bytes  # a page fits in one frame
        self._reading: set[Peer] = set()
        self._again: set[Peer] = set()
        self._own: dict[Peer, set[int]] = {}
        # connections to look at once live: the highest head heard (0: unknown), retries
        self.waiting: dict[Peer, list[int]] = {}
        self.reads = 0  # log reads done (for tests and the bench)
        self.gaps = 0  # pushes the fan-out could not make in order

    # ------------------------------------------------------------------ fan-out hooks

    def push(self, out: Out, c: Peer, seq: int, upd: bytes) -> None:
        """The fan-out's push in a cluster: the next entry only, else read the log."""
        expect = c.sent_upto + 1
        own = self._own.get(c)
        if own:
            while expect in own:  # entries this connection had as SENT
                own.discard(expect)
                c.sent_upto = expect
                expect += 1
            if not own:
                del self._own[c]
        if seq == expect:
            _push(out, c, seq, upd)
        else:
            self.gaps += 1
            self.behind(c, seq)

    def sent(self, c: Peer, seq: int) -> None:
        """The connection was answered SENT for its own entry `seq`."""
        if not c.live or seq <= c.sent_upto:
            return
        if seq != c.sent_upto + 1:
            self._own.setdefault(c, set()).add(seq)
            return
        c.sent_upto = seq
        own = self._own.get(c)
        if own:
            while c.sent_upto + 1 in own:
                c.sent_upto += 1
                own.discard(c.sent_upto)
            if not own:
                del self._own[c]

    # ------------------------------------------------------------------ reading

    def behind(self, c: Peer, head: int = 0) -> None:
        """The log of `c`'s user reaches at least `head` (0: unknown): send what `c`
        lacks, now if it is live, else once it is."""
        if not c.live:
            w = self.waiting.get(c)
            if w is None:
                self.waiting[c] = [head, 0]
            elif head > w[0]:
                w[0] = head
            return
        if head and head <= c.sent_upto:
            return
        if head:
            w = self.waiting.get(c)
            if w is None:
                self.waiting[c] = [head, 0]
            elif head > w[0]:
                w[0] = head
        if c in self._reading:
            self._again.add(c)
            return
        self._reading.add(c)
        c.loop.create_task(self._read(c))

    async def _read(self, c: Peer) -> None:
        try:
            while True:
                self._again.discard(c)
                if not c.live or not self.is_open(c):
                    return
                uid, since = c.user_id, c.sent_upto
                self.reads += 1
                page = await self.store.read_updates(uid, since, PAGE, self.max_bytes)
                if not c.live or not self.is_open(c):
                    return  # a SYNC took over, or the connection ended
                if page.resync:  # what it lacks was pruned (retention): it must resync,
                    c.close(CloseCode.SLOW_CONSUMER, "behind the retained log")  # as after
                    return  # any 4003: reconnect, SYNC from its cursor, told to resync
                self._deliver(c, page.updates)
                if len(page.updates) < PAGE and c not in self._again:
                    return
        except StoreUnavailable:  # the store logs the outage; its end reads again
            log.debug("cluster: the log of user %d is unreadable now", c.user_id)
        except Exception:
            log.exception("cluster: reading the log of user %d failed", c.user_id)
        finally:
            self._reading.discard(c)
            w = self.waiting.get(c)
            if w is not None and w[0] <= c.sent_upto:
                del self.waiting[c]

    def _deliver(self, c: Peer, updates: list[bytes]) -> None:
        """Push the entries above `sent_upto`, in order, without the connection's own."""
        last = c.sent_upto
        own = self._own.get(c)
        out: list[bytes] = []
        for u in updates:
            s = seq_of(u)
            if s <= last:
                continue  # pushed by the fan-out while we read
            if s != last + 1:
                break  # never: the log has no gaps
            last = s
            if own and s in own:
                own.discard(s)
                continue
            out.append(u)
        if own is not None and not own:
            del self._own[c]
        if last == c.sent_upto:
            return
        c.sent_upto = last
        if out:
            head = max(last, self.store.cached_head(c.user_id) or 0)
            c.send_frame(encode_updates_frame(0, out, head), _UPDATES)
            c.flush()

    # ------------------------------------------------------------------ the ticker

    def tick(self) -> None:
        """Hand waiting connections that went live to a reader; forget closed ones and
        hints the log still does not show after MAX_RETRIES ticks."""
        for c, w in list(self.waiting.items()):
            if not self.is_open(c):
                del self.waiting[c]
                continue
            if not c.live or c in self._reading:
                continue
            head = w[0]
            if head and head <= c.sent_upto:
                del self.waiting[c]
                continue
            w[1] += 1
            if w[1] > MAX_RETRIES:
                log.debug("cluster: dropped hint %d for user %d", head, c.user_id)
                del self.waiting[c]
                continue
            if not head:
                del self.waiting[c]
            self._reading.add(c)
            c.loop.create_task(self._read(c))
        for c in [c for c in self._own if not self.is_open(c)]:
            del self._own[c]

    @property
    def idle(self) -> bool:
        """No read running or waiting (for tests)."""
        return not self.waiting and not self._reading

    def stats(self) -> dict[str, Any]:
        return {"reads": self.reads, "gaps": self.gaps, "waiting": len(self.waiting)}
