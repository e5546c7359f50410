"""SQLiteStore: the facade that opens the database, wires the parts and closes them.

    writer.py      the pipelined group-commit writer (every write) and its thread
    batch.py       one group commit being planned: the chat's named writes as SQL
    caches.py      the committed state loaded so far; positions not yet committed
    sql.py         the writer's statements, loaders and the batch's one transaction
    reads.py       every read, on the reader connections (readers.py: fair turns)
    ledger_reads.py  the wallet's reads
    media.py       media metadata: blobs, uploaders, references, unfinished uploads
    tail.py        the update logs' recent rows in memory, folded into the logs later
    checkpoint.py  WAL checkpoints beside the writer
    schema.py      the migrations and the writer's connection
    files.py       one server per database; files created 0600
    backup.py      an online copy of the database

WAL, synchronous=FULL by default. One connection writes (in its own thread),
`read_connections` read, taken per user in turn (WAL lets reads run beside the writer),
one checkpoints (in a thread of its own).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite

from ...chat.model import Blob, BlobAccess
from ..contract import BudgetRow, StoreOpenError, Uploader, UploadRow, UsernameTaken
from ..contract import Committed as OnCommitted
from . import channels, media, schema, sql
from .bots import BotStore
from .caches import DEDUP_ENTRIES, Caches, Positions
from .checkpoint import Checkpointer
from .files import DatabaseLock, create_private, file_sizes, warn_if_shared
from .ledger_reads import LedgerReads
from .nearby import NearbyOnSQLite
from .readers import FairReaders
from .reads import Reads
from .shop import ShopReads
from .shop import load as load_shop
from .stats import WriterStats
from .tail import FOLD_AGE_MS, UpdateTail
from .tail import MAX_ROWS as TAIL_ROWS
from .writer import Writer, WriterFn

T = TypeVar("T")


def now_ms() -> int:
    return int(time.time() * 1000)


class SQLiteStore(Reads, LedgerReads, NearbyOnSQLite, ShopReads, BotStore):
    """The contract (store/contract.py) on SQLite: the reads are Reads' and LedgerReads',
    the writes go through the Writer."""

    submit: Callable[[Any], None]  # the writer's, bound: the hot path takes no extra call
    engine = "sqlite"  # what the operator's tools may do with it (backup, checkpoint)

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "full",
        max_batch: int = 2048,
        dedup_cache: int = DEDUP_ENTRIES,
        fold_age_ms: int = FOLD_AGE_MS,
        tail_rows: int = TAIL_ROWS,
        read_connections: int = 2,
    ) -> None:
        if read_connections < 1:
            raise ValueError("read_connections must be at least 1")
        if synchronous.lower() not in ("full", "normal", "extra"):
            raise ValueError("synchronous must be full, extra or normal")
        cache = Caches(dedup_max=dedup_cache)
        tail = UpdateTail(fold_age_ms=fold_age_ms, max_rows=tail_rows)
        positions = Positions()
        super().__init__(cache, tail, positions, FairReaders([]))
        self.path = path
        self.synchronous = synchronous.upper()
        self.read_connections = read_connections
        self._stats = WriterStats()
        self.writer = Writer(cache, tail, positions, self._stats, max_batch=max_batch)
        self.submit = self.writer.submit
        self.checkpointer: Checkpointer | None = None
        self.lock = DatabaseLock(path)  # one server per database (files.py)

    @property
    def stats(self) -> WriterStats:
        """What the writer and the checkpointer did since the last reset."""
        return self._stats

    @stats.setter
    def stats(self, stats: WriterStats) -> None:
        """Replace the statistics (the operator's side installs one that also keeps
        histograms, server/ops/counters.py); before open(), which binds the checkpointer."""
        self._stats = self.writer.stats = stats

    @property
    def on_committed(self) -> OnCommitted:
        return self.writer.on_committed

    @on_committed.setter
    def on_committed(self, fn: OnCommitted) -> None:
        self.writer.on_committed = fn

    @property
    def batches(self) -> int:
        return self.writer.batches

    @property
    def committed_sends(self) -> int:
        return self.writer.committed_sends

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Lock the database (StoreOpenError if another server has it), create it 0600 if
        missing, open. A failure closes whatever was opened: no thread keeps running."""
        self.lock.acquire()
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
        writer = self.writer
        await writer.start(lambda: schema.connect_writer(self.path, self.synchronous))
        try:
            folded, self.tail.next_jid = await writer.call(sql.fold_journal)
            if folded:  # a crash left them there
                sql.log.info("folded %d update-log rows left in the journal", folded)
            self.cache.next_msg_id, self.cache.next_conv_id = await writer.call(sql.next_ids)
            self.cache.next_item_id = await writer.call(channels.next_item_id)
            ledger = self.cache.ledger
            (
                ledger.next_transfer_id,
                ledger.next_packet_id,
                ledger.next_wallet_item_id,
            ) = await writer.call(sql.next_ledger_ids)
            shop_state = self.cache.shop
            await writer.call(lambda db: load_shop(db, shop_state))
        except BaseException:
            await writer.shutdown()  # nothing of it to fold or checkpoint
            raise
        # Several readers, taken in turn per user (readers.py). Every statement's cursor
        # is closed at once: an unfinished one would pin its reader to an old snapshot.
        for _ in range(self.read_connections):
            r = await aiosqlite.connect(self.path, isolation_level=None)
            self.readers.add(r)
            for pragma in (
                "busy_timeout=5000",
                "query_only=ON",
                "cache_size=-65536",
            ):  # sync pages re-read hot logs
                await r.execute_fetchall(f"PRAGMA {pragma}")
        self.checkpointer = Checkpointer(self.path, writer.gate)
        self.checkpointer.on_cycle = self.stats.record_checkpoint
        writer.on_commit = self.checkpointer.soon
        await self.checkpointer.open()  # on failure, open() closes the rest
        writer.accept()

    @property
    def is_open(self) -> bool:
        """Whether anything of it is open (the writer thread, a reader, the lock)."""
        return self.writer.started or bool(self.readers.conns) or self.lock.held

    async def close(self) -> None:
        """Stop taking writes, commit what is queued (positions included), close."""
        await self.writer.stop()
        if self.checkpointer is not None:
            await self.checkpointer.stop()
        for r in self.readers.reset():
            await r.close()
        await self.writer.shutdown(sql.close_writer)
        if self.checkpointer is not None:  # last: it holds a descriptor of the file
            await self.checkpointer.close()
            self.checkpointer = None
        self.lock.release()  # after every connection: the next server may open it

    # ------------------------------------------------------------------ writes

    async def run_in_commit(self, fn: WriterFn[T]) -> T:
        """Run fn(connection) in the writer thread inside the next group commit (its own
        savepoint); see Writer.run_in_commit."""
        return await self.writer.run_in_commit(fn)

    async def drain(self) -> None:
        await self.writer.run_in_commit(_noop)

    def record_position(self, user_id: int, device: str, seq: int) -> None:
        self.positions.record(user_id, device, seq)

    def flush_positions_soon(self) -> None:
        if self.positions.pending:
            self.writer.ride_along(_noop)

    async def create_user(self, username: str, password_hash: str) -> int:
        try:
            return await self.writer.run_in_commit(
                lambda db: sql.create_user(db, username, password_hash, now_ms())
            )
        except self.integrity_errors:
            raise UsernameTaken(username) from None

    async def seed_channel_members(
        self, conv: int, users: list[tuple[str, bytes | None]], password_hash: str
    ) -> int:
        """Bulk load members into a channel (benchmarks, imports): see
        channels.seed_members. Only while no server uses this database."""
        return await self.writer.run_in_commit(
            lambda db: channels.seed_members(db, conv, users, password_hash, now_ms())
        )

    async def set_device_token(
        self, user_id: int, device: str, token_hash: bytes, *, max_devices: int = 0
    ) -> int | None:
        return await self.writer.run_in_commit(
            lambda db: sql.set_device_token(db, user_id, device, token_hash, max_devices, now_ms())
        )

    async def delete_device(self, user_id: int, device: str) -> bool:
        self.positions.forget(user_id, device)
        return await self.writer.run_in_commit(lambda db: sql.delete_device(db, user_id, device))

    async def set_profile(self, uid: int, display_name: str | None, status: str | None) -> None:
        await self.writer.run_in_commit(lambda db: sql.set_profile(db, uid, display_name, status))

    def record_last_seen(self, uid: int, when_ms: int) -> None:
        """Store when a user's last connection closed; rides along with the next commit."""
        self.writer.ride_along(lambda db: sql.set_last_seen(db, uid, when_ms))

    def touch_device(self, user_id: int, device: str) -> None:
        """Record that a device connected; rides along with the next commit, unawaited."""
        t = now_ms()
        self.writer.ride_along(lambda db: sql.touch_device(db, user_id, device, t))

    # ------------------------------------------------------------------ maintenance

    async def prune_updates(self, older_than_ms: int) -> int:
        """Drop update-log entries older than the horizon, raising each user's floor.

        The rows older than the horizon are folded out of the tail first (normally there
        are none: the tail holds about a second), so that the delete sees them. Their
        journal rows go the usual way, trimmed once folded (a row committed beside the
        prune may be in the journal only); one that outlives a crash is not folded back
        below its user's floor (sql.fold_journal)."""
        tail = self.tail
        tail.due_before_ms = older_than_ms
        try:
            for _ in range(10_000):  # each commit folds up to FOLD_USERS users
                oldest = tail.oldest_ms()
                if oldest is None or oldest >= older_than_ms:
                    break
                await self.writer.run_in_commit(_noop)
        finally:
            tail.due_before_ms = 0
        floors = await self.writer.run_in_commit(lambda db: sql.prune_before(db, older_than_ms))
        for uid, seq in floors:  # users not cached yet load both from the database
            self.cache.raise_floor(uid, seq)
        return len(floors)

    def disk_sizes(self) -> tuple[int | None, int | None]:
        """Bytes of the database and of its write-ahead log, for the operator (metrics,
        status); None: not known (PostgreSQL's WAL without the right to list it)."""
        return file_sizes(self.path)

    async def integrity_check(self) -> str:
        row = await self._row("PRAGMA integrity_check")
        return str(row[0])

    # ------------------------------------------------------------------ media (MediaStore)

    async def uploader(self, uid: int, sha256: bytes, size: int) -> Uploader:
        stored = await self._row(media.SELECT_STORED, (uid, sha256, size))
        upload = await self._row(media.SELECT_UPLOAD_OF, (uid, sha256, size))
        (active,) = await self._row(media.COUNT_UPLOADS, (uid,))
        return Uploader(
            media.blob_row(stored) if stored is not None else None,
            media.upload_row(upload) if upload is not None else None,
            int(active),
        )

    async def create_upload(
        self,
        uid: int,
        sha256: bytes,
        size: int,
        media_type: str,
        name: str,
        chunk_size: int,
        now_ms: int,
    ) -> UploadRow:
        return await self.writer.run_in_commit(
            lambda db: media.create_upload(
                db, uid, sha256, size, media_type, name, chunk_size, now_ms
            )
        )

    async def upload(self, upload_id: int) -> UploadRow | None:
        row = await self._row(media.SELECT_UPLOAD, (upload_id,))
        return media.upload_row(row) if row is not None else None

    async def touch_upload(self, upload_id: int, now_ms: int) -> None:
        await self.writer.run_in_commit(lambda db: media.touch_upload(db, upload_id, now_ms))

    async def media_budget(self, uid: int) -> BudgetRow | None:
        row = await self._row(media.SELECT_BUDGET, (uid,))
        return media.budget_row(row) if row is not None else None

    async def save_media_budgets(self, rows: list[BudgetRow]) -> None:
        if rows:
            await self.writer.run_in_commit(lambda db: media.save_budgets(db, rows))

    async def delete_upload(self, upload_id: int) -> bool:
        return await self.writer.run_in_commit(lambda db: media.delete_upload(db, upload_id))

    async def complete_upload(
        self, upload_id: int, uid: int, blobs: list[Blob], now_ms: int
    ) -> None:
        await self.writer.run_in_commit(
            lambda db: media.complete_upload(db, upload_id, uid, blobs, now_ms)
        )

    async def blob(self, sha256: bytes) -> Blob | None:
        row = await self._row(media.SELECT_BLOB, (sha256,))
        return media.blob_row(row) if row is not None else None

    async def blob_access(self, uid: int, sha256: bytes) -> BlobAccess:
        row = await self._row(media.SELECT_BLOB, (sha256,))
        if row is None:
            return BlobAccess(None)
        owner = await self._row(media.IS_OWNER, (uid, sha256)) is not None
        seen: tuple[tuple[int, int, int], ...] = ()
        if not owner:
            rows_ = await self._rows(media.SELECT_SEEN, (sha256, uid, uid, uid, sha256))
            seen = tuple((int(c), int(p), int(f)) for c, p, f in rows_)
        return BlobAccess(media.blob_row(row), owner, seen)

    async def expired_uploads(self, touched_before_ms: int, limit: int) -> list[UploadRow]:
        return [
            media.upload_row(r)
            for r in await self._rows(media.SELECT_EXPIRED, (touched_before_ms, limit))
        ]

    async def collectable_blobs(self, unref_before_ms: int, limit: int) -> list[bytes]:
        return [
            bytes(r[0])
            for r in await self._rows(media.SELECT_COLLECTABLE, (unref_before_ms, limit))
        ]

    async def collect_blobs(self, hashes: list[bytes], unref_before_ms: int) -> list[bytes]:
        return await self.writer.run_in_commit(
            lambda db: media.collect_blobs(db, hashes, unref_before_ms)
        )

    async def known_blobs(self, hashes: list[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        for part in media.blob_chunks(hashes):
            found |= {bytes(r[0]) for r in await self._rows(media.known_blobs_sql(len(part)), part)}
        return found


def _noop(db: sqlite3.Connection) -> None:
    return None
