"""The SQLite store's statements on PostgreSQL: one translation, two connection shims.

The SQLite store's loaders, named writes, reads and media statements (sqlite/sql.py,
channels.py, reads.py, media.py, ...) are plain SQL over a DB-API connection. Most of
that SQL is standard; the few SQLite dialect bits it uses are rewritten here, once per
distinct statement (cached), so PostgreSQL runs the very same statements instead of a
second copy of each to keep in step:

    ?, :name                        -> %s, %(name)s (and a literal % -> %%)
    INSERT OR IGNORE INTO ...       -> INSERT INTO ... ON CONFLICT DO NOTHING
    INSERT OR ROLLBACK INTO ...     -> INSERT INTO ... (any error aborts the transaction)
    INSERT OR REPLACE INTO t (c...) -> ... ON CONFLICT ON CONSTRAINT t_pkey DO UPDATE SET
    max(a, b) / min(a, b)           -> greatest(a, b) / least(a, b) (the scalar forms)
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

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import Int8Dumper

_MINMAX = re.compile(r"\b(max|min)\(", re.IGNORECASE)
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_LIMIT = re.compile(r"LIMIT (%s|%\(\w+\)s)")
_REPLACE = re.compile(r"^\s*INSERT OR REPLACE INTO (\w+) \(([^)]*)\)", re.IGNORECASE)


def _params(params: Any) -> Any:
    """Positional parameters as a tuple; named ones (a dict) as they are."""
    return params if isinstance(params, dict) else tuple(params)


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


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """The statement in PostgreSQL's dialect with psycopg's placeholders (see above)."""
    s = sql.replace("%", "%%").replace("?", "%s")
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
        return self.conn.execute(translate(sql), _params(params))

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
    explicit BEGIN (the wallet's dump) is REPEATABLE READ, one snapshot for all."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        sqlite_like(conn.adapters)

    async def execute_fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        cur = await self.conn.execute(translate(sql), _params(params))
        return await cur.fetchall()

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        if sql.strip().upper() == "BEGIN":
            sql = "BEGIN ISOLATION LEVEL REPEATABLE READ"
        await self.conn.execute(translate(sql), _params(params))

    async def close(self) -> None:
        await self.conn.close()
