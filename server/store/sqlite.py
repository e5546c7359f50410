"""SQLite storage: WAL, synchronous=FULL by default, and a pipelined group-commit writer.

One connection writes (in its own thread), `read_connections` read, taken per user in
turn (readers.py; WAL lets reads run beside the writer), one checkpoints (in a thread of
its own, see checkpoint.py). Every write goes through the writer queue: whatever
arrives while a commit is in progress is committed together in the next transaction, so
throughput does not collapse to one fsync per message, and nothing is reported done
before the COMMIT that makes it durable returned.

The writer is two stages deep. While the writer thread runs batch N's statements and
fsync (SQLite releases the GIL for both), the event loop plans batch N+1 on top of N's
uncommitted overlay (see Batch). N+1's statements start only once N has committed; if N
did not commit as planned, N+1 is planned again from the committed state. A batch that
needs to read the database first (names, heads, groups not cached yet) waits for N.

Sequence numbers, conversation positions and message ids are allocated in memory by the
writer (the only writer), from caches loaded lazily from the database; they are published
to the rest of the process only after the commit succeeds. A failed commit publishes
nothing, so the next batch allocates the same numbers again: no gaps, no reuse.

Update-log rows are appended to a journal, one row per commit, and kept in memory until
later commits fold them into the per-user logs, many rows per user at once (tail.py):
written in place, each message changed a scattered page of each of its readers' logs.

Retries are recognised by (sender, client message id): first from an in-memory cache of
recent sends, then by the unique index itself. A batch whose INSERT hits that index (a
retry older than the cache, or from before a restart) is rolled back, its ids are looked
up, and it is planned again with those sends answered as duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiosqlite
from liaotian.protocol import ErrorCode

from ..chat import rules
from ..chat.model import GroupState, Member, Social
from ..chat.ops import SendRequest, SendResult
from ..chat.plan import Needs, pair
from ..chat.rules.send import plan_send
from . import sql
from .batch import Batch
from .checkpoint import Checkpointer
from .contract import Committed as OnCommitted
from .contract import StoreClosed, StoreOpenError, UsernameTaken
from .files import DatabaseLock, create_private, warn_if_shared
from .overlay import Committed
from .queries import Queries
from .readers import FairReaders
from .schema import MIGRATIONS
from .sql import Txn
from .stats import WriterStats
from .tail import FOLD_AGE_MS, UpdateTail
from .tail import MAX_ROWS as TAIL_ROWS

log = logging.getLogger("liaotian.store")
T = TypeVar("T")
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes a reset WAL file is truncated back to
WriterFn = Callable[[sqlite3.Connection], T]  # a generic write, run in the writer thread


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True, eq=False)
class _Flight:
    """One group commit on its way: taken from the queue, planned, written, answered."""

    items: list[Any]
    ops: list[Any] = field(default_factory=list)  # operations (chat/ops.py), in order
    txns: list[Txn] = field(default_factory=list)
    batch: Batch | None = None
    lookup: bool = False  # planned after looking client message ids up in the database
    positions: dict[tuple[int, str], int] = field(default_factory=dict)
    written: asyncio.Future[sql.Written] | None = None
    plan_s: float = 0.0  # time spent planning it, on the loop
    launched: float = 0.0  # perf_counter when its statements went to the writer thread
    blocked: bool = False  # a queued write needs database reads: it waits for the next
    failed: bool = False
    result: sql.Written | None = None

    def written_done(self) -> bool:
        return self.written is not None and self.written.done()


class SQLiteStore(Queries):
    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "full",
        max_batch: int = 2048,
        dedup_cache: int = 200_000,
        fold_age_ms: int = FOLD_AGE_MS,
        tail_rows: int = TAIL_ROWS,
        read_connections: int = 2,
    ) -> None:
        if read_connections < 1:
            raise ValueError("read_connections must be at least 1")
        if synchronous.lower() not in ("full", "normal", "extra"):
            raise ValueError("synchronous must be full, extra or normal")
        self.path = path
        self.synchronous = synchronous.upper()
        self.max_batch = max_batch
        self.on_committed: OnCommitted = lambda ops: None
        self._thread: ThreadPoolExecutor | None = None  # the writer thread
        self._w: sqlite3.Connection | None = None  # used only in that thread
        self._r: aiosqlite.Connection | None = None  # the first reader (integrity check)
        self.read_connections = read_connections
        self._readers: FairReaders[aiosqlite.Connection] = FairReaders([])
        # The writer thread holds the gate for each transaction; the last checkpoint pass
        # before a WAL restart holds it so that no commit lands in between.
        self._gate = threading.Lock()
        self._checkpointer: Checkpointer | None = None
        self._lock = DatabaseLock(path)  # one server per database (files.py)
        self.stats = WriterStats()
        self._queue: deque[Any] = deque()  # operations and Txns, in arrival order
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._accepting = False
        # caches, all owned by the writer; "committed" values only
        self.cache = Committed()
        self._tail = UpdateTail(fold_age_ms=fold_age_ms, max_rows=tail_rows)
        self._floors: dict[int, int] = {}
        # (sender, cmid) -> the answer a retry gets; bounded, oldest evicted first
        # Plain tuples (id, conv, pos, ts, sender seq): the collector stops tracking tuples
        # of numbers, so a full cache does not slow every garbage collection down.
        self._dedup: OrderedDict[tuple[int, str], tuple[int, int, int, int, int]] = OrderedDict()
        self._dedup_max = dedup_cache
        self._positions: dict[tuple[int, str], int] = {}
        self._flushing: dict[tuple[int, str], int] = {}  # positions in the commit running now
        self.batches = 0
        self.committed_sends = 0

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Lock the database (StoreOpenError if another server has it), create it 0600 if
        missing, open. A failure closes whatever was opened: no thread keeps running."""
        self._lock.acquire()
        try:
            create_private(self.path)
            await self._open()
        except BaseException as exc:
            await self.close()
            if isinstance(exc, OSError | sqlite3.Error) and not isinstance(exc, StoreOpenError):
                # one error type for whoever opens a store, naming the file
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise StoreOpenError(f"cannot open database {self.path}: {reason}") from exc
            raise
        warn_if_shared(self.path)

    async def _open(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="liaotian-writer")
        try:
            self.cache.next_msg_id, self.cache.next_conv_id, self._tail.next_jid = \
                await self._call(self._open_writer)
        except BaseException:
            await self._call(self._discard_writer)  # nothing of it to fold or checkpoint
            self._thread.shutdown()
            self._thread = None
            raise
        # Several readers, taken in turn per user (readers.py). Every statement's cursor
        # is closed at once: an unfinished one would pin its reader to an old snapshot.
        for _ in range(self.read_connections):
            r = await aiosqlite.connect(self.path, isolation_level=None)
            self._readers.add(r)
            await self._one(r, "PRAGMA busy_timeout=5000")
            await self._one(r, "PRAGMA query_only=ON")
            await self._one(r, "PRAGMA cache_size=-65536")  # sync pages re-read hot logs
        self._r = self._readers.conns[0]
        self._checkpointer = Checkpointer(self.path, self._gate)
        self._checkpointer.on_cycle = self.stats.record_checkpoint
        try:
            await self._checkpointer.open()
        except BaseException:
            await self.close()  # the writer and the reader are open already
            raise
        self._accepting = True
        self._writer = asyncio.get_running_loop().create_task(
            self._writer_loop(), name="store-writer"
        )

    def _open_writer(self) -> tuple[int, int, int]:
        """In the writer thread: connect, set the pragmas, migrate, fold what the journal
        holds (a crash left it there); the next free ids."""
        w = self._w = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode=WAL",
            f"synchronous={self.synchronous}",
            "busy_timeout=5000",
            "foreign_keys=ON",
            # A multi-row INSERT into the update logs touches one page per member; SQLite
            # journals every page a statement changes to a temporary file so it can undo
            # just that statement. In memory, that journal costs no write calls (measured:
            # ~2,400 write calls per 500-member group message before, ~200 after), and a
            # 64 MiB page cache keeps the members' log pages resident between commits.
            "temp_store=MEMORY",
            "cache_size=-65536",
            # Checkpoints run on their own connection beside the writer (_checkpoint), not
            # inside whichever COMMIT crosses 1,000 WAL pages: measured under load, that
            # made every few commits 3-5x slower, and every SENT behind them waited.
            "wal_autocheckpoint=0",
            f"journal_size_limit={WAL_SIZE_LIMIT}",
        ):
            w.execute(f"PRAGMA {pragma}").fetchall()
        self._migrate(w)
        folded, next_jid = sql.fold_journal(w)
        if folded:
            log.info("folded %d update-log rows left in the journal", folded)
        (last_msg,) = sql.one(w, "SELECT coalesce(max(id), 0) FROM messages")
        (last_conv,) = sql.one(w, "SELECT coalesce(max(id), 0) FROM conversations")
        return last_msg + 1, last_conv + 1, next_jid

    @staticmethod
    def _migrate(w: sqlite3.Connection) -> None:
        (version,) = sql.one(w, "PRAGMA user_version")
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"database schema {version} is newer than this server ({len(MIGRATIONS)})"
            )
        for n in range(version, len(MIGRATIONS)):
            log.info("applying schema migration %d", n + 1)
            w.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _statements(MIGRATIONS[n]):
                    w.execute(stmt)
                w.execute(f"PRAGMA user_version={n + 1}")
                w.execute("COMMIT")
            except BaseException:
                w.execute("ROLLBACK")
                raise

    def _discard_writer(self) -> None:
        """In the writer thread, after a failed open: close the connection, if any."""
        if self._w is not None:
            self._w.close()
            self._w = None

    def _close_writer(self) -> None:
        """In the writer thread: fold the journal into the update logs and the WAL back
        into the database file, close."""
        if self._w is None:
            return
        try:
            sql.fold_journal(self._w)
        except sqlite3.Error:
            log.warning("folding the update journal at close failed", exc_info=True)
        try:
            self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            log.warning("checkpoint at close failed", exc_info=True)
        self._w.close()
        self._w = None

    async def close(self) -> None:
        """Stop taking writes, commit what is queued (positions included), close."""
        if self._writer is not None:
            last = asyncio.get_running_loop().create_future()
            self._queue.append(Txn(fn=_noop, future=last))  # behind every queued write
            self._wake.set()
            self._accepting = False
            with contextlib.suppress(Exception):  # a failed last commit was logged
                await last
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        self._accepting = False
        if self._checkpointer is not None:
            await self._checkpointer.stop()
        for r in self._readers.conns:
            await r.close()
        self._readers = FairReaders([])
        self._r = None
        if self._thread is not None:
            await self._call(self._close_writer)
            self._thread.shutdown()
            self._thread = None
        if self._checkpointer is not None:  # last: it holds a descriptor of the file
            await self._checkpointer.close()
            self._checkpointer = None
        self._lock.release()  # after every connection: the next server may open it

    def _call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run fn in the writer thread."""
        assert self._thread is not None, "store is not open"
        return asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    @property
    def _conn_r(self) -> aiosqlite.Connection:
        assert self._r is not None, "store is not open"
        return self._r

    # ------------------------------------------------------------------ writes

    async def run_in_commit(self, fn: WriterFn[T]) -> T:
        """Run fn(connection) in the writer thread inside the next group commit, in its own
        savepoint. fn is plain synchronous code: it must not touch the event loop."""
        if inspect.iscoroutinefunction(fn):
            raise TypeError("run_in_commit takes a plain function, run in the writer thread")
        if not self._accepting:
            raise StoreClosed()
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(Txn(fn=fn, future=fut))
        self._wake.set()
        return await fut

    def _ride_along(self, fn: WriterFn[None]) -> None:
        """Queue a write nobody waits for; it commits with the next batch."""
        if self._accepting:
            self._queue.append(Txn(fn=fn))
            self._wake.set()

    def record_position(self, user_id: int, device: str, seq: int) -> None:
        key = (user_id, device)
        if seq > self._positions.get(key, -1):
            self._positions[key] = seq

    def flush_positions_soon(self) -> None:
        if self._positions:
            self._ride_along(_noop)

    async def drain(self) -> None:
        await self.run_in_commit(_noop)

    async def create_user(self, username: str, password_hash: str) -> int:
        def op(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO users (username, password_hash, created) VALUES (?, ?, ?)",
                (username, password_hash, now_ms()),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        try:
            return await self.run_in_commit(op)
        except sqlite3.IntegrityError:
            raise UsernameTaken(username) from None

    async def set_device_token(self, user_id: int, device: str, token_hash: bytes, *,
                               max_devices: int = 0) -> int | None:
        """Create or re-key a device; returns its acknowledged position, or None when the
        device is new and the user already has `max_devices` devices (0 = no bound)."""

        def op(db: sqlite3.Connection) -> int | None:
            t = now_ms()
            if max_devices and sql.one(
                db, "SELECT 1 FROM devices WHERE user_id=? AND device=?", (user_id, device)
            ) is None and sql.one(
                db, "SELECT count(*) FROM devices WHERE user_id=?", (user_id,)
            )[0] >= max_devices:
                return None
            db.execute(
                "INSERT INTO devices (user_id, device, token_hash, created, last_seen) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, device) DO UPDATE SET "
                "token_hash = excluded.token_hash, last_seen = excluded.last_seen",
                (user_id, device, token_hash, t, t),
            )
            row = sql.one(
                db, "SELECT acked FROM devices WHERE user_id=? AND device=?", (user_id, device)
            )
            return int(row[0])

        return await self.run_in_commit(op)

    async def delete_device(self, user_id: int, device: str) -> bool:
        self._positions.pop((user_id, device), None)

        def op(db: sqlite3.Connection) -> bool:
            cur = db.execute("DELETE FROM devices WHERE user_id=? AND device=?", (user_id, device))
            return cur.rowcount > 0

        return await self.run_in_commit(op)

    async def set_profile(self, uid: int, display_name: str | None, status: str | None) -> None:
        def op(db: sqlite3.Connection) -> None:
            if display_name is not None:
                db.execute("UPDATE users SET display_name = ? WHERE id = ?", (display_name, uid))
            if status is not None:
                db.execute("UPDATE users SET status = ? WHERE id = ?", (status, uid))

        await self.run_in_commit(op)

    def record_last_seen(self, uid: int, when_ms: int) -> None:
        """Store when a user's last connection closed; rides along with the next commit."""

        def op(db: sqlite3.Connection) -> None:
            db.execute("UPDATE users SET last_seen = ? WHERE id = ?", (when_ms, uid))

        self._ride_along(op)

    def touch_device(self, user_id: int, device: str) -> None:
        """Record that a device connected; rides along with the next commit, unawaited."""
        t = now_ms()

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE devices SET last_seen=? WHERE user_id=? AND device=?", (t, user_id, device)
            )

        self._ride_along(op)

    # ------------------------------------------------------------------ the writer

    def submit(self, op: Any) -> None:
        """Queue an operation; on_committed sees it, planned, after its batch commits."""
        if not self._accepting:
            raise StoreClosed()
        self._queue.append(op)
        self._wake.set()

    async def _writer_loop(self) -> None:
        """Plan the next batch while the writer thread runs the current one; see the
        module docstring."""
        running: _Flight | None = None  # its statements are in the writer thread
        planned: _Flight | None = None  # planned on top of running, written next
        while True:
            try:
                if running is None:
                    if not self._queue:
                        self._wake.clear()
                        await self._wake.wait()
                        continue
                    first = self._take()
                    planned = first
                    await self._plan(first)
                    running, planned = self._launch(first), None
                    continue
                if self._queue:
                    if planned is None:
                        planned = _Flight([])
                        assert running.batch is not None
                        planned.batch = Batch(self.cache, now_ms(), 0, running.batch)
                    self._extend(planned)
                if not running.written_done():
                    self._wake.clear()
                    await self._wake.wait()  # more writes to plan, or the thread is done
                    continue
            except Exception:
                log.exception("planning a group commit failed")
                if planned is not None:
                    self._fail(planned.items)
                    planned = None
                await asyncio.sleep(0)  # whatever went wrong, the loop keeps turning
                continue
            running, planned = await self._hand_over(running, planned), None

    def _take(self) -> _Flight:
        queue = self._queue
        items = [queue.popleft() for _ in range(min(len(queue), self.max_batch))]
        f = _Flight(items)
        for it in items:
            (f.txns if isinstance(it, Txn) else f.ops).append(it)
        return f

    async def _hand_over(self, running: _Flight, planned: _Flight | None) -> _Flight | None:
        """Wait for the running batch; start the planned one's statements as soon as the
        running one has committed, then answer the running one. Returns what now runs."""
        as_planned = await self._settle(running)
        if planned is not None and not planned.items:
            planned = None
        if planned is not None and not as_planned:
            # planned on numbers that did not commit: plan it again on what did
            self._finish(running)
            try:
                await self._plan(planned)
            except Exception:
                log.exception("planning a group commit failed")
                self._fail(planned.items)
                return None
            return self._launch(planned)
        nxt = self._launch(planned) if planned is not None else None
        self._finish(running)
        return nxt

    async def _plan(self, f: _Flight, *, lookup: bool = False) -> None:
        """Plan all of f's ops in arrival order on the committed state, reading from the
        database what the caches lack. `lookup` also asks the database about client
        message ids the dedup cache does not know. Only while no batch is running."""
        t = time.perf_counter()
        f.lookup = lookup
        batch = f.batch = Batch(self.cache, now_ms(), self._tail.next_jid)
        ops = f.ops
        if ops:
            for op in ops:  # planning again starts from a clean slate
                op.error, op.error_message = None, ""
                if type(op) is SendRequest:
                    op.result = None
            sends = [op for op in ops if type(op) is SendRequest]
            if sends:
                self._cached_duplicates(sends)
                if lookup:
                    await self._stored_duplicates(sends)
            await self._prefetch(ops, batch)
            for op in ops:
                self._plan_op(batch, op)
        f.plan_s += time.perf_counter() - t

    def _extend(self, f: _Flight) -> None:
        """Plan queued writes into f, on top of the running batch, in arrival order, until
        one needs something from the database (it waits, with all behind it)."""
        if f.blocked:
            return
        t = time.perf_counter()
        batch = f.batch
        assert batch is not None
        queue = self._queue
        dedup = self._dedup
        while queue and len(f.items) < self.max_batch:
            it = queue.popleft()
            f.items.append(it)  # first: if anything below raises, it fails with f
            if isinstance(it, Txn):
                f.txns.append(it)
                continue
            if type(it) is SendRequest:
                hit = dedup.get((it.sender_id, it.cmid))
                if hit is not None:
                    it.result = _duplicate(hit, it.cmid)
                    ready = True
                else:
                    ready = self._send_ready(it, batch)
            else:
                ready = self._op_ready(it, batch)
            if not ready:
                f.items.pop()
                queue.appendleft(it)
                f.blocked = True
                break
            f.ops.append(it)
            self._plan_op(batch, it)
        f.plan_s += time.perf_counter() - t

    def _plan_op(self, batch: Batch, op: Any) -> None:
        if type(op) is SendRequest:
            if op.result is None:
                batch.run(op, lambda: plan_send(batch, op), checks_first=True)
        else:
            batch.run(op, lambda: rules.apply(batch, op))

    def _launch(self, f: _Flight) -> _Flight:
        """Hand f's statements to the writer thread (the previous batch has committed)."""
        f.positions, self._positions = self._positions, {}
        self._flushing = f.positions
        assert f.batch is not None
        self._plan_fold(f.batch)
        f.launched = time.perf_counter()
        f.written = self._call(self._write, f, not f.lookup)
        f.written.add_done_callback(self._wake_up)
        return f

    def _plan_fold(self, batch: Batch) -> None:
        """The tail's folds for a batch about to be written. Never raises (the batch is
        written without folds then): a launch happens outside the writer loop's guard."""
        updates = batch.updates
        try:
            self._tail.plan_fold(batch, now_ms())
        except Exception:
            log.exception("planning the update-log folds failed; writing without them")
            self._tail.forget(batch)
            batch.updates, batch.folds, batch.direct_rows, batch.folded = updates, [], [], {}

    def _wake_up(self, _: Any) -> None:
        self._wake.set()

    def _write(self, f: _Flight, conflict_ok: bool) -> sql.Written:
        """In the writer thread: the whole group commit in one call."""
        assert self._w is not None and f.batch is not None
        b = f.batch
        with self._gate:
            return sql.write_batch(
                self._w, b.messages, b.updates, b.folds, b.direct_rows, b.journal_below,
                b.statements,
                [(seq, u, d) for (u, d), seq in f.positions.items()], f.txns,
                conflict_ok=conflict_ok)

    async def _settle(self, f: _Flight) -> bool:
        """Wait for f's statements. True if it committed exactly as planned; False if it
        had to be planned again (a stored client message id) or failed (answered)."""
        assert f.written is not None
        try:
            written = await f.written
            if not written.committed:
                # A client message id missing from the dedup cache is stored already (a
                # retry from before a restart, or older than the cache): look every send
                # of the batch up, then plan and write it again.
                self.stats.lookups += 1
                assert f.batch is not None
                self._tail.forget(f.batch)
                await self._plan(f, lookup=True)
                assert f.batch is not None
                self._plan_fold(f.batch)
                written = await self._call(self._write, f, False)
        except Exception:
            log.exception("group commit failed; %d writes refused", len(f.items))
            if f.batch is not None:
                self._tail.forget(f.batch)
            self._flushing = {}
            for (uid, device), seq in f.positions.items():
                self.record_position(uid, device, seq)
            self._fail(f.items)
            f.failed = True
            return False
        f.result = written
        return not f.lookup

    def _finish(self, f: _Flight) -> None:
        """The commit is durable: publish its numbers, answer everyone, push. No await
        here: going live in SYNC relies on publishing and pushing being one step. Never
        raises: the batch launched after this one must not be lost track of."""
        if f.failed:
            return
        assert f.batch is not None and f.result is not None
        t = time.perf_counter()
        if self._flushing is f.positions:
            self._flushing = {}
        try:
            self._publish(f.batch, f.ops)
        except Exception:  # a bug; the numbers are committed, so go on answering
            log.exception("publishing a committed batch failed")
        for txn, (ok, value) in zip(f.txns, f.result.outcomes, strict=True):
            _resolve(txn.future, ok, value)
        if f.ops:
            try:
                self.on_committed(f.ops)
            except Exception:
                log.exception("answering a committed batch failed")
        r = f.result
        self.stats.folded_rows += len(f.batch.folds)
        self.stats.tail_rows = self._tail.rows
        self.stats.record(len(f.items), len(f.batch.messages), plan=f.plan_s,
                          write=r.commit_started - f.launched,
                          commit=r.commit_finished - r.commit_started,
                          dispatch=time.perf_counter() - t)
        if self._checkpointer is not None:
            self._checkpointer.soon()

    def _publish(self, batch: Batch, ops: list[Any]) -> None:
        """Make the batch's numbers and state the current ones."""
        self.cache.publish(batch)
        self._tail.publish(batch)
        for op in ops:
            if type(op) is SendRequest and op.result is not None and not op.result.duplicate:
                self._remember(op.sender_id, op.cmid, op.result)
        self.batches += 1
        self.committed_sends += len(batch.messages)

    def _fail(self, items: list[Any]) -> None:
        ops = []
        for it in items:
            if isinstance(it, Txn):
                _resolve(it.future, False, RuntimeError("commit failed"))
                continue
            if type(it) is SendRequest:
                it.result = None
            it.error, it.error_message = ErrorCode.INTERNAL_ERROR, ""
            it.pushes = []
            ops.append(it)
        if ops:
            try:
                self.on_committed(ops)
            except Exception:  # the writer must outlive any one batch
                log.exception("answering a failed batch failed")

    # ------------------------------------------------------------------ checkpoints

    # ------------------------------------------------------------------ prefetch

    def _send_ready(self, s: SendRequest, batch: Batch) -> bool:
        """Whether the caches (and the running batch) hold all a send consults."""
        if s.group is not None:
            g = batch.group_ro(s.group) if batch.has_group(s.group) else None
            return g is not None and batch.has_conv(s.group) and batch.has_head(s.sender_id) \
                and all(batch.has_head(u) for u in g.members)
        rid_ = self.cache.user_ids.get(s.to_name)
        return rid_ is not None and batch.has_head(s.sender_id) and batch.has_head(rid_) \
            and batch.has_social(rid_) and batch.has_pair(pair(s.sender_id, rid_))

    def _op_ready(self, op: Any, batch: Batch) -> bool:
        n = Needs()
        rules.needs(op, n, batch)
        return not any(self._missing(n, batch))

    def _missing(self, n: Needs, batch: Batch) -> tuple[list[Any], ...]:
        """What the needs ask for that neither the caches nor the batch's parent hold:
        names, groups, heads, social, pairs, conversations."""
        return (
            [x for x in n.names if x not in self.cache.user_ids],
            [g for g in n.groups if not batch.has_group(g)],
            [u for u in n.users | n.social if not batch.has_head(u)],
            [u for u in n.social if not batch.has_social(u)],
            [p for p in n.pairs if not batch.has_pair(p)],
            [c for c in n.convs if not batch.has_conv(c)],
        )

    async def _prefetch(self, ops: list[Any], batch: Batch) -> None:
        """Load everything the ops will consult, in a few set-based queries per round."""
        for _round in range(5):
            n = Needs()
            for op in ops:
                if type(op) is not SendRequest or op.result is None:
                    rules.needs(op, n, batch)
            missing = self._missing(n, batch)
            if not any(missing):
                return
            groups = missing[1]
            found = await self._call(_fetch_all, self._w, *missing)
            self._apply(*found)
            cached = self.cache.groups
            members = {u for g in groups if g in cached for u in cached[g].members}
            members -= self.cache.heads.keys()
            if members:
                self._apply_heads(await self._call(sql.fetch_heads, self._w, list(members)))
            names_found, group_rows = found[0], found[4][0]
            if not (names_found or group_rows or found[3]):
                return  # nothing learnt that could make the ops ask for more

    def _apply(self, names: sql.Rows, heads: sql.Rows, social: tuple[sql.Rows, ...],
               pairs: sql.Rows, groups: tuple[sql.Rows, sql.Rows], convs: sql.Rows) -> None:
        """Fill the caches from what _fetch_all read (committed state: nothing runs)."""
        for name, uid in names:
            self._cache_user(name, uid)
        self._apply_heads(heads)
        settings, relations, incoming = social
        found: dict[int, Social] = {}
        for uid, pres, prof, msgs, grps, rcpts, owned, joined in settings:
            found[uid] = Social(presence=pres, profile=prof, messages=msgs, groups=grps,
                                receipts=rcpts, groups_owned=owned, groups_joined=joined)
        for uid, other, kind in relations:
            found[uid].add_relation(other, kind)
        for uid, requester in incoming:
            found[uid].incoming.add(requester)
        cache = self.cache
        cache.social.update(found)
        for a, b, cid, last in pairs:
            cache.direct[(a, b)] = cid
            cache.conv_last[cid] = last
        group_rows, member_rows = groups
        new_groups: dict[int, GroupState] = {}
        for conv, name, topic, owner, created in group_rows:
            new_groups[conv] = GroupState(conv, name, topic, owner, created)
        for conv, uid, role, jpos, joined in member_rows:
            new_groups[conv].members[uid] = Member(role, jpos, joined)
        cache.groups.update(new_groups)
        for conv, last in convs:
            cache.conv_last[conv] = last

    def _apply_heads(self, rows: sql.Rows) -> None:
        heads = self.cache.heads
        for uid, name, floor, top in rows:
            self._cache_user(name, uid)
            self._floors[uid] = floor
            heads[uid] = max(floor, top)

    def _cached_duplicates(self, sends: list[SendRequest]) -> None:
        """Answer retries of recent sends from the dedup cache."""
        dedup = self._dedup
        for s in sends:
            hit = dedup.get((s.sender_id, s.cmid))
            if hit is not None:
                s.result = _duplicate(hit, s.cmid)

    async def _stored_duplicates(self, sends: list[SendRequest]) -> None:
        """Answer retries the cache does not know from the database."""
        keys = list({(s.sender_id, s.cmid) for s in sends if s.result is None})
        rows_ = await self._call(sql.fetch_duplicates, self._w, keys)
        for sender_id, cmid, mid, conv, pos, ts, sseq in rows_:
            self._remember(
                sender_id,
                cmid,
                SendResult(id=mid, conv=conv, pos=pos, ts=ts, sender_seq=sseq, cmid=cmid),
            )
        self._cached_duplicates([s for s in sends if s.result is None])

    def _remember(self, sender_id: int, cmid: str, result: SendResult) -> None:
        """Keep the answer to a retry of this cmid (stored already as a duplicate)."""
        self._dedup[(sender_id, cmid)] = (
            result.id,
            result.conv,
            result.pos,
            result.ts,
            result.sender_seq,
        )
        while len(self._dedup) > self._dedup_max:
            self._dedup.popitem(last=False)

    async def prune_updates(self, older_than_ms: int) -> int:
        """Drop update-log entries older than the horizon, raising each user's floor.

        The rows older than the horizon are folded out of the tail first (normally there
        are none: the tail holds about a second), so that the delete sees them. Their
        journal rows go the usual way, trimmed once folded (a row committed beside the
        prune may be in the journal only); one that outlives a crash is not folded back
        below its user's floor (sql.fold_journal)."""
        tail = self._tail
        tail.due_before_ms = older_than_ms
        try:
            for _ in range(10_000):  # each commit folds up to FOLD_USERS users
                oldest = tail.oldest_ms()
                if oldest is None or oldest >= older_than_ms:
                    break
                await self.run_in_commit(_noop)
        finally:
            tail.due_before_ms = 0

        def op(db: sqlite3.Connection) -> list[tuple[int, int]]:
            floors = db.execute(
                "SELECT user_id, max(seq) FROM updates WHERE ts < ? GROUP BY user_id",
                (older_than_ms,),
            ).fetchall()
            if floors:
                db.executemany(
                    "UPDATE users SET log_floor = max(log_floor, ?) WHERE id = ?",
                    [(s, u) for u, s in floors],
                )
                db.executemany("DELETE FROM updates WHERE user_id = ? AND seq <= ?", floors)
            return floors

        floors = await self.run_in_commit(op)
        for uid, seq in floors:  # users not cached yet load both from the database
            heads = self.cache.heads
            if uid in heads:
                self._floors[uid] = max(self._floors.get(uid, 0), seq)
                heads[uid] = max(heads[uid], seq)
        return len(floors)

    async def integrity_check(self) -> str:
        row = await self._row("PRAGMA integrity_check")
        return str(row[0])


def _resolve(future: asyncio.Future[Any] | None, ok: bool, value: Any) -> None:
    """Answer a generic write's awaiter, whatever the value or exception is."""
    if future is None or future.done():
        return
    if ok:
        future.set_result(value)
        return
    try:
        future.set_exception(value)
    except TypeError:  # StopIteration and friends cannot travel through a future
        future.set_exception(RuntimeError(f"write failed: {value!r}"))


def _duplicate(hit: tuple[int, int, int, int, int], cmid: str) -> SendResult:
    """The answer to a retry: the original acknowledgement, marked as a duplicate."""
    return SendResult(
        id=hit[0], conv=hit[1], pos=hit[2], ts=hit[3], sender_seq=hit[4], cmid=cmid, duplicate=True
    )


def _fetch_all(db: sqlite3.Connection, names: list[str], groups: list[int], users: list[int],
               social: list[int], pairs: list[tuple[int, int]], convs: list[int]) -> Any:
    """In the writer thread: every kind of missing state in one hand-over."""
    return (sql.fetch_names(db, names), sql.fetch_heads(db, users), sql.fetch_social(db, social),
            sql.fetch_pairs(db, pairs), sql.fetch_groups(db, groups),
            sql.fetch_conv_last(db, convs))


def _statements(script: str) -> list[str]:
    """Split a migration into statements (comments dropped first: they may hold ';')."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _noop(db: sqlite3.Connection) -> None:
    return None
