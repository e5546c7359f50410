"""A node of a cluster: what it tells the others after each commit, what it does with
what they tell it, and the checks that make a lost notice cost latency, never data.

Built by the composition root (app.py) only when `cluster_nats` is set; without it the
server is the single node it always was, and nothing here runs.

* After each commit (`committed`, the store's on_committed): the local fan-out answers
  and pushes as before, in order only (catchup.py); then one hint per user whose log the
  commit extended, `[0, head]`, goes to that user's subject: NATS delivers it to the nodes
  holding a connection of the user, and drops it if none does. It is published even when
  the user is connected here, since another device of theirs may be on another node.
* A hint received: each live connection of the user here reads the log from its own
  position (catchup.py). A frame received (presence, typing): written as it is.
* Presence and typing cross nodes as frames relayed to the users' subjects; whether a
  user is online elsewhere is a probe (a NATS request nobody answers when nobody holds
  the user).
* Nothing is lost when a notice is: the next hint or local commit for the user finds the
  gap; NATS coming back makes every live session read its log; and every
  `cluster_sweep_interval` seconds each session's position is compared with its user's
  head in the store, which catches the rest (a node killed between its commit and its
  publication). A client that reconnects resyncs from its cursor regardless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from ..fanout import FanOut
from ..net.hub import Hub
from ..net.peer import Peer
from ..store import Store, StoreUnavailable
from . import notices
from .bus import NatsBus
from .catchup import CatchUp

log = logging.getLogger("liaotian.cluster")

TICK = 0.1  # seconds between looks at sessions waiting to go live


class ClusterNode:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        fanout: FanOut,
        bus: NatsBus,
        *,
        max_bytes: int,
        sweep_interval: float,
    ) -> None:
        self.store = store
        self.hub = hub
        self.fanout = fanout
        self.bus = bus
        self.sweep_interval = sweep_interval
        self.catchup = CatchUp(store, self._is_open, max_bytes)
        fanout.in_order = self.catchup
        bus.on_notice = self._notice
        bus.holds = lambda uid: bool(hub.of_user(uid))
        bus.on_resume = self.resync_all
        # a fault hook for tests: return True to drop a received notice
        self.drop: Callable[[int, int], bool] | None = None
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def _is_open(self, c: Peer) -> bool:
        return self.hub.sessions.get(c.id) is c

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.bus.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cluster")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.bus.close()

    async def _run(self) -> None:
        ticks_per_sweep = max(1, round(self.sweep_interval / TICK))
        n = 0
        while True:
            await asyncio.sleep(TICK)
            self.catchup.tick()
            n += 1
            if n >= ticks_per_sweep:
                n = 0
                try:
                    await self.sweep()
                except StoreUnavailable:  # logged by the store; the next sweep tries again
                    pass
                except Exception:
                    log.exception("cluster: sweep failed")

    # ------------------------------------------------------------------ out

    def committed(self, ops: list[Any]) -> None:
        """The store's on_committed: answer and push here, then tell the other nodes."""
        self.fanout.committed(ops)
        heads = notices.heads_of(ops)
        if heads:
            hint = notices.hint
            self.bus.publish([(uid, hint(head)) for uid, head in heads.items()])

    def relay(self, users: Iterable[int], msg_type: int, frame: bytes) -> None:
        """An ephemeral frame for these users' connections on other nodes (encoded once)."""
        payload = notices.frame(msg_type, frame)
        self.bus.publish([(uid, payload) for uid in users])

    async def elsewhere(self, uid: int) -> bool:
        return await self.bus.probe(uid)

    def presence(self, uid: int, online: bool) -> None:
        """The hub's presence callback: hear this user's subject while they are here."""
        if online:
            self.bus.watch(uid)
        else:
            self.bus.unwatch(uid)

    def bound(self, conn: Peer) -> None:
        """A connection authenticated: read its log once it is live.

        Its SYNC decides "caught up" on this node's view of the head, which lags what
        other nodes committed until the next notice; and a user's first connection may
        have read its log before the subscription to their subject existed. One read
        after going live closes both windows without waiting for the sweep."""
        self.catchup.behind(conn)

    # ------------------------------------------------------------------ in

    def _notice(self, uid: int, kind: int, a: Any, b: Any) -> None:
        if self.drop is not None and self.drop(uid, kind):
            self.dropped += 1
            return
        conns = self.hub.of_user(uid)
        if kind == notices.HINT:
            for c in conns:
                self.catchup.behind(c, a)
        elif kind == notices.FRAME:
            for c in conns:
                c.send_frame(b, a)

    # ------------------------------------------------------------------ checks

    def resync_all(self) -> None:
        """Notices may have been lost (NATS was away): every live session reads its log."""
        for c in list(self.hub.connections):
            if c.live:
                self.catchup.behind(c)

    async def sweep(self) -> None:
        """Compare each live session's position with its user's head in the store."""
        heads: dict[int, int] = {}
        for c in list(self.hub.connections):
            if not c.live or not self._is_open(c):
                continue
            uid = c.user_id
            head = heads.get(uid)
            if head is None:
                head = heads[uid] = await self.store.committed_head(uid)
            if head > c.sent_upto:
                self.catchup.behind(c, head)
