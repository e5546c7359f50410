"""Fixtures of the cluster tests: a NATS subject prefix of each test's own (helpers in
nodes.py: NATS and the nodes in one process)."""

from __future__ import annotations

import uuid

import pytest
from nodes import need_nats


@pytest.fixture
def prefix() -> str:
    """NATS subjects of this test only: tests (and CI runs) sharing a NATS never meet."""
    need_nats()
    return f"lt-{uuid.uuid4().hex[:12]}"
