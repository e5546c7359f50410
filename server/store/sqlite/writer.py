"""The pipelined group-commit writer: every write of the SQLite store, in order.

One connection writes, in a thread of its own. Every write goes through the queue here:
whatever arrives while a commit is in progress is committed together in the next
transaction, so throughput does not collapse to one fsync per message, and nothing is
reported done before the COMMIT that makes it durable returned.

The writer is two stages deep. While the writer thread runs batch N's statements and
fsync (SQLite releases the GIL for both), the event loop plans batch N+1 on top of N's
uncommitted overlay (overlay.py). N+1's statements start only once N has committed; if N
did not commit as planned, N+1 is planned again from the committed state. A batch that
needs to read the database first (names, heads, groups not cached yet) waits for N.

Planning runs the chat's rules (chat/rules/) on a Batch (batch.py). Sequence numbers,
conversation positions and message ids are allocated in memory from the caches
(caches.py), loaded lazily from the database; they are published to the rest of the
process only after the commit succeeds. A failed commit publishes nothing, so the next
batch allocates the same numbers again: no gaps, no reuse.

Update-log rows are appended to a journal, one row per commit, and kept in memory until
later commits fold them into the per-user logs, many rows per user at once (tail.py).

Retries are recognised by (sender, client message id): first from the dedup cache of
recent sends, then by the unique index itself. A batch whose INSERT hits that index (a
retry older than the cache, or from before a restart) is rolled back, its ids are looked
up, and it is planned again with those sends answered as duplicates. The wallet's
idempotency keys go the same way: a key the caches do not hold is planned as absent and
looked up in the transaction that writes the batch (store/ledger.py); one found stored
sends the batch back to be planned again with its keys loaded.

After each commit the operations are handed, in order, to `on_committed` (the server's
fan-out), and `on_commit` is called (the checkpointer's cue).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from liaotian.protocol import ErrorCode

from ...chat import rules
from ...chat.ledger import REWARDS
from ...chat.ops import SendRequest, SendResult
from ...chat.plan import Needs, pair
from ...chat.rules.send import plan_send
from ..contract import Committed as OnCommitted
from ..contract import StoreClosed, StoreUnavailable
from . import sql
from .batch import Batch
from .caches import Caches, Positions, duplicate
from .channels import fetch_channel
from .sql import Txn
from .stats import WriterStats
from .tail import UpdateTail

log = logging.getLogger("liaotian.store")
T = TypeVar("T")
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


class Writer:
    def __init__(
        self,
        cache: Caches,
        tail: UpdateTail,
        positions: Positions,
        stats: WriterStats,
        *,
        max_batch: int = 2048,
    ) -> None:
        self.cache = cache
        self.tail = tail
        self.positions = positions
        self.stats = stats
        self.max_batch = max_batch
        self.on_committed: OnCommitted = lambda ops: None
        self.on_commit: Callable[[], None] = lambda: None
        # The writer thread holds the gate for each transaction; the checkpointer's last
        # pass before a WAL restart holds it so that no commit lands in between.
        self.gate = threading.Lock()
        self.batches = 0
        self.committed_sends = 0
        self._thread: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None  # used only in the writer thread
        self._queue: deque[Any] = deque()  # operations and Txns, in arrival order
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._accepting = False

    # ------------------------------------------------------------------ the thread

    @property
    def queue_depth(self) -> int:
        """Writes queued and not yet taken into a batch (the operator's statistics)."""
        return len(self._queue)

    @property
    def started(self) -> bool:
        return self._thread is not None

    async def start(self, connect: Callable[[], sqlite3.Connection]) -> None:
        """Start the writer thread with the connection `connect` opens in it."""
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="liaotian-writer")
        try:
            self._db = await self._in_thread(connect)
        except BaseException:
            self._thread.shutdown()
            self._thread = None
            raise

    def call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run fn(connection, *args) in the writer thread, outside any batch (opening,
        loading, closing; the pipeline's own reads)."""
        return self._in_thread(fn, self._db, *args)

    def _in_thread(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        assert self._thread is not None, "store is not open"
        return asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def shutdown(self, last: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Run `last` on the connection (if it opened), close it and stop the thread."""
        if self._thread is None:
            return
        if self._db is not None:
            await self._in_thread(_close, self._db, last)
            self._db = None
        self._thread.shutdown()
        self._thread = None

    # ------------------------------------------------------------------ the queue

    def accept(self) -> None:
        """Take writes: start the pipeline."""
        self._accepting = True
        self._task = asyncio.get_running_loop().create_task(
            self._writer_loop(), name="store-writer"
        )

    async def stop(self) -> None:
        """Stop taking writes; commit and answer what is queued."""
        if self._task is not None:
            last = asyncio.get_running_loop().create_future()
            self._queue.append(Txn(fn=_noop, future=last))  # behind every queued write
            self._wake.set()
            self._accepting = False
            with contextlib.suppress(Exception):  # a failed last commit was logged
                await last
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._accepting = False

    def submit(self, op: Any) -> None:
        """Queue an operation; on_committed sees it, planned, after its batch commits."""
        if not self._accepting:
            raise StoreClosed()
        self._queue.append(op)
        self._wake.set()

    def submit_txn(self, txn: Txn) -> None:
        """Queue a generic write (its future, if any, is answered after the commit)."""
        if not self._accepting:
            raise StoreClosed()
        self._queue.append(txn)
        self._wake.set()

    async def run_in_commit(self, fn: WriterFn[T]) -> T:
        """Run fn(connection) in the writer thread inside the next group commit, in its own
        savepoint. fn is plain synchronous code: it must not touch the event loop."""
        if inspect.iscoroutinefunction(fn):
            raise TypeError("run_in_commit takes a plain function, run in the writer thread")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.submit_txn(Txn(fn=fn, future=fut))
        return await fut

    def ride_along(self, fn: WriterFn[None]) -> None:
        """Queue a write nobody waits for; it commits with the next batch."""
        if self._accepting:
            self._queue.append(Txn(fn=fn))
            self._wake.set()

    # ------------------------------------------------------------------ the pipeline

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
                        planned.batch.presume_keys = True
                    self._extend(planned)
                if not running.written_done():
                    self._wake.clear()
                    await self._wake.wait()  # more writes to plan, or the thread is done
                    continue
            except Exception as exc:
                _log_failure("planning a group commit failed", exc)
                if planned is not None:
                    self._fail(planned.items, exc)
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
            except Exception as exc:
                _log_failure("planning a group commit failed", exc)
                self._fail(planned.items, exc)
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
        self.cache.trim_channels()  # no batch is planned on the cache now: safe to forget
        batch = f.batch = Batch(self.cache, now_ms(), self.tail.next_jid)
        batch.presume_keys = not lookup  # idempotency keys: checked in the transaction
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
        dedup = self.cache.dedup
        while queue and len(f.items) < self.max_batch:
            it = queue.popleft()
            f.items.append(it)  # first: if anything below raises, it fails with f
            if isinstance(it, Txn):
                f.txns.append(it)
                continue
            if type(it) is SendRequest:
                hit = dedup.get((it.sender_id, it.cmid))
                if hit is not None:
                    it.result = duplicate(hit, it.cmid)
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
        f.positions = self.positions.take()
        assert f.batch is not None
        self._plan_fold(f.batch)
        f.launched = time.perf_counter()
        f.written = self._start_write(f)
        f.written.add_done_callback(self._wake_up)
        return f

    def _start_write(self, f: _Flight) -> asyncio.Future[sql.Written]:
        """Start writing f's statements (another engine's writer may wrap this)."""
        return self._in_thread(self._write, f, not f.lookup)

    def _plan_fold(self, batch: Batch) -> None:
        """The tail's folds for a batch about to be written. Never raises (the batch is
        written without folds then): a launch happens outside the writer loop's guard."""
        batch.seal()  # the wallet's rows in bulk (batch.py)
        updates = batch.updates
        try:
            self.tail.plan_fold(batch, now_ms())
        except Exception:
            log.exception("planning the update-log folds failed; writing without them")
            self.tail.forget(batch)
            batch.updates, batch.folds, batch.direct_rows, batch.folded = updates, [], [], {}
            batch.chat_rows = []

    def _wake_up(self, _: Any) -> None:
        self._wake.set()

    def _write(self, f: _Flight, conflict_ok: bool) -> sql.Written:
        """In the writer thread: the whole group commit in one call."""
        assert self._db is not None and f.batch is not None
        b = f.batch
        with self.gate:
            return sql.write_batch(
                self._db,
                b.messages,
                b.updates,
                b.folds,
                b.direct_rows,
                b.journal_below,
                b.statements,
                b.chat_rows,
                [(seq, u, d) for (u, d), seq in f.positions.items()],
                f.txns,
                conflict_ok=conflict_ok,
                presumed=b.presumed,
            )

    async def _settle(self, f: _Flight) -> bool:
        """Wait for f's statements. True if it committed exactly as planned; False if it
        had to be planned again (a stored client message id) or failed (answered)."""
        assert f.written is not None
        try:
            written = await f.written
            if not written.committed:
                # A client message id missing from the dedup cache is stored already (a
                # retry from before a restart, or older than the cache), or an idempotency
                # key planned as absent is stored: look every send and key of the batch
                # up, then plan and write it again.
                self.stats.lookups += 1
                assert f.batch is not None
                self.tail.forget(f.batch)
                await self._plan(f, lookup=True)
                assert f.batch is not None
                self._plan_fold(f.batch)
                written = await self._in_thread(self._write, f, False)
        except Exception as exc:
            _log_failure(f"group commit failed; {len(f.items)} writes refused", exc)
            if f.batch is not None:
                self.tail.forget(f.batch)
            self.positions.done(f.positions, ok=False)
            self._fail(f.items, exc)
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
        self.positions.done(f.positions, ok=True)
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
        self.stats.tail_rows = self.tail.rows
        self.stats.record(
            len(f.items),
            len(f.batch.messages),
            plan=f.plan_s,
            write=r.commit_started - f.launched,
            commit=r.commit_finished - r.commit_started,
            dispatch=time.perf_counter() - t,
        )
        self.on_commit()

    def _publish(self, batch: Batch, ops: list[Any]) -> None:
        """Make the batch's numbers and state the current ones."""
        self.cache.publish(batch)
        self.tail.publish(batch)
        remember = self.cache.remember
        for op in ops:
            if type(op) is SendRequest and op.result is not None and not op.result.duplicate:
                remember(op.sender_id, op.cmid, op.result)
        self.batches += 1
        self.committed_sends += len(batch.messages)

    def _fail(self, items: list[Any], why: Exception | None = None) -> None:
        """Answer items that did not commit: 5001 (StoreUnavailable's message when the
        database was unreachable, so that clients retry as after any 5001)."""
        ops = []
        unavailable = isinstance(why, StoreUnavailable)
        message = why.message if isinstance(why, StoreUnavailable) else ""
        for it in items:
            if isinstance(it, Txn):
                exc = StoreUnavailable() if unavailable else RuntimeError("commit failed")
                _resolve(it.future, False, exc)
                continue
            if type(it) is SendRequest:
                it.result = None
            it.error, it.error_message = ErrorCode.INTERNAL_ERROR, message
            it.pushes = []
            ops.append(it)
        if ops:
            try:
                self.on_committed(ops)
            except Exception:  # the writer must outlive any one batch
                log.exception("answering a failed batch failed")

    def _send_ready(self, s: SendRequest, batch: Batch) -> bool:
        """Whether the caches (and the running batch) hold all a send consults."""
        if s.rewards is not None and not (
            batch.has_progress(s.sender_id)
            and batch.has_account(s.sender_id)
            and batch.has_account(REWARDS)
        ):
            return False
        if s.group is not None:
            g = batch.group_ro(s.group) if batch.has_group(s.group) else None
            return (
                g is not None
                and batch.has_conv(s.group)
                and batch.has_head(s.sender_id)
                and all(batch.has_head(u) for u in g.members)
            )
        rid_ = self.cache.user_ids.get(s.to_name)
        return (
            rid_ is not None
            and batch.has_head(s.sender_id)
            and batch.has_head(rid_)
            and batch.has_social(rid_)
            and batch.has_pair(pair(s.sender_id, rid_))
        )

    def _op_ready(self, op: Any, batch: Batch) -> bool:
        """Whether nothing the op consults is missing (what `_missing` lists, stopping at
        the first gap: this runs for every queued op on the hot path)."""
        n = Needs()
        rules.needs(op, n, batch)
        user_ids = self.cache.user_ids
        if any(x not in user_ids for x in n.names):
            return False
        if n.users or n.social:
            has_head = batch.has_head
            if any(not has_head(u) for u in n.users) or any(not has_head(u) for u in n.social):
                return False
            if any(not batch.has_social(u) for u in n.social):
                return False
        if any(not batch.has_pair(p) for p in n.pairs):
            return False
        if n.accounts and any(not batch.has_account(a) for a in n.accounts):
            return False
        if n.groups or n.convs or n.channels or n.members or n.posts or n.likes:
            return not any(self._missing(n, batch))
        if n.comments or n.post_cmids or n.pendings or n.packets or n.tasks or n.items:
            return not any(self._missing(n, batch))
        return batch.presume_keys or all(batch.has_key(k) for k in n.keys)

    def _missing(self, n: Needs, batch: Batch) -> tuple[list[Any], ...]:
        """What the needs ask for that neither the caches nor the batch's parent hold:
        names, groups, heads, social, pairs, conversations; then the channel rows by
        table (channels, members, posts, likes, comments, post cmids); then the wallet's
        accounts, idempotency keys, pending transfers, packets, task progress and items."""
        has = batch.has_channel_row
        return (
            [x for x in n.names if x not in self.cache.user_ids],
            [g for g in n.groups if not batch.has_group(g)],
            [u for u in n.users | n.social if not batch.has_head(u)],
            [u for u in n.social if not batch.has_social(u)],
            [p for p in n.pairs if not batch.has_pair(p)],
            [c for c in n.convs if not batch.has_conv(c)],
            [c for c in n.channels if not has("channels", c)],
            [k for k in n.members if not has("members", k)],
            [k for k in n.posts if not has("posts", k)],
            [k for k in n.likes if not has("likes", k)],
            [k for k in n.comments if not has("comments", k)],
            [k for k in n.post_cmids if not has("post_cmids", k)],
            [a for a in n.accounts if not batch.has_account(a)],
            [] if batch.presume_keys else [k for k in n.keys if not batch.has_key(k)],
            [t for t in n.pendings if not batch.has_pending(t)],
            [p for p in n.packets if not batch.has_packet(p)],
            [u for u in n.tasks if not batch.has_progress(u)],
            [i for i in n.items if not batch.has_item(i)],
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
            found, ledger_found = await self.call(_fetch_all, *missing[:6], *missing[12:])
            self.cache.apply(*found)
            if any(missing[6:12]):
                self.cache.ch.update(await self.call(fetch_channel, missing[6:12]))
            asked = missing[12:]
            if any(asked):
                self.cache.apply_ledger(asked, ledger_found)  # type: ignore[arg-type]
            cached = self.cache.groups
            members = {u for g in groups if g in cached for u in cached[g].members}
            members -= self.cache.heads.keys()
            if members:
                self.cache.apply_heads(await self.call(sql.fetch_heads, list(members)))
            names_found, group_rows = found[0], found[4][0]
            # pending transfers and packets lead to more (accounts, conversations, members)
            chained = bool(ledger_found) and bool(
                ledger_found[2] or ledger_found[3] or ledger_found[6]
            )
            if not (names_found or group_rows or found[3] or chained):
                return  # nothing learnt that could make the ops ask for more

    def _cached_duplicates(self, sends: list[SendRequest]) -> None:
        """Answer retries of recent sends from the dedup cache."""
        dedup = self.cache.dedup
        for s in sends:
            hit = dedup.get((s.sender_id, s.cmid))
            if hit is not None:
                s.result = duplicate(hit, s.cmid)

    async def _stored_duplicates(self, sends: list[SendRequest]) -> None:
        """Answer retries the cache does not know from the database."""
        keys = list({(s.sender_id, s.cmid) for s in sends if s.result is None})
        rows_ = await self.call(sql.fetch_duplicates, keys)
        for sender_id, cmid, mid, conv, pos, ts, sseq in rows_:
            self.cache.remember(
                sender_id,
                cmid,
                SendResult(id=mid, conv=conv, pos=pos, ts=ts, sender_seq=sseq, cmid=cmid),
            )
        self._cached_duplicates([s for s in sends if s.result is None])


def _log_failure(what: str, exc: BaseException) -> None:
    """A failed plan or commit: with its traceback (a bug), except when the database was
    unreachable (the store logs that once per outage)."""
    if isinstance(exc, StoreUnavailable):
        log.debug("%s: the database is unreachable", what)
    else:
        log.error("%s", what, exc_info=exc)


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


def _fetch_all(
    db: sqlite3.Connection,
    names: list[str],
    groups: list[int],
    users: list[int],
    social: list[int],
    pairs: list[tuple[int, int]],
    convs: list[int],
    *ledger: Any,
) -> Any:
    """In the writer thread: every kind of missing state in one hand-over."""
    return (
        (
            sql.fetch_names(db, names),
            sql.fetch_heads(db, users),
            sql.fetch_social(db, social),
            sql.fetch_pairs(db, pairs),
            sql.fetch_groups(db, groups),
            sql.fetch_conv_last(db, convs),
        ),
        sql.fetch_ledger(db, *ledger) if any(ledger) else (),
    )


def _close(db: sqlite3.Connection, last: Callable[[sqlite3.Connection], None] | None) -> None:
    """In the writer thread."""
    try:
        if last is not None:
            last(db)
    finally:
        db.close()


def _noop(db: sqlite3.Connection) -> None:
    return None
