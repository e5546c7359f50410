"""SQLiteStore's bots (SPEC.md 26, migrations 14 and 17): bot rows, open groups, pending
callbacks (edits and callbacks are written by batches: batch.py).

Writes are awaited commits on the writer (like accounts and devices), reads go to the
reader connections like reads.py's.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ...chat.model import PendingCallback
from ..contract import BOT_DEVICE, BOT_PASSWORD_HASH, BotRecord, UsernameTaken, tombstone_name
from . import sql
from .caches import Caches, Positions

T = TypeVar("T")
_COLUMNS = "b.user_id, u.username, b.owner, b.created, b.commands"


def _record(row: Any) -> BotRecord:
    uid, name, owner, created, commands = row
    return BotRecord(uid, name, owner, created, tuple((n, d) for n, d in json.loads(commands)))


def _create(db: sqlite3.Connection, name: str, owner: int, token_hash: bytes, now: int) -> int:
    uid = sql.create_user(db, name, BOT_PASSWORD_HASH, now)
    sql.set_device_token(db, uid, BOT_DEVICE, token_hash, 0, now)
    db.execute("INSERT INTO bots (user_id, owner, created) VALUES (?, ?, ?)", (uid, owner, now))
    return uid


def _delete(db: sqlite3.Connection, uid: int, now: int) -> bool:
    if (
        db.execute(
            "UPDATE bots SET deleted = ? WHERE user_id = ? AND deleted = 0", (now, uid)
        ).rowcount
        == 0
    ):
        return False
    db.execute("DELETE FROM devices WHERE user_id = ?", (uid,))
    db.execute("DELETE FROM bot_callbacks WHERE bot = ?", (uid,))
    return True


def _free_names(db: sqlite3.Connection, before: int) -> list[tuple[int, str]]:
    rows = db.execute(
        "SELECT b.user_id, u.username FROM bots b JOIN users u ON u.id = b.user_id "
        "WHERE b.deleted > 0 AND b.deleted < ? AND u.username NOT LIKE '#%'",
        (before,),
    ).fetchall()
    for uid, _name in rows:
        db.execute("UPDATE users SET username = ? WHERE id = ?", (tombstone_name(uid), uid))
    return [(int(uid), str(name)) for uid, name in rows]


class BotStore:
    """Mixed into SQLiteStore."""

    positions: Positions
    cache: Caches
    # what a taken unique name raises: sqlite3's, or the PostgreSQL driver's (postgres/)
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)

    async def run_in_commit(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def _rows(self, sql: str, args: Any = ()) -> list[Any]:
        raise NotImplementedError

    async def create_bot(self, name: str, owner: int, token_hash: bytes) -> int:
        now = int(time.time() * 1000)
        try:
            return await self.run_in_commit(lambda db: _create(db, name, owner, token_hash, now))
        except self.integrity_errors:
            raise UsernameTaken(name) from None

    async def delete_bot(self, uid: int) -> bool:
        self.positions.forget(uid, BOT_DEVICE)
        now = int(time.time() * 1000)
        return await self.run_in_commit(lambda db: _delete(db, uid, now))

    async def free_bot_names(self, deleted_before: int) -> list[str]:
        freed = await self.run_in_commit(lambda db: _free_names(db, deleted_before))
        for uid, name in freed:  # the name resolves to nobody now (until registered)
            self._forget_name(uid, name, tombstone_name(uid))
        return [name for _uid, name in freed]

    def _forget_name(self, uid: int, old: str, new: str) -> None:
        if self.cache.user_ids.get(old) == uid:
            del self.cache.user_ids[old]
        self.cache.add_user(new, uid)

    async def bot_by_id(self, uid: int) -> BotRecord | None:
        rows = await self._rows(
            f"SELECT {_COLUMNS} FROM bots b JOIN users u ON u.id = b.user_id "
            "WHERE b.user_id = ? AND b.deleted = 0",
            (uid,),
        )
        return _record(rows[0]) if rows else None

    async def bots_of(self, owner: int) -> list[BotRecord]:
        rows = await self._rows(
            f"SELECT {_COLUMNS} FROM bots b JOIN users u ON u.id = b.user_id "
            "WHERE b.owner = ? AND b.deleted = 0 ORDER BY b.user_id",
            (owner,),
        )
        return [_record(r) for r in rows]

    async def all_bots(self) -> list[BotRecord]:
        rows = await self._rows(
            f"SELECT {_COLUMNS} FROM bots b JOIN users u ON u.id = b.user_id "
            "WHERE b.deleted = 0 ORDER BY b.user_id"
        )
        return [_record(r) for r in rows]

    async def set_bot_commands(self, uid: int, commands: tuple[tuple[str, str], ...]) -> None:
        text = json.dumps([list(c) for c in commands])
        await self.run_in_commit(
            lambda db: db.execute("UPDATE bots SET commands = ? WHERE user_id = ?", (text, uid))
        )

    async def set_group_bots(self, conv: int, see_all: bool) -> None:
        stmt = (
            "INSERT OR IGNORE INTO bot_groups (conv_id) VALUES (?)"
            if see_all
            else "DELETE FROM bot_groups WHERE conv_id = ?"
        )
        await self.run_in_commit(lambda db: db.execute(stmt, (conv,)))

    async def bot_open_groups(self) -> set[int]:
        return {r[0] for r in await self._rows("SELECT conv_id FROM bot_groups")}

    async def bot_callback(self, callback: int) -> PendingCallback | None:
        rows = await self._rows(f"SELECT {_CB} FROM bot_callbacks WHERE id = ?", (callback,))
        return _callback(rows[0]) if rows else None

    async def bot_callbacks(self, bot: int, limit: int) -> list[PendingCallback]:
        rows = await self._rows(
            f"SELECT {_CB} FROM bot_callbacks WHERE bot = ? ORDER BY seq LIMIT ?",
            (bot, limit),
        )
        return [_callback(r) for r in rows]

    async def sweep_callbacks(self, before: int, keep: int) -> int:
        return await self.run_in_commit(lambda db: _sweep(db, before, keep))


_CB = "id, bot, presser, conv_id, pos, created, entry, seq"


def _callback(row: Any) -> PendingCallback:
    cid, bot, presser, conv, pos, created, entry, seq = row
    return PendingCallback(cid, bot, presser, conv, pos, created, bytes(entry), seq)


def _sweep(db: sqlite3.Connection, before: int, keep: int) -> int:
    """Expired presses, then each bot's beyond its newest `keep` (bots over the bound are
    few: the count per bot is read from the index)."""
    n = db.execute("DELETE FROM bot_callbacks WHERE created < ?", (before,)).rowcount
    over = db.execute(
        "SELECT bot FROM bot_callbacks GROUP BY bot HAVING count(*) > ?", (keep,)
    ).fetchall()
    for (bot,) in over:
        n += db.execute(
            "DELETE FROM bot_callbacks WHERE bot = ? AND id NOT IN (SELECT id FROM bot_callbacks "
            "WHERE bot = ? ORDER BY seq DESC LIMIT ?)",
            (bot, bot, keep),
        ).rowcount
    return int(n)
