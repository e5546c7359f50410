"""The wallet's reads (store/contract.py), on the reader connections like reads.py.

Balances come from the writer's caches when they hold the account (the committed and
published value), else from the database; the rest is read from the database.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from ...chat.ledger import Account, Item, LedgerDump, Packet, Transfer
from ..contract import read_owner
from .caches import Caches
from .readers import FairReaders
from .sql import ITEM_COLUMNS, PACKET_COLUMNS, TRANSFER_COLUMNS, packet_of_row

_TRANSFER = TRANSFER_COLUMNS.replace("t.", "")


class LedgerReads:
    cache: Caches
    readers: FairReaders[aiosqlite.Connection]

    async def _rows(self, sql: str, args: Any = ()) -> list[Any]:
        raise NotImplementedError

    async def account_of(self, acct: int) -> Account:
        a = self.cache.ledger.accounts.get(acct)
        if a is not None:
            return a
        rows = await self._rows(
            "SELECT balance, pending_out, pending_in FROM wallet_accounts WHERE id = ?", (acct,)
        )
        a = self.cache.ledger.accounts.get(acct)  # a commit may have landed meanwhile
        if a is not None:
            return a
        return Account(*rows[0]) if rows else Account()

    async def transfers_of(self, acct: int, before: int | None, limit: int) -> list[Transfer]:
        below = (1 << 62) if before is None else before
        # both indexes, newest first: the union of the two index ranges, cut at `limit`
        rows = await self._rows(
            f"SELECT {_TRANSFER} FROM wallet_transfers WHERE id IN ("
            "SELECT id FROM (SELECT id FROM wallet_transfers WHERE debit = ? AND id < ? "
            "ORDER BY id DESC LIMIT ?) d UNION ALL SELECT id FROM (SELECT id FROM "
            "wallet_transfers WHERE credit = ? AND id < ? ORDER BY id DESC LIMIT ?) c) "
            "ORDER BY id DESC LIMIT ?",
            (acct, below, limit, acct, below, limit, limit),
        )
        return [Transfer(*r) for r in rows]

    async def items_of(self, uid: int) -> list[Item]:
        rows = await self._rows(
            f"SELECT {ITEM_COLUMNS} FROM wallet_items WHERE owner = ? ORDER BY id", (uid,)
        )
        return [Item(*r) for r in rows]

    async def packet_of(self, pid: int) -> Packet | None:
        rows = await self._rows(f"SELECT {PACKET_COLUMNS} FROM wallet_packets WHERE id = ?", (pid,))
        if not rows:
            return None
        p = packet_of_row(rows[0])
        for uid, amount, transfer in await self._rows(
            "SELECT user_id, amount, transfer FROM wallet_claims WHERE packet = ? ORDER BY n",
            (pid,),
        ):
            p.claims[uid] = (amount, transfer)
        return p

    async def task_progress_of(self, uid: int) -> dict[str, tuple[int, int]]:
        rows = await self._rows(
            "SELECT task, period, count FROM wallet_tasks t WHERE user_id = ? AND period = "
            "(SELECT max(period) FROM wallet_tasks u WHERE u.user_id = t.user_id "
            "AND u.task = t.task)",
            (uid,),
        )
        return {task: (period, count) for task, period, count in rows}

    async def pendings_due(self, before: int, limit: int) -> list[int]:
        rows = await self._rows(
            "SELECT id FROM wallet_pending WHERE expires > 0 AND "
            "expires < ? ORDER BY expires LIMIT ?",
            (before, limit),
        )
        return [r[0] for r in rows]

    async def next_expiry(self) -> int | None:
        rows = await self._rows("SELECT min(expires) FROM wallet_pending WHERE expires > 0")
        return rows[0][0] if rows and rows[0][0] is not None else None

    async def ledger_dump(self) -> LedgerDump:
        """Everything, in one read transaction (one snapshot, beside the writer)."""
        conn = await self.readers.acquire(read_owner.get())
        try:
            await conn.execute("BEGIN")
            try:
                return await _dump(conn)
            finally:
                await conn.execute("COMMIT")
        finally:
            self.readers.release(conn)


async def _dump(conn: aiosqlite.Connection) -> LedgerDump:
    async def rows(q: str) -> list[Any]:
        return list(await conn.execute_fetchall(q))

    accounts = {
        r[0]: Account(*r[1:])
        for r in await rows("SELECT id, balance, pending_out, pending_in FROM wallet_accounts")
    }
    transfers = [
        Transfer(*r) for r in await rows(f"SELECT {_TRANSFER} FROM wallet_transfers ORDER BY id")
    ]
    packets = {
        r[0]: packet_of_row(r)
        for r in await rows(f"SELECT {PACKET_COLUMNS} FROM wallet_packets ORDER BY id")
    }
    for pid, uid, amount, transfer in await rows(
        "SELECT packet, user_id, amount, transfer FROM wallet_claims ORDER BY packet, n"
    ):
        packets[pid].claims[uid] = (amount, transfer)
    progress = {
        (u, t): (p, c)
        for u, t, p, c in await rows(
            "SELECT user_id, task, period, count FROM wallet_tasks t WHERE period = "
            "(SELECT max(period) FROM wallet_tasks u WHERE u.user_id = t.user_id "
            "AND u.task = t.task)"
        )
    }
    return LedgerDump(accounts, transfers, list(packets.values()), progress)
