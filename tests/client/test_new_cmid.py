"""The reference client's default cmids: valid, unique, and growing over time."""

from __future__ import annotations

import time

from liaotian.client import new_cmid
from liaotian.protocol.limits import DEFAULT_LIMITS


def test_new_cmids_are_valid_unique_and_grow_with_time() -> None:
    first = [new_cmid() for _ in range(1000)]
    assert len(set(first)) == 1000
    assert all(len(c) == 32 and c[0] != "#" and int(c, 16) >= 0 for c in first)
    assert all(len(c) <= DEFAULT_LIMITS.max_cmid_len for c in first)
    newest = max(int(c[:12], 16) for c in first)
    while time.time_ns() // 1_000_000 <= newest:  # the next millisecond, by the clock
        pass
    later = new_cmid()
    assert later[:12] > max(c[:12] for c in first)  # the time part orders them
    assert abs(int(later[:12], 16) - time.time_ns() // 1_000_000) < 5_000
