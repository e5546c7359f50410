"""Throw-away schemas on a PostgreSQL server, for tests and benchmarks.

Each user gets a schema of its own with a random name, and a URL whose connections
search it first, so tests running at once on one database never see each other's
tables; the schema is dropped (CASCADE) afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from urllib.parse import quote

import psycopg

# The server the tests and the bench use (CI runs one; so does the development machine).
TEST_URL = os.environ.get("LIAOTIAN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@cache
def unreachable(url: str = TEST_URL) -> str | None:
    """Why PostgreSQL at `url` cannot be used (None: it can); asked once per process."""
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {url} is unreachable: {str(exc).strip()}"
    return None


def with_schema(url: str, schema: str) -> str:
    """`url` with its connections' search_path set to `schema`."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@asynccontextmanager
async def scratch_schema(url: str = TEST_URL, prefix: str = "t") -> AsyncIterator[str]:
    """A new empty schema; yields the URL that uses it, drops it afterwards."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield with_schema(url, name)
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA {name} CASCADE")
