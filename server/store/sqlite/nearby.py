"""Shares and merchants in SQLite (contract.NearbyStore; schema migration 13).

A finder reads `nearby_shares_by_idx` (idx, expires, user_id, cell) by index cell: one
B-tree range per searched cell, covering the columns the finder needs, so the shares
elsewhere cost nothing. The privacy filter joins the user's row (privacy_nearby) and
looks the viewer up in the user's blocks and contacts by primary key, per candidate.
Writes run in the writer thread inside a group commit, like every write.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ...chat.rules.nearby import Candidate, Share
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
UPSERT_SHARE = (
    "INSERT OR REPLACE INTO nearby_shares (user_id, cell, idx, expires, moved) "
    "VALUES (?, ?, ?, ?, ?)"
)
UPSERT_MERCHANT = (
    "INSERT OR REPLACE INTO merchants (user_id, name, category, hours, lat, lon, cell, idx) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def put_shares(db: sqlite3.Connection, shares: list[Share]) -> None:
    db.executemany(UPSERT_SHARE, [(s.user, s.cell, s.index, s.expires, s.moved) for s in shares])


def stop(db: sqlite3.Connection, uid: int) -> bool:
    return db.execute("DELETE FROM nearby_shares WHERE user_id = ?", (uid,)).rowcount > 0


def sweep(db: sqlite3.Connection, now: int, limit: int) -> int:
    return db.execute(
        "DELETE FROM nearby_shares WHERE user_id IN (SELECT user_id FROM nearby_shares "
        "WHERE expires <= ? ORDER BY expires LIMIT ?)",
        (now, limit),
    ).rowcount


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
    # hand-over for all of them (each awaits their commit), like the writer's group commit
    _shares_next: list[Share] | None = None
    _shares_done: asyncio.Future[None] | None = None

    async def nearby_put(self, share: Share) -> None:
        if self._shares_next is None:
            loop = asyncio.get_running_loop()
            self._shares_next, self._shares_done = [], loop.create_future()
            loop.call_soon(self._put_shares)
        self._shares_next.append(share)
        assert self._shares_done is not None
        await asyncio.shield(self._shares_done)

    def _put_shares(self) -> None:
        batch, done = self._shares_next or [], self._shares_done
        self._shares_next = self._shares_done = None
        assert done is not None

        def landed(t: asyncio.Future[None]) -> None:
            if t.cancelled():
                done.cancel()
            elif t.exception() is not None:
                done.set_exception(t.exception())  # type: ignore[arg-type]
            else:
                done.set_result(None)

        asyncio.ensure_future(self._commit(lambda db: put_shares(db, batch))).add_done_callback(
            landed
        )

    async def nearby_share_of(self, uid: int) -> Share | None:
        rows = await self._rows(
            "SELECT user_id, cell, idx, expires, moved FROM nearby_shares WHERE user_id = ?",
            (uid,),
        )
        return Share(*rows[0]) if rows else None

    async def nearby_stop(self, uid: int) -> bool:
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
