"""SQLiteStore on its own: group commit, idempotency, numbering, migrations, pragmas, pruning."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from liaotian.protocol import ErrorCode
from liaotian.server.chat.ops import SendRequest
from liaotian.server.store import SQLiteStore
from liaotian.server.store.sqlite import sql
from liaotian.server.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION


class Committed:
    """on_committed hook: records each batch and what the database held right then."""

    def __init__(self, store: SQLiteStore, db_path: str) -> None:
        self.db_path = db_path
        self.batches: list[list[SendRequest]] = []
        self.visible_at_callback: list[bool] = []
        self._changed = asyncio.Event()
        store.on_committed = self

    def __call__(self, reqs: list[SendRequest]) -> None:
        ids = [r.result.id for r in reqs if r.result is not None and not r.result.duplicate]
        if ids:  # durable before anyone is told: a separate connection must see the rows
            with sqlite3.connect(self.db_path) as db:
                marks = ",".join("?" * len(ids))
                (n,) = db.execute(
                    f"SELECT count(*) FROM messages WHERE id IN ({marks})", ids
                ).fetchone()
            db.close()
            self.visible_at_callback.append(n == len(ids))
        self.batches.append(list(reqs))
        self._changed.set()

    @property
    def answered(self) -> list[SendRequest]:
        return [r for b in self.batches for r in b]

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[SendRequest]:
        async with asyncio.timeout(timeout):
            while len(self.answered) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.answered


def req(
    sender: tuple[int, str],
    to: str,
    cmid: str,
    text: str = "t",
    rid: int = 1,
    meta: dict[str, Any] | None = None,
) -> SendRequest:
    return SendRequest(
        sender_id=sender[0],
        sender_name=sender[1],
        to_name=to,
        cmid=cmid,
        text=text,
        meta=meta or {},
        session=0,
        rid=rid,
    )


def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "store.db")


def log_rows(path: str) -> int:
    """Update-log rows stored: folded into `updates`, or still in the journal (see
    store/tail.py); a row folded and not yet trimmed from the journal counts once, and a
    journal row at or below its user's floor (pruned, awaiting its trim) not at all."""
    db = sqlite3.connect(path)
    try:
        floors = dict(db.execute("SELECT id, log_floor FROM users"))
        return len(
            set(db.execute("SELECT user_id, seq FROM updates"))
            | {row[:2] for row in sql.journal_rows(db) if row[1] > floors[row[0]]}
        )
    finally:
        db.close()


def query(path: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(db_path(tmp_path))
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def users(store: SQLiteStore, *names: str) -> list[tuple[int, str]]:
    return [(await store.create_user(n, "hash"), n) for n in names]


async def test_group_commit_batches_many_sends(store, tmp_path) -> None:
    alice, bob = await users(store, "alice", "bob")
    done = Committed(store, db_path(tmp_path))
    batches_before = store.batches
    n = 500
    for i in range(n):  # all submitted in one go, as a burst of SENDs would be
        store.submit(req(alice, "bob", f"c{i}", f"m{i}", rid=i + 1))
    answered = await done.wait_for(n)

    assert store.batches - batches_before <= 5, "not group-committed"
    assert len(done.batches) <= 5
    assert all(done.visible_at_callback)
    assert store.committed_sends == n
    assert [r.rid for r in answered] == list(range(1, n + 1))  # answered in submit order
    results = [r.result for r in answered]
    assert all(r is not None and not r.duplicate for r in results)
    first = results[0].id
    assert [r.id for r in results] == list(range(first, first + n))
    assert [r.pos for r in results] == list(range(1, n + 1))
    assert [r.sender_seq for r in results] == list(range(1, n + 1))
    assert [r.recipient_seq for r in results] == list(range(1, n + 1))
    assert len({r.conv for r in results}) == 1
    assert all(r.recipient_id == bob[0] for r in results)
    # the stored body is the message map the readers get
    m = msgpack.unpackb(results[7].body)
    assert (m["id"], m["pos"], m["from"], m["to"], m["cmid"], m["text"]) == (
        results[7].id,
        8,
        "alice",
        "bob",
        "c7",
        "m7",
    )

    path = db_path(tmp_path)
    assert query(path, "SELECT count(*) FROM messages") == [(n,)]
    assert log_rows(path) == 2 * n
    assert await store.head(alice[0]) == n and await store.head(bob[0]) == n
    page = await store.read_updates(bob[0], 0, 1000)
    assert page.last_seq == n and len(page.updates) == n and not page.resync


async def test_max_batch_caps_a_commit(tmp_path) -> None:
    s = SQLiteStore(db_path(tmp_path), max_batch=100)
    await s.open()
    try:
        alice, _ = await users(s, "alice", "bob")
        done = Committed(s, db_path(tmp_path))
        for i in range(450):
            s.submit(req(alice, "bob", f"c{i}"))
        answered = await done.wait_for(450)
        assert len(done.batches) >= 5
        assert all(len(b) <= 100 for b in done.batches)
        assert [r.result.pos for r in answered] == list(range(1, 451))
    finally:
        await s.close()


async def test_duplicate_cmid_within_one_batch(store, tmp_path) -> None:
    alice, _ = await users(store, "alice", "bob")
    done = Committed(store, db_path(tmp_path))
    store.submit(req(alice, "bob", "same", "first", rid=1))
    store.submit(req(alice, "bob", "same", "second", rid=2))
    store.submit(req(alice, "bob", "other", "third", rid=3))
    a, b, c = await done.wait_for(3)
    assert len(done.batches) == 1
    assert not a.result.duplicate and b.result.duplicate and not c.result.duplicate
    assert (b.result.id, b.result.pos, b.result.ts, b.result.sender_seq) == (
        a.result.id,
        a.result.pos,
        a.result.ts,
        a.result.sender_seq,
    )
    assert b.result.body == b""  # nothing to deliver for a duplicate
    assert (c.result.pos, c.result.sender_seq) == (2, 2)
    stored = query(db_path(tmp_path), "SELECT cmid, body FROM messages ORDER BY id")
    assert [(c, msgpack.unpackb(b)["text"]) for c, b in stored] == [
        ("same", "first"),
        ("other", "third"),
    ]
    assert store.committed_sends == 2


async def test_duplicate_cmid_across_close_and_reopen(tmp_path) -> None:
    path = db_path(tmp_path)
    s = SQLiteStore(path)
    await s.open()
    alice, bob = await users(s, "alice", "bob")
    done = Committed(s, path)
    s.submit(req(alice, "bob", "k1", "original"))
    s.submit(req(bob, "alice", "k1", "bob's own k1"))  # cmids are per sender
    (orig, bobs) = [r.result for r in await done.wait_for(2)]
    assert not orig.duplicate and not bobs.duplicate and orig.id != bobs.id
    await s.close()

    s = SQLiteStore(path)  # fresh caches: the answer must come from the database
    await s.open()
    try:
        done = Committed(s, path)
        s.submit(req(alice, "bob", "k1", "retry after restart"))
        s.submit(req(alice, "bob", "k2", "new"))
        retry, new = [r.result for r in await done.wait_for(2)]
        assert retry.duplicate
        assert (retry.id, retry.conv, retry.pos, retry.ts, retry.sender_seq) == (
            orig.id,
            orig.conv,
            orig.pos,
            orig.ts,
            orig.sender_seq,
        )
        # numbering continues after the reopen
        assert not new.duplicate
        assert (new.id, new.pos, new.sender_seq, new.recipient_seq) == (3, 3, 3, 3)
        assert query(path, "SELECT count(*) FROM messages WHERE cmid='k1'") == [(2,)]
    finally:
        await s.close()


async def test_unknown_recipient_fails_alone(store, tmp_path) -> None:
    alice, _ = await users(store, "alice", "bob")
    done = Committed(store, db_path(tmp_path))
    store.submit(req(alice, "bob", "c1", rid=1))
    store.submit(req(alice, "nobody", "c2", rid=2))
    store.submit(req(alice, "bob", "c3", rid=3))
    ok1, bad, ok2 = await done.wait_for(3)
    assert bad.result is None and bad.error == ErrorCode.UNKNOWN_USER
    assert ok1.error is None and ok2.error is None
    assert (ok1.result.pos, ok2.result.pos) == (1, 2)  # no number was spent on the failure
    assert ok2.result.id == ok1.result.id + 1
    # the cmid of a failed send is still free
    store.submit(req(alice, "bob", "c2", rid=4))
    (retry,) = (await done.wait_for(4))[3:]
    assert retry.result is not None and not retry.result.duplicate and retry.result.pos == 3


async def test_self_conversation_has_one_log_entry(store, tmp_path) -> None:
    alice, _ = await users(store, "alice", "bob")
    done = Committed(store, db_path(tmp_path))
    store.submit(req(alice, "alice", "n1"))
    store.submit(req(alice, "bob", "n2"))
    a, b = [r.result for r in await done.wait_for(2)]
    assert (a.sender_seq, a.recipient_seq) == (1, 1)
    assert b.sender_seq == 2 and b.recipient_seq == 1 and a.conv != b.conv
    assert await store.head(alice[0]) == 2


async def test_migrations_on_a_fresh_database_and_reopen_is_a_no_op(tmp_path) -> None:
    path = db_path(tmp_path)
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 1
    s = SQLiteStore(path)
    await s.open()
    await s.create_user("alice", "hash")
    await s.close()
    assert query(path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    tables = {r[0] for r in query(path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "devices", "conversations", "messages", "updates"} <= tables

    s = SQLiteStore(path)
    await s.open()  # nothing to apply; would fail on CREATE TABLE if it re-ran
    try:
        assert (await s.user_by_name("alice")) is not None
    finally:
        await s.close()
    assert query(path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert query(path, "SELECT username FROM users") == [("alice",)]


async def test_a_newer_schema_is_refused(tmp_path) -> None:
    path = db_path(tmp_path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    s = SQLiteStore(path)
    with pytest.raises(RuntimeError, match="newer"):
        await s.open()
    await s.close()


async def _pragmas(s: SQLiteStore) -> tuple[str, int]:
    def op(db: Any) -> tuple[str, int]:
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
        (sync,) = db.execute("PRAGMA synchronous").fetchone()
        return mode, sync

    return await s.run_in_commit(op)  # runs on the writer's own connection


async def test_wal_and_synchronous_full_by_default(store) -> None:
    assert await _pragmas(store) == ("wal", 2)


async def test_synchronous_normal_when_configured(tmp_path) -> None:
    s = SQLiteStore(db_path(tmp_path), synchronous="normal")
    await s.open()
    try:
        assert await _pragmas(s) == ("wal", 1)
    finally:
        await s.close()
    with pytest.raises(ValueError):
        SQLiteStore(db_path(tmp_path), synchronous="off")


async def test_prune_raises_the_floor(tmp_path) -> None:
    path = db_path(tmp_path)
    s = SQLiteStore(path)
    await s.open()
    alice, bob = await users(s, "alice", "bob")
    carol = (await s.create_user("carol", "hash"), "carol")
    done = Committed(s, path)
    for i in range(3):
        s.submit(req(alice, "bob", f"c{i}"))
    await done.wait_for(3)

    assert await s.prune_updates(0) == 0  # nothing older than the epoch
    assert (await s.read_updates(bob[0], 0, 10)).last_seq == 3

    assert await s.prune_updates(int(time.time() * 1000) + 60_000) == 2
    assert await s.floor(alice[0]) == 3 and await s.floor(bob[0]) == 3
    assert await s.floor(carol[0]) == 0
    page = await s.read_updates(bob[0], 0, 10)
    assert page.resync and page.updates == []
    assert (await s.read_updates(bob[0], 2, 10)).resync
    page = await s.read_updates(bob[0], 3, 10)
    assert not page.resync and page.updates == [] and page.last_seq == 3
    assert await s.head(bob[0]) == 3  # the head does not move back
    assert log_rows(path) == 0
    assert query(path, "SELECT count(*) FROM messages") == [(3,)]  # the archive stays

    s.submit(req(alice, "bob", "c3"))
    (nxt,) = (await done.wait_for(4))[3:]
    assert (nxt.result.sender_seq, nxt.result.recipient_seq, nxt.result.pos) == (4, 4, 4)
    await s.close()

    # after a reopen the floor and the numbering are still right
    s = SQLiteStore(path)
    await s.open()
    try:
        assert await s.floor(bob[0]) == 3 and await s.head(bob[0]) == 4
        assert (await s.read_updates(bob[0], 0, 10)).resync
        page = await s.read_updates(bob[0], 3, 10)
        assert page.last_seq == 4 and len(page.updates) == 1
        done = Committed(s, path)
        s.submit(req(bob, "alice", "d1"))
        (r,) = await done.wait_for(1)
        assert (r.result.sender_seq, r.result.recipient_seq) == (5, 5)
    finally:
        await s.close()


async def test_read_updates_cut_by_size_keeps_at_least_one(store, tmp_path) -> None:
    alice, bob = await users(store, "alice", "bob")
    done = Committed(store, db_path(tmp_path))
    for i in range(5):
        store.submit(req(alice, "bob", f"c{i}", "x" * 1000))
    await done.wait_for(5)
    page = await store.read_updates(bob[0], 0, 100, max_bytes=2500)
    assert len(page.updates) == 2 and page.last_seq == 2
    page = await store.read_updates(bob[0], 0, 100, max_bytes=10)
    assert len(page.updates) == 1 and page.last_seq == 1
    conv = await store.direct_conv(bob[0], alice[0])
    assert conv is not None
    rows, more = await store.history(conv, None, None, 100, max_bytes=2500)
    assert len(rows) == 2 and more
    assert [msgpack.unpackb(r)["pos"] for r in rows] == [4, 5]


async def test_positions_are_stored_forward_only_and_on_close(tmp_path) -> None:
    path = db_path(tmp_path)
    s = SQLiteStore(path)
    await s.open()
    uid = await s.create_user("alice", "hash")
    await s.set_device_token(uid, "d1", b"t" * 32)
    s.record_position(uid, "d1", 7)
    s.record_position(uid, "d1", 3)
    await s.close()  # flushes pending positions
    assert query(path, "SELECT acked FROM devices") == [(7,)]
    s = SQLiteStore(path)
    await s.open()
    try:
        found = await s.device_by_token(b"t" * 32)
        assert found is not None and found[1].acked == 7
        assert await s.set_device_token(uid, "d1", b"u" * 32) == 7  # re-key keeps acked
        assert await s.device_by_token(b"t" * 32) is None
        assert await s.delete_device(uid, "d1") is True
        assert await s.delete_device(uid, "d1") is False
    finally:
        await s.close()


async def test_writes_after_close_are_refused(tmp_path) -> None:
    from liaotian.server.store import StoreClosed

    s = SQLiteStore(db_path(tmp_path))
    await s.open()
    alice = (await s.create_user("alice", "hash"), "alice")
    await s.close()
    with pytest.raises(StoreClosed):
        s.submit(req(alice, "alice", "late"))
    with pytest.raises(StoreClosed):
        await s.create_user("bob", "hash")


def test_reads_never_hold_a_cursor_across_an_await() -> None:
    """`async with db.execute(...) as cur: await cur.fetchall()` is two reader-thread calls;
    a read interleaved between them joins the open statement's old snapshot (a LOGIN right
    after REGISTERED then missed the new user, and an open statement also holds back WAL
    checkpoints). Every store read must be a single execute_fetchall call."""
    import inspect
    import re

    from liaotian.server.store.sqlite import reads, store, writer

    for module in (reads, store, writer):
        source = inspect.getsource(module)
        assert not re.search(r"async with [\w.]+\.execute\(", source), module.__name__
        assert "fetchone()" not in source and "cur.fetchall()" not in source, module.__name__
