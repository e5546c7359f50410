"""The pipelined group-commit writer: planning on top of a running batch, replanning when
that batch does not commit as planned, retries the dedup cache has forgotten, and the WAL
being checkpointed beside the writer and started over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from liaotian.protocol import ErrorCode
from liaotian.server.store import SQLiteStore
from liaotian.server.store.sqlite import checkpoint as checkpoint_module
from liaotian.server.store.sqlite import sql
from liaotian.server.store.sqlite import writer as writer_module
from liaotian.server.store.sqlite.sql import Txn
from test_store import Committed, db_path, log_rows, query, req, users


@contextlib.asynccontextmanager
async def warm_store(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, Any, Committed]]:
    """An open store with alice and bob, one send committed: their state is cached, so the
    next sends need no database reads and can be planned on top of a running batch."""
    s = SQLiteStore(db_path(tmp_path))
    await s.open()
    try:
        alice, _ = await users(s, "alice", "bob")
        done = Committed(s, db_path(tmp_path))
        s.submit(req(alice, "bob", "warm"))
        await done.wait_for(1)
        yield s, alice, done
    finally:
        await s.close()


def _hold_in_next_batch(s: SQLiteStore) -> tuple[threading.Event, threading.Event, Any]:
    """Queue a generic write that blocks inside the writer thread until released; queued
    synchronously, so it joins the batch with whatever was submitted just before it."""
    entered, release = threading.Event(), threading.Event()

    def hold(db: Any) -> None:
        entered.set()
        release.wait(10)

    held = asyncio.get_running_loop().create_future()
    s.writer.submit_txn(Txn(fn=hold, future=held))
    return entered, release, held


async def test_sends_queued_during_a_write_are_planned_on_top_of_it(tmp_path) -> None:
    async with warm_store(tmp_path) as (s, alice, done):
        for i in range(5):
            s.submit(req(alice, "bob", f"a{i}"))
        entered, release, held = _hold_in_next_batch(s)  # one batch: a0..a4 and the hold
        assert await asyncio.to_thread(entered.wait, 5)
        for i in range(20):
            s.submit(req(alice, "bob", f"c{i}"))
        s.submit(req(alice, "bob", "a2"))  # a retry of a send in the held batch
        await asyncio.sleep(0)  # the writer plans them while the thread is held
        planned_while_held = len(s.writer._queue) == 0 and not done.batches[1:]
        release.set()
        await held
        answered = await done.wait_for(27)
        assert planned_while_held
        assert [len(b) for b in done.batches] == [1, 5, 21]
        retry = answered[-1].result
        assert retry.duplicate and retry.id == answered[3].result.id
        results = [r.result for r in answered[1:-1]]
        # numbered after the running batch's uncommitted numbers, with no retry needed
        assert [r.pos for r in results] == list(range(2, 27))
        assert [r.sender_seq for r in results] == list(range(2, 27))
        assert s.stats.lookups == 0
        assert query(db_path(tmp_path), "SELECT count(*) FROM messages") == [(26,)]


async def test_a_failed_batch_makes_the_one_planned_on_it_plan_again(tmp_path, monkeypatch) -> None:
    async with warm_store(tmp_path) as (s, alice, done):
        real = sql.write_batch
        gate = threading.Event()
        calls = {"n": 0}

        def failing_once(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                gate.wait(10)
                raise OSError("disk on fire")
            return real(*args, **kwargs)

        monkeypatch.setattr(sql, "write_batch", failing_once)
        s.submit(req(alice, "bob", "doomed"))
        while calls["n"] == 0:  # the doomed batch is in the writer thread
            await asyncio.sleep(0.001)
        for i in range(5):
            s.submit(req(alice, "bob", f"after{i}"))
        await asyncio.sleep(0)
        gate.set()
        answered = await done.wait_for(7)
        doomed, after = answered[1], answered[2:]
        assert doomed.result is None and doomed.error == ErrorCode.INTERNAL_ERROR
        # planned on the doomed batch's numbers, then again on what was committed: no gap
        assert [r.result.pos for r in after] == [2, 3, 4, 5, 6]
        assert [r.result.sender_seq for r in after] == [2, 3, 4, 5, 6]
        assert query(db_path(tmp_path), "SELECT pos FROM messages ORDER BY pos") == [
            (p,) for p in range(1, 7)
        ]


async def test_a_retry_the_cache_forgot_is_answered_from_the_unique_index(tmp_path) -> None:
    s = SQLiteStore(db_path(tmp_path), dedup_cache=2)
    await s.open()
    try:
        alice, _ = await users(s, "alice", "bob")
        done = Committed(s, db_path(tmp_path))
        for i in range(5):  # one by one: c0..c2 fall out of the two-entry cache
            s.submit(req(alice, "bob", f"c{i}", f"m{i}"))
            await done.wait_for(i + 1)
        first = done.answered[0].result
        for r in (
            req(alice, "bob", "new1", rid=7),
            req(alice, "bob", "c0", rid=8),
            req(alice, "bob", "new2", rid=9),
        ):
            s.submit(r)
        answered = await done.wait_for(8)
        new1, retry, new2 = answered[5:]
        assert retry.result.duplicate and retry.result.id == first.id
        assert (retry.result.pos, retry.result.sender_seq) == (1, 1)
        assert [new1.result.pos, new2.result.pos] == [6, 7]
        assert [new1.result.sender_seq, new2.result.sender_seq] == [6, 7]
        assert s.stats.lookups == 1
        assert query(db_path(tmp_path), "SELECT count(*) FROM messages") == [(7,)]
        assert log_rows(db_path(tmp_path)) == 14
    finally:
        await s.close()


async def test_the_wal_is_checkpointed_beside_the_writer_and_started_over(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_INTERVAL", 0.0)
    monkeypatch.setattr(checkpoint_module, "WAL_RESTART_FRAMES", 8)
    s = SQLiteStore(db_path(tmp_path))
    await s.open()
    try:
        alice, _ = await users(s, "alice", "bob")
        done = Committed(s, db_path(tmp_path))
        text = "x" * 20_000
        for i in range(60):  # ~1.2 MB of message text, one commit at a time
            s.submit(req(alice, "bob", f"c{i}", text))
            await done.wait_for(i + 1)
            assert s.checkpointer is not None
            await s.checkpointer.settled()  # the cycle this commit started, if any
        assert s.stats.checkpoints > 0 and s.stats.restarts > 0
        assert s.stats.slowest_gated_s > 0
        wal = Path(db_path(tmp_path) + "-wal")
        # without restarts the WAL would hold every page written, well over 1.2 MB; the
        # file never shrinks below what the migrations at open wrote (~610 KB with 18)
        assert wal.stat().st_size < 700_000
        assert await s.integrity_check() == "ok"
    finally:
        await s.close()
    assert query(db_path(tmp_path), "SELECT count(*) FROM messages") == [(60,)]
    assert (
        not os.path.exists(db_path(tmp_path) + "-wal")
        or os.path.getsize(db_path(tmp_path) + "-wal") == 0
    )


@pytest.mark.parametrize("n", [1, 300])
async def test_a_planning_error_fails_only_its_batch(tmp_path, monkeypatch, n: int) -> None:
    s = SQLiteStore(db_path(tmp_path))
    await s.open()
    try:
        alice, _ = await users(s, "alice", "bob")
        done = Committed(s, db_path(tmp_path))
        real = writer_module.plan_send
        boom = {"left": 1}

        def plan_send(batch: Any, r: Any) -> None:
            if r.cmid == "bad" and boom["left"]:
                boom["left"] -= 1
                raise ValueError("a bug")
            real(batch, r)

        monkeypatch.setattr(writer_module, "plan_send", plan_send)
        s.submit(req(alice, "bob", "bad"))
        for i in range(n):
            s.submit(req(alice, "bob", f"ok{i}"))
        await done.wait_for(n + 1)
        s.submit(req(alice, "bob", "later"))
        answered = await done.wait_for(n + 2)
        assert answered[-1].result is not None and not answered[-1].result.duplicate
        # every send was answered exactly once; the store goes on committing
        assert len({id(r) for r in answered}) == n + 2
    finally:
        await s.close()


async def test_a_readiness_check_that_raises_fails_its_batch_and_the_loop_turns(
    tmp_path, monkeypatch
) -> None:
    """Regression (review): a check that raised before its item left the queue was retried
    forever without yielding, freezing the event loop."""
    async with warm_store(tmp_path) as (s, alice, done):
        real = s.writer._send_ready

        def send_ready(r: Any, batch: Any) -> bool:
            if r.cmid == "bad":
                raise ValueError("a bug")
            return real(r, batch)

        monkeypatch.setattr(s.writer, "_send_ready", send_ready)
        s.submit(req(alice, "bob", "first"))
        await asyncio.sleep(0)  # "first" is being written: what follows is planned on it
        s.submit(req(alice, "bob", "bad"))
        s.submit(req(alice, "bob", "next"))
        answered = await done.wait_for(4, timeout=5)
        by_cmid = {r.cmid: r for r in answered}
        assert by_cmid["bad"].error == ErrorCode.INTERNAL_ERROR
        assert by_cmid["first"].result is not None
        s.submit(req(alice, "bob", "later"))
        answered = await done.wait_for(5, timeout=5)
        stored = sorted(r.result.pos for r in answered if r.result is not None)
        assert stored == list(range(1, len(stored) + 1)) and len(stored) >= 3


async def test_a_write_failing_with_stop_iteration_does_not_strand_the_next_batch(tmp_path) -> None:
    """Regression (review): StopIteration cannot be set on a future; answering it raised and
    the batch launched after it was never answered, its numbers never published."""
    s = SQLiteStore(db_path(tmp_path))
    await s.open()
    try:
        alice, _ = await users(s, "alice", "bob")
        done = Committed(s, db_path(tmp_path))

        def empty_next(db: Any) -> Any:
            return next(iter(db.execute("SELECT 1 WHERE 0").fetchall()))

        with pytest.raises(RuntimeError, match="StopIteration"):
            await s.run_in_commit(empty_next)
        for i in range(30):
            s.submit(req(alice, "bob", f"c{i}"))
        answered = await done.wait_for(30, timeout=5)
        assert [r.result.pos for r in answered] == list(range(1, 31))
    finally:
        await s.close()


async def test_run_in_commit_takes_plain_functions_only(tmp_path) -> None:
    async def op(db: Any) -> None:
        pass

    s = SQLiteStore(db_path(tmp_path))
    await s.open()
    try:
        with pytest.raises(TypeError, match="plain function"):
            await s.run_in_commit(op)
    finally:
        await s.close()


async def test_pruning_does_not_plant_heads_for_users_not_cached(tmp_path) -> None:
    """Regression (review): pruning cached the newest *pruned* seq as the head of users the
    writer had not loaded, so their next entry collided with a kept one."""
    path = db_path(tmp_path)
    s = SQLiteStore(path)
    await s.open()
    alice, _ = await users(s, "alice", "bob")
    done = Committed(s, path)
    for i in range(2):
        s.submit(req(alice, "bob", f"old{i}"))
    await done.wait_for(2)
    await s.close()
    old = int(time.time() * 1000) + 1
    while int(time.time() * 1000) <= old:  # the next entries are newer than the horizon
        await asyncio.sleep(0.001)
    s = SQLiteStore(path)
    await s.open()
    try:
        done = Committed(s, path)
        s.submit(req(alice, "bob", "new"))
        await done.wait_for(1)
        await s.close()
        s = SQLiteStore(path)
        await s.open()  # nothing cached: alice and bob are unknown to the writer
        assert await s.prune_updates(old) == 2
        done = Committed(s, path)
        s.submit(req(alice, "bob", "after"))
        (r,) = await done.wait_for(1)
        assert r.result is not None and (r.result.sender_seq, r.result.recipient_seq) == (4, 4)
    finally:
        await s.close()


async def test_the_writer_holds_the_checkpoint_gate_for_each_transaction(tmp_path) -> None:
    """A WAL restart relies on it: while the checkpointer's last pass holds the gate, no
    commit may land (checkpoint.py)."""
    async with warm_store(tmp_path) as (s, alice, done):
        lock, asked = s.writer.gate, threading.Event()

        class Spy:
            def __enter__(self) -> None:
                asked.set()
                lock.acquire()

            def __exit__(self, *exc: object) -> None:
                lock.release()

        s.writer.gate = Spy()  # type: ignore[assignment]
        lock.acquire()  # what the checkpointer's gated pass does
        try:
            s.submit(req(alice, "bob", "waits"))
            assert await asyncio.to_thread(asked.wait, 5)  # the batch wants the gate ...
            assert len(done.batches) == 1  # ... and nothing has committed meanwhile
        finally:
            lock.release()
        answered = await done.wait_for(2)
        assert answered[-1].result is not None and answered[-1].result.pos == 2
