"""FailureWindow: at most N failures per key inside a sliding window; time is passed in."""

from __future__ import annotations

import pytest
from liaotian.server.services.throttle import FailureWindow


def test_allows_until_the_limit_then_throttles() -> None:
    w = FailureWindow(3, 10.0)
    assert w.retry_after("alice", 0.0) is None
    w.fail("alice", 0.0)
    w.fail("alice", 1.0)
    assert w.retry_after("alice", 1.5) is None  # 2 of 3
    w.fail("alice", 2.0)
    assert w.retry_after("alice", 2.0) == pytest.approx(8.0)  # until the oldest leaves
    assert w.retry_after("alice", 9.5) == pytest.approx(0.5)


def test_window_slides() -> None:
    w = FailureWindow(3, 10.0)
    for t in (0.0, 1.0, 2.0):
        w.fail("k", t)
    assert w.retry_after("k", 9.999) is not None
    assert w.retry_after("k", 10.0) is None  # the failure at 0.0 left the window
    w.fail("k", 10.0)  # back to three inside (1, 2, 10)
    assert w.retry_after("k", 10.0) == pytest.approx(1.0)
    assert w.retry_after("k", 12.0) is None  # only 10.0 is left
    assert w.retry_after("k", 20.0) is None


def test_keys_are_independent_and_clear_resets() -> None:
    w = FailureWindow(2, 60.0)
    w.fail("alice", 0.0)
    w.fail("alice", 0.0)
    w.fail("bob", 0.0)
    assert w.retry_after("alice", 1.0) == pytest.approx(59.0)
    assert w.retry_after("bob", 1.0) is None
    w.clear("alice")
    assert w.retry_after("alice", 1.0) is None
    w.clear("never-seen")  # harmless


def test_retry_after_is_positive_at_the_edge() -> None:
    w = FailureWindow(1, 5.0)
    w.fail("k", 100.0)
    ra = w.retry_after("k", 104.9999999)
    assert ra is not None and ra > 0
    assert w.retry_after("k", 105.0) is None


def test_failures_beyond_the_limit_keep_only_the_newest() -> None:
    w = FailureWindow(2, 10.0)
    for t in (0.0, 1.0, 2.0, 3.0):
        w.fail("k", t)
    # throttled until the older of the two newest (2.0) leaves the window
    assert w.retry_after("k", 4.0) == pytest.approx(8.0)
    assert w.retry_after("k", 12.5) is None


def test_memory_is_bounded_by_max_keys() -> None:
    w = FailureWindow(1, 10.0, max_keys=3)
    for k in ("a", "b", "c", "d"):
        w.fail(k, 0.0)
    assert w.retry_after("a", 1.0) is None  # the oldest key was dropped
    assert all(w.retry_after(k, 1.0) is not None for k in ("b", "c", "d"))


# --------------------------------------------------------------------------- WriteBudget


def test_write_budget_counts_requests_and_rows_per_user_with_time_passed_in() -> None:
    from liaotian.server.services.throttle import WriteBudget

    b = WriteBudget(request_rate=1.0, request_burst=2.0, rows_rate=10.0, rows_burst=100.0)
    assert b.request(1, 0.0) is None and b.request(1, 0.0) is None
    assert b.request(1, 0.0) == 1.0  # the third request waits for one token
    assert b.request(2, 0.0) is None  # another user has their own budget
    assert b.rows(1, 0.0, 100) is None
    assert b.rows(1, 0.0, 1) == 0.1
    # out of rows: even a request with tokens to spare waits for one row
    assert b.rows(3, 0.0, 100) is None
    assert b.request(3, 0.0) == 0.1
    b.refund_rows(1, 50)
    assert b.rows(1, 5.0, 100) is None  # 50 refunded + 50 refilled in 5 s
    assert b.rows(1, 5.0, 101) is not None


def test_write_budget_forgets_the_least_recently_used_user_beyond_its_bound() -> None:
    from liaotian.server.services.throttle import WriteBudget

    b = WriteBudget(1.0, 1.0, 1.0, 10.0, max_users=2)
    assert b.rows(1, 0.0, 10) is None and b.rows(2, 0.0, 10) is None
    assert b.rows(1, 0.0, 1) is not None  # user 1 used last
    assert b.rows(3, 0.0, 1) is None  # evicts user 2 (least recently used), not user 1
    assert b.rows(1, 0.0, 1) is not None
    assert b.rows(2, 0.0, 10) is None  # a fresh, full bucket
