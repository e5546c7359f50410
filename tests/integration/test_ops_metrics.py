"""The Prometheus endpoint (issue 16, item 5): off by default; on its own port it serves
every family README.md lists, and the counters move with real traffic. The sample Grafana
dashboard asks only for metrics the server serves."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from clientpool import Clients
from liaotian.protocol import Close
from liaotian.server.app import Server, StartupError
from liaotian.server.config import Config
from liaotian.server.testing import TEST_SETTINGS, RunningServer, run_server
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 5.0

FAMILIES = {
    "liaotian_build_info",
    "liaotian_start_time_seconds",
    "liaotian_connections",
    "liaotian_users_online",
    "liaotian_connections_opened",
    "liaotian_connections_authenticated",
    "liaotian_connections_closed",
    "liaotian_frames_received",
    "liaotian_frames_sent",
    "liaotian_sync_pages",
    "liaotian_update_pushes",
    "liaotian_errors",
    "liaotian_throttled",
    "liaotian_slow_consumer_evictions",
    "liaotian_messages_committed",
    "liaotian_commits",
    "liaotian_commit_batch_size",
    "liaotian_commit_duration_seconds",
    "liaotian_fanout_recipients",
    "liaotian_write_queue_depth",
    "liaotian_outbound_buffered_bytes",
    "liaotian_update_journal_rows",
    "liaotian_checkpoints",
    "liaotian_wal_restarts",
    "liaotian_database_size_bytes",
    "liaotian_wal_size_bytes",
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def http_get(port: int, path: str = "/metrics") -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return head.split("\r\n")[0], body


async def scrape(srv: RunningServer) -> tuple[set[str], Samples]:
    assert srv.server is not None and srv.server.ops.metrics is not None
    status, body = await http_get(srv.server.ops.metrics.port)
    assert status == "HTTP/1.1 200 OK", status
    families, samples = set(), {}
    for fam in text_string_to_metric_families(body):
        families.add(fam.name)
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def value(samples: Samples, metric: str, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


async def until(srv: RunningServer, cond: Callable[[Samples], bool], what: str) -> Samples:
    """Scrape until cond holds (a counter that moves after the socket closed, say)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            _, samples = await scrape(srv)
            if cond(samples):
                return samples
            await asyncio.sleep(0.01)
    raise AssertionError(what)  # pragma: no cover


async def test_metrics_are_off_by_default(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        assert srv.server is not None and srv.server.ops.metrics is None
        assert Config().metrics_port == -1


async def test_the_endpoint_serves_every_family_and_counts_a_sent_message(
    tmp_path: Path, clients: Clients
) -> None:
    async with run_server(tmp_path, metrics_port=0) as srv:
        alice = await clients.user(srv, "alice")
        bob = await clients.user(srv, "bob")
        families, before = await scrape(srv)
        assert families >= FAMILIES, FAMILIES - families
        assert "process_cpu_seconds" in families  # the library's standard families too
        assert value(before, "liaotian_connections", state="authenticated") == 2
        assert value(before, "liaotian_users_online") == 2

        await alice.send("bob", "hello")
        await bob.next_updates()
        _, after = await scrape(srv)

        def moved(metric: str, **labels: str) -> float:
            return value(after, metric, **labels) - value(before, metric, **labels)

        assert moved("liaotian_frames_received_total", type="SEND") == 1
        assert moved("liaotian_messages_committed_total") == 1
        assert moved("liaotian_frames_sent_total", type="SENT") == 1
        assert moved("liaotian_update_pushes_total") == 1  # bob's live UPDATES
        assert moved("liaotian_frames_sent_total", type="UPDATES") == 1
        assert moved("liaotian_fanout_recipients_count") == 1
        assert moved("liaotian_fanout_recipients_bucket", le="1.0") == 1
        assert moved("liaotian_commits_total") >= 1
        assert moved("liaotian_commit_duration_seconds_count") >= 1
        assert moved("liaotian_commit_batch_size_count") >= 1
        assert value(after, "liaotian_database_size_bytes") > 0
        # sync pages: each client synced once when it logged in
        assert value(after, "liaotian_sync_pages_total") == 2
        assert value(after, "liaotian_frames_received_total", type="SYNC") == 2


async def test_errors_and_closes_are_counted_by_code(tmp_path: Path, clients: Clients) -> None:
    async with run_server(tmp_path, metrics_port=0) as srv:
        alice = await clients.user(srv, "alice")
        await alice.expect_error(alice.send_msg("nobody", "hi"), 3001)  # after the commit
        await alice.expect_error(alice.send_msg("Not A Name", "hi"), 3001)  # at once
        _, samples = await scrape(srv)
        assert value(samples, "liaotian_errors_total", code="3001", name="UNKNOWN_USER") == 2
        assert value(samples, "liaotian_frames_sent_total", type="ERROR") == 2

        await alice.write(Close(rid=0, code=1000, reason="bye"))
        await alice.expect_eof()
        await until(
            srv,
            lambda s: (
                value(s, "liaotian_connections_closed_total", code="1000", reason="normal") == 1
            ),
            "the close counted",
        )
        raw = await clients.anonymous(srv)  # ends without a CLOSE
        await raw.close()
        await until(
            srv,
            lambda s: value(s, "liaotian_connections_closed_total", code="0", reason="none") == 1,
            "the reset counted",
        )


async def test_other_paths_are_not_found(tmp_path: Path) -> None:
    async with run_server(tmp_path, metrics_port=0) as srv:
        assert srv.server is not None and srv.server.ops.metrics is not None
        status, _ = await http_get(srv.server.ops.metrics.port, "/")
        assert status == "HTTP/1.1 404 Not Found"


async def test_a_taken_metrics_port_stops_the_start(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        config = Config().with_overrides(
            {
                **TEST_SETTINGS,
                "db_path": str(tmp_path / "l.db"),
                "metrics_port": taken.getsockname()[1],
            }
        )
        server = Server(config)
        with pytest.raises(StartupError, match=r"cannot serve metrics on 127\.0\.0\.1:"):
            await server.start()
    finally:
        taken.close()
    async with run_server(tmp_path):  # nothing was left holding the database
        pass


async def test_the_grafana_dashboard_asks_only_for_served_metrics(tmp_path: Path) -> None:
    dashboard = json.loads((ROOT / "packaging" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    used = {m for e in exprs for m in re.findall(r"\b(liaotian_[a-z_]+)", e)}
    async with run_server(tmp_path, metrics_port=0) as srv:
        assert srv.server is not None and srv.server.ops.metrics is not None
        _, body = await http_get(srv.server.ops.metrics.port)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    served = {
        fam.name + suffix
        for fam in text_string_to_metric_families(body)
        for suffix in suffixes.get(fam.type, ("",))
    }
    assert used <= served, used - served
