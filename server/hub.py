"""Who is connected: every open connection, and the authenticated ones by user and device.

Fan-out reads these indexes; the connections themselves own their sockets and buffers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .transport import ServerConnection


class Hub:
    def __init__(self) -> None:
        self.connections: set[ServerConnection] = set()
        self._by_user: dict[int, list[ServerConnection]] = {}
        self._per_address: defaultdict[str, int] = defaultdict(int)
        # called with (user id, online) when a user's first connection binds or last unbinds
        self.on_presence: Callable[[int, bool], None] = lambda uid, online: None
        # called with each authenticated connection when it unbinds (it ended or logged out)
        self.on_unbind: Callable[[ServerConnection], None] = lambda conn: None

    def opened(self, conn: ServerConnection) -> None:
        self.connections.add(conn)
        self._per_address[conn.peer_host] += 1

    def closed(self, conn: ServerConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            n = self._per_address[conn.peer_host] - 1
            if n > 0:
                self._per_address[conn.peer_host] = n
            else:
                del self._per_address[conn.peer_host]
        self.unbind(conn)

    def count_from(self, host: str) -> int:
        return self._per_address.get(host, 0)

    def bind(self, conn: ServerConnection) -> None:
        """Index an authenticated connection under its user."""
        conns = self._by_user.setdefault(conn.user_id, [])
        conns.append(conn)
        if len(conns) == 1:
            self.on_presence(conn.user_id, True)

    def unbind(self, conn: ServerConnection) -> None:
        lst = self._by_user.get(conn.user_id)
        if lst is not None and conn in lst:
            lst.remove(conn)
            self.on_unbind(conn)
            if not lst:
                del self._by_user[conn.user_id]
                self.on_presence(conn.user_id, False)

    def of_user(self, user_id: int) -> list[ServerConnection]:
        return self._by_user.get(user_id, [])

    def of_device(self, user_id: int, device: str) -> list[ServerConnection]:
        return [c for c in self._by_user.get(user_id, []) if c.device == device]

    def online_devices(self, user_id: int) -> set[str]:
        return {c.device for c in self._by_user.get(user_id, [])}
