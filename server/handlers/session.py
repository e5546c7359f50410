"""HELLO and PING: the parts of a connection that are not about any account."""

from __future__ import annotations

import time
from typing import Any

from liaotian.protocol import Hello, Ping, Pong, Welcome

from ..net.peer import Peer
from ..net.router import Router

SERVER_NAME = "liaotian/0.1.0"


class SessionHandlers:
    def __init__(self, *, advertised: dict[str, Any], heartbeat: float) -> None:
        self._advertised = advertised  # the limits WELCOME tells clients
        self.heartbeat = heartbeat

    def route(self, router: Router) -> None:
        router.route(Hello, self.hello)
        router.route(Ping, self.ping)

    def hello(self, conn: Peer, msg: Hello) -> None:
        version = conn.conn.version
        assert version is not None  # the protocol core refused hellos without a common one
        conn.send(
            Welcome(
                rid=msg.rid,
                version=version,
                server=SERVER_NAME,
                time=int(time.time() * 1000),
                heartbeat=self.heartbeat,
                limits=self._advertised,
            )
        )

    def ping(self, conn: Peer, msg: Ping) -> None:
        conn.send(Pong(rid=msg.rid, time=int(time.time() * 1000)))
