"""SQLite storage: WAL, synchronous=FULL by default, and a group-commit writer.

One connection writes, one reads (WAL lets reads run beside the writer). Every write goes
through the writer queue: whatever arrives while a commit is in progress is committed
together in the next transaction, so throughput does not collapse to one fsync per message,
and nothing is reported done before the COMMIT that makes it durable has returned.

Sequence numbers, conversation positions and message ids are allocated in memory by the
writer (the only writer), from caches loaded lazily from the database; they are published
to the rest of the process only after the commit succeeds. A failed commit publishes
nothing, so the next batch allocates the same numbers again: no gaps, no reuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiosqlite
from liaotian.protocol import ErrorCode, UpdateKind
from liaotian.protocol.messages import encode_message_map

from .base import (
    Needs,
    Refused,
    SendRequest,
    SendResult,
    Txn,
    WriteOp,
)
from .batch import Batch, pair
from .queries import Queries, chunks
from .schema import MIGRATIONS
from .state import (
    REL_REQUESTED,
    GroupState,
    Member,
    Social,
)

log = logging.getLogger("liaotian.store")
T = TypeVar("T")
_CHUNK = 400  # rows per IN (...) query, far below SQLite's variable limit
SendsCommitted = Callable[[list[Any]], None]  # the planned ops of one commit, in order


def now_ms() -> int:
    return int(time.time() * 1000)


class StoreClosed(Exception):
    """The store no longer accepts writes (shutting down)."""


class SQLiteStore(Queries):
    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "full",
        max_batch: int = 2048,
        dedup_cache: int = 200_000,
    ) -> None:
        if synchronous.lower() not in ("full", "normal", "extra"):
            raise ValueError("synchronous must be full, extra or normal")
        self.path = path
        self.synchronous = synchronous.upper()
        self.max_batch = max_batch
        self.on_sends_committed: SendsCommitted = lambda reqs: None
        self._w: aiosqlite.Connection | None = None
        self._r: aiosqlite.Connection | None = None
        self._queue: deque[Any] = deque()  # SendRequest, WriteOp or Txn, in arrival order
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._accepting = False
        # caches, all owned by the writer; "committed" values only
        self._user_ids: dict[str, int] = {}
        self._usernames: dict[int, str] = {}
        self._heads: dict[int, int] = {}
        self._floors: dict[int, int] = {}
        self._direct: dict[tuple[int, int], int] = {}  # (a, b) -> direct conversation id
        self._conv_last: dict[int, int] = {}  # conversation -> last position
        self._groups: dict[int, GroupState] = {}
        self._social: dict[int, Social] = {}
        # (sender, cmid) -> the answer a retry gets; bounded, oldest evicted first
        # Plain tuples (id, conv, pos, ts, sender seq): the collector stops tracking tuples
        # of numbers, so a full cache does not slow every garbage collection down.
        self._dedup: OrderedDict[tuple[int, str], tuple[int, int, int, int, int]] = OrderedDict()
        self._dedup_max = dedup_cache
        self._next_msg_id = 1
        self._next_conv_id = 1
        self._positions: dict[tuple[int, str], int] = {}
        self._flushing: dict[tuple[int, str], int] = {}  # positions in the commit running now
        self.batches = 0
        self.committed_sends = 0

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        self._w = await aiosqlite.connect(self.path, isolation_level=None)
        w = self._w
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
        ):
            await self._one(w, f"PRAGMA {pragma}")
        await self._migrate()
        row = await self._one(w, "SELECT coalesce(max(id), 0) FROM messages")
        self._next_msg_id = row[0] + 1
        row = await self._one(w, "SELECT coalesce(max(id), 0) FROM conversations")
        self._next_conv_id = row[0] + 1
        self._r = await aiosqlite.connect(self.path, isolation_level=None)
        # Every statement's cursor is closed at once: an unfinished one would pin the
        # reader to an old snapshot.
        await self._one(self._r, "PRAGMA busy_timeout=5000")
        await self._one(self._r, "PRAGMA query_only=ON")
        await self._one(self._r, "PRAGMA cache_size=-65536")  # sync pages re-read hot logs
        self._accepting = True
        self._writer = asyncio.get_running_loop().create_task(
            self._writer_loop(), name="store-writer"
        )

    async def _migrate(self) -> None:
        w = self._conn_w
        (version,) = await self._one(w, "PRAGMA user_version")
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"database schema {version} is newer than this server ({len(MIGRATIONS)})"
            )
        for n in range(version, len(MIGRATIONS)):
            log.info("applying schema migration %d", n + 1)
            await w.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _statements(MIGRATIONS[n]):
                    await w.execute(stmt)
                await w.execute(f"PRAGMA user_version={n + 1}")
                await w.execute("COMMIT")
            except BaseException:
                await w.execute("ROLLBACK")
                raise

    async def close(self) -> None:
        """Stop taking writes, commit what is queued (positions included), close."""
        if self._writer is not None:
            last = asyncio.get_running_loop().create_future()
            self._queue.append(Txn(fn=_noop, future=last))  # behind every queued write
            self._wake.set()
            self._accepting = False
            await last
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        self._accepting = False
        if self._r is not None:
            await self._r.close()
            self._r = None
        if self._w is not None:
            try:
                await self._one(self._w, "PRAGMA wal_checkpoint(TRUNCATE)")
            except aiosqlite.Error:
                log.warning("checkpoint at close failed", exc_info=True)
            await self._w.close()
            self._w = None

    @property
    def _conn_w(self) -> aiosqlite.Connection:
        assert self._w is not None, "store is not open"
        return self._w

    @property
    def _conn_r(self) -> aiosqlite.Connection:
        assert self._r is not None, "store is not open"
        return self._r

    # ------------------------------------------------------------------ writes

    def submit_send(self, req: SendRequest) -> None:
        """Queue a send; on_sends_committed sees it, answered, after its batch commits."""
        self.submit(req)  # type: ignore[arg-type]

    async def run_in_commit(self, fn: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run fn's statements inside the next group commit (in its own savepoint)."""
        if not self._accepting:
            raise StoreClosed()
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(Txn(fn=fn, future=fut))
        self._wake.set()
        return await fut

    def record_position(self, user_id: int, device: str, seq: int) -> None:
        key = (user_id, device)
        if seq > self._positions.get(key, -1):
            self._positions[key] = seq

    def flush_positions_soon(self) -> None:
        if self._positions and self._accepting:
            self._queue.append(Txn(fn=_noop))
            self._wake.set()

    async def create_user(self, username: str, password_hash: str) -> int:
        async def op(db: aiosqlite.Connection) -> int:
            cur = await db.execute(
                "INSERT INTO users (username, password_hash, created) VALUES (?, ?, ?)",
                (username, password_hash, now_ms()),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        return await self.run_in_commit(op)

    async def set_device_token(self, user_id: int, device: str, token_hash: bytes) -> int:
        """Create or re-key a device; returns its acknowledged position."""

        async def op(db: aiosqlite.Connection) -> int:
            t = now_ms()
            await db.execute(
                "INSERT INTO devices (user_id, device, token_hash, created, last_seen) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, device) DO UPDATE SET "
                "token_hash = excluded.token_hash, last_seen = excluded.last_seen",
                (user_id, device, token_hash, t, t),
            )
            row = await self._one(
                db, "SELECT acked FROM devices WHERE user_id=? AND device=?", (user_id, device)
            )
            return int(row[0])

        return await self.run_in_commit(op)

    async def delete_device(self, user_id: int, device: str) -> bool:
        self._positions.pop((user_id, device), None)

        async def op(db: aiosqlite.Connection) -> bool:
            cur = await db.execute(
                "DELETE FROM devices WHERE user_id=? AND device=?", (user_id, device)
            )
            return cur.rowcount > 0

        return await self.run_in_commit(op)

    async def set_profile(self, uid: int, display_name: str | None, status: str | None) -> None:
        async def op(db: aiosqlite.Connection) -> None:
            if display_name is not None:
                await db.execute(
                    "UPDATE users SET display_name = ? WHERE id = ?", (display_name, uid)
                )
            if status is not None:
                await db.execute("UPDATE users SET status = ? WHERE id = ?", (status, uid))

        await self.run_in_commit(op)

    def record_last_seen(self, uid: int, when_ms: int) -> None:
        """Store when a user's last connection closed; rides along with the next commit."""

        async def op(db: aiosqlite.Connection) -> None:
            await db.execute("UPDATE users SET last_seen = ? WHERE id = ?", (when_ms, uid))

        if self._accepting:
            self._queue.append(Txn(fn=op))
            self._wake.set()

    def touch_device(self, user_id: int, device: str) -> None:
        """Record that a device connected; rides along with the next commit, unawaited."""
        t = now_ms()

        async def op(db: aiosqlite.Connection) -> None:
            await db.execute(
                "UPDATE devices SET last_seen=? WHERE user_id=? AND device=?", (t, user_id, device)
            )

        if self._accepting:
            self._queue.append(Txn(fn=op))
            self._wake.set()

    # ------------------------------------------------------------------ the writer

    def submit(self, op: WriteOp) -> None:
        """Queue a write op; on_sends_committed sees it, planned, after its batch commits."""
        if not self._accepting:
            raise StoreClosed()
        self._queue.append(op)
        self._wake.set()

    async def _writer_loop(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            n = min(len(queue), self.max_batch)
            items = [queue.popleft() for _ in range(n)]
            try:
                await self._commit_batch(items)
            except Exception:
                log.exception("group commit failed; %d writes refused", len(items))
                try:
                    self._fail(items)
                except Exception:  # the writer must outlive any one batch
                    log.exception("answering a failed batch failed")

    def _fail(self, items: list[Any]) -> None:
        ops = []
        for it in items:
            if isinstance(it, Txn):
                if it.future is not None and not it.future.done():
                    it.future.set_exception(RuntimeError("commit failed"))
                continue
            if isinstance(it, SendRequest):
                it.result = None
            it.error, it.error_message = ErrorCode.INTERNAL_ERROR, ""
            it.pushes = []
            ops.append(it)
        if ops:
            self.on_sends_committed(ops)

    async def _commit_batch(self, items: list[Any]) -> None:
        db = self._conn_w
        ops = [it for it in items if not isinstance(it, Txn)]
        txns = [it for it in items if isinstance(it, Txn)]
        batch = Batch(self, now_ms())
        if ops:
            await self._prefetch(db, ops, batch)
            for op in ops:
                if isinstance(op, SendRequest):
                    if op.result is None and op.error is None:
                        batch.run(op, lambda op=op: self._plan_send(batch, op), checks_first=True)
                else:
                    batch.run(op, lambda op=op: op.plan(batch))
        positions, self._positions = self._positions, {}
        self._flushing = positions
        await db.execute("BEGIN IMMEDIATE")
        try:
            if batch.messages:
                await _insert_rows(
                    db,
                    "messages (id, conv_id, pos, sender_id, sender_seq, cmid, ts, body)",
                    batch.messages,
                )
            if batch.updates:
                batch.updates.sort()  # (user, seq): each log's new rows land together
                await _insert_rows(
                    db, "updates (user_id, seq, kind, message_id, data, ts)", batch.updates
                )
            for sql, params in batch.statements:
                await db.execute(sql, params)
            if positions:
                await db.executemany(
                    "UPDATE devices SET acked = max(acked, ?) WHERE user_id=? AND device=?",
                    [(seq, u, d) for (u, d), seq in positions.items()],
                )
            outcomes = [await self._run_txn(db, t) for t in txns]
            await db.execute("COMMIT")
        except BaseException:
            self._flushing = {}
            for key, seq in positions.items():
                self.record_position(key[0], key[1], seq)
            try:
                await db.execute("ROLLBACK")
            except Exception:
                log.exception("rollback failed")
            raise
        self._flushing = {}
        self._publish(batch, ops)
        for t, (ok, value) in zip(txns, outcomes, strict=True):
            if t.future is not None and not t.future.done():
                if ok:
                    t.future.set_result(value)
                else:
                    t.future.set_exception(value)
        if ops:
            self.on_sends_committed(ops)

    def _publish(self, batch: Batch, ops: list[Any]) -> None:
        """The commit is durable: make the batch's numbers and state the current ones."""
        self._heads.update(batch.heads)
        self._conv_last.update(batch.conv_last)
        self._direct.update(batch.direct)
        for conv, g in batch.groups.items():
            if g is not None:
                self._groups[conv] = g
        self._social.update(batch.social)
        self._next_msg_id = batch.next_msg_id
        self._next_conv_id = batch.next_conv_id
        for op in ops:
            if isinstance(op, SendRequest) and op.result is not None and not op.result.duplicate:
                self._remember(op.sender_id, op.cmid, op.result)
        self.batches += 1
        self.committed_sends += len(batch.messages)

    async def _run_txn(self, db: aiosqlite.Connection, t: Txn) -> tuple[bool, Any]:
        await db.execute("SAVEPOINT txn")
        try:
            value = await t.fn(db)
        except Exception as exc:
            await db.execute("ROLLBACK TO txn")
            await db.execute("RELEASE txn")
            return False, exc
        await db.execute("RELEASE txn")
        return True, value

    # ------------------------------------------------------------------ prefetch

    async def _prefetch(self, db: aiosqlite.Connection, ops: list[Any], batch: Batch) -> None:
        """Load everything the ops will consult, in a few set-based queries per round."""
        sends = [op for op in ops if isinstance(op, SendRequest)]
        if sends:
            await self._find_duplicates(db, sends)
        for _round in range(5):
            n = Needs()
            for op in ops:
                if isinstance(op, SendRequest):
                    if op.result is None:
                        self._send_needs(op, n)
                else:
                    op.needs(n, batch)
            missing_names = [x for x in n.names if x not in self._user_ids]
            missing_groups = [g for g in n.groups if g not in self._groups]
            missing_users = [u for u in n.users | n.social if u not in self._heads]
            missing_social = [u for u in n.social if u not in self._social]
            missing_pairs = [p for p in n.pairs if p not in self._direct]
            missing_convs = [c for c in n.convs if c not in self._conv_last]
            if not (
                missing_names
                or missing_groups
                or missing_users
                or missing_social
                or missing_pairs
                or missing_convs
            ):
                return
            await self._load_names(db, missing_names)
            await self._load_heads(db, set(missing_users))
            await self._load_social(db, missing_social)
            await self._load_pairs(db, missing_pairs)
            await self._load_groups(db, missing_groups)
            await self._load_conv_last(db, missing_convs)
            if not (missing_names or missing_groups or missing_pairs):
                return  # nothing new can be asked for in another round

    def _send_needs(self, s: SendRequest, n: Needs) -> None:
        n.users.add(s.sender_id)
        if s.group is not None:
            n.groups.add(s.group)
            n.convs.add(s.group)
            g = self._groups.get(s.group)
            if g is not None:
                n.users.update(g.members)
            return
        n.names.add(s.to_name)
        rid_ = self._user_ids.get(s.to_name)
        if rid_ is not None:
            n.users.add(rid_)
            n.social.add(rid_)
            n.pairs.add(pair(s.sender_id, rid_))

    async def _load_names(self, db: aiosqlite.Connection, names: list[str]) -> None:
        for chunk in chunks(names, _CHUNK):
            marks = ",".join("?" * len(chunk))
            rows_ = await db.execute_fetchall(
                f"SELECT username, id FROM users WHERE username IN ({marks})", chunk
            )
            for name, uid in rows_:
                self._cache_user(name, uid)

    async def _find_duplicates(self, db: aiosqlite.Connection, sends: list[SendRequest]) -> None:
        unknown: list[tuple[int, str]] = []
        for s in sends:
            key = (s.sender_id, s.cmid)
            hit = self._dedup.get(key)
            if hit is not None:
                s.result = _duplicate(hit, s.cmid)
            else:
                unknown.append(key)
        for chunk in chunks(list(set(unknown)), _CHUNK):
            marks = ",".join("(?,?)" for _ in chunk)
            flat = [v for pair_ in chunk for v in pair_]
            # A join against a VALUES table probes the unique index once per key; the
            # equivalent "(a, b) IN (VALUES ...)" scans the table (20x slower, measured).
            rows_ = await db.execute_fetchall(
                f"WITH k(s, c) AS (VALUES {marks}) SELECT m.sender_id, m.cmid, m.id, "
                "m.conv_id, m.pos, m.ts, m.sender_seq FROM k JOIN messages m "
                "ON m.sender_id = k.s AND m.cmid = k.c",
                flat,
            )
            for sender_id, cmid, mid, conv, pos, ts, sseq in rows_:
                self._remember(
                    sender_id,
                    cmid,
                    SendResult(id=mid, conv=conv, pos=pos, ts=ts, sender_seq=sseq, cmid=cmid),
                )
        for s in sends:
            if s.result is None:
                hit = self._dedup.get((s.sender_id, s.cmid))
                if hit is not None:
                    s.result = _duplicate(hit, s.cmid)

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

    async def _load_heads(self, db: aiosqlite.Connection, users: set[int]) -> None:
        missing = [u for u in users if u not in self._heads]
        for chunk in chunks(missing, _CHUNK):
            marks = ",".join("?" * len(chunk))
            rows_ = await db.execute_fetchall(
                "SELECT id, username, log_floor, (SELECT coalesce(max(seq), 0) FROM updates "
                f"WHERE user_id = users.id) FROM users WHERE id IN ({marks})",
                chunk,
            )
            for uid, name, floor, top in rows_:
                self._cache_user(name, uid)
                self._floors[uid] = floor
                self._heads[uid] = max(floor, top)

    async def _load_social(self, db: aiosqlite.Connection, users: list[int]) -> None:
        for chunk in chunks(users, _CHUNK):
            marks = ",".join("?" * len(chunk))
            found: dict[int, Social] = {}
            rows_ = await db.execute_fetchall(
                "SELECT id, privacy_presence, privacy_profile, privacy_messages FROM users "
                f"WHERE id IN ({marks})",
                chunk,
            )
            for uid, pres, prof, msgs in rows_:
                found[uid] = Social(presence=pres, profile=prof, messages=msgs)
            rows_ = await db.execute_fetchall(
                f"SELECT user_id, other_id, kind FROM relations WHERE user_id IN ({marks})", chunk
            )
            for uid, other, kind in rows_:
                found[uid].add_relation(other, kind)
            rows_ = await db.execute_fetchall(
                f"SELECT other_id, user_id FROM relations WHERE other_id IN ({marks}) "
                f"AND kind = {REL_REQUESTED}",
                chunk,
            )
            for uid, requester in rows_:
                found[uid].incoming.add(requester)
            self._social.update(found)

    async def _load_pairs(self, db: aiosqlite.Connection, pairs: list[tuple[int, int]]) -> None:
        for chunk in chunks(pairs, _CHUNK):
            marks = ",".join("(?,?)" for _ in chunk)
            flat = [v for p in chunk for v in p]
            rows_ = await db.execute_fetchall(
                f"WITH k(a, b) AS (VALUES {marks}) SELECT c.user_a, c.user_b, c.id, "
                "(SELECT coalesce(max(pos), 0) FROM messages WHERE conv_id = c.id) "
                "FROM k JOIN conversations c ON c.user_a = k.a AND c.user_b = k.b "
                "AND c.kind = 1",
                flat,
            )
            for a, b, cid, last in rows_:
                self._direct[(a, b)] = cid
                self._conv_last[cid] = last

    async def _load_conv_last(self, db: aiosqlite.Connection, convs: list[int]) -> None:
        for chunk in chunks(convs, _CHUNK):
            marks = ",".join("(?)" for _ in chunk)
            rows_ = await db.execute_fetchall(
                f"WITH k(c) AS (VALUES {marks}) SELECT k.c, (SELECT coalesce(max(pos), 0) "
                "FROM messages WHERE conv_id = k.c) FROM k",
                chunk,
            )
            for conv, last in rows_:
                self._conv_last[conv] = last

    async def _load_groups(self, db: aiosqlite.Connection, convs: list[int]) -> None:
        for chunk in chunks(convs, _CHUNK):
            marks = ",".join("?" * len(chunk))
            found: dict[int, GroupState] = {}
            rows_ = await db.execute_fetchall(
                "SELECT g.conv_id, g.name, g.topic, g.owner_id, c.created FROM groups g "
                f"JOIN conversations c ON c.id = g.conv_id WHERE g.conv_id IN ({marks})",
                chunk,
            )
            for conv, name, topic, owner, created in rows_:
                found[conv] = GroupState(conv, name, topic, owner, created)
            rows_ = await db.execute_fetchall(
                "SELECT conv_id, user_id, role, joined_pos, joined FROM members "
                f"WHERE conv_id IN ({marks})",
                chunk,
            )
            for conv, uid, role, jpos, joined in rows_:
                found[conv].members[uid] = Member(role, jpos, joined)
            self._groups.update(found)
            members = {u for g in found.values() for u in g.members}
            await self._load_heads(db, members)

    # ------------------------------------------------------------------ planning a send

    def _plan_send(self, batch: Batch, s: SendRequest) -> None:
        first = batch.cmids.get((s.sender_id, s.cmid))
        if first is not None:  # the same cmid twice in one batch: the second is a retry
            if first.result is None:
                raise Refused(first.error or ErrorCode.INTERNAL_ERROR, first.error_message)
            s.result = _as_duplicate(first.result)
            return
        if s.group is not None:
            self._plan_group_send(batch, s)
        else:
            self._plan_direct_send(batch, s)
        batch.cmids[(s.sender_id, s.cmid)] = s

    def _plan_direct_send(self, batch: Batch, s: SendRequest) -> None:
        rcpt = batch.user_id(s.to_name)
        if rcpt is None:
            raise Refused(ErrorCode.UNKNOWN_USER)
        if rcpt != s.sender_id and not batch.social_ro(rcpt).accepts_messages_from(s.sender_id):
            raise Refused(ErrorCode.NOT_ALLOWED)
        conv = batch.direct_conv(s.sender_id, rcpt)
        pos = batch.next_pos(conv)
        mid = batch.new_message_id()
        sseq = batch.next_seq(s.sender_id)
        rseq = sseq if rcpt == s.sender_id else batch.next_seq(rcpt)
        body = encode_message_map(
            mid, conv, pos, s.sender_name, s.to_name, batch.ts, s.cmid, s.text, s.meta
        )
        batch.add_message(mid, conv, pos, s.sender_id, sseq, s.cmid, body)
        batch.add_update(s.sender_id, sseq, UpdateKind.MESSAGE, message_id=mid)
        if rcpt != s.sender_id:
            batch.add_update(rcpt, rseq, UpdateKind.MESSAGE, message_id=mid)
        s.result = SendResult(
            id=mid,
            conv=conv,
            pos=pos,
            ts=batch.ts,
            sender_seq=sseq,
            cmid=s.cmid,
            recipient_id=rcpt,
            recipient_seq=rseq,
            body=body,
        )

    def _plan_group_send(self, batch: Batch, s: SendRequest) -> None:
        assert s.group is not None
        g = batch.group_ro(s.group)
        if g is None or s.sender_id not in g.members:
            raise Refused(ErrorCode.NOT_MEMBER)
        conv = g.conv
        pos = batch.next_pos(conv)
        mid = batch.new_message_id()
        sseq = batch.next_seq(s.sender_id)
        body = encode_message_map(
            mid, conv, pos, s.sender_name, "", batch.ts, s.cmid, s.text, s.meta, group=conv
        )
        batch.add_message(mid, conv, pos, s.sender_id, sseq, s.cmid, body)
        batch.add_update(s.sender_id, sseq, UpdateKind.MESSAGE, message_id=mid)
        fanout = []
        for uid in g.members:
            if uid != s.sender_id:
                seq = batch.next_seq(uid)
                batch.add_update(uid, seq, UpdateKind.MESSAGE, message_id=mid)
                fanout.append((uid, seq))
        s.result = SendResult(
            id=mid,
            conv=conv,
            pos=pos,
            ts=batch.ts,
            sender_seq=sseq,
            cmid=s.cmid,
            body=body,
            fanout=tuple(fanout),
        )

    async def prune_updates(self, older_than_ms: int) -> int:
        """Drop update-log entries older than the horizon, raising each user's floor."""

        async def op(db: aiosqlite.Connection) -> list[tuple[int, int]]:
            rows_ = await db.execute_fetchall(
                "SELECT user_id, max(seq) FROM updates WHERE ts < ? GROUP BY user_id",
                (older_than_ms,),
            )
            floors = [(u, s) for u, s in rows_]
            if floors:
                await db.executemany(
                    "UPDATE users SET log_floor = max(log_floor, ?) WHERE id = ?",
                    [(s, u) for u, s in floors],
                )
                await db.executemany("DELETE FROM updates WHERE user_id = ? AND seq <= ?", floors)
            return floors

        floors = await self.run_in_commit(op)
        for uid, seq in floors:
            self._floors[uid] = max(self._floors.get(uid, 0), seq)
            self._heads[uid] = max(self._heads.get(uid, 0), seq)
        return len(floors)

    async def integrity_check(self) -> str:
        row = await self._one(self._conn_r, "PRAGMA integrity_check")
        return str(row[0])


def _duplicate(hit: tuple[int, int, int, int, int], cmid: str) -> SendResult:
    """The answer to a retry: the original acknowledgement, marked as a duplicate."""
    return SendResult(
        id=hit[0], conv=hit[1], pos=hit[2], ts=hit[3], sender_seq=hit[4], cmid=cmid, duplicate=True
    )


def _as_duplicate(r: SendResult) -> SendResult:
    return SendResult(
        id=r.id,
        conv=r.conv,
        pos=r.pos,
        ts=r.ts,
        sender_seq=r.sender_seq,
        cmid=r.cmid,
        duplicate=True,
    )


_ROWS_PER_INSERT = 256


async def _insert_rows(db: aiosqlite.Connection, into: str, rows: list[tuple[Any, ...]]) -> None:
    """Multi-row INSERTs: one statement step per chunk instead of one per row, so the
    writer thread takes and drops the GIL a few times per batch rather than per row."""
    width = len(rows[0])
    group = "(" + ",".join("?" * width) + ")"
    for chunk in chunks(rows, _ROWS_PER_INSERT):
        values = ",".join([group] * len(chunk))
        await db.execute(f"INSERT INTO {into} VALUES {values}", [v for row in chunk for v in row])


def _statements(script: str) -> list[str]:
    """Split a migration into statements (comments dropped first: they may hold ';')."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


async def _noop(db: aiosqlite.Connection) -> None:
    return None
