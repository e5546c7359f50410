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
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import aiosqlite

from liaotian.protocol import ErrorCode, UpdateKind, encode_update
from liaotian.protocol.messages import encode_message_map

from .base import (
    DeviceRecord,
    SendRequest,
    SendResult,
    Txn,
    UpdatePage,
    UserRecord,
)
from .schema import MIGRATIONS

log = logging.getLogger("liaotian.store")
T = TypeVar("T")
KIND_DIRECT = 1
_CHUNK = 400  # rows per IN (...) query, far below SQLite's variable limit
SendsCommitted = Callable[[list[SendRequest]], None]


def now_ms() -> int:
    return int(time.time() * 1000)


class StoreClosed(Exception):
    """The store no longer accepts writes (shutting down)."""


class SQLiteStore:
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
        self._queue: deque[SendRequest | Txn] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._accepting = False
        # caches, all owned by the writer; "committed" values only
        self._user_ids: dict[str, int] = {}
        self._usernames: dict[int, str] = {}
        self._heads: dict[int, int] = {}
        self._floors: dict[int, int] = {}
        self._convs: dict[tuple[int, int], list[int]] = {}  # (a, b) -> [conv id, last pos]
        # (sender, cmid) -> the answer a retry gets; bounded, oldest evicted first
        self._dedup: OrderedDict[tuple[int, str], SendResult] = OrderedDict()
        self._dedup_max = dedup_cache
        self._next_msg_id = 1
        self._next_conv_id = 1
        self._positions: dict[tuple[int, str], int] = {}
        self.batches = 0
        self.committed_sends = 0

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        self._w = await aiosqlite.connect(self.path, isolation_level=None)
        w = self._w
        for pragma in ("journal_mode=WAL", f"synchronous={self.synchronous}",
                       "busy_timeout=5000", "foreign_keys=ON"):
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
        self._accepting = True
        self._writer = asyncio.get_running_loop().create_task(self._writer_loop(),
                                                              name="store-writer")

    async def _migrate(self) -> None:
        w = self._conn_w
        (version,) = await self._one(w, "PRAGMA user_version")
        if version > len(MIGRATIONS):
            raise RuntimeError(f"database schema {version} is newer than this server "
                               f"({len(MIGRATIONS)})")
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
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
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

    @staticmethod
    async def _one(db: aiosqlite.Connection, sql: str, args: Iterable[Any] = ()) -> Any:
        async with db.execute(sql, tuple(args)) as cur:
            return await cur.fetchone()

    # ------------------------------------------------------------------ writes

    def submit_send(self, req: SendRequest) -> None:
        """Queue a send; on_sends_committed sees it, answered, after its batch commits."""
        if not self._accepting:
            raise StoreClosed()
        self._queue.append(req)
        self._wake.set()

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
                (username, password_hash, now_ms()))
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
                (user_id, device, token_hash, t, t))
            row = await self._one(db, "SELECT acked FROM devices WHERE user_id=? AND device=?",
                                  (user_id, device))
            return int(row[0])

        return await self.run_in_commit(op)

    async def delete_device(self, user_id: int, device: str) -> bool:
        self._positions.pop((user_id, device), None)

        async def op(db: aiosqlite.Connection) -> bool:
            cur = await db.execute("DELETE FROM devices WHERE user_id=? AND device=?",
                                   (user_id, device))
            return cur.rowcount > 0

        return await self.run_in_commit(op)

    def touch_device(self, user_id: int, device: str) -> None:
        """Record that a device connected; rides along with the next commit, unawaited."""
        t = now_ms()

        async def op(db: aiosqlite.Connection) -> None:
            await db.execute("UPDATE devices SET last_seen=? WHERE user_id=? AND device=?",
                             (t, user_id, device))

        if self._accepting:
            self._queue.append(Txn(fn=op))
            self._wake.set()

    # ------------------------------------------------------------------ the writer

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
                self._fail(items)

    def _fail(self, items: list[SendRequest | Txn]) -> None:
        sends = []
        for it in items:
            if isinstance(it, SendRequest):
                it.result, it.error = None, ErrorCode.INTERNAL_ERROR
                sends.append(it)
            elif it.future is not None and not it.future.done():
                it.future.set_exception(RuntimeError("commit failed"))
        if sends:
            self.on_sends_committed(sends)

    async def _commit_batch(self, items: list[SendRequest | Txn]) -> None:
        db = self._conn_w
        sends = [it for it in items if isinstance(it, SendRequest)]
        txns = [it for it in items if isinstance(it, Txn)]
        if sends:
            await self._resolve_recipients(db, sends)
            await self._find_duplicates(db, sends)
            await self._load_heads(db, {u for s in sends if s.error is None
                                        for u in (s.sender_id, self._user_ids[s.to_name])})
            await self._load_convs(db, sends)
        ts = now_ms()
        plan = self._allocate(sends, ts)
        positions, self._positions = self._positions, {}
        await db.execute("BEGIN IMMEDIATE")
        try:
            if plan.new_convs:
                await _insert_rows(db, "conversations (id, kind, user_a, user_b, created)",
                                   plan.new_convs)
            if plan.messages:
                await _insert_rows(db, "messages (id, conv_id, pos, sender_id, sender_seq, "
                                       "cmid, ts, body)", plan.messages)
                await _insert_rows(db, "updates (user_id, seq, kind, message_id, ts)",
                                   plan.updates)
            if positions:
                await db.executemany(
                    "UPDATE devices SET acked = max(acked, ?) WHERE user_id=? AND device=?",
                    [(seq, u, d) for (u, d), seq in positions.items()])
            outcomes = [await self._run_txn(db, t) for t in txns]
            await db.execute("COMMIT")
        except BaseException:
            for key, seq in positions.items():
                self.record_position(key[0], key[1], seq)
            try:
                await db.execute("ROLLBACK")
            except Exception:
                log.exception("rollback failed")
            raise
        # durable: publish the numbers, then answer
        self._heads.update(plan.heads)
        for key, conv_id in plan.conv_ids.items():
            self._convs.setdefault(key, [conv_id, 0])
        for key, last in plan.conv_pos.items():
            self._convs[key][1] = last
        self._next_msg_id = plan.next_msg_id
        self._next_conv_id = plan.next_conv_id
        for s in sends:
            if s.result is not None and not s.result.duplicate:
                self._remember(s.sender_id, s.cmid, s.result)
        self.batches += 1
        self.committed_sends += len(plan.messages)
        for t, (ok, value) in zip(txns, outcomes, strict=True):
            if t.future is not None and not t.future.done():
                if ok:
                    t.future.set_result(value)
                else:
                    t.future.set_exception(value)
        if sends:
            self.on_sends_committed(sends)

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

    async def _resolve_recipients(self, db: aiosqlite.Connection, sends: list[SendRequest]) -> None:
        missing = list({s.to_name for s in sends if s.to_name not in self._user_ids})
        for chunk in _chunks(missing, _CHUNK):
            marks = ",".join("?" * len(chunk))
            async with db.execute(f"SELECT username, id FROM users WHERE username IN ({marks})",
                                  chunk) as cur:
                for name, uid in await cur.fetchall():
                    self._cache_user(name, uid)
        for s in sends:
            if s.to_name not in self._user_ids:
                s.error = ErrorCode.UNKNOWN_USER

    def _cache_user(self, name: str, uid: int) -> None:
        self._user_ids[name] = uid
        self._usernames[uid] = name

    async def _find_duplicates(self, db: aiosqlite.Connection, sends: list[SendRequest]) -> None:
        unknown: list[tuple[int, str]] = []
        for s in sends:
            key = (s.sender_id, s.cmid)
            hit = self._dedup.get(key)
            if hit is not None:
                s.result = hit
            elif s.error is None:
                unknown.append(key)
        for chunk in _chunks(list(set(unknown)), _CHUNK):
            marks = ",".join("(?,?)" for _ in chunk)
            flat = [v for pair in chunk for v in pair]
            # A join against a VALUES table probes the unique index once per key; the
            # equivalent "(a, b) IN (VALUES ...)" scans the table (20x slower, measured).
            async with db.execute(
                f"WITH k(s, c) AS (VALUES {marks}) SELECT m.sender_id, m.cmid, m.id, "
                "m.conv_id, m.pos, m.ts, m.sender_seq FROM k JOIN messages m "
                "ON m.sender_id = k.s AND m.cmid = k.c", flat) as cur:
                for sender_id, cmid, mid, conv, pos, ts, sseq in await cur.fetchall():
                    self._remember(sender_id, cmid, SendResult(
                        id=mid, conv=conv, pos=pos, ts=ts, sender_seq=sseq, cmid=cmid))
        for s in sends:
            if s.result is None and s.error is None:
                s.result = self._dedup.get((s.sender_id, s.cmid))

    def _remember(self, sender_id: int, cmid: str, result: SendResult) -> None:
        """Keep the answer to a retry of this cmid (stored already as a duplicate)."""
        self._dedup[(sender_id, cmid)] = result if result.duplicate else _as_duplicate(result)
        while len(self._dedup) > self._dedup_max:
            self._dedup.popitem(last=False)

    async def _load_heads(self, db: aiosqlite.Connection, users: set[int]) -> None:
        missing = [u for u in users if u not in self._heads]
        for chunk in _chunks(missing, _CHUNK):
            marks = ",".join("?" * len(chunk))
            async with db.execute(
                "SELECT id, log_floor, (SELECT coalesce(max(seq), 0) FROM updates "
                f"WHERE user_id = users.id) FROM users WHERE id IN ({marks})", chunk) as cur:
                for uid, floor, top in await cur.fetchall():
                    self._floors[uid] = floor
                    self._heads[uid] = max(floor, top)

    async def _load_convs(self, db: aiosqlite.Connection, sends: list[SendRequest]) -> None:
        missing = list({_pair(s.sender_id, self._user_ids[s.to_name]) for s in sends
                        if s.error is None and s.result is None} - self._convs.keys())
        for chunk in _chunks(missing, _CHUNK):
            marks = ",".join("(?,?)" for _ in chunk)
            flat = [v for pair in chunk for v in pair]
            async with db.execute(
                f"WITH k(a, b) AS (VALUES {marks}) SELECT c.user_a, c.user_b, c.id, "
                "(SELECT coalesce(max(pos), 0) FROM messages WHERE conv_id = c.id) "
                "FROM k JOIN conversations c ON c.user_a = k.a AND c.user_b = k.b", flat) as cur:
                for a, b, cid, last in await cur.fetchall():
                    self._convs[(a, b)] = [cid, last]

    def _allocate(self, sends: list[SendRequest], ts: int) -> _Plan:
        plan = _Plan(self._next_msg_id, self._next_conv_id)
        heads, conv_pos, conv_ids = plan.heads, plan.conv_pos, plan.conv_ids
        batch_cmids: dict[tuple[int, str], SendRequest] = {}
        repeats: list[tuple[SendRequest, SendRequest]] = []
        for s in sends:
            if s.error is not None or s.result is not None:
                continue
            first = batch_cmids.get((s.sender_id, s.cmid))
            if first is not None:  # the same cmid twice in one batch
                repeats.append((s, first))
                continue
            batch_cmids[(s.sender_id, s.cmid)] = s
            rid_ = self._user_ids[s.to_name]
            key = _pair(s.sender_id, rid_)
            conv = self._convs.get(key)
            if conv is None and key not in conv_ids:
                conv_ids[key] = plan.next_conv_id
                plan.new_convs.append((plan.next_conv_id, KIND_DIRECT, key[0], key[1], ts))
                plan.next_conv_id += 1
            conv_id = conv[0] if conv is not None else conv_ids[key]
            pos = conv_pos.get(key, conv[1] if conv is not None else 0) + 1
            conv_pos[key] = pos
            mid = plan.next_msg_id
            plan.next_msg_id += 1
            sseq = heads.get(s.sender_id, self._heads[s.sender_id]) + 1
            heads[s.sender_id] = sseq
            if rid_ == s.sender_id:
                rseq = sseq
            else:
                rseq = heads.get(rid_, self._heads[rid_]) + 1
                heads[rid_] = rseq
            body = encode_message_map(mid, conv_id, pos, s.sender_name, s.to_name, ts, s.cmid,
                                      s.text, s.meta)
            plan.messages.append((mid, conv_id, pos, s.sender_id, sseq, s.cmid, ts, body))
            plan.updates.append((s.sender_id, sseq, UpdateKind.MESSAGE, mid, ts))
            if rid_ != s.sender_id:
                plan.updates.append((rid_, rseq, UpdateKind.MESSAGE, mid, ts))
            s.result = SendResult(id=mid, conv=conv_id, pos=pos, ts=ts, sender_seq=sseq,
                                  cmid=s.cmid, recipient_id=rid_, recipient_seq=rseq, body=body)
        for s, first in repeats:
            assert first.result is not None
            s.result = _as_duplicate(first.result)
        return plan

    # ------------------------------------------------------------------ reads

    def cached_head(self, user_id: int) -> int | None:
        """The committed head if known; the writer's cache is the truth once loaded."""
        return self._heads.get(user_id)

    async def head(self, user_id: int) -> int:
        """The newest committed seq. Read-side lookups never fill the writer's caches: a
        read racing a commit could otherwise plant a stale head."""
        h = self._heads.get(user_id)
        if h is not None:
            return h
        row = await self._one(
            self._conn_r,
            "SELECT log_floor, (SELECT coalesce(max(seq), 0) FROM updates WHERE user_id = ?) "
            "FROM users WHERE id = ?", (user_id, user_id))
        h = self._heads.get(user_id)  # a commit may have landed meanwhile
        if h is not None:
            return h
        return max(row[0], row[1]) if row else 0

    async def floor(self, user_id: int) -> int:
        f = self._floors.get(user_id)
        if f is not None:
            return f
        row = await self._one(self._conn_r, "SELECT log_floor FROM users WHERE id = ?",
                              (user_id,))
        return int(row[0]) if row else 0

    async def user_by_name(self, username: str) -> UserRecord | None:
        row = await self._one(self._conn_r,
                              "SELECT id, username, password_hash FROM users WHERE username=?",
                              (username,))
        if row is None:
            return None
        self._cache_user(row[1], row[0])
        return UserRecord(*row)

    async def user_id(self, username: str) -> int | None:
        uid = self._user_ids.get(username)
        if uid is None:
            rec = await self.user_by_name(username)
            uid = rec.id if rec else None
        return uid

    async def device_by_token(self, token_hash: bytes) -> tuple[UserRecord, DeviceRecord] | None:
        row = await self._one(
            self._conn_r,
            "SELECT u.id, u.username, u.password_hash, d.device, d.created, d.last_seen, d.acked "
            "FROM devices d JOIN users u ON u.id = d.user_id WHERE d.token_hash = ?",
            (token_hash,))
        if row is None:
            return None
        user = UserRecord(row[0], row[1], row[2])
        acked = max(row[6], self._positions.get((row[0], row[3]), 0))
        return user, DeviceRecord(row[0], row[3], row[4], row[5], acked)

    async def device(self, user_id: int, device: str) -> DeviceRecord | None:
        row = await self._one(self._conn_r,
                              "SELECT device, created, last_seen, acked FROM devices "
                              "WHERE user_id=? AND device=?", (user_id, device))
        if row is None:
            return None
        return DeviceRecord(user_id, row[0], row[1], row[2],
                            max(row[3], self._positions.get((user_id, row[0]), 0)))

    async def devices_of(self, user_id: int) -> list[DeviceRecord]:
        async with self._conn_r.execute(
            "SELECT device, created, last_seen, acked FROM devices WHERE user_id=? "
            "ORDER BY created, device", (user_id,)) as cur:
            rows = await cur.fetchall()
        return [DeviceRecord(user_id, d, c, s, max(a, self._positions.get((user_id, d), 0)))
                for d, c, s, a in rows]

    async def read_updates(self, user_id: int, since: int, limit: int,
                           max_bytes: int = 1 << 62) -> UpdatePage:
        """Updates after `since`, oldest first, at most `limit` of them and (beyond the first)
        at most `max_bytes` encoded; resync if `since` is below the retained log."""
        if since < await self.floor(user_id):
            return UpdatePage([], since, resync=True)
        async with self._conn_r.execute(
            "SELECT u.seq, u.kind, coalesce(m.body, u.data) FROM updates u "
            "LEFT JOIN messages m ON m.id = u.message_id "
            "WHERE u.user_id = ? AND u.seq > ? ORDER BY u.seq LIMIT ?",
            (user_id, since, limit)) as cur:
            rows = await cur.fetchall()
        if not rows:
            return UpdatePage([], since)
        out: list[bytes] = []
        size = 0
        last = since
        for seq, kind, data in rows:
            upd = encode_update(seq, kind, data)
            size += len(upd)
            if out and size > max_bytes:
                break
            out.append(upd)
            last = seq
        return UpdatePage(out, last)

    async def direct_conv(self, a: int, b: int) -> int | None:
        key = _pair(a, b)
        conv = self._convs.get(key)
        if conv is not None:
            return conv[0]
        row = await self._one(self._conn_r,
                              "SELECT id FROM conversations WHERE user_a=? AND user_b=?", key)
        return row[0] if row else None

    async def history(self, user_id: int, peer_id: int, before: int | None, after: int | None,
                      limit: int, max_bytes: int = 1 << 62) -> tuple[list[bytes], bool]:
        """A page of a direct conversation in ascending position, nearest the anchor first
        when cut by `limit` or `max_bytes`; the flag says more exist in that direction."""
        conv = await self.direct_conv(user_id, peer_id)
        if conv is None:
            return [], False
        if after is not None:
            sql = ("SELECT body FROM messages WHERE conv_id=? AND pos>? ORDER BY pos LIMIT ?")
            args: tuple[int, ...] = (conv, after, limit + 1)
        else:
            sql = ("SELECT body FROM messages WHERE conv_id=? AND pos<? ORDER BY pos DESC "
                   "LIMIT ?")
            args = (conv, before if before is not None else 1 << 62, limit + 1)
        async with self._conn_r.execute(sql, args) as cur:
            rows = [r[0] for r in await cur.fetchall()]
        more = len(rows) > limit
        rows = rows[:limit]
        size = 0
        for i, body in enumerate(rows):
            size += len(body)
            if i and size > max_bytes:
                rows, more = rows[:i], True
                break
        if after is None:
            rows.reverse()
        return rows, more

    async def prune_updates(self, older_than_ms: int) -> int:
        """Drop update-log entries older than the horizon, raising each user's floor."""

        async def op(db: aiosqlite.Connection) -> list[tuple[int, int]]:
            async with db.execute("SELECT user_id, max(seq) FROM updates WHERE ts < ? "
                                  "GROUP BY user_id", (older_than_ms,)) as cur:
                floors = [(u, s) for u, s in await cur.fetchall()]
            if floors:
                await db.executemany("UPDATE users SET log_floor = max(log_floor, ?) "
                                     "WHERE id = ?", [(s, u) for u, s in floors])
                await db.executemany("DELETE FROM updates WHERE user_id = ? AND seq <= ?",
                                     floors)
            return floors

        floors = await self.run_in_commit(op)
        for uid, seq in floors:
            self._floors[uid] = max(self._floors.get(uid, 0), seq)
            self._heads[uid] = max(self._heads.get(uid, 0), seq)
        return len(floors)

    async def integrity_check(self) -> str:
        row = await self._one(self._conn_r, "PRAGMA integrity_check")
        return str(row[0])


class _Plan:
    __slots__ = ("conv_ids", "conv_pos", "heads", "messages", "new_convs", "next_conv_id",
                 "next_msg_id", "updates")

    def __init__(self, next_msg_id: int, next_conv_id: int) -> None:
        self.next_msg_id = next_msg_id
        self.next_conv_id = next_conv_id
        self.heads: dict[int, int] = {}
        self.conv_pos: dict[tuple[int, int], int] = {}
        self.conv_ids: dict[tuple[int, int], int] = {}
        self.new_convs: list[tuple[int, int, int, int, int]] = []
        self.messages: list[tuple[Any, ...]] = []
        self.updates: list[tuple[int, int, int, int, int]] = []


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)


def _as_duplicate(r: SendResult) -> SendResult:
    return SendResult(id=r.id, conv=r.conv, pos=r.pos, ts=r.ts, sender_seq=r.sender_seq,
                      cmid=r.cmid, duplicate=True)


_ROWS_PER_INSERT = 256


async def _insert_rows(db: aiosqlite.Connection, into: str, rows: list[tuple[Any, ...]]) -> None:
    """Multi-row INSERTs: one statement step per chunk instead of one per row, so the
    writer thread takes and drops the GIL a few times per batch rather than per row."""
    width = len(rows[0])
    group = "(" + ",".join("?" * width) + ")"
    for chunk in _chunks(rows, _ROWS_PER_INSERT):
        values = ",".join([group] * len(chunk))
        await db.execute(f"INSERT INTO {into} VALUES {values}",
                         [v for row in chunk for v in row])


def _chunks(items: list[T], n: int) -> Iterable[list[T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _statements(script: str) -> list[str]:
    """Split a migration into statements (comments dropped first: they may hold ';')."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


async def _noop(db: aiosqlite.Connection) -> None:
    return None
