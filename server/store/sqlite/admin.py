"""What the operator's tools (server/ops/) need from the database, and only that.

The writes are plain functions of a sqlite3 connection, run inside a group commit with
`SQLiteStore.run_in_commit(lambda db: ...)`, on a running server's store (through the admin
socket) and on a stopped server's database alike (`liaotian-server admin` opens the store
itself then, holding the database lock as a server would). Nothing here caches: the
writer's caches hold no account flags, passwords or tokens.

Disabling an account (schema migration 8) sets `users.disabled` and clears the session
tokens of its devices (`token_hash` NULL: AUTH answers INVALID_TOKEN) while keeping the
devices and their positions, so a re-enabled user logs in again and syncs from where each
device was.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from .files import file_sizes

if TYPE_CHECKING:
    from .store import SQLiteStore


def user_of(db: sqlite3.Connection, username: str) -> tuple[int, bool] | None:
    """(id, disabled) of an account, or None."""
    row = db.execute("SELECT id, disabled FROM users WHERE username = ?", (username,)).fetchone()
    return (int(row[0]), bool(row[1])) if row else None


def list_users(db: sqlite3.Connection, limit: int, after: int = 0) -> list[dict[str, Any]]:
    """Accounts with an id above `after`, by id, at most `limit`."""
    rows = db.execute(
        "SELECT u.id, u.username, u.created, u.last_seen, u.disabled, count(d.device) "
        "FROM users u LEFT JOIN devices d ON d.user_id = u.id WHERE u.id > ? "
        "GROUP BY u.id ORDER BY u.id LIMIT ?",
        (after, limit),
    ).fetchall()
    return [
        {
            "id": r[0],
            "username": r[1],
            "created": r[2],
            "last_seen": r[3],
            "disabled": bool(r[4]),
            "devices": r[5],
        }
        for r in rows
    ]


def count_users(db: sqlite3.Connection) -> tuple[int, int]:
    """(accounts, disabled accounts)."""
    row = db.execute("SELECT count(*), coalesce(sum(disabled), 0) FROM users").fetchone()
    return int(row[0]), int(row[1])


def list_devices(db: sqlite3.Connection, user_id: int) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT device, created, last_seen, acked, token_hash IS NOT NULL FROM devices "
        "WHERE user_id = ? ORDER BY created, device",
        (user_id,),
    ).fetchall()
    return [
        {"device": r[0], "created": r[1], "last_seen": r[2], "acked": r[3], "signed_in": bool(r[4])}
        for r in rows
    ]


def disabled_ids(db: sqlite3.Connection) -> list[int]:
    return [int(r[0]) for r in db.execute("SELECT id FROM users WHERE disabled != 0")]


def set_disabled(db: sqlite3.Connection, user_id: int, disabled: bool) -> int:
    """Flag (or unflag) an account; disabling clears its tokens. Tokens cleared."""
    db.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user_id))
    return clear_tokens(db, user_id) if disabled else 0


def clear_tokens(db: sqlite3.Connection, user_id: int) -> int:
    """Sign every device of an account out (its devices and positions stay)."""
    cur = db.execute(
        "UPDATE devices SET token_hash = NULL WHERE user_id = ? AND token_hash IS NOT NULL",
        (user_id,),
    )
    return cur.rowcount


def set_password(
    db: sqlite3.Connection, user_id: int, password_hash: str, *, sign_out: bool
) -> int:
    """Replace an account's password hash; with `sign_out`, clear its tokens too."""
    db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))
    return clear_tokens(db, user_id) if sign_out else 0


def queue_depth(store: SQLiteStore) -> int:
    """Writes queued for the group-commit writer and not yet taken into a batch."""
    return store.writer.queue_depth


async def checkpoint(store: SQLiteStore) -> dict[str, Any]:
    """Copy the whole WAL into the database file and truncate it, on a running store.

    On a connection of its own, in a thread: a PASSIVE pass first (copies beside the writer),
    then the TRUNCATE pass holding the writer's gate, so commits wait for it (normally a
    few milliseconds) instead of meeting a locked database. A reader still on an old
    snapshot leaves the WAL in place (`busy`)."""
    return await asyncio.to_thread(_checkpoint, store.path, store.writer.gate)


def _checkpoint(path: str, gate: Any) -> dict[str, Any]:
    started = time.monotonic()
    _, wal_before = file_sizes(path)
    db = sqlite3.connect(path, isolation_level=None, timeout=2.0)
    try:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        with gate:
            busy, frames, copied = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        db.close()
    _, wal_after = file_sizes(path)
    return {
        "busy": bool(busy),
        "wal_frames": frames,
        "copied": copied,
        "wal_bytes_before": wal_before,
        "wal_bytes_after": wal_after,
        "seconds": round(time.monotonic() - started, 3),
    }
