"""Helpers of the cluster tests: NATS on the machine, and several nodes in one process
over one shared store (shared.py).

The tests skip, saying why, when NATS is not reachable at LIAOTIAN_TEST_NATS
(default nats://127.0.0.1:4222).
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlparse

import pytest
from liaotian.server.app import Server
from liaotian.server.config import Config
from liaotian.server.testing import TEST_SETTINGS
from shared import SharedStore

NATS_URL = os.environ.get("LIAOTIAN_TEST_NATS", "nats://127.0.0.1:4222")


def reachable(url: str) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 4222), 0.5):
            return True
    except OSError:
        return False


def need_nats() -> None:
    if not reachable(NATS_URL):
        pytest.skip(f"NATS is not reachable at {NATS_URL} (set LIAOTIAN_TEST_NATS)")
    try:
        import nats  # noqa: F401
    except ImportError:
        pytest.skip("nats-py is not installed (pip install liaotian[cluster])")


@asynccontextmanager
async def in_process(
    n: int,
    prefix: str,
    *,
    nats_urls: list[str] | None = None,
    require_nats: bool = True,
    **overrides: Any,
) -> AsyncIterator[list[Server]]:
    """`n` nodes in this process over one shared in-memory store, routing over NATS
    (node i at `nats_urls[i]` if given)."""
    shared = SharedStore()
    nodes: list[Server] = []
    try:
        for i in range(n):
            settings = {
                **TEST_SETTINGS,
                "db_path": ":memory:",
                "admin_socket": "off",
                "cluster_nats": nats_urls[i] if nats_urls else NATS_URL,
                "cluster_node": f"n{i}",
                "cluster_prefix": prefix,
                **overrides,
            }
            srv = Server(Config().with_overrides(settings), store=shared.view())  # type: ignore[arg-type]
            await srv.start()
            nodes.append(srv)
        for srv in nodes:  # every node's NATS connection is up before the test begins
            assert srv.cluster is not None
            assert srv.cluster.bus.connected or not require_nats
        yield nodes
    finally:
        for srv in reversed(nodes):
            await srv.shutdown()
