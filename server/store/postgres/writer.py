"""The PostgreSQL writer: SQLite's pipelined group-commit writer, with three changes.

The pipeline is sqlite/writer.py's, reused whole: one connection writes, in a thread of
its own (psycopg's synchronous connection), because the chat's rules plan with
synchronous reads of the committed state and a batch's statements and COMMIT are one
hand-over to the thread while the loop plans the next batch. Group commit is therefore
the same: everything queued while a COMMIT is in flight goes into the next transaction,
one COMMIT (one WAL flush on the server) per batch; nothing is acknowledged before it.

1. No journal and no tail: every log row goes straight into `updates` in its own
   commit. SQLite's journal saves scattered page writes in one file; here it would keep
   rows in one node's memory where another node (same database) cannot read them.

2. Rows go in with executemany in pipeline mode (psycopg sends all statements of a batch
   before reading any answer: one network round trip for the batch, not one per row).

3. Several nodes may write to one database (issue 17, item 3). Each node allocates
   sequence numbers, positions and ids in memory from its caches, as on SQLite, which
   is right only if no other node wrote since the caches were loaded. Every commit
   therefore starts by locking the one `store_clock` row (SELECT ... FOR UPDATE) and
   comparing it with the value this node's last commit left: equal, nobody else wrote,
   the plan stands, and the row lock keeps it so until COMMIT; different, the batch is
   rolled back before writing anything, the caches are dropped and the batch is planned
   again on what the database now holds (the pipeline's "planned again" path). The
   numbers stay gap-free and strictly increasing on every node, since every commit of
   every node is planned on the state the previous commit left.

   Why one clock row rather than a row lock per counter or leased ranges: a batch's
   numbers come from state spread over many rows (each member's log head, the
   conversation's last position, the next message id, group membership, balances), all
   read while planning, before the transaction; locking each of them in a fixed order
   would need the transaction open across planning (the loop's work) and would still
   leave the caches of the non-counter state (groups, privacy, balances) to validate.
   Leased ranges (WeChat's seqsvr) give each node a block of numbers: fast, but a
   user's log would have gaps whenever two nodes write for them, and the contract wants
   no gaps. The clock costs one row lock and one UPDATE per group commit (not per
   message); nodes that mostly write for their own users (the router's job) rarely
   find it moved. Measured in tests/store/test_pg_nodes.py and bench/pg.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg

from ..ledger import LedgerState
from ..sqlite import channels as sqlite_channels
from ..sqlite import sql
from ..sqlite.batch import Batch
from ..sqlite.caches import BoundedKeys
from ..sqlite.sql import Rows, Txn, Written
from ..sqlite.writer import Writer, _Flight
from .conn import SyncConnection, translate

MAX_REPLANS = 50  # a batch planned again this often (other nodes keep writing): refused


CHANGES_KEPT = 100_000  # store_changes rows kept (a node further behind reloads all)

# What one commit changed that a node's caches may hold: (users, conversations, channels
# touched, wallet touched); the users and conversations of its heads, privacy and contact
# state, positions and groups.
Touched = tuple[list[int], list[int], bool, bool]


class StaleCaches(Exception):
    """Another node committed since this node's last commit (see the module docstring):
    what those commits changed, in order, or None if this node is too far behind to know."""

    def __init__(self, changes: list[Touched] | None) -> None:
        super().__init__()
        self.changes = changes


def touched(b: Batch) -> Touched:
    """What the batch changes that caches hold (store_changes' row for its commit)."""
    users = sorted(set(b.heads) | set(b.social))
    convs = sorted(set(b.conv_last) | set(b.groups))
    staged = [s for s, _ in b.statements]
    channels = any("channel" in s for s in staged)
    wallet = bool(b.transfer_rows) or any("wallet_" in s for s in staged)
    return users, convs, channels, wallet


class PgWriter(Writer):
    """The SQLite writer's pipeline over a PostgreSQL connection."""

    clock = 0  # store_clock as this node's last commit left it
    replans = 0  # batches planned again because another node had written

    def _plan_fold(self, batch: Batch) -> None:
        """No journal: every log row of the batch is written into `updates` directly."""
        batch.seal()
        batch.direct_rows, batch.updates = batch.updates, []

    def _launch(self, f: _Flight) -> _Flight:
        f.positions = self.positions.take()
        assert f.batch is not None
        self._plan_fold(f.batch)
        f.launched = time.perf_counter()
        task = asyncio.get_running_loop().create_task(self._write_until_fresh(f))
        f.written = task
        task.add_done_callback(self._wake_up)
        return f

    async def _write_until_fresh(self, f: _Flight) -> Written:
        """Write f; while another node has written first (or a client message id turns
        out stored), drop what is stale and plan f again. Either way the pipeline sees f
        as planned again (f.lookup), so the batch planned on top of it is, too."""
        for _ in range(MAX_REPLANS):
            try:
                written = await self._in_thread(self._write, f, True)
            except StaleCaches as stale:
                self.replans += 1
                await self.forget(stale.changes)
                await self._replan(f)
                continue
            if written.committed:
                return written
            self.stats.lookups += 1
            await self._replan(f)
        raise RuntimeError("batch planned again too often: other nodes keep writing")

    async def _replan(self, f: _Flight) -> None:
        await self._plan(f, lookup=True)
        assert f.batch is not None
        self._plan_fold(f.batch)

    async def forget(self, changes: list[Touched] | None) -> None:
        """Forget what other nodes' commits changed (everything, if that is not known),
        then reload the counters: the next plan loads the rest from the database."""
        if changes is None:
            await self.reload()
            return
        c = self.cache
        users = {u for ch in changes for u in ch[0]}
        convs = {x for ch in changes for x in ch[1]}
        for uid in users:
            c.heads.pop(uid, None)
            c.floors.pop(uid, None)
            c.social.pop(uid, None)
        for conv in convs:
            c.conv_last.pop(conv, None)
            c.groups.pop(conv, None)
        if convs:  # a pair's conversation is loaded with its last position: both go
            for key in [k for k, conv in c.direct.items() if conv in convs]:
                del c.direct[key]
        if any(ch[2] for ch in changes):
            c.ch = type(c.ch)()
        if any(ch[3] for ch in changes):
            c.ledger = LedgerState(complete=False, keys=BoundedKeys())
        await self._load_counters()

    async def reload(self) -> None:
        """Forget every cached image another node may have changed; reload the counters."""
        c = self.cache
        for d in (c.heads, c.floors, c.direct, c.conv_last, c.groups, c.social):
            d.clear()
        c.ch = type(c.ch)()
        c.ledger = LedgerState(complete=False, keys=BoundedKeys())
        await self._load_counters()

    async def _load_counters(self) -> None:
        c = self.cache
        ids = await self.call(load_counters)
        c.next_msg_id, c.next_conv_id, c.next_item_id = ids[0], ids[1], ids[2]
        led = c.ledger
        led.next_transfer_id, led.next_packet_id, led.next_wallet_item_id = ids[3:6]
        self.clock = ids[6]

    def _write(self, f: _Flight, conflict_ok: bool) -> Written:
        assert self._db is not None and f.batch is not None
        b = f.batch
        db: Any = self._db
        with self.gate:
            written, clock = write_batch(
                db,
                self.clock,
                b.messages,
                b.direct_rows,
                b.statements,
                [(seq, u, d) for (u, d), seq in f.positions.items()],
                f.txns,
                touched(b),
            )
        if written.committed:
            self.clock = clock
        return written


def load_counters(db: SyncConnection) -> tuple[int, ...]:
    """The next free ids and the clock, read in one snapshot (the clock first: a commit
    landing in between makes the clock look old, so the first commit reloads again)."""
    db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    try:
        row = db.execute("SELECT n FROM store_clock WHERE id = 1").fetchone()
        assert row is not None, "store_clock has its one row from migration 1"
        clock = row[0]
        msg, conv = sql.next_ids(db)  # type: ignore[arg-type]
        item = sqlite_channels.next_item_id(db)  # type: ignore[arg-type]
        ledger = sql.next_ledger_ids(db)  # type: ignore[arg-type]
    finally:
        db.execute("COMMIT")
    return (msg, conv, item, *ledger, int(clock))


_MESSAGES = f"INSERT INTO {sql.MESSAGES_INTO} VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"
_UPDATES = f"INSERT INTO {sql.UPDATES_INTO} VALUES (%s,%s,%s,%s,%s,%s)"


def write_batch(
    db: SyncConnection,
    clock: int,
    messages: Rows,
    updates: Rows,
    statements: list[tuple[str, tuple[Any, ...]]],
    positions: Rows,
    txns: list[Txn],
    changed: Touched,
) -> tuple[Written, int]:
    """BEGIN, the clock check, every row and statement, the generic transactions, COMMIT.

    StaleCaches if another node committed since `clock` (nothing written). A (sender,
    cmid) already stored rolls back and returns committed=False; any other error rolls
    back and raises. Returns what was written and the clock this commit leaves."""
    conn = db.conn
    conn.execute("BEGIN")
    try:
        # the row lock is held to COMMIT: no other node commits in between
        row = conn.execute("UPDATE store_clock SET n = n + 1 WHERE id = 1 RETURNING n").fetchone()
        assert row is not None
        now = row[0]
        if now != clock + 1:
            missed = conn.execute(
                "SELECT clock, users, convs, channels, wallet FROM store_changes "
                "WHERE clock > %s ORDER BY clock",
                (clock,),
            ).fetchall()
            conn.execute("ROLLBACK")
            known = [r[0] for r in missed] == list(range(clock + 1, now))
            raise StaleCaches([tuple(r[1:]) for r in missed] if known else None)
        conn.execute(
            "INSERT INTO store_changes (clock, users, convs, channels, wallet) "
            "VALUES (%s, %s::bigint[], %s::bigint[], %s, %s)",
            (now, *changed),
        )
        if now % 1000 == 0:
            conn.execute("DELETE FROM store_changes WHERE clock <= %s", (now - CHANGES_KEPT,))
        cur = conn.cursor()
        if messages:  # executemany: pipelined, one round trip for all the rows
            try:
                cur.executemany(_MESSAGES, messages)
            except psycopg.errors.UniqueViolation as exc:
                if "cmid" not in (exc.diag.constraint_name or ""):
                    raise
                conn.execute("ROLLBACK")
                return Written(False, []), clock
        if updates:
            cur.executemany(_UPDATES, [r[1:] for r in updates])
        if statements:
            with conn.pipeline():
                for statement, params in statements:
                    cur.execute(translate(statement), params)
        if positions:
            db.executemany(
                "UPDATE devices SET acked = max(acked, ?) WHERE user_id=? AND device=?", positions
            )
        outcomes = [_run_txn(db, t.fn) for t in txns]
        started = time.perf_counter()
        conn.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return Written(True, outcomes, started, time.perf_counter()), clock + 1


def _run_txn(db: SyncConnection, fn: Any) -> tuple[bool, Any]:
    """One generic write in its own savepoint: its failure undoes only its own statements."""
    db.execute("SAVEPOINT txn")
    try:
        value = fn(db)
    except Exception as exc:
        db.execute("ROLLBACK TO txn")
        db.execute("RELEASE txn")
        return False, exc
    db.execute("RELEASE txn")
    return True, value
