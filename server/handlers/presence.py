"""Presence and typing: ephemeral signals, never stored in update logs.

Presence is derived from live connections. A change is not published at once: users whose
state moved are collected and published together every `presence_interval` seconds, and
only if their state differs from what their contacts were last told, so a flapping or
reconnecting client costs nothing. Typing notices go straight to the peer's connections,
rate-limited per user (all connections together) and conversation, and expire on the
receiver after `ttl`. The buckets are kept in LRUs (the most recent TYPING_KEYS conversations
of each of the most recent TYPING_USERS typists): a user cannot reset one conversation's
bucket by opening connections, and only by typing to TYPING_KEYS other conversations.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

from liaotian.protocol import ErrorCode, RequestError
from liaotian.protocol.social import (
    GetPresence,
    Presence,
    PresenceEntry,
    PresenceList,
    Typing,
    TypingNotice,
)

from ..chat.model import VIS_NOBODY
from ..chat.rules.contacts import shows
from ..chat.rules.send import may_message
from ..config import Config
from ..net.hub import Hub
from ..net.peer import Peer
from ..net.router import Router
from ..store import Store, StoreUnavailable
from .throttle import TokenBucket

log = logging.getLogger("liaotian.presence")

TYPING_KEYS = 256  # conversations with a typing bucket, per user (least recently used go)
TYPING_USERS = 65_536  # users with typing buckets (least recently typing go)


class PresenceService:
    """Presence and typing; `changed` is the hub's on_presence, `run` a background task."""

    def __init__(self, store: Store, hub: Hub, config: Config, clock: Callable[[], float]) -> None:
        self.store = store
        self.hub = hub
        self.clock = clock  # monotonic seconds (the loop's)
        cfg = config
        self.interval = cfg.presence_interval
        self.typing_ttl = cfg.typing_ttl
        self.typing_rate = cfg.typing_rate
        self.typing_burst = cfg.typing_burst
        self._dirty: set[int] = set()
        self._told: dict[int, bool] = {}  # what contacts were last told (absent = offline)
        self._last_seen: dict[int, int] = {}
        # user -> conversation key -> bucket, both least recently used first
        self._typing: OrderedDict[int, OrderedDict[object, TokenBucket]] = OrderedDict()
        # In a cluster (server/cluster/): whether a user is connected to another node, and
        # how a frame reaches the connections of users on other nodes. Alone: neither.
        self.elsewhere: Callable[[int], Awaitable[bool]] | None = None
        self.relay: Callable[[Iterable[int], int, bytes], None] | None = None

    async def _online(self, uid: int) -> bool:
        if self.hub.of_user(uid):
            return True
        return self.elsewhere is not None and await self.elsewhere(uid)

    def route(self, r: Router) -> None:
        r.route(GetPresence, self.get_presence)
        r.route(Typing, self.typing)

    # ------------------------------------------------------------------ presence

    def changed(self, uid: int, online: bool) -> None:
        if not online:
            t = int(time.time() * 1000)
            self._last_seen[uid] = t
            self.store.record_last_seen(uid, t)
        self._dirty.add(uid)

    async def run(self) -> None:
        """Publish coalesced changes every interval (a background task of the server)."""
        while True:
            await asyncio.sleep(self.interval)
            if self._dirty:
                dirty, self._dirty = self._dirty, set()
                try:
                    await self.publish(dirty)
                except StoreUnavailable:  # the store logs the outage; these are dropped
                    log.debug("presence publication skipped: the database is unreachable")
                except Exception:
                    log.exception("presence publication failed")

    async def publish(self, users: set[int]) -> None:
        names = await self.store.usernames(users)
        for uid in users:
            online = await self._online(uid)
            if self._told.get(uid, False) == online:
                continue  # flapped back: nothing to say
            if online:
                self._told[uid] = True
            else:
                self._told.pop(uid, None)
            soc = await self.store.social_of(uid)
            if not soc.contacts or soc.presence == VIS_NOBODY:
                continue
            seen = self._last_seen.get(uid)
            if seen is None:  # not seen go offline since start-up: the stored value
                seen = (await self.store.profile(uid))[2]
            frame = Presence(rid=0, user=names[uid], online=online, last_seen=seen).encode()
            for contact in soc.contacts:
                for c in self.hub.of_user(contact):
                    c.send_frame(frame, int(Presence.TYPE))
            if self.relay is not None:
                self.relay(soc.contacts, int(Presence.TYPE), frame)

    async def get_presence(self, conn: Peer, msg: GetPresence) -> None:
        out = []
        for name in dict.fromkeys(msg.users):
            uid = await self.store.user_id(name)
            if uid is None:
                continue
            if uid != conn.user_id:
                soc = await self.store.social_of(uid)
                if not shows(soc, soc.presence, conn.user_id):
                    continue
            online = await self._online(uid)
            seen = self._last_seen.get(uid)
            if seen is None:
                seen = (await self.store.profile(uid))[2]
            out.append(PresenceEntry(user=name, online=online, last_seen=seen))
        conn.send(PresenceList(rid=msg.rid, presence=tuple(out)))

    # ------------------------------------------------------------------ typing

    async def typing(self, conn: Peer, msg: Typing) -> None:
        if (msg.to is None) == (msg.group is None):
            raise RequestError(ErrorCode.INVALID_FIELD, "give 'to' or 'group', not both")
        key = msg.to if msg.to is not None else msg.group
        now = self.clock()
        bucket = self._typing_bucket(conn.user_id, key, now)
        wait = bucket.take(now)
        if wait is not None:
            raise RequestError(ErrorCode.RATE_LIMITED, retry_after=round(wait, 3))
        if msg.group is not None:
            g = await self.store.group_state(msg.group)
            if g is None or conn.user_id not in g.members:
                raise RequestError(ErrorCode.NOT_MEMBER)
            targets = [u for u in g.members if u != conn.user_id]
        else:
            assert msg.to is not None
            uid = await self.store.user_id(msg.to)
            if uid is None:
                raise RequestError(ErrorCode.UNKNOWN_USER)
            soc = await self.store.social_of(uid)
            if uid == conn.user_id or not may_message(soc, conn.user_id):
                return  # dropped without a word: the typist must not learn of a block
            targets = [uid]
        frame = TypingNotice(
            rid=0, user=conn.username, typing=msg.typing, ttl=self.typing_ttl, group=msg.group
        ).encode()
        for uid in targets:
            for c in self.hub.of_user(uid):
                c.send_frame(frame, int(TypingNotice.TYPE))
        if self.relay is not None:
            self.relay(targets, int(TypingNotice.TYPE), frame)

    def _typing_bucket(self, uid: int, key: object, now: float) -> TokenBucket:
        """The user's bucket for one conversation (shared by all the user's connections)."""
        users = self._typing
        buckets = users.get(uid)
        if buckets is None:
            if len(users) >= TYPING_USERS:
                users.popitem(last=False)
            buckets = users[uid] = OrderedDict()
        else:
            users.move_to_end(uid)
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= TYPING_KEYS:
                buckets.popitem(last=False)
            bucket = buckets[key] = TokenBucket(self.typing_rate, self.typing_burst, now)
        else:
            buckets.move_to_end(key)
        return bucket
