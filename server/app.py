"""The composition root: builds the store, the chat core's policy, the handlers, the
fan-out and the network edge, wires them explicitly, and runs the server's lifecycle:
open the store, listen, serve, and shut down in order. Nothing imports this module but
the entry points (cli.py, testing.py).

One-way flow: transport (net/) -> protocol -> router -> handlers (handlers/) -> chat core
operations (chat/) -> store (store/) -> after each commit, the fan-out (fanout.py) ->
frames to live sessions.

Shutdown (SIGTERM/SIGINT, or `stop()`): stop accepting connections; let the writer commit
what is queued so those senders get their SENT; send CLOSE "going away" to everyone; wait a
bounded grace period for sockets to drain; close the store (last commit, checkpoint).
A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import ssl
import sys
import time
from typing import Any, cast

from .chat.bot_ops import BotNotice
from .chat.ledger import WalletPolicy
from .chat.model import BotView
from .chat.ops import CreateGroup
from .chat.policy import Policy
from .cluster import ClusterNode, NatsBus
from .config import Config
from .fanout import FanOut
from .handlers.accounts import AccountHandlers
from .handlers.bots import BotHandlers, answer_notice
from .handlers.channels import ANSWERS as CHANNEL_ANSWERS
from .handlers.channels import ChannelHandlers, NewsFanOut
from .handlers.contacts import ContactHandlers
from .handlers.groups import GroupHandlers, answer_created
from .handlers.media import MediaHandlers
from .handlers.messaging import MessagingHandlers
from .handlers.nearby import NearbyHandlers
from .handlers.presence import PresenceService
from .handlers.receipts import ReceiptHandlers
from .handlers.session import SessionHandlers
from .handlers.shop import ShopHandlers
from .handlers.shop import answers as shop_answers
from .handlers.throttle import WriteBudget
from .handlers.wallet import Expiry, WalletHandlers, answers
from .media.aio import MediaIO
from .media.blobs import BlobStore
from .media.limits import MediaLimits
from .net.hub import Hub
from .net.router import Router
from .net.transport import Endpoint, ServerConnection
from .ops.counters import Counters
from .ops.lifecycle import Lifecycle
from .ops.logs import configure_logging
from .ops.wiring import Ops, OpsError
from .store import SQLiteStore, Store, StoreOpenError

log = logging.getLogger("liaotian.server")


class StartupError(Exception):
    """The server cannot start; the text (one line) names the problem."""


class Server:
    def __init__(self, config: Config, *, store: Store | None = None) -> None:
        """`store`: the storage to serve from (the simulation's in-memory one); by default
        the SQLite database of `config.db_path`, or PostgreSQL at `config.db_url`."""
        tune_gc()
        tune_switch_interval()
        self.config = config
        self.limits = config.limits()
        self.hub = Hub(
            max_per_user=config.max_connections_per_user,
            max_outbound_total=config.max_outbound_total,
        )
        self.counters = Counters()  # ops: what the serving path counts
        self.router = Router(self.counters)
        # An injected store serves through the contract's methods; typed as SQLite's
        # until the handlers are typed against the contract alone.
        self.store = cast(SQLiteStore, store) if store is not None else make_store(config)
        self.writes = WriteBudget(
            config.write_rate,
            config.write_burst,
            config.write_rows_rate,
            config.write_rows_burst,
            clock=lambda: self.loop.time(),
        )
        self.policy = Policy(
            max_group_size=config.max_group_size,
            max_channel_members=config.max_channel_members,
            max_groups_owned=config.max_groups_owned,
            max_groups_joined=config.max_groups_joined,
            max_contacts=config.max_contacts,
            max_outgoing_requests=config.max_outgoing_requests,
            max_voice_ms=config.media_max_voice_ms,
            max_track_ms=config.media_max_track_ms,
            budget=self.writes,
            wallet=WalletPolicy(
                config.tasks(),
                int(config.packet_ttl * 1000),
                config.max_packet_shares,
                os.urandom(32),
            ),
        )
        self.media_limits = media_limits(config)
        media_root = media_dir(config)  # None: no media (a database in memory, no media_dir)
        self.media_io = (
            None
            if media_root is None
            else MediaIO(
                BlobStore(
                    media_root,
                    free_floor=config.media_free_disk_floor,
                    sync_every=config.media_sync_every,
                ),
                self.media_limits,
                workers=config.media_workers,
            )
        )
        self.media: MediaHandlers | None = None
        self.cluster: ClusterNode | None = None  # set by _wire when cluster_nats is given
        self.fanout = FanOut(
            self.hub.sessions, self.hub.of_user, self.store.cached_head, self.counters
        )
        self.store.on_committed = self.fanout.committed
        self.ops = Ops(self)  # ops: metrics, lifecycle logs, admin socket
        self.port = config.port
        self._listener: asyncio.base_events.Server | None = None
        self._stopped = asyncio.Event()
        self._stopping = False
        self._background: list[asyncio.Task[Any]] = []
        self.loop: asyncio.AbstractEventLoop = asyncio.get_event_loop()
        self.endpoint = Endpoint(config, self.limits, self.hub, self.router, self.loop)

    @property
    def accepting(self) -> bool:
        return self.endpoint.accepting

    # what the operator's tools read (ops/host.py)
    @property
    def tls_enabled(self) -> bool:
        return self.endpoint.tls is not None

    @property
    def lifecycle(self) -> Lifecycle:
        return self.ops.lifecycle

    @property
    def metrics_port(self) -> int | None:
        return self.ops.metrics.port if self.ops.metrics is not None else None

    def _wire(self) -> None:
        """Build the handlers with what each needs and route them; hook the hub."""
        self.bot_view = BotView()
        cfg, store, hub, router, writes = (
            self.config,
            self.store,
            self.hub,
            self.router,
            self.writes,
        )
        clock = self.loop.time
        advertised = self.limits.advertised()
        advertised["rates"] = cfg.rates()
        if self.media_io is not None:
            advertised["media"] = self.media_limits.advertised(self.limits.max_frame_size)
        SessionHandlers(advertised=advertised, heartbeat=cfg.heartbeat_interval).route(router)
        accounts = AccountHandlers(store, hub, cfg, clock)
        accounts.route(router)
        hub.on_unbind = accounts.unbound
        if self.media_io is not None:
            self.media = MediaHandlers(
                store,
                self.media_io,
                self.media_limits,
                self.policy,
                writes,
                clock,
                frame_size=self.limits.max_frame_size,
                inflight=cfg.media_inflight,
                sweep_interval=cfg.media_sweep_interval,
            )
            self.media.route(router)
        MessagingHandlers(
            store,
            self.limits,
            cfg,
            writes,
            clock,
            media=self.media.prepare_send if self.media else None,
            rewards=self.policy.wallet,
            bots=self.bot_view,
        ).route(router)
        GroupHandlers(store, writes, self.policy, clock).route(router)
        self.fanout.answer_with(CreateGroup, answer_created)
        ReceiptHandlers(store, writes, cfg.max_group_size, clock).route(router)
        contacts = ContactHandlers(store, writes, self.policy, clock)
        contacts.bots = self.bot_view
        contacts.route(router)
        # bots (SPEC.md 26): accounts, commands, presses; the view the send rule reads
        self.bots = BotHandlers(
            store,
            hub,
            writes,
            self.policy,
            clock,
            max_bots=cfg.max_bots_per_user,
            max_text=self.limits.max_text_len,
            view=self.bot_view,
        )
        self.bots.route(router)
        self.fanout.answer_with(BotNotice, answer_notice)
        wallet = WalletHandlers(store, writes, self.policy, clock)
        wallet.route(router)
        accounts.register_invited = wallet.register_invited
        self.expiry = Expiry(store, self.policy)
        for op_type, answer in answers(self.expiry).items():
            self.fanout.answer_with(op_type, answer)
        ShopHandlers(store, writes, self.policy, clock).route(router)
        for op_type, answer in shop_answers(self.expiry).items():
            self.fanout.answer_with(op_type, answer)
        self.nearby = NearbyHandlers(store, writes, self.policy, clock)
        self.nearby.route(router)
        self.presence = PresenceService(store, hub, cfg, clock)
        self.presence.route(router)
        hub.on_presence = self.presence.changed
        # channels: requests, answers, and the news of posts for online members
        ChannelHandlers(store, writes, self.policy, clock).route(router)
        for op_type, answer in CHANNEL_ANSWERS.items():
            self.fanout.answer_with(op_type, answer)
        self.news = news = NewsFanOut(store, hub.of_user, self.loop)
        presence, fanout = self.presence.changed, self.fanout.committed

        def on_presence(uid: int, online: bool) -> None:
            presence(uid, online)
            news.presence(uid, online)

        def on_committed(done: list[Any]) -> None:
            fanout(done)
            news.committed(done)

        hub.on_presence, store.on_committed = on_presence, on_committed
        if cfg.cluster_nats:
            self._wire_cluster(on_presence)

    def _wire_cluster(self, local_presence: Any) -> None:
        """Routing to and from the other nodes (server/cluster/, docs/cluster.md)."""
        cfg = self.config
        try:
            import nats  # noqa: F401
        except ImportError as exc:
            raise StartupError(
                "cluster_nats needs the NATS client: pip install 'liaotian[cluster]'"
            ) from exc
        name = cfg.cluster_node or f"{cfg.host}:{self.port}"
        bus = NatsBus(
            [u.strip() for u in cfg.cluster_nats.split(",") if u.strip()],
            cfg.cluster_prefix,
            name,
        )
        self.cluster = node = ClusterNode(
            self.store,
            self.hub,
            self.fanout,
            bus,
            max_bytes=self.limits.max_frame_size - 1024,
            sweep_interval=cfg.cluster_sweep_interval,
        )
        news = self.news

        def on_presence(uid: int, online: bool) -> None:
            local_presence(uid, online)
            node.presence(uid, online)

        def on_committed(done: list[Any]) -> None:
            node.committed(done)  # the fan-out first, then the notices
            news.committed(done)

        bound = self.hub.on_bind

        def on_bind(conn: Any) -> None:
            bound(conn)
            node.bound(conn)

        self.hub.on_presence, self.store.on_committed = on_presence, on_committed
        self.hub.on_bind = on_bind
        # channels' news to and from the members on other nodes (one subject per channel)
        news.interest, news.publish, bus.on_news = (
            bus.channel_interest,
            bus.publish_news,
            news.heard,
        )
        link = getattr(self.store, "link", None)  # PostgreSQL's reachability (postgres/link.py)
        if link is not None:  # reads after notices failed while it was away: read again
            link.on_back = node.resync_all
        self.presence.elsewhere = node.elsewhere
        self.presence.relay = node.relay
        log.info(
            "cluster: node %s, NATS %s, subjects %s.u.*", name, cfg.cluster_nats, cfg.cluster_prefix
        )

    async def start(self) -> None:
        """Load TLS, bind the port, open the store, serve. A failure raises StartupError
        (one line naming the problem) after closing whatever was opened, so the process
        can exit at once: no listener, no store thread is left behind."""
        self.loop = self.endpoint.loop = asyncio.get_running_loop()
        # TLS is started per connection (transport.py), after the connection is counted
        self.endpoint.tls = self._load_tls()
        # Bound but not yet listening: a taken port fails before the database is touched,
        # and no client is accepted before the services exist.
        listener = await self._bind()
        self.port = listener.sockets[0].getsockname()[1]
        try:
            await self._open_store()
            try:
                await self._open_media()
                self._wire()
                await self.bots.load()
                if self.cluster is not None:  # never waits for NATS (bus.py)
                    await self.cluster.start()
                try:  # ops
                    await self.ops.start()
                except OpsError as exc:
                    raise StartupError(str(exc)) from exc
                self._listener = listener
                try:
                    await listener.start_serving()
                except OSError as exc:
                    raise StartupError(self._listen_problem(exc)) from exc
            except BaseException:
                self._listener = None
                if self.cluster is not None:
                    await self.cluster.close()
                await self.ops.stop()  # ops
                if self.media_io is not None:
                    await self.media_io.close()
                await self.store.close()
                raise
        except BaseException:
            listener.close()
            raise
        self.port = listener.sockets[0].getsockname()[1]
        self.endpoint.accepting = True
        self._background = [
            self.loop.create_task(self._flush_positions(), name="positions"),
            self.loop.create_task(self._prune(), name="retention"),
            self.loop.create_task(self.presence.run(), name="presence"),
            self.loop.create_task(self.expiry.run(), name="wallet-expiry"),
            self.loop.create_task(self.nearby.run(), name="nearby-sweep"),
            self.loop.create_task(self.bots.run(), name="bot-callbacks"),
        ]
        if self.media is not None:
            self._background.append(self.loop.create_task(self.media.run(), name="media-sweeps"))
        stats = self.ops.stats
        if self.config.stats_interval > 0 and stats is not None:
            self._background.append(
                self.loop.create_task(  # ops: the statistics line
                    stats.run(self.config.stats_interval), name="stats"
                )
            )
        log.info(
            "listening on %s:%d (database %s, synchronous=%s)",
            self.config.host,
            self.port,
            getattr(self.store, "path", self.config.db_path),  # an injected store may not say
            getattr(self.store, "synchronous", self.config.synchronous).lower(),
        )

    def _load_tls(self) -> ssl.SSLContext | None:
        cfg = self.config
        for what, path in (("certificate", cfg.tls_cert), ("key", cfg.tls_key)):
            if not path:
                continue
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise StartupError(
                    f"cannot read TLS {what} file {path}: {exc.strerror or exc}"
                ) from exc
        try:
            return self.tls_context()
        except (OSError, ssl.SSLError) as exc:  # not PEM, or a key of another certificate
            reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
            raise StartupError(
                f"cannot load TLS certificate {cfg.tls_cert} with key "
                f"{cfg.tls_key}: not a PEM certificate chain and its private "
                f"key ({reason})"
            ) from exc

    async def _bind(self) -> asyncio.base_events.Server:
        try:
            return await self.loop.create_server(
                lambda: ServerConnection(self.endpoint),
                self.config.host,
                self.config.port,
                backlog=4096,
                start_serving=False,
            )
        except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
            raise StartupError(self._listen_problem(exc)) from exc

    def _listen_problem(self, exc: BaseException) -> str:
        where = f"{self.config.host}:{self.config.port}"
        if isinstance(exc, socket.gaierror):
            return f"cannot listen on {where}: host {self.config.host!r} not found ({exc.strerror})"
        if isinstance(exc, OSError) and exc.errno:
            return f"cannot listen on {where}: {os.strerror(exc.errno).lower()}"
        return f"cannot listen on {where}: {exc}"

    async def _open_store(self) -> None:
        try:
            await self.store.open()
        except StoreOpenError as exc:  # names the file
            raise StartupError(str(exc)) from exc
        except (OSError, RuntimeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            where = getattr(self.store, "path", self.config.db_path)
            raise StartupError(f"cannot open database {where}: {reason}") from exc

    async def _open_media(self) -> None:
        if self.media_io is None:
            return
        try:
            await self.media_io.open()
        except OSError as exc:
            raise StartupError(
                f"cannot open media directory {self.media_io.store.root}: {exc.strerror or exc}"
            ) from exc
        except Exception as exc:  # BlobError: its parent directory is missing
            raise StartupError(
                f"cannot open media directory {self.media_io.store.root}: {exc}"
            ) from exc

    def tls_context(self) -> ssl.SSLContext | None:
        """TLS 1.2 or newer with the configured certificate, or None for plain TCP."""
        if not self.config.tls_cert:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return ctx

    async def serve_forever(self) -> None:
        await self._stopped.wait()

    def stop(self) -> None:
        """Ask for a graceful shutdown (idempotent)."""
        if not self._stopping:
            self._stopping = True
            self.loop.create_task(self.shutdown(), name="shutdown")

    async def shutdown(self) -> None:
        self._stopping = True
        if not self.accepting and self._listener is None:
            self._stopped.set()
            return
        log.info("shutting down: %d connections", len(self.hub.connections))
        self.endpoint.accepting = False
        if self._listener is not None:
            self._listener.close()
        await self.ops.stop()  # ops
        for t in self._background:
            t.cancel()
        try:  # everything queued so far commits and is answered
            await asyncio.wait_for(self.store.drain(), self.config.shutdown_grace)
        except Exception:
            log.warning("writer did not drain within the grace period", exc_info=True)
        for conn in list(self.hub.connections):
            conn.close(1001, "server shutting down")
        deadline = time.monotonic() + self.config.shutdown_grace
        while self.hub.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.hub.connections):
            if conn.transport is not None:
                conn.transport.abort()
        for task in list(self.router.tasks):
            task.cancel()
        if self.media is not None:  # the byte budgets charged since the last save
            try:
                await self.media.budgets.save()
            except Exception:
                log.warning("media byte budgets not stored", exc_info=True)
        if self.media_io is not None:
            await self.media_io.close()  # partials synced: uploads resume after a restart
        await self.store.close()
        if self.cluster is not None:  # after the last commit: its notices go out
            await self.cluster.close()
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None
        log.info("stopped")
        self._stopped.set()

    async def _flush_positions(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.store.flush_positions_soon()

    async def _prune(self) -> None:
        days = self.config.retention_days
        if days <= 0:
            return
        while True:
            horizon = int((time.time() - days * 86400) * 1000)
            try:
                n = await self.store.prune_updates(horizon)
                if n:
                    log.info("retention: pruned update logs of %d users", n)
            except Exception:
                log.exception("retention pass failed")
            await asyncio.sleep(3600)


def make_store(config: Config) -> SQLiteStore:
    """The store the settings name: PostgreSQL at `db_url` if set, else SQLite at `db_path`.
    PostgreSQL's driver is an extra (`pip install liaotian[postgres]`): imported only here."""
    if config.db_url:
        try:
            from .store.postgres import PostgresStore
        except ImportError as exc:
            raise StartupError(
                "db_url needs the PostgreSQL driver: pip install 'liaotian[postgres]'"
            ) from exc
        return PostgresStore(
            config.db_url, max_batch=config.max_batch, read_connections=config.read_connections
        )
    return SQLiteStore(
        config.db_path,
        synchronous=config.synchronous,
        max_batch=config.max_batch,
        read_connections=config.read_connections,
    )


def media_dir(config: Config) -> str | None:
    """Where blobs go: `media_dir`, else `<db_path>.media`; None (no media) for a database
    that lives in memory with no `media_dir` (the simulation)."""
    if config.media_dir:
        return config.media_dir
    if config.db_path == ":memory:" or config.db_path.startswith("file::memory:"):
        return None
    return config.db_path + ".media"


def media_limits(config: Config) -> MediaLimits:
    """The media limits of the server's settings (the rest keep MediaLimits' defaults)."""
    return MediaLimits(
        max_blob_size=config.media_max_blob_size,
        max_uploads_per_user=config.media_max_uploads,
        upload_bytes_per_day=config.media_upload_bytes_per_day,
        download_bytes_per_day=config.media_download_bytes_per_day,
        upload_ttl=config.media_upload_ttl,
        unreferenced_grace=config.media_unreferenced_grace,
        free_disk_floor=config.media_free_disk_floor,
        max_voice_ms=config.media_max_voice_ms,
        max_track_ms=config.media_max_track_ms,
    )


def tune_gc() -> None:
    """Collect the young generation every 50,000 allocations instead of every 700.

    The hot path allocates many short-lived objects; with the default threshold the
    collector ran often enough to take about a sixth of the event loop's time under load
    (py-spy, bench/README.md). Long-lived caches hold mostly untracked tuples, so the rarer
    collections stay short. Idempotent.
    """
    gc.set_threshold(50_000, 20, 100)


def tune_switch_interval() -> None:
    """Let a thread waiting for the GIL have it after 0.5 ms instead of 5 ms.

    The writer thread needs the GIL back after every SQLite call (each releases it); with
    the event loop busy, each hand-back waited up to the default 5 ms, which made the
    writer thread the bottleneck (bench: 30,500 -> 33,500 msgs/s, write phase per 2,000
    messages 45 -> 28 ms). The loop only yields when another thread asks. Idempotent.
    """
    sys.setswitchinterval(0.0005)


def install_uvloop() -> bool:
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run(config: Config) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit code: 0 after a shutdown, 1 if
    the server could not start (one line on stderr says why)."""
    configure_logging(config.log_level, config.log_format)  # ops
    fast = install_uvloop()

    async def main() -> None:
        server = Server(config)
        await server.start()
        log.info("event loop: %s", "uvloop" if fast else "asyncio")
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals > 1:
                log.warning("second signal: exiting now")
                os._exit(1)
            server.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            server.loop.add_signal_handler(sig, on_signal)
        await server.serve_forever()

    try:
        asyncio.run(main())
    except StartupError as exc:
        log.debug("start-up failed", exc_info=True)
        print(f"liaotian-server: {exc}", file=sys.stderr)
        return 1
    return 0
