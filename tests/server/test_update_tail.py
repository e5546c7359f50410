"""The update logs' tail (store/tail.py): each commit appends its log rows to
`update_journal`, the loop keeps them in memory, and later commits fold them into
`updates`. Wherever a row is (tail, journal, `updates`, or two of them at once), reads must
see it exactly once and in order, and no fold, failure, crash or prune may lose it."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgpack
import pytest
from liaotian.protocol import UpdateKind
from liaotian.server.store import SQLiteStore
from liaotian.server.store.sqlite import sql, tail
from test_store import Committed, db_path, log_rows, query, req, users

LONG = 3_600_000  # a fold age no test outlives: rows stay in the tail and the journal
Logs = dict[int, list[tuple[int, bytes]]]  # user -> [(seq, message body)], by seq


@contextlib.asynccontextmanager
async def opened(path: str, **kwargs: Any) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(path, **kwargs)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def to_bob(
    s: SQLiteStore, done: Committed, sender: tuple[int, str], prefix: str, n: int
) -> list[Any]:
    """n sends to bob, submitted together; every send answered so far once they are."""
    for i in range(n):
        s.submit(req(sender, "bob", f"{prefix}{i}"))
    return await done.wait_for(len(done.answered) + n)


def _noop(db: sqlite3.Connection) -> None:
    return None


def log_keys(reqs: list[Any]) -> list[tuple[int, int]]:
    """(user, seq) of every log row the answered sends made."""
    keys = []
    for r in reqs:
        keys.append((r.sender_id, r.result.sender_seq))
        if r.result.recipient_id != r.sender_id:
            keys.append((r.result.recipient_id, r.result.recipient_seq))
    return sorted(keys)


def expected(answered: list[Any]) -> Logs:
    """Every user's log as the acknowledgements describe it."""
    logs: Logs = defaultdict(list)
    for r in answered:
        logs[r.sender_id].append((r.result.sender_seq, r.result.body))
        if r.result.recipient_id != r.sender_id:
            logs[r.result.recipient_id].append((r.result.recipient_seq, r.result.body))
    for entries in logs.values():
        entries.sort()
        assert [seq for seq, _ in entries] == list(range(1, len(entries) + 1))
    return logs


def decoded(updates: list[bytes]) -> list[list[Any]]:
    return [msgpack.unpackb(u) for u in updates]


def want(entries: list[tuple[int, bytes]]) -> list[list[Any]]:
    return [[seq, UpdateKind.MESSAGE, msgpack.unpackb(body)] for seq, body in entries]


async def check_reads(
    s: SQLiteStore, logs: Logs, limits: tuple[int, ...] = (1, 2, 5, 1000)
) -> None:
    """Every page of every log, from every cursor, equals the expected slice."""
    for uid, entries in logs.items():
        for since in range(len(entries) + 1):
            for limit in limits:
                page = await s.read_updates(uid, since, limit)
                part = entries[since : since + limit]
                where = f"user {uid} since {since} limit {limit}"
                assert not page.resync, where
                assert decoded(page.updates) == want(part), where
                assert page.last_seq == (part[-1][0] if part else since), where


async def commit_until(s: SQLiteStore, done: Callable[[], bool], tries: int = 20) -> None:
    """No-op commits (each plans folds and maybe a trim) until `done`; fail if never."""
    for _ in range(tries):
        if done():
            return
        await s.run_in_commit(_noop)
    assert done(), f"not reached after {tries} commits"


def journal_count(path: str) -> int:
    return query(path, "SELECT count(*) FROM update_journal")[0][0]


async def test_unfolded_rows_are_served_from_the_tail_and_folded_at_close(
    tmp_path, monkeypatch
) -> None:
    """With a long fold age (and no direct writes) nothing reaches `updates` while the
    store runs: the journal holds one row per commit, every read and delivered_pos come
    from the tail alone, and a clean close folds it all."""
    monkeypatch.setattr(tail, "DIRECT_ROWS", 10**9)
    path = db_path(tmp_path)
    async with opened(path, fold_age_ms=LONG) as s:
        alice, bob, _ = await users(s, "alice", "bob", "carol")
        await s.set_device_token(bob[0], "d1", b"t" * 32)
        done = Committed(s, path)
        for i in range(12):  # bob's log mixes two conversations
            s.submit(
                req(bob, "carol", f"b{i}", f"bob {i}")
                if i % 3 == 0
                else req(alice, "bob", f"a{i}", f"alice {i}")
            )
        answered = await done.wait_for(12)
        logs = expected(answered)

        assert query(path, "SELECT count(*) FROM updates") == [(0,)]
        journal = query(path, "SELECT rows FROM update_journal ORDER BY id")
        assert len(journal) == len(done.batches)  # one row per commit that logged
        for (packed,), batch in zip(journal, done.batches, strict=True):
            assert sorted((u, seq) for _, u, seq, *_ in msgpack.unpackb(packed)) == log_keys(batch)
        await check_reads(s, logs)

        # bob's device acknowledged seq `upto`: the newest position of each conversation
        # at or below it (only the tail can tell: `updates` is empty)
        bobs = sorted(
            (
                r.result.sender_seq if r.sender_id == bob[0] else r.result.recipient_seq,
                r.result.conv,
                r.result.pos,
            )
            for r in answered
        )
        upto = 7
        delivered = {conv: pos for seq, conv, pos in bobs if seq <= upto}
        assert len(delivered) == 2
        s.record_position(bob[0], "d1", upto)
        await s.run_in_commit(_noop)  # flushes the position
        assert query(path, "SELECT acked FROM devices") == [(upto,)]
        assert not s.positions.pending and not s.positions.committing
        for conv, pos in delivered.items():
            assert await s.delivered_pos(bob[0], conv) == pos

    assert journal_count(path) == 0
    assert sorted(query(path, "SELECT user_id, seq FROM updates")) == log_keys(answered)
    async with opened(path, fold_age_ms=LONG) as s:
        assert len(s.tail) == 0
        await check_reads(s, logs)
        for conv, pos in delivered.items():  # now from `updates`
            assert await s.delivered_pos(bob[0], conv) == pos


async def test_folded_rows_leave_the_tail_and_the_journal(tmp_path, monkeypatch) -> None:
    """With fold_age_ms=0 every commit folds what is due, and the journal rows of folded
    rows are trimmed one commit behind the fold (see the idle case below)."""
    monkeypatch.setattr(tail, "TRIM_EVERY_MS", 0)
    monkeypatch.setattr(tail, "DIRECT_ROWS", 10**9)  # every row goes through the journal
    path = db_path(tmp_path)
    async with opened(path, fold_age_ms=0) as s:
        alice, bob, _ = await users(s, "alice", "bob", "carol")
        done = Committed(s, path)
        for i in range(30):
            s.submit(req(alice if i % 2 else bob, "carol" if i % 3 else "alice", f"c{i}"))
        answered = await done.wait_for(30)
        await commit_until(s, lambda: len(s.tail) == 0)
        assert s.tail.rows == 0
        assert sorted(query(path, "SELECT user_id, seq FROM updates")) == log_keys(answered)
        assert s.stats.folded_rows == len(log_keys(answered))
        await check_reads(s, expected(answered))

        s.submit(req(alice, "bob", "next"))
        answered = await done.wait_for(31)
        (last,) = query(path, "SELECT max(id) FROM update_journal")[0]
        await commit_until(s, lambda: query(path, "SELECT id FROM update_journal") == [(last,)])
        await check_reads(s, expected(answered))


async def test_an_idle_store_trims_the_journal(tmp_path, monkeypatch) -> None:
    """Once the tail is empty every journal row is folded: the next commits delete them,
    though there is nothing left to fold (the trim once ran only beside a fold)."""
    monkeypatch.setattr(tail, "TRIM_EVERY_MS", 0)
    path = db_path(tmp_path)
    async with opened(path, fold_age_ms=0) as s:
        alice, _ = await users(s, "alice", "bob")
        done = Committed(s, path)
        await to_bob(s, done, alice, "c", 3)
        await commit_until(s, lambda: len(s.tail) == 0)
        await commit_until(s, lambda: journal_count(path) == 0)


@pytest.mark.parametrize("direct_rows", [10**9, 2])
async def test_reads_across_fold_boundaries(tmp_path, monkeypatch, direct_rows: int) -> None:
    """One user folded per commit, commits pipelined, and (with direct_rows 2) a user's
    rows written straight into `updates` whenever a commit has two of them, unless its
    parent journalled rows of that user: logs are split between `updates` and the tail at
    varying points, and every page from every cursor must be the right slice."""
    monkeypatch.setattr(tail, "FOLD_USERS", 1)
    monkeypatch.setattr(tail, "DIRECT_ROWS", direct_rows)
    path = db_path(tmp_path)
    async with opened(path, fold_age_ms=0) as s:
        people = await users(s, "alice", "bob", "carol", "dave")
        done = Committed(s, path)
        sent = splits = 0
        for step in range(6):
            for k in range(3):
                a, b = people[(step + k) % 4], people[(step + 2 * k + 1) % 4]
                s.submit(req(a, b[1], f"s{step}.{k}", f"step {step} send {k}"))
                sent += 1
                if k == 0:  # the first is being written: the others are planned on it,
                    await asyncio.sleep(0)  # and their folds planned before it publishes
            logs = expected(await done.wait_for(sent))
            for _ in range(2):
                folded = dict(query(path, "SELECT user_id, max(seq) FROM updates GROUP BY 1"))
                splits += sum(1 for u in logs if folded.get(u) and s.tail.after(u, 0))
                await check_reads(s, logs, limits=(1, 3, 1000))
                await s.run_in_commit(_noop)
        assert splits > 0, "no log was ever split between `updates` and the tail"


async def test_many_rows_of_one_user_in_a_commit_skip_the_journal(tmp_path) -> None:
    """A commit with DIRECT_ROWS rows of a user (a burst, or a group's members) writes them
    straight into `updates`, with the user's tail folded in the same commit so that
    `updates` still holds a prefix of the log."""
    path = db_path(tmp_path)
    async with opened(path, fold_age_ms=LONG) as s:
        alice, bob, carol = await users(s, "alice", "bob", "carol")
        done = Committed(s, path)
        await to_bob(s, done, alice, "early", 3)
        assert query(path, "SELECT count(*) FROM updates") == [(0,)]
        assert len(s.tail.after(bob[0], 0)) == 3

        n = tail.DIRECT_ROWS + 2
        for i in range(n):  # submitted together: one commit
            s.submit(req(alice, "bob", f"burst{i}"))
        s.submit(req(carol, "bob", "one"))  # carol has one row: journalled
        answered = await done.wait_for(3 + n + 1)
        assert len(done.batches) == 2
        logs = expected(answered)
        folded = dict(query(path, "SELECT user_id, count(*) FROM updates GROUP BY 1"))
        assert folded == {alice[0]: 3 + n, bob[0]: 3 + n + 1}
        assert s.tail.after(alice[0], 0) == [] and s.tail.after(bob[0], 0) == []
        assert [seq for seq, _, _ in s.tail.after(carol[0], 0)] == [1]
        last = query(path, "SELECT rows FROM update_journal ORDER BY id DESC LIMIT 1")[0][0]
        assert [(u, seq) for _, u, seq, *_ in msgpack.unpackb(last)] == [(carol[0], 1)]
        await check_reads(s, logs)


@pytest.mark.parametrize("fold", ["before the query", "after the query"])
async def test_a_fold_during_a_read_hides_no_rows(tmp_path, monkeypatch, fold: str) -> None:
    """read_updates copies the tail, then queries `updates`. A fold published in between
    (or while the query runs) drops rows from the live tail, and the journal trim after
    it their batches' bodies: the page must still have them, from the copy (bodies
    resolved when it is taken) or from `updates`."""
    monkeypatch.setattr(tail, "TRIM_EVERY_MS", 0)
    path = db_path(tmp_path)
    async with opened(path, fold_age_ms=0) as s:
        alice, bob = await users(s, "alice", "bob")
        done = Committed(s, path)
        await to_bob(s, done, alice, "old", 3)
        await commit_until(s, lambda: len(s.tail) == 0)  # seqs 1..3 are in `updates`
        logs = expected(await to_bob(s, done, alice, "new", 3))
        assert s.tail.after(bob[0], 0)[0][0] > 1  # the page needs the database too

        reader = s.readers.conns[0]
        real, raced = reader.execute_fetchall, []

        async def racing(statement: str, *args: Any) -> Any:
            if "FROM updates u" not in statement:
                return await real(statement, *args)
            folded = lambda: not s.tail.after(bob[0], 0) and not s.tail._messages  # noqa: E731
            if fold == "before the query":
                await commit_until(s, folded)
            rows = await real(statement, *args)
            if fold == "after the query":
                await commit_until(s, folded)
            raced.append(statement)
            return rows

        monkeypatch.setattr(reader, "execute_fetchall", racing)
        page = await s.read_updates(bob[0], 0, 100)
        assert raced, "the read did not query `updates`"
        assert decoded(page.updates) == want(logs[bob[0]]) and page.last_seq == 6


async def test_opening_folds_what_a_crash_left_in_the_journal(tmp_path) -> None:
    """After a crash, rows may be only in the journal, or folded and still journaled.
    Opening folds them all, each once, before anything is served."""
    path = db_path(tmp_path)
    async with opened(path) as s:
        alice, bob = await users(s, "alice", "bob")
        done = Committed(s, path)
        for i in range(6):
            s.submit(req(alice, "bob", f"a{i}") if i % 2 else req(bob, "alice", f"b{i}"))
        answered = await done.wait_for(6)
    logs = expected(answered)
    stored = query(path, "SELECT * FROM updates ORDER BY user_id, seq")
    assert len(stored) == 12 and journal_count(path) == 0

    # the last three messages' rows journaled, one commit each; the first of them was
    # folded before the crash, the others not
    mids = [r.result.id for r in answered[3:]]
    db = sqlite3.connect(path)
    try:
        with db:
            for jid, mid in enumerate(mids, start=1):
                rows = db.execute(
                    "SELECT user_id, seq, kind, message_id, data, ts FROM updates "
                    "WHERE message_id = ?",
                    (mid,),
                ).fetchall()
                db.execute(
                    "INSERT INTO update_journal (id, ts, rows) VALUES (?, ?, ?)",
                    sql.journal_entry([(jid, *row) for row in rows]),
                )
                if mid != mids[0]:
                    db.execute("DELETE FROM updates WHERE message_id = ?", (mid,))
            # the chat list's index as it was before those rows were folded
            db.execute("UPDATE chats SET ts = 1, seq = 0, pos = 0")
    finally:
        db.close()
    assert query(path, "SELECT count(*) FROM updates") == [(8,)] and log_rows(path) == 12

    async with opened(path) as s:
        assert query(path, "SELECT * FROM updates ORDER BY user_id, seq") == stored
        assert journal_count(path) == 0 and len(s.tail) == 0
        await check_reads(s, logs)
        # the folds at open brought the chat list's index up to the journal's rows
        ts = answered[-1].result.ts
        assert query(path, "SELECT user_id, ts, seq, pos FROM chats ORDER BY user_id") == [
            (alice[0], ts, 6, 6),
            (bob[0], ts, 6, 6),
        ]
        done = Committed(s, path)
        s.submit(req(alice, "bob", "after"))
        (r,) = await done.wait_for(1)
        assert (r.result.sender_seq, r.result.recipient_seq) == (7, 7)
        page = await s.read_updates(bob[0], 6, 10)
        assert decoded(page.updates) == want([(7, r.result.body)])


async def test_a_failed_commit_leaves_the_tail_intact(tmp_path, monkeypatch) -> None:
    """A commit carrying folds fails: the tail must keep every row and forget the fold, so
    that later commits fold normally and reads stay complete."""
    monkeypatch.setattr(tail, "TRIM_EVERY_MS", 0)
    path = db_path(tmp_path)
    async with opened(path, fold_age_ms=0) as s:
        alice, bob = await users(s, "alice", "bob")
        done = Committed(s, path)
        logs = expected(await to_bob(s, done, alice, "c", 5))
        rows, folded = s.tail.rows, query(path, "SELECT * FROM updates")
        assert rows > 0

        real, failed = sql.write_batch, []

        def failing(*args: Any, **kwargs: Any) -> Any:
            if args[3] and not failed:  # `folds`
                failed.append(len(args[3]))
                raise OSError("disk on fire")
            return real(*args, **kwargs)

        monkeypatch.setattr(sql, "write_batch", failing)
        with pytest.raises(RuntimeError, match="commit failed"):
            await s.run_in_commit(_noop)
        assert failed
        assert s.tail.rows == rows and not s.tail._inflight
        assert query(path, "SELECT * FROM updates") == folded
        await check_reads(s, logs)

        await commit_until(s, lambda: len(s.tail) == 0)
        assert query(path, "SELECT count(*) FROM updates") == [(10,)]
        await check_reads(s, logs)
        s.submit(req(bob, "alice", "after"))
        (r,) = (await done.wait_for(6))[5:]
        assert (r.result.sender_seq, r.result.recipient_seq) == (6, 6)
        await check_reads(s, expected(done.answered))


async def test_prune_folds_the_tail_first(tmp_path) -> None:
    """Rows only in the tail and the journal are older than a future horizon: prune must
    fold them first, so that it deletes them all and raises every floor."""
    path = db_path(tmp_path)
    async with opened(path, fold_age_ms=LONG) as s:
        alice, bob, carol = await users(s, "alice", "bob", "carol")
        done = Committed(s, path)
        for i in range(6):
            s.submit(req(alice, "bob", f"a{i}") if i % 2 else req(bob, "carol", f"b{i}"))
        logs = expected(await done.wait_for(6))
        assert query(path, "SELECT count(*) FROM updates") == [(0,)] and log_rows(path) == 12

        assert await s.prune_updates(int(time.time() * 1000) + 60_000) == 3
        assert log_rows(path) == 0 and len(s.tail) == 0
        for uid, _ in (alice, bob, carol):
            head = len(logs[uid])
            assert await s.floor(uid) == head and await s.head(uid) == head
            assert (await s.read_updates(uid, 0, 10)).resync
            page = await s.read_updates(uid, head, 10)
            assert not page.resync and page.updates == [] and page.last_seq == head
        s.submit(req(alice, "bob", "after"))
        (r,) = (await done.wait_for(7))[6:]
        assert (r.result.sender_seq, r.result.recipient_seq) == (4, 7)
    assert query(path, "SELECT log_floor FROM users ORDER BY id") == [(3,), (6,), (3,)]
    assert sorted(query(path, "SELECT user_id, seq FROM updates")) == [(alice[0], 4), (bob[0], 7)]


async def test_prune_keeps_rows_committed_beside_it(tmp_path) -> None:
    """A send committed with (or after) prune's fold loop, older than the horizon: its rows
    are only in the tail and the journal. Either pruned or kept is fine; lost is not."""
    path = db_path(tmp_path)
    async with opened(path, fold_age_ms=LONG) as s:
        alice, bob = await users(s, "alice", "bob")
        done = Committed(s, path)
        s.submit(req(alice, "bob", "beside"))
        await s.prune_updates(int(time.time() * 1000) + 60_000)
        await done.wait_for(1)
    async with opened(path) as s:
        floor = await s.floor(bob[0])
        assert await s.head(bob[0]) == 1  # a head never moves back
        page = await s.read_updates(bob[0], floor, 10)
        assert [u[0] for u in decoded(page.updates)] == list(range(floor + 1, 2))
