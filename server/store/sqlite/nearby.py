"""Shares and merchants in SQLite (contract.NearbyStore; schema migrations 13 and 18).

A finder reads `nearby_shares_by_idx` (idx, expires, user_id, cell) by index cell: one
B-tree range per searched cell, covering the columns the finder needs, so the shares
elsewhere cost nothing. The privacy filter joins the user's row (privacy_nearby) and
looks the viewer up in the user's blocks and contacts by primary key, per candidate.
Writes run in the writer thread inside a group commit, like every write.

What a share write costs is the pages it dirties (each is a 4 KiB WAL frame, then a
checkpoint write): a move to another cell rewrites the user's row and two leaves of the
index by cell (out of the old cell, into the new), and a new expiry the index by expiry.
So the rules write nothing for a refresh that changes neither (rules.share returns the
share kept), and the statements here touch only what changed: measured at 1,000,000
shares, 2,000 random users moving to random cells dirty ~5,300 pages per commit instead
of ~7,000 for INSERT OR REPLACE (which deletes and re-inserts every index entry, and is
also ~6x slower in CPU inside the writer's savepoint). Reads of the current share are
batched per loop turn like the writes, and see the puts not yet committed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ...chat.rules.nearby import LAST_KEEP_MS, Candidate, LastSeen, Share, last_seen
from ..contract import KIND_MERCHANT, MerchantProfile

T = TypeVar("T")

# relations.kind: 1 contact, 3 blocked (chat/model.py REL_*)
_VISIBLE = (
    "(u.privacy_nearby = 0 OR (u.privacy_nearby = 1 AND EXISTS (SELECT 1 FROM relations r "
    "WHERE r.user_id = s.user_id AND r.other_id = ? AND r.kind = 1))) "
    "AND NOT EXISTS (SELECT 1 FROM relations r WHERE r.user_id = s.user_id "
    "AND r.other_id = ? AND r.kind = 3)"
)
SELECT_PEOPLE = (
    "SELECT s.user_id, u.username, u.display_name, s.cell "
    "FROM nearby_shares s INDEXED BY nearby_shares_by_idx JOIN users u ON u.id = s.user_id "
    f"WHERE s.idx = ? AND s.expires > ? AND {_VISIBLE}"
)
SELECT_MERCHANTS = (
    "SELECT s.user_id, u.username, s.name, s.cell, s.category, s.hours, s.lat, s.lon "
    "FROM merchants s JOIN users u ON u.id = s.user_id "
    f"WHERE s.idx = ? AND u.kind = {KIND_MERCHANT} AND (? IS NULL OR s.category = ?) "
    "AND NOT EXISTS (SELECT 1 FROM relations r WHERE r.user_id = s.user_id "
    "AND r.other_id = ? AND r.kind = 3)"
)
# a move (or a new share): the row and the index by cell, not the index by expiry
MOVE_SHARE = (
    "INSERT INTO nearby_shares (user_id, cell, idx, expires, moved) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (user_id) DO UPDATE SET cell = excluded.cell, idx = excluded.idx, "
    "moved = excluded.moved WHERE nearby_shares.cell != excluded.cell "
    "OR nearby_shares.moved != excluded.moved"
)
# a new expiry: the row and both indexes (by cell: the expiry is in its key)
REFRESH_SHARE = "UPDATE nearby_shares SET expires = ? WHERE user_id = ? AND expires != ?"
SELECT_SHARES = "SELECT user_id, cell, idx, expires, moved FROM nearby_shares WHERE user_id IN "
KEEP_LAST = "INSERT OR REPLACE INTO nearby_last (user_id, area, at) VALUES (?, ?, ?)"
UPSERT_MERCHANT = (
    "INSERT OR REPLACE INTO merchants (user_id, name, category, hours, lat, lon, cell, idx) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def put_shares(db: sqlite3.Connection, shares: list[Share]) -> None:
    shares = sorted(shares, key=lambda s: s.user)  # stable: a user's last put wins
    db.executemany(MOVE_SHARE, [(s.user, s.cell, s.index, s.expires, s.moved) for s in shares])
    db.executemany(REFRESH_SHARE, [(s.expires, s.user, s.expires) for s in shares])


def _keep_last(db: sqlite3.Connection, rows: list[Any]) -> None:
    """What is left of ended shares (rows of nearby_shares' columns): their districts."""
    lasts = [(r[0], last_seen(Share(*r))) for r in rows]
    db.executemany(KEEP_LAST, [(uid, last.area, last.at) for uid, last in lasts])


def stop(db: sqlite3.Connection, uid: int) -> bool:
    rows = db.execute(SELECT_SHARES + "(?)", (uid,)).fetchall()
    _keep_last(db, rows)
    return db.execute("DELETE FROM nearby_shares WHERE user_id = ?", (uid,)).rowcount > 0


def sweep(db: sqlite3.Connection, now: int, limit: int) -> int:
    rows = db.execute(
        "SELECT user_id, cell, idx, expires, moved FROM nearby_shares "
        "WHERE expires <= ? ORDER BY expires LIMIT ?",
        (now, limit),
    ).fetchall()
    _keep_last(db, rows)
    db.executemany("DELETE FROM nearby_shares WHERE user_id = ?", [(r[0],) for r in rows])
    db.execute("DELETE FROM nearby_last WHERE at <= ?", (now - LAST_KEEP_MS,))
    return len(rows)


def take_hello(db: sqlite3.Connection, uid: int, day: int, limit: int) -> bool:
    row = db.execute("SELECT day, hellos FROM nearby_hellos WHERE user_id = ?", (uid,)).fetchone()
    used = int(row[1]) if row is not None and row[0] == day else 0
    if used >= limit:
        return False
    db.execute(
        "INSERT OR REPLACE INTO nearby_hellos (user_id, day, hellos) VALUES (?, ?, ?)",
        (uid, day, used + 1),
    )
    return True


class NearbyOnSQLite:
    """Mixed into SQLiteStore: the reads on the reader connections, the writes in the
    writer's commits."""

    async def _rows(self, sql: str, args: Any = ()) -> list[Any]:
        raise NotImplementedError

    async def run_in_commit(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    def _commit(self, fn: Callable[[sqlite3.Connection], T]) -> Awaitable[T]:
        return self.run_in_commit(fn)

    # shares put while the loop runs once go to the writer together: one statement and one
    # hand-over for all of them, like the writer's group commit. Each caller awaits a
    # future of its own (no shield per caller: at 20,000 puts a second it showed).
    _shares_next: list[tuple[Share, asyncio.Future[None]]] | None = None
    # puts not committed yet, by user: what nearby_share_of answers for them meanwhile
    _shares_pending: dict[int, Share] | None = None
    # reads of users' shares asked while the loop runs once: one SELECT for all of them
    _share_reads: dict[int, list[asyncio.Future[Share | None]]] | None = None

    async def nearby_put(self, share: Share) -> None:
        loop = asyncio.get_running_loop()
        if self._shares_next is None:
            self._shares_next = []
            loop.call_soon(self._put_shares)
        fut: asyncio.Future[None] = loop.create_future()
        self._shares_next.append((share, fut))
        if self._shares_pending is None:
            self._shares_pending = {}
        self._shares_pending[share.user] = share
        try:
            await fut
        finally:
            pending = self._shares_pending
            if pending is not None and pending.get(share.user) is share:
                del pending[share.user]

    def _put_shares(self) -> None:
        batch, self._shares_next = self._shares_next or [], None
        shares = [s for s, _f in batch]

        def landed(t: asyncio.Future[None]) -> None:
            exc = None if t.cancelled() else t.exception()
            for _s, f in batch:
                if f.done():
                    continue
                if t.cancelled():
                    f.cancel()
                elif exc is not None:
                    f.set_exception(exc)
                else:
                    f.set_result(None)

        asyncio.ensure_future(self._commit(lambda db: put_shares(db, shares))).add_done_callback(
            landed
        )

    async def nearby_share_of(self, uid: int) -> Share | None:
        pending = self._shares_pending
        if pending and uid in pending:
            return pending[uid]
        loop = asyncio.get_running_loop()
        reads = self._share_reads
        if reads is None:
            reads = self._share_reads = {}
            loop.call_soon(lambda: asyncio.ensure_future(self._read_shares()))
        fut: asyncio.Future[Share | None] = loop.create_future()
        reads.setdefault(uid, []).append(fut)
        return await fut

    async def _read_shares(self) -> None:
        reads, self._share_reads = self._share_reads or {}, None
        found: dict[int, Share] = {}
        try:
            uids = list(reads)
            for i in range(0, len(uids), 500):
                part = uids[i : i + 500]
                sql = SELECT_SHARES + "(" + ",".join("?" * len(part)) + ")"
                for row in await self._rows(sql, part):
                    found[int(row[0])] = Share(*row)
        except BaseException as exc:
            for futs in reads.values():
                for f in futs:
                    if f.done():
                        continue
                    if isinstance(exc, Exception):
                        f.set_exception(exc)
                    else:
                        f.cancel()
            if not isinstance(exc, Exception):
                raise
            return
        for uid, futs in reads.items():
            share = found.get(uid)
            for f in futs:
                if not f.done():
                    f.set_result(share)

    async def nearby_last(self, uid: int) -> LastSeen | None:
        rows = await self._rows("SELECT area, at FROM nearby_last WHERE user_id = ?", (uid,))
        return LastSeen(int(rows[0][0]), int(rows[0][1])) if rows else None

    async def nearby_take_hello(self, uid: int, day: int, limit: int) -> bool:
        return await self._commit(lambda db: take_hello(db, uid, day, limit))

    async def nearby_stop(self, uid: int) -> bool:
        if self._shares_pending:
            self._shares_pending.pop(uid, None)
        return await self._commit(lambda db: stop(db, uid))

    async def nearby_people(self, viewer: int, indexes: list[int], now: int) -> list[Candidate]:
        if not indexes:
            return []
        sql = " UNION ALL ".join([SELECT_PEOPLE] * len(indexes))
        args: list[Any] = []
        for index in indexes:
            args += (index, now, viewer, viewer)
        return [Candidate(*r) for r in await self._rows(sql, args)]

    async def nearby_sweep(self, now: int, limit: int) -> int:
        return await self._commit(lambda db: sweep(db, now, limit))

    async def set_account_kind(self, uid: int, kind: int) -> None:
        await self._commit(
            lambda db: db.execute("UPDATE users SET kind = ? WHERE id = ?", (kind, uid))
        )

    async def account_kind(self, uid: int) -> int:
        rows = await self._rows("SELECT kind FROM users WHERE id = ?", (uid,))
        return int(rows[0][0]) if rows else 0

    async def merchant_put(self, uid: int, profile: MerchantProfile) -> None:
        p = profile
        await self._commit(
            lambda db: db.execute(
                UPSERT_MERCHANT,
                (uid, p.name, p.category, p.hours, p.lat, p.lon, p.cell, p.index),
            )
        )

    async def merchant_of(self, uid: int) -> MerchantProfile | None:
        rows = await self._rows(
            "SELECT m.name, m.category, m.hours, m.lat, m.lon, m.cell, m.idx FROM merchants m "
            f"JOIN users u ON u.id = m.user_id WHERE m.user_id = ? AND u.kind = {KIND_MERCHANT}",
            (uid,),
        )
        return MerchantProfile(*rows[0]) if rows else None

    async def nearby_merchants(
        self, viewer: int, indexes: list[int], category: str | None
    ) -> list[Candidate]:
        if not indexes:
            return []
        sql = " UNION ALL ".join([SELECT_MERCHANTS] * len(indexes))
        args: list[Any] = []
        for index in indexes:
            args += (index, category, category, viewer)
        return [Candidate(*r) for r in await self._rows(sql, args)]
