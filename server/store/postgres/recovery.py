"""The PostgreSQL writer losing its connection, and finding it again (issue 17 item 4).

The writer's connection dies (PostgreSQL restarts, the network drops). Three cases:
* before COMMIT was sent (an idle connection found dead, or a batch cut short):
  nothing of the batch is stored. Reconnect at once and write it again (planned
  anew, as after another node's commit); if PostgreSQL cannot be reached, the batch
  is refused (StoreUnavailable: 5001) and recovery starts.
* after COMMIT was sent (InDoubt): the batch may be stored. Its answers wait until
  the writer is back and has read store_changes (the row of the batch's clock value
  exists iff it committed): then it is answered and pushed as committed, or written
  again. Answering 5001 instead would leave a stored message unpushed (a gap in
  the recipients' streams) and its sender unsure; so it waits, while every new
  write is refused at once (submit raises StoreUnavailable) until the writer is back.
* while recovering: submit and planning refuse at once; a task reconnects with a
  growing pause (link.py), reloads the counters and caches (another node may have
  written meanwhile), and then takes writes again.

Why not answer a batch in doubt with 5001 at once: its sender would retry and be told
"duplicate" (fine), but the recipients' sessions would never be pushed the entries it
wrote, and a client takes a later push as covering everything below it: a message lost
to them until they resync. Knowing costs one indexed read after reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from typing import Any

import psycopg

from ..contract import StoreUnavailable
from ..sqlite.sql import Txn, Written
from ..sqlite.writer import Writer, _Flight
from .conn import SyncConnection
from .link import Link, broken, gone, pause


class InDoubt(Exception):
    """The connection died after COMMIT was sent: the batch may or may not have committed
    (Recovering._in_doubt finds out which, from store_changes)."""

    def __init__(self, outcomes: list[tuple[bool, Any]], started: float) -> None:
        super().__init__()
        self.outcomes = outcomes  # the generic transactions' results, if it committed
        self.started = started
        self.held = 0  # the clock value the batch's commit would have set


class Recovering(Writer):
    """The writer's side of an outage (module docstring); PgWriter is the rest."""

    clock = 0  # store_clock as this node's last commit left it
    _held = 0  # the clock value of the open transaction holding the row (0: none)
    reconnects = 0  # times the writer's connection was opened again
    link = Link("postgresql")  # replaced by the store's (one per store)
    _connect: Callable[[], Any] | None = None
    _recovery: asyncio.Task[None] | None = None
    _back: asyncio.Event | None = None  # set while the writer is connected
    _stopping = False
    # which writer made a commit (store_changes.writer): random, so two processes never
    # share one (a restarted node gets a new one; its old batches are settled by then)
    writer_id = 0

    async def reload(self) -> None:
        """Forget the cached state another node may have changed (PgWriter's)."""
        raise NotImplementedError

    async def start(self, connect: Callable[[], Any]) -> None:
        self.writer_id = secrets.randbits(63) or 1
        self._connect = connect
        self._back = asyncio.Event()
        self._back.set()
        await super().start(connect)

    @property
    def down(self) -> bool:
        return self._back is not None and not self._back.is_set()

    def submit(self, op: Any) -> None:
        if self.down:
            raise StoreUnavailable()
        super().submit(op)

    def submit_txn(self, txn: Txn) -> None:
        if self.down:
            raise StoreUnavailable()
        super().submit_txn(txn)

    async def stop(self) -> None:
        self._stopping = True  # a batch waiting to learn whether it committed gives up
        await super().stop()
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
            self._recovery = None

    def _gone(self, exc: BaseException) -> bool:
        """Whether `exc` means the writer's connection is lost (link.gone)."""
        db: Any = self._db
        return db is None or gone(db.conn, exc)

    def _reopen(self) -> None:
        """In the writer thread: drop the dead connection, open a new one."""
        assert self._connect is not None
        old: Any = self._db
        self._db = None
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()
        self._held = 0  # its transaction, if any, died with it
        self._db = self._connect()
        self.reconnects += 1

    async def _reconnect_now(self) -> bool:
        """One attempt to reconnect and reload; False if PostgreSQL cannot be reached."""
        try:
            await self._in_thread(self._reopen)
            await self.reload()
        except psycopg.Error:
            return False
        return True

    def _lose(self, exc: BaseException) -> None:
        """The writer cannot reach PostgreSQL: refuse writes, keep trying to reconnect."""
        assert self._back is not None
        if self.down:
            return
        self.link.lost("writer", exc)
        self._back.clear()
        self._recovery = asyncio.get_running_loop().create_task(
            self._recover(), name="store-reconnect"
        )

    async def _recover(self) -> None:
        assert self._back is not None
        attempt = 0
        while not self._stopping:
            await asyncio.sleep(pause(attempt))
            attempt += 1
            if await self._reconnect_now():
                self._back.set()
                self.link.back("writer")
                return

    async def _reconnected(self, exc: BaseException) -> None:
        """The connection died: reconnect now, or raise StoreUnavailable (recovery runs)."""
        if not self.down and await self._reconnect_now():
            return
        self._lose(exc)
        raise StoreUnavailable() from exc

    async def _plan(self, f: _Flight, *, lookup: bool = False) -> None:
        if self.down:
            raise StoreUnavailable()
        try:
            await super()._plan(f, lookup=lookup)
        except psycopg.OperationalError as exc:
            if not self._gone(exc):
                raise
            await self._reconnected(exc)
            await super()._plan(f, lookup=True)

    async def _in_doubt(self, doubt: InDoubt) -> Written | None:
        """Wait until the writer is connected again, then whether the batch committed:
        its Written if so (answered as committed), else None (write it again)."""
        cause: BaseException = doubt.__cause__ or doubt
        fresh = False  # connected since the doubt arose
        while True:
            if not fresh and not self.down:
                fresh = await self._reconnect_now()
            if not fresh:
                self._lose(cause)
                while self.down:  # until recovered, or the server stops (then: unknown)
                    if self._stopping:
                        raise StoreUnavailable() from cause
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            assert self._back is not None
                            await self._back.wait()
                fresh = True
            try:
                stored = await self._in_thread(landed, self._db, doubt.held, self.writer_id)
                break
            except psycopg.OperationalError as exc:
                if not self._gone(exc):
                    raise
                cause, fresh = exc, False
        if not stored:
            return None
        self.clock = doubt.held  # later commits of other nodes: StaleCaches, as usual
        return Written(True, doubt.outcomes, doubt.started, time.perf_counter())


def landed(db: SyncConnection, clock: int, writer: int) -> bool:
    """Whether this writer's commit that set the clock to `clock` is stored. The clock row
    is locked first: a transaction of a connection that died and still holds it ends
    before. The writer too, not the clock alone: when this writer's commit did not land,
    another node may since have committed with the same clock value."""
    conn = db.conn
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT n FROM store_clock WHERE id = 1 FOR UPDATE")
        row = conn.execute(
            "SELECT 1 FROM store_changes WHERE clock = %s AND writer = %s", (clock, writer)
        ).fetchone()
    finally:
        if not broken(conn):
            conn.execute("ROLLBACK")
    return row is not None
