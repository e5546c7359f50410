"""A database written by an older schema opens and upgrades in place, data intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgpack
from liaotian.protocol import ChatMessage
from liaotian.server.store import SQLiteStore
from liaotian.server.store.sqlite import sql
from liaotian.server.store.sqlite.schema import MIGRATIONS
from liaotian.server.store.sqlite.schema import statements as _statements


def make_v1_database(path: Path) -> None:
    """Schema 1 exactly as release 1 wrote it, with a direct conversation in it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for stmt in _statements(MIGRATIONS[0]):
        db.execute(stmt)
    db.execute("PRAGMA user_version=1")
    db.execute(
        "INSERT INTO users (id, username, password_hash, created) VALUES "
        "(1, 'alice', 'x', 1), (2, 'bob', 'x', 1)"
    )
    db.execute(
        "INSERT INTO conversations (id, kind, user_a, user_b, created) VALUES (1, 1, 1, 2, 1)"
    )
    for pos in (1, 2):
        body = ChatMessage(
            id=pos, conv=1, pos=pos, sender="alice", to="bob", ts=5, cmid=f"c{pos}", text=f"m{pos}"
        ).encode()
        db.execute(
            "INSERT INTO messages VALUES (?, 1, ?, 1, ?, ?, 5, ?)", (pos, pos, pos, f"c{pos}", body)
        )
        db.execute("INSERT INTO updates VALUES (1, ?, 1, ?, NULL, 5)", (pos, pos))
        db.execute("INSERT INTO updates VALUES (2, ?, 1, ?, NULL, 5)", (pos, pos))
    db.close()


async def test_v1_database_upgrades_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_v1_database(path)
    store = SQLiteStore(str(path))
    await store.open()
    try:
        assert await store.integrity_check() == "ok"
        assert await store.head(2) == 2
        conv = await store.direct_conv(1, 2)
        assert conv == 1
        rows, more = await store.history(conv, None, None, 10)
        assert [msgpack.unpackb(r)["text"] for r in rows] == ["m1", "m2"] and not more
        page = await store.read_updates(2, 0, 10)
        assert page.last_seq == 2 and len(page.updates) == 2
        assert await store.groups_of(1) == []
        # schema 12: the chat list's index is built from the conversations already there
        for uid in (1, 2):
            rows = await store.conversations_of(uid, 10, None)
            assert [(r[0], r[1], r[2], r[4], r[6]) for r in rows] == [(1, 1, 3 - uid, 5, 2)]
        soc = await store.social_of(1)
        assert soc.contacts == set() and soc.messages == 0
        assert soc.receipts == 1  # privacy `receipts`: existing users get "contacts"
    finally:
        await store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    columns = {r[1] for r in db.execute("PRAGMA table_info(users)")}
    assert {
        "display_name",
        "status",
        "privacy_presence",
        "last_seen",
        "privacy_receipts",
        "disabled",
        "privacy_coins",
    } <= columns
    # schema 9 (the wallet), 10 (channels) and 12 (media): their tables exist
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "wallet_accounts",
        "wallet_transfers",
        "wallet_items",
        "channels",
        "channel_posts",
        "blobs",
        "blob_owners",
        "blob_refs",
        "uploads",
    } <= tables
    # the rebuilt conversations table still refuses a second direct row for the pair
    try:
        db.execute("INSERT INTO conversations (kind, user_a, user_b, created) VALUES (1, 1, 2, 9)")
        raised = False
    except sqlite3.IntegrityError:
        raised = True
    assert raised
    # schema 3: the rebuilt messages table keeps every row and one message per sender + cmid,
    # its idempotency index ordered by cmid first
    assert db.execute("SELECT id, cmid FROM messages ORDER BY id").fetchall() == [
        (1, "c1"),
        (2, "c2"),
    ]
    unique = [r[1] for r in db.execute("PRAGMA index_list(messages)") if r[2]]
    columns = sorted([c[2] for c in db.execute(f"PRAGMA index_info({name})")] for name in unique)
    assert columns == [["cmid", "sender_id"], ["conv_id", "pos"]]
    try:
        db.execute("INSERT INTO messages VALUES (9, 1, 9, 1, 9, 'c1', 5, x'00')")
        raised = False
    except sqlite3.IntegrityError:
        raised = True
    assert raised
    db.close()


def test_the_duplicate_lookup_searches_the_idempotency_index(tmp_path: Path) -> None:
    """fetch_duplicates joins a VALUES list to messages: it must probe the unique index,
    never scan the table (a scan per batch was 20x slower, measured)."""
    path = tmp_path / "plan.db"
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS:
        for stmt in _statements(migration):
            db.execute(stmt)
    captured: list[str] = []
    db.set_trace_callback(captured.append)
    sql.fetch_duplicates(db, [(1, "a"), (2, "b")])
    db.set_trace_callback(None)
    (query,) = [q for q in captured if "JOIN messages" in q]
    plan = " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + query))
    assert "SEARCH m USING" in plan and "SCAN m" not in plan, plan
    db.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    store = SQLiteStore(str(path))
    try:
        await store.open()
        opened = True
    except RuntimeError as exc:
        opened = False
        assert "newer" in str(exc)
    assert not opened
    await store.close()
