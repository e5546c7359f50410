"""Whether the store reaches PostgreSQL: one account of an outage, for the log and the node.

PostgreSQL restarts (an upgrade, a failover, `pg_ctl restart`) and networks drop. A node
must ride that out: requests meanwhile are answered `5001` with StoreUnavailable's
message (clients retry them, a send with the same cmid), and each connection of the store
reconnects by itself (the writer: writer.py's recovery; each reader: conn.py's
AsyncReader), with a growing pause between attempts.

Each part of the store that could not reconnect at once reports itself lost here; the
first such report of an outage is logged (`store: lost PostgreSQL`), and the recovery once
(`store: PostgreSQL back after N s`) when the writer, or the last part lost, reconnects:
the writer's connection back means PostgreSQL is back, and readers still holding dead
connections reconnect at their next read without a word. A connection whose failure is
repaired by reconnecting at once (the first read after a restart that happened while the
node was idle) logs nothing: nothing was refused.

`on_back` is called after the recovery is logged: a cluster node makes every live session
read its log then, since a read after a notice may have failed meanwhile.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger("liaotian.store")

FIRST_PAUSE = 0.05  # seconds before the second attempt to reconnect
LONGEST_PAUSE = 2.0  # the pause between attempts grows (x2, jittered) up to this
CONNECT_TIMEOUT = 3  # seconds a connection attempt may take (libpq's connect_timeout)


def pause(attempt: int) -> float:
    """Seconds to wait before reconnection attempt `attempt` + 1 (0-based), jittered."""
    base = min(LONGEST_PAUSE, FIRST_PAUSE * 2 ** min(attempt, 16))
    return float(base * random.uniform(0.5, 1.0))


def broken(conn: psycopg.Connection[object] | psycopg.AsyncConnection[object]) -> bool:
    """Whether a connection is gone (closed by the server, reset, or closed here)."""
    return bool(conn.closed or conn.broken)


# SQLSTATEs that end a session: admin_shutdown, crash_shutdown, cannot_connect_now (57P0x)
_ENDED = ("57P01", "57P02", "57P03")


def gone(
    conn: psycopg.Connection[object] | psycopg.AsyncConnection[object], exc: BaseException
) -> bool:
    """Whether `exc` means the connection is lost: it is closed or broken, or the error
    (or one it arose from: pipeline mode wraps them) is a connection exception (class 08)
    or the server ending the session. Any other error is the statement's own."""
    if broken(conn):
        return True
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        state = getattr(seen, "sqlstate", None) or ""
        if state.startswith("08") or state in _ENDED:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Link:
    """The store's connections to PostgreSQL as one up/down state, logged once per change."""

    def __init__(self, where: str) -> None:
        self.where = where  # the server, without a password (for the log)
        self.lost_parts: set[str] = set()
        self.since = 0.0  # monotonic time the outage began
        self.outages = 0  # outages so far (a metric)
        self.on_back: Callable[[], None] = lambda: None

    @property
    def up(self) -> bool:
        return not self.lost_parts

    def lost(self, part: str, exc: BaseException) -> None:
        """`part` (the writer, reader 1, ...) lost its connection and could not reconnect."""
        if not self.lost_parts:
            self.since = time.monotonic()
            self.outages += 1
            log.warning("store: lost PostgreSQL at %s (%s)", self.where, _first_line(exc))
        self.lost_parts.add(part)

    def back(self, part: str) -> None:
        """`part` reconnected. The writer back (or the last part lost) ends the outage."""
        if part not in self.lost_parts:
            return
        self.lost_parts.discard(part)
        if part == "writer" or not self.lost_parts:
            self.lost_parts.clear()
            log.warning(
                "store: PostgreSQL back at %s after %.1f s",
                self.where,
                time.monotonic() - self.since,
            )
            try:
                self.on_back()
            except Exception:
                log.exception("store: the recovery callback failed")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
