"""The PostgreSQL writer: SQLite's pipelined group-commit writer, with four changes
(the fourth, riding through a lost connection, is recovery.py's).

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
   sequence numbers, positions and ids in memory from its caches, as on SQLite, which is
   right only if no other node wrote since the caches were loaded. So every commit
   starts by advancing the one `store_clock` row (UPDATE ... RETURNING: the row stays
   locked to COMMIT, so commits of all nodes are ordered) and records in `store_changes`
   which users and conversations it changed (and whether channels or the wallet).
   If the clock is where this node's last commit left it, nobody else wrote: the plan
   stands. If not, the transaction stays open with the row locked (no other node can
   commit meanwhile), the node forgets what the missed commits changed (their
   store_changes rows; everything if it is too far behind), reloads the counters, plans
   the batch again on what the database now holds and writes it in that same
   transaction. Every commit of every node is thus planned on the state the previous
   commit left: a user's sequence, a conversation's positions and the message ids stay
   gap-free and strictly increasing, and no batch is planned again more than once.

   Why, measured (tests/store/test_pg_nodes.py; bench/pg.py; bench/README.md):
   - Message ids are one gap-free sequence over every node, so each commit must take a
     number from one place anyway: one row lock per commit is the least that costs. A
     row lock per counter (each user's head, each conversation's position) in a fixed
     order would add locks, not remove that one, and would need the transaction open
     across planning every time, not only when another node wrote.
   - Leased ranges (WeChat's seqsvr) hand each node a block of numbers: no coordination,
     but a user's log gets gaps whenever two nodes write for them; the contract forbids
     gaps, so they do not fit.
   - A first version dropped every cache when the clock had moved: correct, but each
     such commit loaded everything again. A second kept the caches of what did not
     change but rolled back and planned again without the lock: under two busy nodes a
     batch was overtaken up to 50 times in a row (the other node's commits were quicker
     than its plan) and failed. Planning again under the lock bounds that to once.
   The cost on one node alone: one UPDATE and one INSERT per group commit (not per
   message). Nodes that write for disjoint users still order their commits through the
   one row, and each commit after another node's plans again (planning is CPU; the
   changed users' state is read again): the router should keep a user's writes on one
   node where it can.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg

from ..contract import StoreUnavailable
from ..ledger import LedgerState
from ..shop_overlay import ShopState
from ..sqlite import channels as sqlite_channels
from ..sqlite import sql
from ..sqlite.batch import Batch
from ..sqlite.caches import BoundedKeys
from ..sqlite.shop import load as load_shop
from ..sqlite.sql import Rows, Txn, Written
from ..sqlite.writer import _Flight
from .conn import SyncConnection, bind, translate
from .link import broken, gone
from .recovery import InDoubt, Recovering

MAX_REPLANS = 50  # a batch planned again this often (other nodes keep writing): refused


CHANGES_KEPT = 100_000  # store_changes rows kept (a node further behind reloads all)

# What one commit changed that a node's caches may hold: (users, conversations, channels
# touched, wallet touched, shop touched); the users and conversations of its heads,
# privacy and contact state, positions and groups.
Touched = tuple[list[int], list[int], bool, bool, bool]


class StaleCaches(Exception):
    """Another node committed since this node's last commit (see the module docstring):
    what those commits changed, in order, or None if this node is too far behind to know."""

    def __init__(self, changes: list[Touched] | None, held: int) -> None:
        super().__init__()
        self.changes = changes
        self.held = held  # the clock value this node's transaction holds locked


def touched(b: Batch) -> Touched:
    """What the batch changes that caches hold (store_changes' row for its commit)."""
    users = sorted(set(b.heads) | set(b.social))
    convs = sorted(set(b.conv_last) | set(b.groups))
    staged = [s for s, _ in b.statements]
    channels = any("channel" in s for s in staged)
    wallet = bool(b.transfer_rows) or any("wallet_" in s for s in staged)
    shop = any("shop_" in s for s in staged)
    return users, convs, channels, wallet, shop


class PgWriter(Recovering):
    """The SQLite writer's pipeline over a PostgreSQL connection."""

    replans = 0  # batches planned again because another node had written

    def _plan_fold(self, batch: Batch) -> None:
        """No journal: every log row of the batch is written into `updates` directly."""
        batch.seal()
        batch.direct_rows, batch.updates = batch.updates, []
        batch.chat_rows = self.tail.chat_rows(batch)  # the chat list's index (tail.py)

    def _start_write(self, f: _Flight) -> asyncio.Future[Written]:
        return asyncio.get_running_loop().create_task(self._write_until_fresh(f))

    async def _write_until_fresh(self, f: _Flight) -> Written:
        """Write f. If another node has committed first, keep the clock row locked (the
        transaction stays open: no node commits meanwhile), drop what changed, plan f
        again on what the database now holds and write it in that same transaction: one
        plan again at most, however busy the other nodes are. A client message id found
        stored rolls back and plans again too. Either way the pipeline sees f as planned
        again (f.lookup), so the batch planned on top of it is, too."""
        try:
            for _ in range(MAX_REPLANS):
                if self.down:
                    raise StoreUnavailable()
                try:
                    written = await self._write_once(f)
                except psycopg.OperationalError as exc:  # the connection died (above)
                    if not self._gone(exc):
                        raise
                    await self._reconnected(exc)  # reconnected and reloaded, or raises
                    await self._replan(f)
                    continue
                if written is not None:
                    return written
            raise RuntimeError("batch planned again too often")
        finally:
            if self._held:  # planning again failed: let the other nodes go on
                await self._in_thread(self._release)

    async def _write_once(self, f: _Flight) -> Written | None:
        """One attempt: f's Written, or None after planning f again (see above)."""
        try:
            written = await self._in_thread(self._write, f, True)
        except StaleCaches as stale:
            self.replans += 1
            await self.forget(stale.changes)
            await self._replan(f)
            return None
        except InDoubt as doubt:
            found = await self._in_doubt(doubt)
            if found is None:
                await self._replan(f)  # it did not commit: write it again
            return found
        if written.committed:
            return written
        self.stats.lookups += 1
        await self._replan(f)
        return None

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
        await self._load_counters(shop=any(ch[4] for ch in changes))

    async def reload(self) -> None:
        """Forget every cached image another node may have changed; reload the counters."""
        c = self.cache
        for d in (c.heads, c.floors, c.direct, c.conv_last, c.groups, c.social):
            d.clear()
        c.ch = type(c.ch)()
        c.ledger = LedgerState(complete=False, keys=BoundedKeys())
        await self._load_counters(shop=True)

    async def _load_counters(self, *, shop: bool) -> None:
        """The next free ids and the clock; with `shop`, the shop's whole state (the writer
        holds every product and open order: sqlite/shop.py)."""
        c = self.cache
        if shop:
            c.shop = ShopState()
            state = c.shop
            await self.call(lambda db: load_shop(db, state))
        ids = await self.call(load_counters)
        c.next_msg_id, c.next_conv_id, c.next_item_id = ids[0], ids[1], ids[2]
        led = c.ledger
        led.next_transfer_id, led.next_packet_id, led.next_wallet_item_id = ids[3:6]
        # inside the held transaction the row shows this node's own step, not committed
        self.clock = ids[6] - 1 if self._held else ids[6]

    def _write(self, f: _Flight, conflict_ok: bool) -> Written:
        """In the writer thread: the clock check (StaleCaches, the lock kept) unless the
        lock is held already, then the batch and COMMIT."""
        assert self._db is not None and f.batch is not None
        b = f.batch
        db: Any = self._db
        with self.gate:
            if not self._held:
                try:
                    self._held = lock_clock(db, self.clock)
                except StaleCaches as stale:
                    self._held = stale.held  # the row stays locked: plan again, then write
                    raise
            try:
                written = write_batch(
                    db,
                    b.messages,
                    b.direct_rows,
                    b.statements,
                    b.chat_rows,
                    [(seq, u, d) for (u, d), seq in f.positions.items()],
                    f.txns,
                    (self._held, *touched(b), self.writer_id),
                    b.presumed,
                )
            except InDoubt as doubt:
                doubt.held = self._held
                raise
            finally:
                held, self._held = self._held, 0
        if written.committed:
            self.clock = held
        return written

    def _release(self) -> None:
        """In the writer thread: give the clock row back (roll the transaction back)."""
        self._held = 0
        db: Any = self._db
        if db is not None and not broken(db.conn) and db.in_transaction:
            db.conn.execute("ROLLBACK")


def load_counters(db: SyncConnection) -> tuple[int, ...]:
    """The next free ids and the clock, read in one snapshot (the clock first: a commit
    landing in between makes the clock look old, so the first commit reloads again);
    inside the transaction holding the clock row if one is open (nothing lands then)."""
    own = not db.in_transaction
    if own:
        db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    try:
        row = db.execute("SELECT n FROM store_clock WHERE id = 1").fetchone()
        assert row is not None, "store_clock has its one row from migration 1"
        clock = row[0]
        msg, conv = sql.next_ids(db)  # type: ignore[arg-type]
        item = sqlite_channels.next_item_id(db)  # type: ignore[arg-type]
        ledger = sql.next_ledger_ids(db)  # type: ignore[arg-type]
    finally:
        if own:
            db.execute("COMMIT")
    return (msg, conv, item, *ledger, int(clock))


_POSITIONS = "UPDATE devices SET acked = max(acked, ?) WHERE user_id=? AND device=?"
_MESSAGES = f"INSERT INTO {sql.MESSAGES_INTO} VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"
_UPDATES = f"INSERT INTO {sql.UPDATES_INTO} VALUES (%s,%s,%s,%s,%s,%s)"


def lock_clock(db: SyncConnection, clock: int) -> int:
    """BEGIN and advance the clock row, keeping it locked to COMMIT; its new value. If
    another node committed since `clock`, StaleCaches with what those commits changed,
    the transaction left open and the row locked (the caller plans again, then writes)."""
    conn = db.conn
    try:
        with conn.pipeline():  # one round trip for both
            conn.execute("BEGIN")
            cur = conn.execute("UPDATE store_clock SET n = n + 1 WHERE id = 1 RETURNING n")
        row = cur.fetchone()
        assert row is not None, "store_clock has its one row from migration 1"
        now = int(row[0])
        if now == clock + 1:
            return now
        missed = conn.execute(
            "SELECT clock, users, convs, channels, wallet, shop FROM store_changes "
            "WHERE clock > %s ORDER BY clock",
            (clock,),
        ).fetchall()
    except BaseException:
        if not broken(conn) and db.in_transaction:
            conn.execute("ROLLBACK")
        raise
    known = [r[0] for r in missed] == list(range(clock + 1, now))
    changes: list[Touched] = [(r[1], r[2], bool(r[3]), bool(r[4]), bool(r[5])) for r in missed]
    raise StaleCaches(changes if known else None, now)


def write_batch(
    db: SyncConnection,
    messages: Rows,
    updates: Rows,
    statements: list[tuple[str, tuple[Any, ...]]],
    chats: Rows,
    positions: Rows,
    txns: list[Txn],
    change: tuple[int, list[int], list[int], bool, bool, bool, int],
    presumed: list[tuple[int, str]] | None = None,
) -> Written:
    """In the transaction lock_clock opened: what this commit changed (store_changes),
    every row and statement, the generic transactions, COMMIT.

    A (sender, cmid) already stored, or one of the idempotency keys `presumed` absent
    (store/ledger.py) found stored, rolls back and returns committed=False; any other
    error rolls back and raises."""
    conn = db.conn
    same: Any = db  # SQLite's statement functions run on it (translated): sql.py's
    commit_sent = False
    outcomes: list[tuple[bool, Any]] = []
    started = 0.0
    try:
        if presumed and sql.stored_keys(same, presumed):  # the clock row is locked
            conn.execute("ROLLBACK")
            return Written(False, [])
        # One round trip for all of it (psycopg's pipeline mode: every statement sent,
        # then every answer read), COMMIT included when no generic write needs answers.
        try:
            with conn.pipeline():
                conn.execute(
                    "INSERT INTO store_changes "
                    "(clock, users, convs, channels, wallet, shop, writer) "
                    "VALUES (%s, %s::bigint[], %s::bigint[], %s, %s, %s, %s)",
                    change,
                )
                if change[0] % 1000 == 0:
                    conn.execute(
                        "DELETE FROM store_changes WHERE clock <= %s", (change[0] - CHANGES_KEPT,)
                    )
                cur = conn.cursor()
                if messages:
                    cur.executemany(_MESSAGES, messages)
                if updates:
                    cur.executemany(_UPDATES, [r[1:] for r in updates])
                for statement, params in statements:
                    cur.execute(*bind(statement, params))
                if chats:  # after the statements: the memberships of this commit count
                    sql.upsert_chats(same, chats)
                if positions:
                    cur.executemany(translate(_POSITIONS), positions)
                if not txns:
                    started = time.perf_counter()
                    commit_sent = True
                    conn.execute("COMMIT")
        except psycopg.errors.UniqueViolation as exc:
            if "cmid" not in (exc.diag.constraint_name or ""):
                raise
            conn.execute("ROLLBACK")
            return Written(False, [])
        if txns:
            outcomes = [sql.run_txn(same, t.fn) for t in txns]
            started = time.perf_counter()
            commit_sent = True
            conn.execute("COMMIT")
    except psycopg.OperationalError as exc:
        if not gone(conn, exc):
            if db.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if commit_sent:
            raise InDoubt(outcomes, started) from exc
        raise  # nothing committed: the caller reconnects and writes it again
    except BaseException:
        if not broken(conn) and db.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return Written(True, outcomes, started, time.perf_counter())
