"""Fixtures for the fault-injection tests.

The raw protocol client of the integration tests (tests/integration/rawclient.py and
socialclient.py) is reused as is: its directory is put on sys.path here, so these tests
also run on their own (`pytest tests/faults`)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

_INTEGRATION = str(Path(__file__).resolve().parents[1] / "integration")
if _INTEGRATION not in sys.path:
    sys.path.append(_INTEGRATION)

from faultkit import Opened  # noqa: E402  (needs the path above)


@pytest.fixture
async def opened() -> AsyncIterator[Opened]:
    """Raw clients, sockets and proxies a test opens; all closed when it ends."""
    o = Opened()
    try:
        yield o
    finally:
        await o.close_all()
