"""The checkpointer: passes beside the writer, the gated last pass that lets the WAL start
over, what happens when the disk is behind or a pass fails, and its file descriptor."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from liaotian.server.store.sqlite import checkpoint as checkpoint_module
from liaotian.server.store.sqlite.checkpoint import Checkpointer, Cycle


class SpyGate:
    """The writer's lock, telling the test when the checkpointer asks for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.asked = threading.Event()
        self.entered = 0

    def __enter__(self) -> None:
        self.asked.set()
        self.lock.acquire()
        self.entered += 1

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def _writer(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL").fetchall()
    db.execute("PRAGMA wal_autocheckpoint=0").fetchall()
    db.execute("CREATE TABLE IF NOT EXISTS t (x BLOB)")
    return db


def _commit(db: sqlite3.Connection, pages: int = 4) -> None:
    db.execute("INSERT INTO t VALUES (?)", (b"x" * (4096 * pages),))


def _wal_frames(db: sqlite3.Connection) -> int:
    """Frames in the WAL (a checkpoint that copies nothing reports the length)."""
    return int(db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


@pytest.fixture
def wal_db(tmp_path: Path) -> Iterator[tuple[str, sqlite3.Connection]]:
    path = str(tmp_path / "c.db")
    db = _writer(path)
    try:
        yield path, db
    finally:
        db.close()


@contextlib.asynccontextmanager
async def opened(path: str, gate: Any) -> AsyncIterator[Checkpointer]:
    c = Checkpointer(path, gate)
    await c.open()
    try:
        yield c
    finally:
        await c.close()


def _long_wal(db: sqlite3.Connection, monkeypatch: Any) -> None:
    """Ten commits (~60 frames) against a restart threshold of 8."""
    monkeypatch.setattr(checkpoint_module, "WAL_RESTART_FRAMES", 8)
    for _ in range(10):
        _commit(db)


async def _cycle(c: Checkpointer) -> Cycle:
    assert c._thread is not None
    return await asyncio.get_running_loop().run_in_executor(c._thread, c._cycle)


async def test_a_short_wal_gets_one_pass_and_no_restart(wal_db, monkeypatch) -> None:
    path, db = wal_db
    monkeypatch.setattr(checkpoint_module, "WAL_RESTART_FRAMES", 1000)
    _commit(db)
    gate = SpyGate()
    async with opened(path, gate) as c:
        cycle = await _cycle(c)
    assert (cycle.passes, cycle.gated_s, cycle.failed) == (1, None, False)
    assert gate.entered == 0


async def test_a_long_wal_is_copied_out_under_the_gate_and_then_starts_over(
    wal_db, monkeypatch
) -> None:
    path, db = wal_db
    monkeypatch.setattr(checkpoint_module, "SETTLED_ROUND_S", 10.0)  # any round is quick
    _long_wal(db, monkeypatch)
    long_wal = _wal_frames(db)
    gate = SpyGate()
    async with opened(path, gate) as c:
        cycle = await _cycle(c)
    assert gate.entered == 1 and cycle.gated_s is not None and not cycle.failed
    assert cycle.restarted
    assert cycle.passes == 3  # the first, one quick round, the gated one
    _commit(db)  # this write finds the WAL fully copied: it starts from the beginning
    assert _wal_frames(db) < long_wal // 4
    assert db.execute("SELECT count(*) FROM t").fetchone() == (11,)


async def test_no_commit_lands_between_the_gated_pass_and_the_restart(wal_db, monkeypatch) -> None:
    """The writer holds the gate for each transaction: a cycle that wants it waits."""
    path, db = wal_db
    monkeypatch.setattr(checkpoint_module, "SETTLED_ROUND_S", 10.0)
    _long_wal(db, monkeypatch)
    gate = SpyGate()
    async with opened(path, gate) as c:
        gate.lock.acquire()  # a transaction of the writer's is running
        try:
            running = asyncio.ensure_future(_cycle(c))
            assert await asyncio.to_thread(gate.asked.wait, 10)
            _commit(db)  # the writer's transaction commits ...
            assert not running.done()
        finally:
            gate.lock.release()  # ... and lets go of the gate
        cycle = await running
    assert cycle.gated_s is not None and cycle.restarted
    # the gated pass copied the writer's last commit too: the next write starts over,
    # and the WAL holds that one commit (~6 frames), not the 60 written before
    _commit(db)
    assert _wal_frames(db) < 10


async def test_a_reader_on_an_old_snapshot_holds_the_restart_back(wal_db, monkeypatch) -> None:
    path, db = wal_db
    monkeypatch.setattr(checkpoint_module, "SETTLED_ROUND_S", 10.0)
    _commit(db)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM t").fetchone()  # a snapshot of one row
        _long_wal(db, monkeypatch)  # committed after it: not to be copied yet
        async with opened(path, SpyGate()) as c:
            held = await _cycle(c)
        reader.execute("COMMIT")  # the read ends ...
        async with opened(path, SpyGate()) as c:
            freed = await _cycle(c)
    finally:
        reader.close()
    assert held.gated_s is not None and not held.restarted and not held.failed
    assert freed.restarted  # ... and the next cycle copies everything


async def test_when_no_round_is_quick_the_wal_is_left_to_grow_up_to_a_bound(
    wal_db, monkeypatch
) -> None:
    path, db = wal_db
    monkeypatch.setattr(checkpoint_module, "WAL_FORCE_RESTART_FRAMES", 10_000)
    monkeypatch.setattr(checkpoint_module, "SETTLED_ROUND_S", 0.0)  # the disk is behind
    _long_wal(db, monkeypatch)
    gate = SpyGate()
    async with opened(path, gate) as c:
        slow = await _cycle(c)
        monkeypatch.setattr(checkpoint_module, "WAL_FORCE_RESTART_FRAMES", 16)
        forced = await _cycle(c)
    assert slow.gated_s is None and slow.passes == 1 + checkpoint_module.MAX_ROUNDS
    assert forced.gated_s is not None and gate.entered == 1


async def test_a_failed_pass_is_reported_and_the_next_cycle_runs(
    wal_db, monkeypatch, caplog
) -> None:
    path, db = wal_db
    _commit(db)
    c = Checkpointer(path, threading.Lock())
    seen: list[Cycle] = []
    c.on_cycle = seen.append
    await c.open()
    try:
        real = c._pass

        def broken(cycle: Cycle) -> tuple[int, int]:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(c, "_pass", broken)
        monkeypatch.setattr(checkpoint_module, "CHECKPOINT_INTERVAL", 0.0)
        c.soon()
        await c.settled()
        monkeypatch.setattr(c, "_pass", real)
        c.soon()
        await c.settled()
    finally:
        await c.close()
    assert [cycle.failed for cycle in seen] == [True, False]
    assert "checkpoint failed" in caplog.text


class Clock:
    """A monotonic clock the test moves by hand; it starts where a freshly booted
    machine's time.monotonic() does, near 0."""

    def __init__(self, now: float = 0.5) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_cycles_wait_for_the_interval_and_stop_waits_for_the_running_one(
    wal_db, monkeypatch
) -> None:
    """Regression: the first cycle used to wait until an interval after *boot* (the last
    cycle was taken to have ended at monotonic 0.0), so on a machine up for less than an
    hour this test failed; the clock here reads half a second after boot."""
    path, db = wal_db
    _commit(db)
    clock = Clock(0.5)
    c = Checkpointer(path, threading.Lock(), clock=clock)
    seen: list[Cycle] = []
    c.on_cycle = seen.append
    await c.open()
    try:
        monkeypatch.setattr(checkpoint_module, "CHECKPOINT_INTERVAL", 3600.0)
        c.soon()  # none ran yet: the first is due at once, however recent the boot
        assert c._running is not None
        await c.settled()
        assert len(seen) == 1
        clock.now += 3599.0
        c.soon()  # one ran less than an interval ago
        assert c._running is None
        clock.now += 2.0
        c.soon()  # an interval has passed
        assert c._running is not None
        await c.stop()  # waits for the running one
        assert c._running is None and len(seen) == 2
        monkeypatch.setattr(checkpoint_module, "CHECKPOINT_INTERVAL", 0.0)
        c.soon()  # stopped: no more cycles
        assert c._running is None
    finally:
        await c.close()


async def test_the_default_clock_runs_the_first_cycle_at_once(wal_db, monkeypatch) -> None:
    path, db = wal_db
    _commit(db)
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_INTERVAL", 1e9)  # > any uptime
    c = Checkpointer(path, threading.Lock())
    await c.open()
    try:
        c.soon()
        assert c._running is not None
        await c.settled()
    finally:
        await c.close()


async def test_close_releases_the_descriptor_it_syncs_the_file_with(wal_db) -> None:
    path, _ = wal_db

    def target(fd: int) -> str | None:
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            return None

    c = Checkpointer(path, threading.Lock())
    await c.open()
    fd = c._fd
    assert fd is not None and target(fd) == os.path.realpath(path)
    await c.close()
    await c.close()  # idempotent
    assert c._fd is None and target(fd) != os.path.realpath(path)
