"""Fixtures for the server integration tests: a real in-process server per test (its own
temporary database, port 0) and raw protocol clients (rawclient.RawClient)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from clientpool import Clients
from liaotian.server.testing import RunningServer, run_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path) as srv:
        yield srv


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    c = Clients()
    try:
        yield c
    finally:
        await c.close_all()
