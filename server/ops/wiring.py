"""The operator's side of a server, attached to it in one place (`Server.__init__`: `Ops(self)`;
`start()` once the store and the handlers exist, before clients are accepted; `stop()` first
at shutdown).

At construction: the store's statistics become a WriterMeter (histograms), the hub's
lifecycle hooks log and count connections. At start: the disabled accounts are loaded into
the hub, the store's commit callback is wrapped to count refused writes and fan-out sizes
(one pass over each batch's writes, after they are answered), the metrics endpoint and the
admin socket open.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..chat.ops import SendRequest
from ..store import SQLiteStore
from ..store.sqlite import admin as admin_sql
from .admin import UNIX_PATH_MAX, Admin, AdminError, AdminSocket, socket_path
from .counters import WriterMeter
from .lifecycle import Lifecycle
from .logs import StatsLine

if TYPE_CHECKING:
    from .host import Host
    from .metrics import MetricsEndpoint

log = logging.getLogger("liaotian.server")


class OpsError(Exception):
    """The operator's side cannot start (a port or a socket path); one line."""


class Ops:
    def __init__(self, server: Host) -> None:
        self.server = server
        self.counters = server.counters
        # The operator's tools read SQLite's files, statistics and tables; a server on another
        # store (the simulation's memory store) runs without them.
        self.enabled = isinstance(server.store, SQLiteStore)
        if self.enabled:
            server.store.stats = WriterMeter()  # before the store opens: it binds its methods
        self.lifecycle = Lifecycle(server.hub, server.counters)
        self.stats = StatsLine(server) if self.enabled else None
        self.admin = Admin(server.store, server)
        self.metrics: MetricsEndpoint | None = None
        self.admin_socket: AdminSocket | None = None

    async def start(self) -> None:
        """OpsError (one line) if the metrics port or the admin socket cannot be opened;
        nothing of ours is left open then."""
        if not self.enabled:
            return
        server = self.server
        store, cfg = server.store, server.config
        server.hub.disabled = set(await store.run_in_commit(admin_sql.disabled_ids))
        self.stats = StatsLine(server)
        answer = store.on_committed

        def committed(ops: list[Any]) -> None:
            answer(ops)
            self._count(ops)

        store.on_committed = committed
        try:
            if cfg.metrics_port >= 0:
                from .metrics import MetricsEndpoint, registry_for  # prometheus_client

                endpoint = MetricsEndpoint(registry_for(server))
                try:
                    await endpoint.start(cfg.metrics_host, cfg.metrics_port)
                except OSError as exc:
                    raise OpsError(
                        f"cannot serve metrics on {cfg.metrics_host}:"
                        f"{cfg.metrics_port}: {(exc.strerror or str(exc)).lower()}"
                    ) from None
                self.metrics = endpoint
                log.info("metrics on http://%s:%d/metrics", cfg.metrics_host, endpoint.port)
            path = socket_path(cfg)
            if path is not None and not cfg.admin_socket and len(path) > UNIX_PATH_MAX:
                log.warning(
                    "no admin socket: %s is too long for a Unix socket path; set admin_socket", path
                )
                path = None
            if path is not None:
                sock = AdminSocket(self.admin, path)
                try:
                    await sock.start()
                except AdminError as exc:
                    raise OpsError(str(exc)) from None
                self.admin_socket = sock
                log.info("admin socket %s", path)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self.admin_socket is not None:
            await self.admin_socket.close()
            self.admin_socket = None
        if self.metrics is not None:
            await self.metrics.close()
            self.metrics = None

    def _count(self, ops: list[Any]) -> None:
        """After a commit was answered: refused writes by code, and for each stored
        message the number of users it was written to (the sender excluded)."""
        errors = self.counters.errors
        fanout = self.counters.fanout
        direct = 0  # messages to one user: counted here, put in their bucket once
        for op in ops:
            code = op.error
            if code is not None:
                if op.session:
                    errors[code] += 1
            elif type(op) is SendRequest:
                res = op.result
                if res is not None and not res.duplicate:
                    if op.group is None:
                        direct += 1
                    else:
                        fanout.observe(len(res.fanout))
        if direct:
            fanout.observe_many(1, direct)
