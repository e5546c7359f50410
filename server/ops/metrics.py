"""Prometheus metrics: `GET /metrics` on a port of its own (`metrics_port`, off by default).

Everything is read when scraped, by one custom collector, on the event loop (the endpoint
is served by the loop itself, so the collector sees the hub and the store between two
callbacks, never half-way through one): the counters the serving path keeps as plain ints
(counters.py), the writer's histograms (WriterMeter), the hub's connections and the
database files. The serving path makes no prometheus call.

Families (all prefixed `liaotian_`; README.md's operator section has the full table):
connections by state, users online, connections opened / authenticated / closed by code;
frames received and sent by message type, sync pages, live update pushes; errors by code,
throttled requests, slow-consumer evictions; messages committed, commits, commit batch
size and commit duration histograms, fan-out sizes; write queue depth, bytes unread by
peers, update-journal rows, checkpoints and WAL restarts; database and WAL file sizes;
in a cluster, NATS up or down, notices sent and received, log reads after notices.
Plus the client library's standard `process_*` and `python_*` families.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from liaotian.protocol import MESSAGE_CLASSES, CloseCode, ErrorCode, MessageType
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..store.sqlite.admin import queue_depth
from . import package_version
from .counters import Histogram, WriterMeter
from .lifecycle import STATES, by_state, close_name

if TYPE_CHECKING:
    from .host import Host

log = logging.getLogger("liaotian.server")
PREFIX = "liaotian_"
_UPDATES = int(MessageType.UPDATES)
_CLIENT_TYPES = tuple(t for t, c in sorted(MESSAGE_CLASSES.items()) if c.FROM_CLIENT)
_SERVER_TYPES = tuple(t for t, c in sorted(MESSAGE_CLASSES.items()) if not c.FROM_CLIENT)
MAX_SCRAPERS = 16  # metrics connections at once; more are closed at once
REQUEST_TIMEOUT = 10.0  # seconds to send a request


def _type_name(t: int) -> str:
    try:
        return MessageType(t).name
    except ValueError:
        return str(t)


def _histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    buckets = [
        ("+Inf" if bound == float("inf") else repr(bound), float(n)) for bound, n in h.cumulative()
    ]
    return HistogramMetricFamily(PREFIX + name, doc, buckets=buckets, sum_value=h.sum)


class ServerCollector(Collector):
    """Reads a running Server when scraped."""

    def __init__(self, server: Host) -> None:
        self.server = server
        self.started = time.time()

    def collect(self) -> Iterator[Metric]:
        server = self.server
        c = server.counters
        hub, store = server.hub, server.store

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, doc, value=value)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(PREFIX + name, doc, value=value)

        info = GaugeMetricFamily(
            PREFIX + "build_info", "The running liaotian server.", labels=["version"]
        )
        info.add_metric([package_version()], 1)
        yield info
        yield gauge("start_time_seconds", "When the server started, Unix time.", self.started)

        states, users = by_state(hub)
        conns = GaugeMetricFamily(
            PREFIX + "connections", "Open connections by protocol state.", labels=["state"]
        )
        for state in STATES:
            conns.add_metric([state], states.get(state, 0))
        yield conns
        yield gauge("users_online", "Users with an authenticated connection.", users)
        yield counter("connections_opened", "TCP connections accepted.", c.opened)
        yield counter(
            "connections_authenticated",
            "Connections that logged in or authenticated with a token.",
            c.authenticated,
        )
        closed = CounterMetricFamily(
            PREFIX + "connections_closed",
            "Ended connections by close code (0: without a CLOSE).",
            labels=["code", "reason"],
        )
        for code, n in sorted(c.closes.items()):
            closed.add_metric([str(code), close_name(code)], n)
        yield closed

        received = CounterMetricFamily(
            PREFIX + "frames_received", "Client frames decoded, by message type.", labels=["type"]
        )
        sent = CounterMetricFamily(
            PREFIX + "frames_sent", "Frames queued to clients, by message type.", labels=["type"]
        )
        out = list(c.frames_out)
        out[_UPDATES] += c.pushes
        for t, n in enumerate(c.frames_in):
            if n or t in _CLIENT_TYPES:
                received.add_metric([_type_name(t)], n)
        for t, n in enumerate(out):
            if n or t in _SERVER_TYPES:
                sent.add_metric([_type_name(t)], n)
        yield received
        yield sent
        yield counter("sync_pages", "UPDATES frames answering a SYNC.", c.frames_out[_UPDATES])
        yield counter("update_pushes", "Live UPDATES frames pushed after commits.", c.pushes)

        errors = CounterMetricFamily(
            PREFIX + "errors", "ERROR frames by error code.", labels=["code", "name"]
        )
        for code, n in sorted(c.errors.items()):
            try:
                name = ErrorCode(code).name
            except ValueError:
                name = "OTHER"
            errors.add_metric([str(int(code)), name], n)
        yield errors
        throttled = CounterMetricFamily(
            PREFIX + "throttled",
            "Requests refused by a rate limit (rate_limited) or the login throttle (login).",
            labels=["kind"],
        )
        throttled.add_metric(["rate_limited"], c.errors.get(ErrorCode.RATE_LIMITED, 0))
        throttled.add_metric(["login"], c.errors.get(ErrorCode.THROTTLED, 0))
        yield throttled
        yield counter(
            "slow_consumer_evictions",
            "Connections closed as slow consumers (4003).",
            c.closes.get(CloseCode.SLOW_CONSUMER, 0),
        )

        yield counter("messages_committed", "Messages stored, durably.", store.committed_sends)
        yield counter("commits", "Group commits.", store.batches)
        yield counter(  # PostgreSQL (store/postgres/writer.py); always 0 on SQLite
            "commits_replanned",
            "Group commits planned again: another server on the same database committed first.",
            getattr(store.writer, "replans", 0),
        )
        link = getattr(store, "link", None)  # PostgreSQL's reachability (postgres/link.py)
        if link is not None:
            yield gauge(
                "store_reachable",
                "1 while every connection of the store to PostgreSQL is up.",
                1 if link.up else 0,
            )
            yield counter(
                "store_outages", "Times the store lost PostgreSQL (then reconnected).", link.outages
            )
        # several nodes (server/cluster/, docs/cluster.md); all 0 on a single node
        cl = getattr(server, "cluster", None)
        yield gauge(
            "cluster_nats_connected",
            "1 while this node's NATS connection is up (0: down, or a single node).",
            1 if cl is not None and cl.bus.connected else 0,
        )
        yield counter(
            "cluster_notices_published",
            "Notices sent to other nodes over NATS (a hint per user per commit; frames).",
            cl.bus.published if cl is not None else 0,
        )
        yield counter(
            "cluster_notices_received",
            "Notices received from other nodes over NATS.",
            cl.bus.received if cl is not None else 0,
        )
        yield counter(
            "cluster_log_reads",
            "Reads of a live session's log after a notice, an out-of-order commit or a sweep.",
            cl.catchup.reads if cl is not None else 0,
        )
        meter = store.stats
        if isinstance(meter, WriterMeter):
            yield _histogram("commit_batch_size", "Writes per group commit.", meter.batch_sizes)
            yield _histogram(
                "commit_duration_seconds",
                "Statements and COMMIT (with its fsync) of one group commit.",
                meter.commit_seconds,
            )
            yield counter("checkpoints", "WAL checkpoint cycles.", meter.checkpoints_total)
            yield counter(
                "wal_restarts", "Checkpoint cycles that started the WAL over.", meter.restarts_total
            )
        yield _histogram(
            "fanout_recipients",
            "Users a stored message is written to, the sender excluded.",
            c.fanout,
        )
        yield gauge(
            "write_queue_depth", "Writes waiting for the next group commit.", queue_depth(store)
        )
        yield gauge(
            "outbound_buffered_bytes", "Bytes queued to peers and not yet read.", hub.outbound
        )
        yield gauge(
            "update_journal_rows",
            "Update-log rows in memory, not yet folded into the per-user logs.",
            meter.tail_rows,
        )
        db, wal = store.disk_sizes()
        if db is not None:  # unknown (PostgreSQL unreachable since start): absent, not 0
            yield gauge("database_size_bytes", "Size of the database file.", db)
        if wal is not None:  # PostgreSQL's WAL without the right to list it: absent
            yield gauge("wal_size_bytes", "Size of the database's write-ahead log.", wal)


def registry_for(server: Host) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(server))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class MetricsEndpoint:
    """A minimal HTTP/1.1 server on the event loop: GET /metrics, one request per
    connection. Anything else is 404 (or 405 for other methods)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, backlog=64)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._clients):
                t.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._clients) >= MAX_SCRAPERS:
            writer.close()
            return
        self._clients.add(task)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            status, ctype, body, head_only = self._answer(head)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}"
                f"\r\nConnection: close\r\n\r\n".encode("latin-1")
            )
            if not head_only:
                writer.write(body)
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()

    def _answer(self, head: bytes) -> tuple[str, str, bytes, bool]:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return "400 Bad Request", "text/plain", b"bad request\n", False
        method, target, _ = parts
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"GET /metrics\n", False
        if target.split("?", 1)[0] != "/metrics":
            return "404 Not Found", "text/plain", b"GET /metrics\n", method == "HEAD"
        accept = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        encode, ctype = choose_encoder(accept)
        return "200 OK", ctype, encode(self.registry), method == "HEAD"
