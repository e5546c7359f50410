"""Media metadata in SQLite (schema migration 11): blobs, their uploaders, the messages
that reference them, unfinished uploads. The store's facade (store.py) runs the writes
here in the writer thread (inside a group commit) and the reads on the reader connections.

A message's references are not written here: the SEND rule stages them in the message's
own commit (batch.py, INSERT_BLOB_REF and CLEAR_UNREF in sql.py).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgpack

from ...chat.model import KIND_DIRECT, Blob
from ..contract import BudgetRow, UploadRow
from .sql import chunks, one

UPLOAD_COLUMNS = "id, user_id, sha256, size, type, name, chunk_size, created, touched"
BLOB_COLUMNS = "sha256, size, type, info, created"

# the user's own stored content of this (sha256, size): the dedup of one uploader only
SELECT_STORED = (
    f"SELECT {', '.join('b.' + c for c in BLOB_COLUMNS.split(', '))} "
    "FROM blob_owners o JOIN blobs b ON b.sha256 = o.sha256 "
    "WHERE o.user_id = ? AND o.sha256 = ? AND b.size = ?"
)
SELECT_UPLOAD_OF = (
    f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE user_id = ? AND sha256 = ? AND size = ?"
)
COUNT_UPLOADS = "SELECT count(*) FROM uploads WHERE user_id = ?"
SELECT_UPLOAD = f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?"
SELECT_BLOB = f"SELECT {BLOB_COLUMNS} FROM blobs WHERE sha256 = ?"
IS_OWNER = "SELECT 1 FROM blob_owners WHERE user_id = ? AND sha256 = ?"
# per conversation of the user referencing the blob: (conv, newest pos, first pos seen)
SELECT_SEEN = (
    "SELECT r.conv_id, max(r.pos), 1 FROM blob_refs r "
    "JOIN conversations c ON c.id = r.conv_id "
    f"WHERE r.sha256 = ? AND c.kind = {KIND_DIRECT} AND (c.user_a = ? OR c.user_b = ?) "
    "GROUP BY r.conv_id "
    "UNION ALL "
    "SELECT r.conv_id, max(r.pos), m.joined_pos FROM blob_refs r "
    "JOIN members m ON m.conv_id = r.conv_id AND m.user_id = ? "
    "WHERE r.sha256 = ? GROUP BY r.conv_id, m.joined_pos"
)
SELECT_EXPIRED = (
    f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE touched < ? ORDER BY touched, id LIMIT ?"
)
SELECT_COLLECTABLE = (
    "SELECT sha256 FROM blobs WHERE unref_since IS NOT NULL "
    "AND unref_since < ? ORDER BY unref_since LIMIT ?"
)


SELECT_BUDGET = (
    "SELECT user_id, up_level, up_at, down_level, down_at FROM media_budgets WHERE user_id = ?"
)


def budget_row(row: Any) -> BudgetRow:
    return BudgetRow(int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]))


def save_budgets(db: sqlite3.Connection, rows: list[BudgetRow]) -> None:
    db.executemany(
        "INSERT INTO media_budgets (user_id, up_level, up_at, down_level, down_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
        "up_level = excluded.up_level, up_at = excluded.up_at, "
        "down_level = excluded.down_level, down_at = excluded.down_at",
        [(r.user_id, r.up_level, r.up_at, r.down_level, r.down_at) for r in rows],
    )


def upload_row(row: Any) -> UploadRow:
    return UploadRow(
        int(row[0]),
        int(row[1]),
        bytes(row[2]),
        int(row[3]),
        str(row[4]),
        str(row[5]),
        int(row[6]),
        int(row[7]),
        int(row[8]),
    )


def blob_row(row: Any) -> Blob:
    info = msgpack.unpackb(row[3]) if row[3] else {}
    return Blob(bytes(row[0]), int(row[1]), str(row[2]), info, int(row[4]))


# ---------------------------------------------------------------------- writes (writer thread)


def create_upload(
    db: sqlite3.Connection,
    uid: int,
    sha256: bytes,
    size: int,
    media_type: str,
    name: str,
    chunk_size: int,
    now_ms: int,
) -> UploadRow:
    db.execute(
        "INSERT INTO uploads (user_id, sha256, size, type, name, chunk_size, created, "
        "touched) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (user_id, sha256, size) DO NOTHING",
        (uid, sha256, size, media_type, name, chunk_size, now_ms, now_ms),
    )
    return upload_row(one(db, SELECT_UPLOAD_OF, (uid, sha256, size)))


def touch_upload(db: sqlite3.Connection, upload_id: int, now_ms: int) -> None:
    db.execute("UPDATE uploads SET touched = max(touched, ?) WHERE id = ?", (now_ms, upload_id))


def delete_upload(db: sqlite3.Connection, upload_id: int) -> bool:
    return db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,)).rowcount > 0


def complete_upload(
    db: sqlite3.Connection, upload_id: int, uid: int, blobs: list[Blob], now_ms: int
) -> None:
    for b in blobs:
        referenced = one(db, "SELECT 1 FROM blob_refs WHERE sha256 = ? LIMIT 1", (b.sha256,))
        cur = db.execute(
            "INSERT INTO blobs (sha256, size, type, info, created, unref_since) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
            (
                b.sha256,
                b.size,
                b.media_type,
                msgpack.packb(b.info),
                b.created,
                None if referenced else now_ms,
            ),
        )
        if cur.rowcount == 0:  # stored already: if unreferenced, it counts from now
            db.execute(
                "UPDATE blobs SET unref_since = ? WHERE sha256 = ? AND unref_since IS NOT NULL",
                (now_ms, b.sha256),
            )
        db.execute(
            "INSERT OR IGNORE INTO blob_owners (user_id, sha256, created) VALUES (?, ?, ?)",
            (uid, b.sha256, now_ms),
        )
    db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))


def collect_blobs(db: sqlite3.Connection, hashes: list[bytes], unref_before_ms: int) -> list[bytes]:
    """Delete the rows of the blobs still collectable; the ones deleted."""
    gone: list[bytes] = []
    for sha in hashes:
        cur = db.execute(
            "DELETE FROM blobs WHERE sha256 = ? AND unref_since IS NOT NULL "
            "AND unref_since < ? AND NOT EXISTS (SELECT 1 FROM blob_refs WHERE sha256 = ?)",
            (sha, unref_before_ms, sha),
        )
        if cur.rowcount:
            db.execute("DELETE FROM blob_owners WHERE sha256 = ?", (sha,))
            gone.append(sha)
    return gone


def known_blobs_sql(n: int) -> str:
    return f"SELECT sha256 FROM blobs WHERE sha256 IN ({','.join('?' * n)})"


def blob_chunks(hashes: list[bytes]) -> list[list[bytes]]:
    return list(chunks(hashes))
