"""HELLO and PING: the parts of a connection that are not about any account."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from liaotian.protocol import Hello, Ping, Pong, Welcome

if TYPE_CHECKING:
    from ..app import Server
    from ..transport import ServerConnection

SERVER_NAME = "liaotian/0.1.0"


class SessionService:
    def __init__(self, server: Server) -> None:
        self.server = server
        self._advertised = server.limits.advertised()
        server.router.route(Hello, self.hello)
        server.router.route(Ping, self.ping)

    def hello(self, conn: ServerConnection, msg: Hello) -> None:
        version = conn.conn.version
        assert version is not None  # the protocol core refused hellos without a common one
        conn.send(Welcome(rid=msg.rid, version=version, server=SERVER_NAME,
                          time=int(time.time() * 1000),
                          heartbeat=self.server.config.heartbeat_interval,
                          limits=self._advertised))

    def ping(self, conn: ServerConnection, msg: Ping) -> None:
        conn.send(Pong(rid=msg.rid, time=int(time.time() * 1000)))
