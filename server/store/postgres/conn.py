"""The SQLite store's statements on PostgreSQL: one translation, two connection shims.

The SQLite store's loaders, named writes, reads and media statements (sqlite/sql.py,
channels.py, reads.py, media.py, ...) are plain SQL over a DB-API connection. Most of
that SQL is standard; the few SQLite dialect bits it uses are rewritten here, once per
distinct statement (cached), so PostgreSQL runs the very same statements instead of a
second copy of each to keep in step:

    ?, ?3, :name                    -> %s, %s, %(name)s (and a literal % -> %%); bind()
                                       orders the parameters of numbered ones
    iif(a, b, c)                    -> CASE WHEN a THEN b ELSE c END
    INSERT OR IGNORE INTO ...       -> INSERT INTO ... ON CONFLICT DO NOTHING
    INSERT OR ROLLBACK INTO ...     -> INSERT INTO ... (any error aborts the transaction)
    INSERT OR REPLACE INTO t (c...) -> ... ON CONFLICT ON CONSTRAINT t_pkey DO UPDATE SET
    max(a, b) / min(a, b)           -> greatest(a, b) / least(a, b) (the scalar forms)
    ifnull(a, b)                    -> coalesce(a, b)
    t INDEXED BY i                  -> t (PostgreSQL's planner picks the index)
    ? IS NULL                       -> %s::text IS NULL (a bare NULL parameter has no type)
    a = b COLLATE NOCASE            -> both sides ASCII-lowered (NOCASE folds ASCII only)
    ON CONFLICT ... DO UPDATE SET c = f(c, excluded.c)
                                    -> ... SET c = f(t.c, excluded.c) (bare: ambiguous)
    BEGIN IMMEDIATE                 -> BEGIN
    LIMIT ?                         -> LIMIT nullif(%s, -1) (SQLite's -1: no limit)

What cannot be translated (FTS5, PRAGMA, rowid tricks, the journal) is done by the
PostgreSQL modules beside this one.

`SyncConnection` gives the writer thread what sqlite3.Connection gave it (execute,
executemany, in_transaction, close) over a psycopg connection in autocommit mode, so
BEGIN/COMMIT/SAVEPOINT are the statements the writer issues. `AsyncReader` gives the
reads what aiosqlite gave them (execute_fetchall, execute) over a psycopg async
connection; readers.FairReaders hands them out unchanged.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import Int8Dumper

from ..contract import StoreClosed, StoreUnavailable
from .link import CONNECT_TIMEOUT, Link, broken, gone, pause

_NOCASE = re.compile(r"([\w.]+|%s) = ([\w.]+|%s) COLLATE NOCASE", re.IGNORECASE)
_ASCII_LOWER = "'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'"
_PARAM_IS_NULL = re.compile(r"(%s|%\(\w+\)s) IS (NOT )?NULL", re.IGNORECASE)
_INDEXED_BY = re.compile(r"\s+INDEXED BY \w+", re.IGNORECASE)
_IIF = re.compile(r"\biif\(", re.IGNORECASE)
_IFNULL = re.compile(r"\bifnull\(", re.IGNORECASE)
_MINMAX = re.compile(r"\b(max|min)\(", re.IGNORECASE)
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_LIMIT = re.compile(r"LIMIT (%s|%\(\w+\)s)")
_UPSERT = re.compile(
    r"\bINSERT INTO (\w+) \(([^)]*)\)(.*\bDO UPDATE SET )(.*)$", re.IGNORECASE | re.DOTALL
)
_REPLACE = re.compile(r"^\s*INSERT OR REPLACE INTO (\w+) \(([^)]*)\)", re.IGNORECASE)


def _qualify_upsert(sql: str) -> str:
    """In an upsert's SET expressions, the target's columns named bare (`pos = max(pos,
    excluded.pos)`) qualified with the table's name: SQLite reads a bare name as the
    existing row's, PostgreSQL finds it ambiguous beside `excluded`."""
    m = _UPSERT.search(sql)
    if m is None:
        return sql
    table, cols = m.group(1), {c.strip() for c in m.group(2).split(",")}
    bare = re.compile(r"(?<![.\w])(" + "|".join(map(re.escape, cols)) + r")\b(?!\s*\()")
    sets = []
    for part in _top_level_split(m.group(4)):
        lhs, eq, rhs = part.partition("=")
        sets.append(lhs + eq + bare.sub(rf"{table}.\1", rhs) if eq else part)
    return sql[: m.start(4)] + ",".join(sets)


def _top_level_split(text: str) -> list[str]:
    """`text` split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _scalar_minmax(sql: str) -> str:
    """max(a, b) -> greatest(a, b), min(a, b) -> least(a, b); the one-argument
    (aggregate) forms stay."""
    edits: list[tuple[int, int, str]] = []
    for m in _MINMAX.finditer(sql):
        depth, i = 1, m.end()
        top_comma = False
        while i < len(sql) and depth:
            ch = sql[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 1:
                top_comma = True
            i += 1
        if top_comma:
            name = "greatest" if m.group(1).lower() == "max" else "least"
            edits.append((m.start(), m.start() + len(m.group(1)), name))
    for start, end, name in reversed(edits):
        sql = sql[:start] + name + sql[end:]
    return sql


_NUMBERED = re.compile(r"\?(\d*)")


@lru_cache(maxsize=4096)
def _order(sql: str) -> tuple[int, ...] | None:
    """For a statement with numbered placeholders (?1, ?3), which parameter each of its
    placeholders takes, in order (SQLite's rule: a bare ? takes the largest number so
    far + 1); None when they take the parameters in order."""
    if not re.search(r"\?\d", sql):
        return None
    order, top = [], 0
    for m in _NUMBERED.finditer(sql):
        n = int(m.group(1)) if m.group(1) else top + 1
        top = max(top, n)
        order.append(n - 1)
    return tuple(order)


def bind(sql: str, params: Any) -> tuple[str, Any]:
    """The statement translated and its parameters in psycopg's order."""
    if isinstance(params, dict):
        return translate(sql), params
    order = _order(sql)
    if order is None:
        return translate(sql), tuple(params)
    values = tuple(params)
    return translate(sql), tuple(values[i] for i in order)


def _iif(sql: str) -> str:
    """iif(a, b, c) -> CASE WHEN a THEN b ELSE c END."""
    while (m := _IIF.search(sql)) is not None:
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        cond, then, other = (x.strip() for x in _top_level_split(sql[m.end() : i - 1]))
        sql = f"{sql[: m.start()]}CASE WHEN {cond} THEN {then} ELSE {other} END{sql[i:]}"
    return sql


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """The statement in PostgreSQL's dialect with psycopg's placeholders (see above)."""
    s = _NUMBERED.sub("%s", sql.replace("%", "%%"))
    head = s.lstrip()[:32].upper()
    if head.startswith("BEGIN IMMEDIATE"):
        return "BEGIN"
    if head.startswith("PRAGMA"):
        raise psycopg.NotSupportedError(f"SQLite statement on PostgreSQL: {sql}")
    if head.startswith("INSERT OR IGNORE INTO"):
        s = "INSERT INTO" + s.lstrip()[len("INSERT OR IGNORE INTO") :] + " ON CONFLICT DO NOTHING"
    elif head.startswith("INSERT OR ROLLBACK INTO"):
        s = "INSERT INTO" + s.lstrip()[len("INSERT OR ROLLBACK INTO") :]
    else:
        m = _REPLACE.match(s)
        if m is not None:
            table, cols = m.group(1), [c.strip() for c in m.group(2).split(",")]
            sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
            s = (
                "INSERT INTO"
                + s.lstrip()[len("INSERT OR REPLACE INTO") :]
                + f" ON CONFLICT ON CONSTRAINT {table}_pkey DO UPDATE SET {sets}"
            )
    s = _NOCASE.sub(rf"translate(\1, {_ASCII_LOWER}) = translate(\2, {_ASCII_LOWER})", s)
    s = _INDEXED_BY.sub("", s)
    s = _PARAM_IS_NULL.sub(r"\1::text IS \2NULL", s)
    s = _IFNULL.sub("coalesce(", s)
    s = _iif(s)
    s = _qualify_upsert(s)
    s = _NAMED.sub(r"%(\1)s", s)
    s = _LIMIT.sub(r"LIMIT nullif(\1::bigint, -1)", s)
    return _scalar_minmax(s)


class _BoolAsInt(Int8Dumper):
    """Python booleans as 0 and 1: the schema keeps flags as integers, as SQLite does."""

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


def sqlite_like(adapters: AdaptersMap) -> None:
    """Make a connection's parameters what the SQLite statements expect."""
    adapters.register_dumper(bool, _BoolAsInt)


class SyncConnection:
    """The writer thread's connection, shaped like the part of sqlite3.Connection the
    SQLite store's writer functions use."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        sqlite_like(conn.adapters)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(*bind(sql, params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cur = self.conn.cursor()
        cur.executemany(translate(sql), list(rows))
        return cur

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.conn.close()


class AsyncReader:
    """A reader connection, shaped like the part of aiosqlite.Connection reads use.
    Autocommit: each statement is its own snapshot, as each read was on SQLite; an
    explicit BEGIN (the wallet's dump) is REPEATABLE READ, one snapshot for all.

    It reconnects by itself (link.py): a statement that finds the connection gone
    reconnects and runs once more (reads are safe to repeat; not inside an explicit
    transaction, whose snapshot is gone); if PostgreSQL cannot be reached, StoreUnavailable,
    and later reads try again at most once per pause until it can."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        url: str = "",
        link: Link | None = None,
        part: str = "reader",
    ) -> None:
        self.conn = conn
        self.url = url
        self.link = link
        self.part = part
        self._attempts = 0  # failed reconnection attempts in a row
        self._next_try = 0.0  # monotonic time of the next allowed attempt
        self._in_txn = False
        self._closed = False  # close() ran: never reconnect (the new connection would leak)
        sqlite_like(conn.adapters)

    async def execute_fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        stmt = bind(sql, params)
        await self._ready()
        try:
            cur = await self.conn.execute(*stmt)
            return await cur.fetchall()
        except psycopg.OperationalError as exc:
            if not gone(self.conn, exc) or self._in_txn or self.link is None:
                raise self._unavailable(exc) from exc
            await self._reconnect(exc)  # the connection died since the last read
        cur = await self.conn.execute(*stmt)
        return await cur.fetchall()

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        word = sql.strip().upper()
        if word == "BEGIN":
            sql = "BEGIN ISOLATION LEVEL REPEATABLE READ"
        await self._ready()
        try:
            await self.conn.execute(*bind(sql, params))
        except psycopg.OperationalError as exc:
            self._in_txn = False
            raise self._unavailable(exc) from exc
        if word == "BEGIN":
            self._in_txn = True
        elif word in ("COMMIT", "ROLLBACK"):
            self._in_txn = False

    def _unavailable(self, exc: psycopg.OperationalError) -> Exception:
        """What a failed statement raises: StoreUnavailable if the connection is gone."""
        if self.link is not None and gone(self.conn, exc):
            self.link.lost(self.part, exc)
            return StoreUnavailable()
        return exc

    async def _ready(self) -> None:
        """Reconnect a connection that is gone, at most once per pause."""
        if self._closed:
            raise StoreClosed()
        if self.link is None or not broken(self.conn):
            return
        if time.monotonic() < self._next_try:
            raise StoreUnavailable()
        await self._reconnect(None)

    async def _reconnect(self, cause: BaseException | None) -> None:
        assert self.link is not None
        self._in_txn = False
        if self._closed:  # a read that was running when the store closed
            raise StoreClosed() from cause
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            )
        except psycopg.Error as exc:
            self._next_try = time.monotonic() + pause(self._attempts)
            self._attempts += 1
            self.link.lost(self.part, cause or exc)
            raise StoreUnavailable() from exc
        old, self.conn, self._attempts = self.conn, conn, 0  # before any await: close() sees it
        sqlite_like(conn.adapters)
        if self._closed:  # closed while connecting
            await conn.close()
            raise StoreClosed() from cause
        with contextlib.suppress(psycopg.Error):
            await old.close()
        self.link.back(self.part)

    async def close(self) -> None:
        self._closed = True
        await self.conn.close()
