"""Who is connected: every open connection, and the authenticated ones by user and device.

Fan-out reads these indexes; the connections themselves own their sockets and buffers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from liaotian.protocol import ErrorCode, RequestError

from .peer import Peer


class Hub:
    def __init__(self, *, max_per_user: int = 0, max_outbound_total: int = 0) -> None:
        self.max_per_user = max_per_user  # authenticated connections of one user; 0 = any
        self.max_outbound_total = max_outbound_total  # unread bytes, all peers; 0 = any
        self.outbound = 0  # bytes queued to peers and not yet taken by their sockets
        self._unread: set[Peer] = set()  # connections with unread output
        self._enforcing = False
        self.connections: set[Peer] = set()
        self.sessions: dict[int, Peer] = {}  # every open connection, by its id
        self._by_user: dict[int, list[Peer]] = {}
        self._per_address: defaultdict[str, int] = defaultdict(int)
        # called with (user id, online) when a user's first connection binds or last unbinds
        self.on_presence: Callable[[int, bool], None] = lambda uid, online: None
        # called with each authenticated connection when it unbinds (it ended or logged out)
        self.on_unbind: Callable[[Peer], None] = lambda conn: None
        # ops: connection lifecycle (logs, metrics: ops/lifecycle.py) and disabled accounts
        self.on_open: Callable[[Peer], None] = lambda conn: None
        self.on_bind: Callable[[Peer], None] = lambda conn: None
        self.on_close: Callable[[Peer], None] = lambda conn: None
        self.disabled: set[int] = set()  # user ids an operator disabled (LOGIN refused)

    def opened(self, conn: Peer) -> None:
        self.connections.add(conn)
        self.sessions[conn.id] = conn
        self._per_address[conn.peer_host] += 1
        self.on_open(conn)  # ops

    def closed(self, conn: Peer) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self.sessions.pop(conn.id, None)
            n = self._per_address[conn.peer_host] - 1
            if n > 0:
                self._per_address[conn.peer_host] = n
            else:
                del self._per_address[conn.peer_host]
            self.on_close(conn)  # ops
        self.unbind(conn)

    def count_from(self, host: str) -> int:
        return self._per_address.get(host, 0)

    def check_user_slots(self, user_id: int) -> None:
        """Refuse (3009 LIMIT_REACHED) a new session of a user at max_per_user, and
        (2002 BAD_CREDENTIALS, as a wrong password) any session of a disabled account."""
        if user_id in self.disabled:  # ops: `liaotian-server admin disable`
            raise RequestError(ErrorCode.BAD_CREDENTIALS)
        if self.max_per_user and len(self._by_user.get(user_id, ())) >= self.max_per_user:
            raise RequestError(
                ErrorCode.LIMIT_REACHED,
                f"at most {self.max_per_user} connections per user",
                data={"limit": "max_connections_per_user", "max": self.max_per_user},
            )

    def bind(self, conn: Peer) -> None:
        """Index an authenticated connection under its user (RequestError if over the cap)."""
        self.check_user_slots(conn.user_id)
        conns = self._by_user.setdefault(conn.user_id, [])
        conns.append(conn)
        self.on_bind(conn)  # ops
        if len(conns) == 1:
            self.on_presence(conn.user_id, True)

    def unbind(self, conn: Peer) -> None:
        lst = self._by_user.get(conn.user_id)
        if lst is not None and conn in lst:
            lst.remove(conn)
            self.on_unbind(conn)
            if not lst:
                del self._by_user[conn.user_id]
                self.on_presence(conn.user_id, False)

    def of_user(self, user_id: int) -> list[Peer]:
        return self._by_user.get(user_id, [])

    def of_device(self, user_id: int, device: str) -> list[Peer]:
        return [c for c in self._by_user.get(user_id, []) if c.device == device]

    def online_devices(self, user_id: int) -> set[str]:
        return {c.device for c in self._by_user.get(user_id, [])}

    # ------------------------------------------------------------------ unread output

    def count_unread(self, conn: Peer, unread: int) -> None:
        """`conn` now has `unread` bytes queued; past the budget, evict the largest soon."""
        delta = unread - conn.unread
        if not delta:
            return
        conn.unread = unread
        self.outbound += delta
        if unread:
            self._unread.add(conn)
        else:
            self._unread.discard(conn)
        if (
            delta > 0
            and self.max_outbound_total
            and self.outbound > self.max_outbound_total
            and not self._enforcing
        ):
            self._enforcing = True  # once per loop turn: never inside another's fan-out loop
            conn.loop.call_soon(self.enforce_outbound)

    def enforce_outbound(self) -> None:
        """Recount what is really unread; evict the largest backlogs until within budget."""
        self._enforcing = True
        for c in list(self._unread):
            t = c.transport
            self.count_unread(c, t.get_write_buffer_size() if t is not None else 0)
        budget = self.max_outbound_total
        for c in sorted(self._unread, key=lambda c: c.unread, reverse=True):
            if self.outbound <= budget:
                break
            c.log.info(
                "slow consumer: %d bytes unread while all peers leave %d unread",
                c.unread,
                self.outbound,
            )
            c.evict("server outbound budget exceeded")
        self._enforcing = False
