"""The writer's statements: plain functions over a sqlite3 connection, run in its thread.

Everything here runs in the store's single writer thread, never on the event loop. A
whole group commit is one call (write_batch): the loop hands the thread a planned batch
and gets one answer back, instead of one hand-over per statement, so the thread can spend
a commit's SQL and fsync (the GIL released) while the loop plans the next batch.
Loaders return rows; the store applies them to its caches on the loop.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from ...chat.ledger import Packet
from ...chat.model import REL_REQUESTED

log = logging.getLogger("liaotian.store")
_CHUNK = 400  # keys per IN (...) / VALUES list, far below SQLite's variable limit
# Variables per multi-row INSERT at most (SQLite's default limit since 3.32 is 32,766).
# Every statement the writer thread runs must win the GIL back from the busy event loop
# afterwards (up to the interpreter's switch interval each time), so a batch is a few big
# statements rather than many small ones.
_VARIABLES_PER_INSERT = 32_000
MESSAGES_INTO = "messages (id, conv_id, pos, sender_id, sender_seq, cmid, ts, body)"
UPDATES_INTO = "updates (user_id, seq, kind, message_id, data, ts)"
Rows = list[tuple[Any, ...]]

# The chat's named writes (chat/plan.py), as Batch stages them (batch.py).
INSERT_CONVERSATION = (
    "INSERT INTO conversations (id, kind, user_a, user_b, created) VALUES (?, ?, ?, ?, ?)"
)
INSERT_GROUP = "INSERT INTO groups (conv_id, name, topic, owner_id) VALUES (?, ?, ?, ?)"
UPDATE_GROUP = "UPDATE groups SET name = ?, topic = ?, owner_id = ? WHERE conv_id = ?"
INSERT_MEMBER = (
    "INSERT INTO members (conv_id, user_id, role, joined_pos, joined) VALUES (?, ?, ?, ?, ?)"
)
DELETE_MEMBER = "DELETE FROM members WHERE conv_id = ? AND user_id = ?"
UPDATE_ROLE = "UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?"
# The chat list's index (schema migration 12): a member joining, or leaving
UPSERT_CHAT_JOIN = (
    "INSERT INTO chats (user_id, conv_id, ts, seq, pos) VALUES (?, ?, ?, 0, 0) "
    "ON CONFLICT (user_id, conv_id) DO UPDATE SET ts = max(ts, excluded.ts)"
)
DELETE_CHAT = "DELETE FROM chats WHERE user_id = ? AND conv_id = ?"
INSERT_RELATION = (
    "INSERT OR IGNORE INTO relations (user_id, other_id, kind, created) VALUES (?, ?, ?, ?)"
)
DELETE_RELATION = "DELETE FROM relations WHERE user_id = ? AND other_id = ? AND kind = ?"
UPDATE_PRIVACY = (
    "UPDATE users SET privacy_presence = ?, privacy_profile = ?, "
    "privacy_messages = ?, privacy_groups = ?, privacy_receipts = ?, "
    "privacy_coins = ?, privacy_nearby = ? WHERE id = ?"
)
# the wallet's (store/ledger.py); transfers and balances go in bulk (Batch.seal)
TRANSFERS_INTO = (
    "wallet_transfers (id, debit, credit, amount, code, flags, pending_id, "
    "expires, ref, memo, actor, ts, key)"
)
ACCOUNTS_UPSERT = (
    "INSERT INTO wallet_accounts (id, balance, pending_out, pending_in) VALUES "
    "{values} ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, "
    "pending_out = excluded.pending_out, pending_in = excluded.pending_in"
)
INSERT_PENDING = "INSERT INTO wallet_pending (id, expires) VALUES (?, ?)"
DELETE_PENDING = "DELETE FROM wallet_pending WHERE id = ?"
INSERT_PACKET = (
    "INSERT INTO wallet_packets (id, sender, conv, peer, amount, count, split, "
    "seed, pending, expires, memo, created, state) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_PACKET = "UPDATE wallet_packets SET state = ? WHERE id = ?"
INSERT_CLAIM = (
    "INSERT INTO wallet_claims (packet, user_id, n, amount, transfer) VALUES (?, ?, ?, ?, ?)"
)
# a new account planned in a batch (REGISTER with an invitation code; rules/tasks.py)
INSERT_USER = "INSERT INTO users (username, password_hash, created) VALUES (?, ?, ?)"
KEYS_INTO = "wallet_keys (user_id, key, params, result, ts)"
UPSERT_TASK = (
    "INSERT INTO wallet_tasks (user_id, task, period, count) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (user_id, task, period) DO UPDATE SET count = excluded.count"
)
INSERT_ITEM = (
    "INSERT INTO wallet_items (id, code, kind, owner, created, source, redeemed) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_ITEM = "UPDATE wallet_items SET owner = ?, redeemed = ? WHERE id = ?"
UPSERT_READ_MARKER = (
    "INSERT INTO read_markers (user_id, conv_id, pos) VALUES (?, ?, ?) "
    "ON CONFLICT (user_id, conv_id) DO UPDATE SET pos = max(read_markers.pos, excluded.pos)"
)
INSERT_BLOB_REF = "INSERT OR IGNORE INTO blob_refs (sha256, conv_id, pos) VALUES (?, ?, ?)"
CLEAR_UNREF = "UPDATE blobs SET unref_since = NULL WHERE sha256 = ? AND unref_since IS NOT NULL"


@dataclass(slots=True)
class Txn:
    """A generic write run inside the next group commit; `fn` gets the writer's handle."""

    fn: Callable[[sqlite3.Connection], Any]  # runs in the writer thread
    future: Any = field(default=None)  # an asyncio future to answer, or None


def chunks(items: list[Any], n: int = _CHUNK) -> Iterable[list[Any]]:
    """Slices of at most n items, for IN (...) lists far below SQLite's variable limit."""
    for i in range(0, len(items), n):
        yield items[i : i + n]


def one(db: sqlite3.Connection, sql: str, args: Iterable[Any] = ()) -> Any:
    return db.execute(sql, tuple(args)).fetchone()


def insert_rows(
    db: sqlite3.Connection, into: str, rows: Rows, *, verb: str = "OR ROLLBACK"
) -> None:
    """Multi-row INSERTs: one statement step per chunk instead of one per row.

    OR ROLLBACK: a conflict undoes the whole transaction (the caller's batch is planned
    again), so SQLite keeps no statement journal to undo just the statement: a copy of
    every page it changes, ~30% of the statements' CPU in small batches (measured)."""
    width = len(rows[0])
    group = "(" + ",".join("?" * width) + ")"
    for chunk in chunks(rows, _VARIABLES_PER_INSERT // width):
        values = ",".join([group] * len(chunk))
        db.execute(f"INSERT {verb} INTO {into} VALUES {values}", [v for row in chunk for v in row])


def insert_log_rows(db: sqlite3.Connection, rows: Rows, verb: str) -> None:
    """Journal-shaped rows (journal id first) into `updates`, the id left out by SQLite
    rather than by slicing every row here."""
    group = "(?,?,?,?,?,?,?)"
    for chunk in chunks(rows, _VARIABLES_PER_INSERT // 7):
        values = ",".join([group] * len(chunk))
        db.execute(
            f"INSERT {verb} INTO {UPDATES_INTO} SELECT column2, column3, column4, "
            f"column5, column6, column7 FROM (VALUES {values})",
            [v for row in chunk for v in row],
        )


# The chat list's index (schema migration 12): rows of (user, conversation, ts, seq, pos)
# for the log rows a commit folds into `updates` (tail.py: one per user and conversation
# per fold, not per message). A group's rows count only while the user is a member: a
# removal's event reaches the removed member's log too, and a fold may come after it.
UPSERT_CHATS = """
    WITH v(u, conv, ts, seq, pos) AS (VALUES {values})
    INSERT INTO chats (user_id, conv_id, ts, seq, pos)
    SELECT v.u, v.conv, v.ts, v.seq, v.pos FROM v JOIN conversations c ON c.id = v.conv
    WHERE c.kind = 1 OR EXISTS (SELECT 1 FROM members WHERE conv_id = v.conv
                                AND user_id = v.u)
    ON CONFLICT (user_id, conv_id) DO UPDATE SET ts = max(ts, excluded.ts),
        seq = max(seq, excluded.seq), pos = max(pos, excluded.pos)
"""
# The same from log rows already in `updates`: per user's span of seqs (at open, after a
# crash, the journal's rows are folded by SQL alone: sql.fold_journal).
INDEX_SPANS = """
    WITH span(u, lo, hi) AS (VALUES {values})
    INSERT INTO chats (user_id, conv_id, ts, seq, pos)
    SELECT s.u, m.conv_id, max(m.ts), max(x.seq), max(m.pos)
    FROM span s
    JOIN updates x ON x.user_id = s.u AND x.seq BETWEEN s.lo AND s.hi
    JOIN messages m ON m.id = x.message_id
    JOIN conversations c ON c.id = m.conv_id
    WHERE c.kind = 1 OR EXISTS (SELECT 1 FROM members WHERE conv_id = m.conv_id
                                AND user_id = s.u)
    GROUP BY s.u, m.conv_id
    ON CONFLICT (user_id, conv_id) DO UPDATE SET ts = max(ts, excluded.ts),
        seq = max(seq, excluded.seq), pos = max(pos, excluded.pos)
"""


def upsert_chats(db: sqlite3.Connection, rows: Rows) -> None:
    """The chat list's index rows of one commit (see UPSERT_CHATS)."""
    for part in chunks(rows, _VARIABLES_PER_INSERT // 5):
        values = ",".join(["(?,?,?,?,?)"] * len(part))
        db.execute(UPSERT_CHATS.format(values=values), [v for row in part for v in row])


def index_spans(db: sqlite3.Connection, spans: dict[int, tuple[int, int]]) -> None:
    """The chat list's index for the log rows of `spans` ({user: (first seq, last seq)}),
    which are in `updates` now (see INDEX_SPANS)."""
    items = list(spans.items())
    for part in chunks(items, _VARIABLES_PER_INSERT // 3):
        values = ",".join(["(?,?,?)"] * len(part))
        db.execute(
            INDEX_SPANS.format(values=values), [v for u, (lo, hi) in part for v in (u, lo, hi)]
        )


def spans_of(rows: Iterable[tuple[Any, ...]], user: int, seq: int) -> dict[int, tuple[int, int]]:
    """{user: (lowest seq, highest seq)} of log rows whose user and seq are at the given
    indexes (journal-shaped rows: 1 and 2; `updates`-shaped rows: 0 and 1)."""
    spans: dict[int, tuple[int, int]] = {}
    for row in rows:
        u, q = row[user], row[seq]
        lo_hi = spans.get(u)
        spans[u] = (q, q) if lo_hi is None else (min(lo_hi[0], q), max(lo_hi[1], q))
    return spans


def journal_entry(updates: Rows) -> tuple[int, int, bytes]:
    """One commit's log rows as one journal row: (id, ts, packed rows). Appending a row
    per commit costs a page or two however many rows it holds (the rows' own B-tree
    inserts were most of the journal's cost at 4,000 rows a commit). The rows are packed
    whole, as planned: slicing off the id and ts took as long as packing."""
    first = updates[0]
    return first[0], first[6], msgpack.packb(updates)


def journal_rows(db: sqlite3.Connection) -> Iterable[tuple[Any, ...]]:
    """Every row in the journal, as `updates` rows (user, seq, kind, id, data, ts)."""
    for (packed,) in db.execute("SELECT rows FROM update_journal ORDER BY id"):
        for row in msgpack.unpackb(packed, use_list=False):
            yield row[1:]


def fold_journal(db: sqlite3.Connection) -> tuple[int, int]:
    """Fold every journal row into `updates` and empty the journal, in one transaction
    (at open, after a crash; and at a clean close). Returns (rows folded, next journal id).
    A row folded before is in both; OR IGNORE keeps the copy already there. A row at or
    below its user's floor was folded and pruned since: it stays pruned."""
    db.execute("BEGIN IMMEDIATE")
    try:
        (last,) = one(db, "SELECT coalesce(max(id), 0) FROM update_journal")
        floors = dict(db.execute("SELECT id, log_floor FROM users WHERE log_floor > 0"))
        rows = sorted(r for r in journal_rows(db) if r[1] > floors.get(r[0], 0))
        n = 0
        if rows:
            n = db.total_changes
            insert_rows(db, UPDATES_INTO, rows, verb="OR IGNORE")
            n = db.total_changes - n
            index_spans(db, spans_of(rows, 0, 1))
        db.execute("DELETE FROM update_journal")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return n, last + 1


# ---------------------------------------------------------------------- one group commit


@dataclass(slots=True)
class Written:
    """What write_batch did: committed, or refused because a client message id is stored."""

    committed: bool
    outcomes: list[tuple[bool, Any]]  # per Txn: (ok, value or exception)
    commit_started: float = 0.0  # perf_counter just before COMMIT
    commit_finished: float = 0.0  # ... and just after it


def write_batch(
    db: sqlite3.Connection,
    messages: Rows,
    updates: Rows,
    folds: Rows,
    direct: Rows,
    journal_below: int,
    statements: list[tuple[str, tuple[Any, ...]]],
    chats: Rows,
    positions: Rows,
    txns: list[Txn],
    *,
    conflict_ok: bool,
    presumed: list[tuple[int, str]] | None = None,
) -> Written:
    """BEGIN, every staged row and statement, the generic transactions, COMMIT.

    `presumed` are idempotency keys the batch was planned as if absent (store/ledger.py):
    if one is stored, the batch is rolled back before any statement and committed=False
    (the store loads the keys and plans again).

    `updates` are journal rows (appended); `folds` are copies of earlier journal rows for
    the clustered `updates` table (OR IGNORE: a fold may repeat one done before), `direct`
    new log rows for it (a conflict there is a bug: the commit fails), both grouped by
    user (see tail.py); journal rows below `journal_below` are deleted.

    With `conflict_ok`, a (sender, cmid) already stored rolls everything back and returns
    committed=False (the store looks the ids up and plans again); without, it raises.
    Any other error rolls back and raises.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        if presumed and stored_keys(db, presumed):
            db.execute("ROLLBACK")
            return Written(False, [])
        if messages:
            try:
                insert_rows(db, MESSAGES_INTO, messages)
            except sqlite3.IntegrityError:
                if not conflict_ok:
                    raise
                if db.in_transaction:  # OR ROLLBACK has normally ended it already
                    db.execute("ROLLBACK")
                return Written(False, [])
        if updates:
            db.execute(
                "INSERT INTO update_journal (id, ts, rows) VALUES (?, ?, ?)", journal_entry(updates)
            )
        if folds:  # grouped by user, in seq order: each log's rows land together
            insert_log_rows(db, folds, "OR IGNORE")
        if direct:
            insert_log_rows(db, direct, "OR ROLLBACK")
        if journal_below:
            db.execute("DELETE FROM update_journal WHERE id < ?", (journal_below,))
        for sql, params in statements:
            db.execute(sql, params)
        if chats:  # after the statements: the memberships of this commit count
            upsert_chats(db, chats)
        if positions:
            db.executemany(
                "UPDATE devices SET acked = max(acked, ?) WHERE user_id=? AND device=?", positions
            )
        outcomes = [run_txn(db, t.fn) for t in txns]
        started = time.perf_counter()
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return Written(True, outcomes, started, time.perf_counter())


def run_txn(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any]) -> tuple[bool, Any]:
    """One generic write in its own savepoint: its failure undoes only its own statements
    (PostgreSQL's writer runs it on its connection too: the statements are the same)."""
    db.execute("SAVEPOINT txn")
    try:
        value = fn(db)
    except Exception as exc:
        db.execute("ROLLBACK TO txn")
        db.execute("RELEASE txn")
        return False, exc
    db.execute("RELEASE txn")
    return True, value


# ---------------------------------------------------------------------- loaders


def _select(db: sqlite3.Connection, template: str, keys: list[Any], group: str = "?") -> Rows:
    """Run `template` once per chunk of keys, "{marks}" replaced by one `group` of
    placeholders per key ("?" for an IN list, "(?)" or "(?,?)" for a VALUES table; tuple
    keys are flattened into the group's placeholders)."""
    out: Rows = []
    for chunk in chunks(keys, _CHUNK):
        marks = ",".join([group] * len(chunk))
        args = [v for key in chunk for v in key] if "," in group else chunk
        out += db.execute(template.replace("{marks}", marks), args).fetchall()
    return out


def stored_keys(db: sqlite3.Connection, keys: list[tuple[int, str]]) -> Rows:
    """(user, key) of the idempotency keys among `keys` that are stored."""
    return _select(
        db,
        "WITH k(u, k) AS (VALUES {marks}) SELECT w.user_id, w.key "
        "FROM k JOIN wallet_keys w ON w.user_id = k.u AND w.key = k.k",
        list(set(keys)),
        "(?,?)",
    )


def fetch_names(db: sqlite3.Connection, names: list[str]) -> Rows:
    return _select(db, "SELECT username, id FROM users WHERE username IN ({marks})", names)


def fetch_duplicates(db: sqlite3.Connection, keys: list[tuple[int, str]]) -> Rows:
    """(sender, cmid, id, conv, pos, ts, sender_seq) of the keys already stored."""
    # A join against a VALUES table probes the unique index once per key; the equivalent
    # "(a, b) IN (VALUES ...)" scans the table (20x slower, measured).
    return _select(
        db,
        "WITH k(s, c) AS (VALUES {marks}) SELECT m.sender_id, m.cmid, m.id, "
        "m.conv_id, m.pos, m.ts, m.sender_seq FROM k JOIN messages m "
        "ON m.sender_id = k.s AND m.cmid = k.c",
        keys,
        "(?,?)",
    )


def fetch_heads(db: sqlite3.Connection, users: list[int]) -> Rows:
    """(id, username, log floor, newest seq) per user."""
    return _select(
        db,
        "SELECT id, username, log_floor, (SELECT coalesce(max(seq), 0) FROM "
        "updates WHERE user_id = users.id) FROM users WHERE id IN ({marks})",
        users,
    )


def fetch_social(db: sqlite3.Connection, users: list[int]) -> tuple[Rows, Rows, Rows]:
    """Privacy settings and group counts (owned, joined), relations, and pending incoming
    contact requests of the users."""
    return (
        _select(
            db,
            "SELECT id, privacy_presence, privacy_profile, privacy_messages, "
            "privacy_groups, privacy_receipts, privacy_coins, privacy_nearby, "
            "(SELECT count(*) FROM members m WHERE m.user_id = users.id "
            "AND m.role = 2), (SELECT count(*) FROM members m WHERE m.user_id = users.id) "
            "FROM users WHERE id IN ({marks})",
            users,
        ),
        _select(
            db, "SELECT user_id, other_id, kind FROM relations WHERE user_id IN ({marks})", users
        ),
        _select(
            db,
            "SELECT other_id, user_id FROM relations WHERE other_id IN ({marks}) "
            f"AND kind = {REL_REQUESTED}",
            users,
        ),
    )


def fetch_pairs(db: sqlite3.Connection, pairs: list[tuple[int, int]]) -> Rows:
    """(user_a, user_b, conversation, last position) of the direct conversations found."""
    return _select(
        db,
        "WITH k(a, b) AS (VALUES {marks}) SELECT c.user_a, c.user_b, c.id, "
        "(SELECT coalesce(max(pos), 0) FROM messages WHERE conv_id = c.id) "
        "FROM k JOIN conversations c ON c.user_a = k.a AND c.user_b = k.b "
        "AND c.kind = 1",
        pairs,
        "(?,?)",
    )


def fetch_conv_last(db: sqlite3.Connection, convs: list[int]) -> Rows:
    return _select(
        db,
        "WITH k(c) AS (VALUES {marks}) SELECT k.c, (SELECT coalesce(max(pos), "
        "0) FROM messages WHERE conv_id = k.c) FROM k",
        convs,
        "(?)",
    )


def fetch_groups(db: sqlite3.Connection, convs: list[int]) -> tuple[Rows, Rows]:
    """Group rows and their member rows."""
    return (
        _select(
            db,
            "SELECT g.conv_id, g.name, g.topic, g.owner_id, c.created FROM groups g "
            "JOIN conversations c ON c.id = g.conv_id WHERE g.conv_id IN ({marks})",
            convs,
        ),
        _select(
            db,
            "SELECT conv_id, user_id, role, joined_pos, joined FROM members "
            "WHERE conv_id IN ({marks})",
            convs,
        ),
    )


def fetch_ledger(
    db: sqlite3.Connection,
    accounts: list[int],
    keys: list[tuple[int, str]],
    pendings: list[int],
    packets: list[int],
    tasks: list[int],
    items: list[str],
) -> tuple[Rows, ...]:
    """The wallet's state the needs ask for: accounts, idempotency keys, open pending
    transfers, packets and their claims, the newest period of each task of the users,
    items (absent ones are simply not in the rows)."""
    return (
        _select(
            db,
            "SELECT id, balance, pending_out, pending_in FROM wallet_accounts "
            "WHERE id IN ({marks})",
            accounts,
        ),
        _select(
            db,
            "WITH k(u, k) AS (VALUES {marks}) SELECT w.user_id, w.key, w.params, "
            "w.result FROM k JOIN wallet_keys w ON w.user_id = k.u AND w.key = k.k",
            keys,
            "(?,?)",
        ),
        _select(
            db,
            f"SELECT {TRANSFER_COLUMNS} FROM wallet_pending p JOIN wallet_transfers t "
            "ON t.id = p.id WHERE p.id IN ({marks})",
            pendings,
        ),
        _select(
            db, f"SELECT {PACKET_COLUMNS} FROM wallet_packets WHERE id IN ({{marks}})", packets
        ),
        _select(
            db,
            "SELECT packet, user_id, amount, transfer FROM wallet_claims "
            "WHERE packet IN ({marks}) ORDER BY packet, n",
            packets,
        ),
        _select(
            db,
            "SELECT user_id, task, period, count FROM wallet_tasks t WHERE user_id IN "
            "({marks}) AND period = (SELECT max(period) FROM wallet_tasks u WHERE "
            "u.user_id = t.user_id AND u.task = t.task)",
            tasks,
        ),
        _select(db, f"SELECT {ITEM_COLUMNS} FROM wallet_items WHERE code IN ({{marks}})", items),
    )


def packet_of_row(r: tuple[Any, ...]) -> Packet:
    """A wallet_packets row (PACKET_COLUMNS), its claims still to add."""
    return Packet(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], state=r[12]
    )


TRANSFER_COLUMNS = (
    "t.id, t.debit, t.credit, t.amount, t.code, t.flags, t.pending_id, "
    "t.expires, t.ref, t.memo, t.actor, t.ts, t.key"
)
PACKET_COLUMNS = (
    "id, sender, conv, peer, amount, count, split, seed, pending, expires, memo, created, state"
)
ITEM_COLUMNS = "id, code, kind, owner, created, source, redeemed"


# ---------------------------------------------------------------------- opening and closing


def next_ids(db: sqlite3.Connection) -> tuple[int, int]:
    """The next free message and conversation ids."""
    (last_msg,) = one(db, "SELECT coalesce(max(id), 0) FROM messages")
    (last_conv,) = one(db, "SELECT coalesce(max(id), 0) FROM conversations")
    return last_msg + 1, last_conv + 1


def next_ledger_ids(db: sqlite3.Connection) -> tuple[int, int, int]:
    """The next free transfer, packet and item ids."""
    row = one(
        db,
        "SELECT (SELECT coalesce(max(id), 0) FROM wallet_transfers), "
        "(SELECT coalesce(max(id), 0) FROM wallet_packets), "
        "(SELECT coalesce(max(id), 0) FROM wallet_items)",
    )
    return row[0] + 1, row[1] + 1, row[2] + 1


def close_writer(db: sqlite3.Connection) -> None:
    """At a clean close: fold the journal into the update logs and the WAL back into the
    database file (each failure logged, not raised)."""
    try:
        fold_journal(db)
    except sqlite3.Error:
        log.warning("folding the update journal at close failed", exc_info=True)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error:
        log.warning("checkpoint at close failed", exc_info=True)


# ---------------------------------------------------------------------- awaited writes


def create_user(db: sqlite3.Connection, username: str, password_hash: str, now: int) -> int:
    """The new user's id (RETURNING rather than lastrowid: PostgreSQL runs this too)."""
    row = db.execute(
        "INSERT INTO users (username, password_hash, created) VALUES (?, ?, ?) RETURNING id",
        (username, password_hash, now),
    ).fetchone()
    return int(row[0])


def set_device_token(
    db: sqlite3.Connection, user_id: int, device: str, token_hash: bytes, max_devices: int, now: int
) -> int | None:
    """Create or re-key a device; its acknowledged position, or None when it is new and
    the user has `max_devices` devices already (0: no bound)."""
    if (
        max_devices
        and one(db, "SELECT 1 FROM devices WHERE user_id=? AND device=?", (user_id, device)) is None
        and one(db, "SELECT count(*) FROM devices WHERE user_id=?", (user_id,))[0] >= max_devices
    ):
        return None
    db.execute(
        "INSERT INTO devices (user_id, device, token_hash, created, last_seen) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, device) DO UPDATE SET "
        "token_hash = excluded.token_hash, last_seen = excluded.last_seen",
        (user_id, device, token_hash, now, now),
    )
    row = one(db, "SELECT acked FROM devices WHERE user_id=? AND device=?", (user_id, device))
    return int(row[0])


def delete_device(db: sqlite3.Connection, user_id: int, device: str) -> bool:
    cur = db.execute("DELETE FROM devices WHERE user_id=? AND device=?", (user_id, device))
    return cur.rowcount > 0


def set_profile(
    db: sqlite3.Connection, uid: int, display_name: str | None, status: str | None
) -> None:
    if display_name is not None:
        db.execute("UPDATE users SET display_name = ? WHERE id = ?", (display_name, uid))
    if status is not None:
        db.execute("UPDATE users SET status = ? WHERE id = ?", (status, uid))


def set_last_seen(db: sqlite3.Connection, uid: int, when_ms: int) -> None:
    db.execute("UPDATE users SET last_seen = ? WHERE id = ?", (when_ms, uid))


def touch_device(db: sqlite3.Connection, user_id: int, device: str, now: int) -> None:
    db.execute(
        "UPDATE devices SET last_seen=? WHERE user_id=? AND device=?", (now, user_id, device)
    )


def prune_before(db: sqlite3.Connection, older_than_ms: int) -> list[tuple[int, int]]:
    """Delete log rows older than the horizon, raising each user's floor; (user, floor)."""
    floors: list[tuple[int, int]] = db.execute(
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
