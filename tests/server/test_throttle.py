"""The login and registration throttles; time is passed in."""

from __future__ import annotations

import pytest
from liaotian.server.handlers.throttle import FailureWindow, KeyedBuckets, LoginThrottle


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


# ---------------------------------------------------------------- LoginThrottle


def throttle(**kw: float) -> LoginThrottle:
    settings: dict[str, float] = {
        "free_failures": 3,
        "base_delay": 1.0,
        "max_delay": 8.0,
        "per_account": 100,
        "per_address": 20,
        "window": 900.0,
    }
    settings.update(kw)
    return LoginThrottle(**settings)  # type: ignore[arg-type]


def test_reservations_count_before_verification() -> None:
    t = throttle()
    # three parallel attempts at the same instant are admitted, the fourth is not
    assert [t.reserve("alice", "a1", 0.0) for _ in range(3)] == [None, None, None]
    assert t.reserve("alice", "a1", 0.0) == pytest.approx(1.0)
    assert t.reserve("alice", "a2", 0.0) is None  # another address has its own pair


def test_pair_delay_doubles_up_to_the_cap_and_is_forgotten_after_the_window() -> None:
    t = throttle()
    now = 0.0
    for _ in range(3):
        assert t.reserve("alice", "a1", now) is None
    waits = []
    for _ in range(6):
        wait = t.retry_after("alice", "a1", now)
        assert wait is not None
        assert t.reserve("alice", "a1", now) == pytest.approx(wait)  # refused, not counted
        waits.append(wait)
        now += wait
        assert t.reserve("alice", "a1", now) is None
    assert waits == pytest.approx([1.0, 2.0, 4.0, 8.0, 8.0, 8.0])
    assert t.retry_after("alice", "a1", now + 899.0) is None  # delay ended long ago
    assert t.retry_after("alice", "a1", now + 5.0) is not None
    # a whole window after its last failure the pair starts afresh
    assert [t.reserve("alice", "a1", now + 900.0) for _ in range(3)] == [None] * 3


def test_success_hands_the_reservation_back_and_forgets_the_pair() -> None:
    t = throttle(per_account=3)
    assert t.reserve("alice", "a1", 1.0) is None
    t.failed("alice", "a1", 1.0)
    assert t.reserve("alice", "a1", 2.0) is None
    t.failed("alice", "a1", 2.0)
    assert t.reserve("alice", "a1", 3.0) is None  # the right password, as it turns out
    t.succeeded("alice", "a1")
    assert t.retry_after("alice", "a1", 3.0) is None
    assert t.by_account.retry_after("alice", 3.0) is None  # 2 of 3: the success is not one
    assert t.reserve("alice", "a1", 4.0) is None
    t.failed("alice", "a1", 4.0)
    assert t.retry_after("alice", "a9", 4.0) == pytest.approx(897.0)  # account ceiling


def test_attempts_in_flight_hold_the_ceilings_back_briefly_not_for_the_window() -> None:
    t = throttle(per_address=3)
    # many users behind one address log in at once: the fourth waits for a verdict
    assert [t.reserve(name, "nat", 0.0) for name in ("a", "b", "c")] == [None] * 3
    assert t.reserve("d", "nat", 0.0) == pytest.approx(1.0)  # busy_wait, not 900 s
    t.succeeded("a", "nat")
    assert t.reserve("d", "nat", 0.5) is None
    for name in ("b", "c", "d"):  # all three were wrong: now the window applies
        t.failed(name, "nat", 0.5)
    assert t.reserve("e", "nat", 1.0) == pytest.approx(899.5)
    t.abandoned("x", "nowhere")  # releasing what was never held is harmless


def test_account_and_address_ceilings() -> None:
    t = throttle(per_account=4, per_address=5)
    for i in range(4):  # spread over addresses: no pair is delayed
        assert t.reserve("alice", f"a{i}", 0.0) is None
        t.failed("alice", f"a{i}", 0.0)
    assert t.reserve("alice", "a9", 1.0) == pytest.approx(899.0)
    assert t.reserve("bob", "a9", 1.0) is None  # other accounts are not affected
    t.failed("bob", "a9", 1.0)
    for name in ("c", "d", "e", "f"):
        t.reserve(name, "a1", 2.0)  # a1 now has 5 failures over all accounts, from 0.0 on
        t.failed(name, "a1", 2.0)
    assert t.reserve("g", "a1", 3.0) == pytest.approx(897.0)
    assert t.reserve("g", "a2", 3.0) is None


def test_pairs_are_bounded_in_number() -> None:
    t = LoginThrottle(
        free_failures=0,
        base_delay=1.0,
        max_delay=1.0,
        per_account=100,
        per_address=100,
        window=900.0,
        max_keys=2,
    )
    for name in ("a", "b", "c"):
        assert t.reserve(name, "x", 0.0) is None
    assert t.retry_after("a", "x", 0.5) is None  # the oldest pair was dropped
    assert t.retry_after("c", "x", 0.5) == pytest.approx(0.5)


# ---------------------------------------------------------------- KeyedBuckets


def test_keyed_buckets_per_key_and_bounded() -> None:
    b = KeyedBuckets(rate=0.5, burst=2.0, max_keys=2)
    assert b.take("a", 0.0) is None
    assert b.take("a", 0.0) is None
    assert b.take("a", 0.0) == pytest.approx(2.0)  # one token per 2 s
    assert b.take("a", 2.0) is None
    assert b.take("b", 2.0) is None  # its own bucket
    assert b.take("c", 2.0) is None  # "a" (least recently used) is dropped...
    assert b.take("a", 2.0) is None  # ...and starts afresh with a full burst


# --------------------------------------------------------------------------- WriteBudget


def test_write_budget_counts_requests_and_rows_per_user_with_time_passed_in() -> None:
    from liaotian.server.handlers.throttle import WriteBudget

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
    from liaotian.server.handlers.throttle import WriteBudget

    b = WriteBudget(1.0, 1.0, 1.0, 10.0, max_users=2)
    assert b.rows(1, 0.0, 10) is None and b.rows(2, 0.0, 10) is None
    assert b.rows(1, 0.0, 1) is not None  # user 1 used last
    assert b.rows(3, 0.0, 1) is None  # evicts user 2 (least recently used), not user 1
    assert b.rows(1, 0.0, 1) is not None
    assert b.rows(2, 0.0, 10) is None  # a fresh, full bucket
