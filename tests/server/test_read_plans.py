"""Every read of the store searches an index: none scans a whole table (whose cost would
grow with every user's data, not with the page asked for). The statements are the ones
the read methods really run, caught on the reader connections, and their plans are
checked with EXPLAIN QUERY PLAN on the migrated schema."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from liaotian.server.store import SQLiteStore

# CTEs and subqueries of the store's own statements: scanning those is not a table scan
_OWN = {"mine", "keyed", "page", "p"}


async def _statements(path: str) -> list[str]:
    store = SQLiteStore(path)
    await store.open()
    seen: list[str] = []
    try:
        conns = store.readers.conns
        for conn in conns:
            await conn.set_trace_callback(seen.append)
        u, v = 1, 2
        await store.head(u)
        await store.committed_head(u)
        await store.floor(u)
        await store.user_by_name("alice")
        await store.device_by_token(b"\x00" * 32)
        await store.device(u, "d1")
        await store.devices_of(u)
        await store.read_updates(u, 0, 100)
        await store.direct_conv(u, v)
        await store.history(7, None, None, 50)
        await store.history(7, 3, None, 50)
        await store.history(7, None, 3, 50)
        await store.group_state(7)
        await store.social_of(u)
        await store.last_pos(7)
        await store.usernames([u, v])
        await store.profile(u)
        await store.groups_of(u)
        await store.conversation(7)
        await store.read_marker(u, 7)
        await store.read_markers(7)
        await store.delivered_pos(u, 7)
        await store.conversations_of(u, 20, None)
        await store.conversations_of(u, 20, (1_700_000_000_000, 9))
        await store.unread_count(u, 7, 0)
        for conn in conns:
            await conn.set_trace_callback(None)
    finally:
        await store.close()
    return [s for s in seen if not s.lstrip().upper().startswith("PRAGMA")]


def _scans(db: sqlite3.Connection, statement: str) -> list[str]:
    plan: list[Any] = db.execute("EXPLAIN QUERY PLAN " + statement).fetchall()
    out = []
    for row in plan:
        detail = str(row[3])
        if detail.startswith("SCAN ") and detail.split()[1] not in _OWN:
            out.append(detail)
    return out


async def test_no_read_scans_a_table(tmp_path: Path) -> None:
    path = str(tmp_path / "plans.db")
    statements = await _statements(path)
    assert len(statements) >= 25, statements
    db = sqlite3.connect(path)
    try:
        scans = {s: _scans(db, s) for s in statements}
    finally:
        db.close()
    assert {s: found for s, found in scans.items() if found} == {}


@pytest.mark.parametrize(
    "limit, after, want", [(None, 0, [3, 5, 9]), (2, 0, [3, 5]), (2, 5, [9]), (5, 9, [])]
)
async def test_groups_of_pages_by_group_id(
    tmp_path: Path, limit: int | None, after: int, want: list[int]
) -> None:
    path = str(tmp_path / "groups.db")
    store = SQLiteStore(path)
    await store.open()
    try:

        def seed(db: sqlite3.Connection) -> None:
            for g in (9, 3, 5, 4):
                db.execute(
                    "INSERT INTO groups (conv_id, name, owner_id) VALUES (?, ?, 1)", (g, f"g{g}")
                )
                db.execute("INSERT INTO members VALUES (?, ?, 0, 1, 0)", (g, 2 if g == 4 else 1))

        await store.run_in_commit(seed)
        rows = await store.groups_of(1, limit=limit, after=after)
        assert [r[0] for r in rows] == want
        assert all(r[4] == 1 for r in rows)
    finally:
        await store.close()


async def test_unread_count_stops_at_its_cap(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "unread.db"))
    await store.open()
    try:

        def seed(db: sqlite3.Connection) -> None:
            for pos in range(1, 8):  # 7 from user 2, one of them an event, one from user 1
                sender, cmid = (1, "c") if pos == 4 else (2, "#event:x" if pos == 6 else "c")
                db.execute(
                    "INSERT INTO messages (conv_id, pos, sender_id, sender_seq, cmid, "
                    "ts, body) VALUES (7, ?, ?, ?, ?, 0, x'')",
                    (pos, sender, pos, f"{cmid}{pos}"),
                )

        await store.run_in_commit(seed)
        assert await store.unread_count(1, 7, 0) == 5
        assert await store.unread_count(1, 7, 0, cap=3) == 3
        assert await store.unread_count(1, 7, 0, cap=10) == 5
        assert await store.unread_count(1, 7, 5, cap=3) == 1
    finally:
        await store.close()


async def test_the_store_opens_as_many_readers_as_configured(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "n.db"), read_connections=3)
    await store.open()
    try:
        conns = store.readers.conns
        assert len(conns) == 3 and len(set(map(id, conns))) == 3
        # all of them read at once, each its own statement
        got = await asyncio.gather(*(store.head(1) for _ in range(9)))
        assert got == [0] * 9
    finally:
        await store.close()
    assert store.readers.conns == []
