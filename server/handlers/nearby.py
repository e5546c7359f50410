"""People and merchants nearby (SPEC.md 29): NEARBY_SHARE, NEARBY_STOP, NEARBY_QUERY,
NEARBY_HELLO, MERCHANT_SET and GET_MERCHANT.

The rules (chat/rules/nearby.py) decide what a share keeps and what a query finds; the
store (contract.NearbyStore) keeps the shares and finds candidates by index cell. Here:
the short-window rate limits, per user and in memory (queries, position changes: a
restart forgives them, as it does the write budget; what they guard against, probing and
scraping, needs more than one restart's worth of slack); the hellos per UTC day, counted
by the store (durable: a restart forgives none); the sweep of expired shares; and a hello
becoming a contact request (ops.SayHello) with its note.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from liaotian.protocol import ErrorCode, RequestError
from liaotian.protocol.nearby import (
    GetMerchant,
    Merchant,
    MerchantSet,
    NearbyEntry,
    NearbyHello,
    NearbyList,
    NearbyQuery,
    NearbyShare,
    NearbyShared,
    NearbyStop,
)
from liaotian.protocol.social import Ok
from liaotian.protocol.text import check_field

from ..chat import ops
from ..chat.ops import Refused
from ..chat.policy import Policy
from ..chat.rules import nearby as rules
from ..net.peer import Peer
from ..net.router import Router
from ..store import MerchantProfile, NearbyStore, Store, StoreClosed
from ..store.contract import KIND_MERCHANT
from .throttle import KeyedBuckets, WriteBudget

log = logging.getLogger("liaotian.nearby")
SWEEP_INTERVAL = 60.0  # seconds between sweeps of expired shares
SWEEP_BATCH = 5_000


def now_ms() -> int:
    return int(time.time() * 1000)


class NearbyStoreAll(Store, NearbyStore, Protocol):
    """The store the handlers need: the contract and the shares."""


class NearbyHandlers:
    def __init__(
        self,
        store: NearbyStoreAll,
        writes: WriteBudget,
        policy: Policy,
        clock: Callable[[], float],
        *,
        wall_ms: Callable[[], int] = now_ms,
        queries_per_minute: float = 30.0,
        query_burst: float = 20.0,
        moves_per_hour: float = 120.0,
        move_burst: float = 10.0,
        hellos_per_day: int = 20,
    ) -> None:
        self.store = store
        self.writes = writes
        self.policy = policy
        self.clock = clock  # monotonic seconds (the loop's)
        self.wall_ms = wall_ms  # expiries are wall-clock ms (they outlive the process)
        self.queries = KeyedBuckets(queries_per_minute / 60.0, query_burst)
        self.moves = KeyedBuckets(moves_per_hour / 3600.0, move_burst)
        self.hellos_per_day = int(hellos_per_day)

    def route(self, r: Router) -> None:
        r.route(NearbyShare, self.share)
        r.route(NearbyStop, self.stop)
        r.route(NearbyQuery, self.query)
        r.route(NearbyHello, self.hello)
        r.route(MerchantSet, self.set_merchant)
        r.route(GetMerchant, self.get_merchant)

    @staticmethod
    def _limit(buckets: KeyedBuckets, uid: int, now: float, what: str) -> None:
        wait = buckets.take(str(uid), now)
        if wait is not None:
            raise RequestError(ErrorCode.RATE_LIMITED, what, retry_after=round(wait, 3))

    @staticmethod
    def _refused(exc: Refused) -> RequestError:
        return RequestError(exc.code, exc.message)

    # ------------------------------------------------------------------ shares

    async def share(self, conn: Peer, msg: NearbyShare) -> None:
        uid, now = conn.user_id, self.wall_ms()
        self._limit(self.moves, uid, self.clock(), "changing position too often")
        prev = await self.store.nearby_share_of(uid)
        try:
            last = await self.store.nearby_last(uid) if prev is None else None
            s = rules.share(prev, uid, msg.lat, msg.lon, msg.ttl, now, last)
        except Refused as exc:
            raise self._refused(exc) from None
        if s is not prev:  # else nothing changed that is worth a commit (rules.share)
            await self.store.nearby_put(s)
        conn.send(NearbyShared(rid=msg.rid, cell=rules.cell_hex(s.cell), expires=s.expires))

    async def stop(self, conn: Peer, msg: NearbyStop) -> None:
        await self.store.nearby_stop(conn.user_id)
        conn.send(Ok(rid=msg.rid))

    async def query(self, conn: Peer, msg: NearbyQuery) -> None:
        uid = conn.user_id
        self._limit(self.queries, uid, self.clock(), "searching too often")
        try:
            cells = rules.search_cells(msg.lat, msg.lon, msg.radius)
        except Refused as exc:
            raise self._refused(exc) from None
        merchants = msg.kind == "merchants"
        if merchants:
            found = await self.store.nearby_merchants(uid, cells, msg.category)
        else:
            found = await self.store.nearby_people(uid, cells, self.wall_ms())
        me = await self.store.social_of(uid)
        page, after = rules.find(
            found,
            me,
            uid,
            msg.lat,
            msg.lon,
            msg.radius,
            exact=merchants,
            after=msg.after,
            limit=msg.limit,
        )
        entries = tuple(
            NearbyEntry(
                user=f.candidate.username,
                name=f.candidate.name,
                within=f.within,
                hello=f.hello,
                category=f.candidate.category or None,
                hours=f.candidate.hours or None,
                lat=f.candidate.lat,
                lon=f.candidate.lon,
            )
            for f in page
        )
        conn.send(NearbyList(rid=msg.rid, entries=entries, next=after))

    async def hello(self, conn: Peer, msg: NearbyHello) -> None:
        """A contact request with a note, to someone discoverable to me right now."""
        check_field("note", msg.note)
        uid = conn.user_id
        target = await self.store.user_id(msg.user)
        if target is None:
            raise RequestError(ErrorCode.UNKNOWN_USER)
        if not await self._near(uid, target):
            raise RequestError(ErrorCode.NOT_NEARBY)
        me = await self.store.social_of(uid)
        if not rules.may_hello(me, uid, target):
            raise RequestError(ErrorCode.CONFLICT, "already a contact, asked, or blocked")
        self.writes.charge(uid, self.clock())
        now = self.wall_ms()
        if not await self.store.nearby_take_hello(uid, rules.hello_day(now), self.hellos_per_day):
            raise RequestError(
                ErrorCode.RATE_LIMITED,
                "too many hellos today",
                retry_after=round(rules.next_day_s(now), 3),
            )
        self.store.submit(
            ops.SayHello(
                actor=uid,
                session=conn.id,
                rid=msg.rid,
                policy=self.policy,
                user=msg.user,
                note=msg.note,
            )
        )

    async def _near(self, uid: int, target: int) -> bool:
        """Whether `target` shows up to `uid` nearby now: a live share it does not hide,
        or a merchant's profile."""
        s = await self.store.nearby_share_of(target)
        if s is not None:
            found = await self.store.nearby_people(uid, [s.index], self.wall_ms())
            if any(c.user == target for c in found):
                return True
        m = await self.store.merchant_of(target)
        return m is not None

    # ------------------------------------------------------------------ merchants

    async def set_merchant(self, conn: Peer, msg: MerchantSet) -> None:
        for field, value in (("name", msg.name), ("category", msg.category), ("hours", msg.hours)):
            check_field(field, value)
        uid = conn.user_id
        if await self.store.account_kind(uid) != KIND_MERCHANT:
            raise RequestError(ErrorCode.NOT_MERCHANT)
        try:
            spot = rules.snap(msg.lat, msg.lon)
        except Refused as exc:
            raise self._refused(exc) from None
        profile = MerchantProfile(
            msg.name, msg.category, msg.hours, msg.lat, msg.lon, spot.cell, spot.index
        )
        await self.store.merchant_put(uid, profile)
        conn.send(self._merchant(msg.rid, conn.username, profile))

    async def get_merchant(self, conn: Peer, msg: GetMerchant) -> None:
        uid = await self.store.user_id(msg.user)
        m = await self.store.merchant_of(uid) if uid is not None else None
        if uid is None or m is None:
            raise RequestError(ErrorCode.NOT_MERCHANT)
        conn.send(self._merchant(msg.rid, msg.user, m))

    @staticmethod
    def _merchant(rid: int, user: str, m: MerchantProfile) -> Merchant:
        return Merchant(
            rid=rid,
            user=user,
            name=m.name,
            category=m.category,
            hours=m.hours,
            lat=m.lat,
            lon=m.lon,
        )

    # ------------------------------------------------------------------ the sweep

    async def run(self) -> None:
        """Remove expired shares (queries skip them anyway: this is the forgetting)."""
        while True:
            try:
                while await self.store.nearby_sweep(self.wall_ms(), SWEEP_BATCH) == SWEEP_BATCH:
                    pass
            except StoreClosed:
                return
            except Exception:
                log.exception("sweeping expired shares failed")
            await asyncio.sleep(SWEEP_INTERVAL)
