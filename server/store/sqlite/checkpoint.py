"""WAL checkpoints beside the group-commit writer, in a thread of their own.

A checkpoint copies committed WAL frames back into the database file. SQLite starts the
WAL over from its beginning only when a write transaction begins with every frame copied,
and under continuous commits that moment never comes by itself: the WAL grows without end
and every commit with it (measured: p50 latency 7.6 ms instead of 1.5 after ten seconds
at 6,500 msgs/s). So now and then a checkpoint pass has to run while no commit does: it
holds the writer's gate, and the writer waits for it.

What that pass costs is mostly an fdatasync of the database file, and SQLite syncs the
file only in a pass that reaches the end of the WAL, so that one sync writes out every
page the earlier passes copied (measured: 12-14 ms on the benchmark's disk, four times a
second, each time stalling every send). Instead, rounds of a pass and our own fdatasync
run beside the writer until one round is quick; the gated pass is then left with what
was committed during that round (the writer waits 1.5-3 ms).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

log = logging.getLogger("liaotian.store")

CHECKPOINT_INTERVAL = 0.25  # seconds between checkpoint cycles while commits keep coming
WAL_RESTART_FRAMES = 2048  # a WAL longer than this is copied out completely and started over
SETTLED_ROUND_S = 0.003  # a pass + fdatasync this quick leaves little for the gated pass
# Rounds before giving up on a quick one this cycle (the disk is behind). Each round's
# fdatasync queues the writer's commit fsyncs behind it: with 4, a slow spell of the disk
# made the p99 worse than with 2 (interleaved quick runs at 7,000 msgs/s: 2 rounds 17.9-21.7
# ms, 4 rounds 18.9-38.8, the second session's writer 22.3-27.3).
MAX_ROUNDS = 2
# Past this, the WAL is started over even if no round was quick: a longer stall for the
# writer, but the WAL stays bounded.
WAL_FORCE_RESTART_FRAMES = 4 * WAL_RESTART_FRAMES


@dataclass(slots=True)
class Cycle:
    """What one checkpoint cycle did, for the writer statistics."""

    seconds: float = 0.0
    passes: int = 0
    gated_s: float | None = None  # the gated pass (the writer waited); None: none ran
    restarted: bool = False  # it copied every frame: the writer's next commit starts over
    failed: bool = False


class Checkpointer:
    """Runs checkpoint cycles on its own connection and thread.

    `gate` is the writer's lock: the writer thread holds it for each transaction, and the
    last pass before a restart holds it so that no commit lands between that pass and the
    writer's next transaction, which then starts the WAL over."""

    def __init__(
        self, path: str, gate: threading.Lock, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self.gate = gate
        self._clock = clock  # seconds from an arbitrary origin (monotonic: from boot)
        self.on_cycle: Callable[[Cycle], None] = lambda cycle: None  # on the loop
        self._thread: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        # Our own descriptor of the database file, only to fdatasync it. Closing any
        # descriptor of a file drops every POSIX lock the process holds on it, SQLite's
        # included, so it is closed after every connection (see close()).
        self._fd: int | None = None
        self._running: asyncio.Future[Cycle] | None = None
        # When the last cycle ended; None: none ran yet, so the first is due at once. (A
        # 0.0 here meant "at boot" to time.monotonic(): on a machine up for less than an
        # interval, the first cycle never came.)
        self._last: float | None = None
        self._stopped = False

    async def open(self) -> None:
        self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="liaotian-checkpoint")
        await asyncio.get_running_loop().run_in_executor(self._thread, self._connect)

    def _connect(self) -> None:
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000").fetchall()

    async def settled(self) -> None:
        """Wait for the cycle running, if any."""
        if self._running is not None:
            await asyncio.wait([self._running])

    async def stop(self) -> None:
        """Start no more cycles; wait for the one running."""
        self._stopped = True
        await self.settled()

    async def close(self) -> None:
        """Once every other connection to the database is closed (see _fd)."""
        await self.stop()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._disconnect)
            self._thread.shutdown()
            self._thread = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _disconnect(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def soon(self) -> None:
        """After a commit: start a cycle unless one is running or ran in the last interval."""
        if self._running is not None or self._db is None or self._stopped:
            return
        if self._last is not None and self._clock() - self._last < CHECKPOINT_INTERVAL:
            return
        assert self._thread is not None
        self._running = asyncio.get_running_loop().run_in_executor(self._thread, self._cycle)
        self._running.add_done_callback(self._cycle_done)

    def _cycle_done(self, fut: asyncio.Future[Cycle]) -> None:
        self._running = None
        self._last = self._clock()
        if fut.cancelled():
            return
        if fut.exception() is not None:
            log.error("checkpoint cycle failed", exc_info=fut.exception())
            return
        self.on_cycle(fut.result())

    def _cycle(self) -> Cycle:
        """In the checkpoint thread: one pass; if the WAL is long, converge and restart."""
        cycle = Cycle()
        started = time.perf_counter()
        try:
            frames, _ = self._pass(cycle)
            if frames >= WAL_RESTART_FRAMES and (
                self._converge(cycle) or frames >= WAL_FORCE_RESTART_FRAMES
            ):
                with self.gate:
                    t = time.perf_counter()
                    frames, copied = self._pass(cycle)
                    cycle.gated_s = time.perf_counter() - t
                # Not all of them if a reader still holds an older snapshot.
                cycle.restarted = copied == frames
        except (sqlite3.Error, OSError):
            # Busy (a reader on an old snapshot, a checkpoint elsewhere) or an I/O error: the
            # WAL keeps its frames, and the next cycle tries again.
            log.warning("checkpoint failed", exc_info=True)
            cycle.failed = True
        cycle.seconds = time.perf_counter() - started
        return cycle

    def _converge(self, cycle: Cycle) -> bool:
        """Rounds of a pass and an fdatasync until one is quick: whether the gated pass
        will be quick too (it is left with what was committed during the last round)."""
        assert self._fd is not None
        for _ in range(MAX_ROUNDS):
            t = time.perf_counter()
            self._pass(cycle)
            os.fdatasync(self._fd)  # what the pass copied, written out now, not gated
            if time.perf_counter() - t < SETTLED_ROUND_S:
                return True
        return False

    def _pass(self, cycle: Cycle) -> tuple[int, int]:
        """One PASSIVE checkpoint: the WAL's length in frames, and how many are copied."""
        assert self._db is not None
        _busy, frames, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        cycle.passes += 1
        return int(frames), int(copied)
