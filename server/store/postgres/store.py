"""PostgresStore: the storage contract on PostgreSQL, for several nodes on one database.

    PostgresStore(url, *, max_batch=2048, dedup_cache=DEDUP_ENTRIES, read_connections=2)

`url` is a libpq URL (postgresql://user@host:port/db?options=-csearch_path%3Dschema);
the schema is migrated on open (schema.py). `on_committed`, `submit`, `drain` and every
read are the contract's (store/contract.py); `MediaStore` too.

Design (why it is built on the SQLite store rather than beside it): the contract's
semantics live in the SQLite store's pipeline (sqlite/writer.py: group commit, planning
on an overlay of the batch in flight, acknowledgement only after COMMIT), its caches and
its statements. PostgreSQL needs the same semantics, so this store *is* that store with
three parts swapped: the connections (conn.py: psycopg, with the SQL dialect translated
once per statement), the writer's commit (writer.py: no journal, rows pipelined, a
clock row that keeps several nodes' numbers gap-free) and the schema (schema.py).

Why psycopg 3 and not asyncpg: the rules plan with synchronous reads (chat/plan.py), so
the writer needs a synchronous connection in its own thread, as on SQLite; psycopg has
both a synchronous and an asyncio connection with one type mapping and one dialect, so
the writer and the readers share every statement. asyncpg has no synchronous API.

Several nodes on one database (writer.py, item 3): writes are safe whatever the
nodes do. Reads that SQLite serves from the writer's caches (`cached_head`, `head`,
`members_hint`, `group_state` of a loaded group) show this node's last commit and may
miss another node's later ones until this node commits again; `read_updates`,
`committed_head`, `history` and the other reads ask the database. A node told that
another one wrote (the NATS router, issue 17 item 2) can `await store.drain()`: that
commits at once, and a commit brings the caches up to date with every other node's.

PostgreSQL restarting, or the network to it dropping, is ridden through: requests meanwhile
get StoreUnavailable (5001, retried by clients), the writer and each reader reconnect by
themselves, and the outage is logged once and its end once (link.py, recovery.py).

Durability is PostgreSQL's COMMIT: with `synchronous_commit = on` (its default) a SENT
means the WAL record is flushed; an operator who turns it off trades that, as SQLite's
synchronous=normal does. The driver is an extra: pip install 'liaotian[postgres]'.

What stays SQLite's: backup (an online file copy), WAL checkpoints, PRAGMA
integrity_check (here: whether the schema versions are this server's), the journal and
its tail.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg

from ..contract import SearchHit, StoreOpenError
from ..search import query_words, words
from ..sqlite import sql
from ..sqlite.caches import DEDUP_ENTRIES, Caches, Positions
from ..sqlite.readers import FairReaders
from ..sqlite.stats import WriterStats
from ..sqlite.store import SQLiteStore
from ..sqlite.tail import UpdateTail
from . import schema
from .conn import AsyncReader, SyncConnection
from .link import CONNECT_TIMEOUT, Link
from .writer import PgWriter

SEARCH_PAGE = 500  # index rows read per round of a channel search
PRUNE_LOCK = 0x6C690001  # pg_advisory_xact_lock key of a retention pass
SIZES_TTL = 10.0  # seconds a reading of the database's and WAL's sizes is reused

log = logging.getLogger("liaotian.store")


def connect_writer(url: str) -> SyncConnection:
    """In the writer thread: connect (autocommit: the writer issues BEGIN/COMMIT), migrate."""
    db = SyncConnection(psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT))
    try:
        schema.migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def _redact(url: str) -> str:
    """The URL without a password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return url


class PostgresStore(SQLiteStore):
    """The contract on PostgreSQL (see the module docstring)."""

    engine = "postgresql"
    integrity_errors = (psycopg.IntegrityError,)  # a taken name (create_user, create_bot)

    def __init__(
        self,
        url: str,
        *,
        max_batch: int = 2048,
        dedup_cache: int = DEDUP_ENTRIES,
        read_connections: int = 2,
    ) -> None:
        if read_connections < 1:
            raise ValueError("read_connections must be at least 1")
        cache = Caches(dedup_max=dedup_cache)
        tail = UpdateTail()  # stays empty: no journal (writer.py)
        positions = Positions()
        super(SQLiteStore, self).__init__(cache, tail, positions, FairReaders([]))
        self.url = url
        self.path = _redact(url)
        self.synchronous = "ON"  # PostgreSQL's synchronous_commit, as configured there
        self.read_connections = read_connections
        self._stats = WriterStats()
        self.writer: PgWriter = PgWriter(cache, tail, positions, self._stats, max_batch=max_batch)
        self.link = self.writer.link = Link(self.path)  # reachable? (link.py)
        self.submit = self.writer.submit
        self.checkpointer = None
        self._sizes: tuple[int | None, int | None] = (None, None)  # disk_sizes()
        self._sizes_at = -SIZES_TTL
        self._sizes_task: asyncio.Task[None] | None = None
        self._wal_listable = True

    @property
    def is_open(self) -> bool:
        return self.writer.started or bool(self.readers.conns)

    async def open(self) -> None:
        """Connect, migrate, load the counters; StoreOpenError (naming the server, not the
        password) if PostgreSQL refuses. A failure closes whatever was opened."""
        try:
            await self.writer.start(lambda: connect_writer(self.url))
            await self.writer.reload()
            for i in range(self.read_connections):
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                )
                reader = AsyncReader(conn, self.url, self.link, f"reader {i + 1}")
                self.readers.add(reader)  # type: ignore[arg-type]
            await self._read_sizes()  # the first scrape has them
            self.writer.accept()
        except BaseException as exc:
            await self.close()
            if isinstance(exc, psycopg.Error):
                raise StoreOpenError(f"cannot open database {self.path}: {exc}") from exc
            raise

    async def close(self) -> None:
        """Stop taking writes, commit what is queued (positions included), close."""
        await self.writer.stop()
        if self._sizes_task is not None:  # a size read in the background (disk_sizes)
            self._sizes_task.cancel()
            await asyncio.wait({self._sizes_task})  # ends; the close's own cancel still raises
            self._sizes_task = None
        for r in self.readers.reset():
            await r.close()
        await self.writer.shutdown()

    async def floor(self, user_id: int) -> int:
        """The user's log floor as stored: another node's retention pass may have raised it
        since this node cached it (read_updates also takes a gap for a resync)."""
        row = await self._row("SELECT log_floor FROM users WHERE id = ?", (user_id,))
        return int(row[0]) if row else 0

    async def prune_updates(self, older_than_ms: int) -> int:
        """As SQLite's, by one node at a time (an advisory lock: a node that finds another
        pruning skips its pass). The floors go to the database only: every node reads them
        from there (floor()), none trusts its memory."""

        def prune(db: Any) -> list[tuple[int, int]]:
            (mine,) = db.execute("SELECT pg_try_advisory_xact_lock(?)", (PRUNE_LOCK,)).fetchone()
            return sql.prune_before(db, older_than_ms) if mine else []

        floors = await self.writer.run_in_commit(prune)
        for uid, seq in floors:
            self.cache.raise_floor(uid, seq)
        return len(floors)

    def disk_sizes(self) -> tuple[int | None, int | None]:
        """The database's size (pg_database_size: every schema of it) and its server's
        WAL (pg_ls_waldir, which needs superuser or pg_monitor: None without), as last
        read; a read older than SIZES_TTL starts another in the background (the metrics
        collector is synchronous)."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._sizes_at > SIZES_TTL and self._sizes_task is None:
            self._sizes_at = loop.time()
            self._sizes_task = loop.create_task(self._read_sizes())
        return self._sizes

    async def _read_sizes(self) -> None:
        try:
            ((db,),) = await self._rows("SELECT pg_database_size(current_database())")
            wal = None
            if self._wal_listable:
                try:
                    ((wal,),) = await self._rows(
                        "SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()"
                    )
                except psycopg.errors.InsufficientPrivilege:
                    self._wal_listable = False
                    log.info("store: no right to list PostgreSQL's WAL (pg_monitor): size unknown")
            self._sizes = (int(db), None if wal is None else int(wal))
        except Exception as exc:  # an outage (logged by the link) or the like: keep the last
            log.debug("store: reading the database's size failed: %s", exc)
        finally:
            self._sizes_task = None

    async def integrity_check(self) -> str:
        rows = await self._rows("SELECT part, version FROM schema_version ORDER BY part DESC")
        versions = tuple(int(v) for _p, v in rows)
        return "ok" if versions == schema.SCHEMA_VERSION else f"schema versions {rows}"

    async def channel_search(
        self, conv: int, query: str, limit: int, before_id: int | None = None
    ) -> list[SearchHit]:
        """As SQLite's FTS5 search (every word of the query, case and accents ignored,
        newest first), by reading the channel's index rows newest first and matching
        their words here (search.py): one tokenizer for every store."""
        terms = set(query_words(query))
        if not terms or limit <= 0:
            return []
        found: list[int] = []
        before = 1 << 62 if before_id is None else before_id
        while len(found) < limit:
            rows = await self._rows(
                "SELECT rowid, text FROM channel_search WHERE chan = ? AND rowid < ? "
                "ORDER BY rowid DESC LIMIT ?",
                (f"c{conv}", before, SEARCH_PAGE),
            )
            found += [r[0] for r in rows if terms <= set(words(r[1]))]
            if len(rows) < SEARCH_PAGE:
                break
            before = rows[-1][0]
        found = found[:limit]
        if not found:
            return []
        marks = ",".join("?" * len(found))
        rows = await self._rows(
            "SELECT s.rowid, coalesce(p.pos, x.pos), coalesce(x.n, 0), u.username, "
            "coalesce(p.ts, x.ts), coalesce(p.text, x.text) FROM channel_search s "
            "LEFT JOIN channel_posts p ON p.id = s.rowid "
            "LEFT JOIN channel_comments x ON x.id = s.rowid "
            "JOIN users u ON u.id = coalesce(p.author_id, x.author_id) "
            f"WHERE s.rowid IN ({marks}) ORDER BY s.rowid DESC",
            found,
        )
        return [
            SearchHit(pos, n, item, author, ts, text) for item, pos, n, author, ts, text in rows
        ]
