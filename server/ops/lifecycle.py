"""Connections as an operator follows them: one log line when a connection opens, when it
authenticates and when it ends (with its close code), and the counts behind the metrics.

Driven by the hub's hooks (`Hub.on_open`, `on_bind`, `on_close`): per connection, never per
frame. Lines carry the connection id, the peer address and, once known, the user and the
device; in JSON logs these are fields of their own (`event`, `conn`, `peer`, `user`,
`device`, `code`, `seconds`). Nothing a client sends as content is logged: not its
password or token, not message text, not the reason text of its CLOSE.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING

from liaotian.protocol import CloseCode
from liaotian.protocol.state import State

from .counters import Counters

if TYPE_CHECKING:
    from ..net.hub import Hub
    from ..net.peer import Peer as ServerConnection

log = logging.getLogger("liaotian.conn")

STATES = tuple(s.value for s in State)  # connection states, as metric labels


def close_name(code: int) -> str:
    """`normal`, `slow_consumer`, ... for a close code; `none`: ended without a CLOSE."""
    if not code:
        return "none"
    try:
        return CloseCode(code).name.lower()
    except ValueError:
        return "other"


def peer_of(conn: ServerConnection) -> str:
    """host:port of the peer ([host]:port for IPv6), or the host alone if unknown."""
    t = conn.transport
    peer = t.get_extra_info("peername") if t is not None else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return conn.peer_host or "?"


def by_state(hub: Hub) -> tuple[Counter[str], int]:
    """Open connections by protocol state, and the number of users with an authenticated
    one. A walk over every connection: for scrapes and statistics lines, not per frame."""
    states: Counter[str] = Counter()
    users = set()
    for c in hub.connections:
        state = c.conn.state
        states[state.value] += 1
        if state is State.AUTHENTICATED and c.user_id:
            users.add(c.user_id)
    return states, len(users)


class Lifecycle:
    """Logs and counts the hub's connection events."""

    def __init__(self, hub: Hub, counters: Counters) -> None:
        self.counters = counters
        self._opened: dict[ServerConnection, tuple[str, float]] = {}  # peer, when
        hub.on_open = self.opened
        hub.on_bind = self.authenticated
        hub.on_close = self.closed

    def age(self, conn: ServerConnection) -> float:
        """Seconds since the connection opened."""
        since = self._opened.get(conn)
        return round(time.monotonic() - since[1], 3) if since else 0.0

    def opened(self, conn: ServerConnection) -> None:
        self.counters.opened += 1
        peer = peer_of(conn)
        self._opened[conn] = (peer, time.monotonic())
        log.info(
            "conn %d open from %s",
            conn.id,
            peer,
            extra={"event": "open", "conn": conn.id, "peer": peer},
        )

    def authenticated(self, conn: ServerConnection) -> None:
        self.counters.authenticated += 1
        peer = self._opened.get(conn, (conn.peer_host, 0.0))[0]
        log.info(
            "conn %d authenticated from %s as %s, device %s",
            conn.id,
            peer,
            conn.username,
            conn.device,
            extra={
                "event": "authenticated",
                "conn": conn.id,
                "peer": peer,
                "user": conn.username,
                "device": conn.device,
            },
        )

    def closed(self, conn: ServerConnection) -> None:
        code = conn.conn.close_code or 0
        self.counters.closes[code] += 1
        peer, since = self._opened.pop(conn, (conn.peer_host, time.monotonic()))
        seconds = round(time.monotonic() - since, 3)
        name = close_name(code)
        who = f" ({conn.username}, device {conn.device})" if conn.username else ""
        extra = {
            "event": "closed",
            "conn": conn.id,
            "peer": peer,
            "code": code,
            "close": name,
            "seconds": seconds,
        }
        if conn.username:
            extra.update(user=conn.username, device=conn.device)
        how = f"{code} {name}" if code else "without a CLOSE"
        log.info(
            "conn %d from %s%s closed %s after %.1f s",
            conn.id,
            peer,
            who,
            how,
            seconds,
            extra=extra,
        )
