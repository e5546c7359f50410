"""Backoff: full jitter within [0, min(cap, base * 2**n)], reset, no overflow."""

from __future__ import annotations

import random

import pytest
from liaotian.client.backoff import DEFAULT_BASE, DEFAULT_CAP, Backoff


def test_defaults_match_the_brief() -> None:
    assert DEFAULT_BASE == 0.1
    assert DEFAULT_CAP == 30.0
    b = Backoff()
    assert (b.base, b.cap) == (0.1, 30.0)


def test_ceiling_doubles_until_the_cap() -> None:
    b = Backoff()
    expected = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    assert [b.ceiling(n) for n in range(len(expected))] == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(20))
def test_delays_stay_within_bounds(seed: int) -> None:
    b = Backoff(rng=random.Random(seed))
    for attempt in range(40):
        delay = b.next_delay()
        assert 0.0 <= delay <= min(30.0, 0.1 * 2**attempt)
    assert b.attempts == 40


def test_delays_are_jittered_over_the_whole_window() -> None:
    """Full jitter: the draws spread over [0, ceiling], not clustered near the ceiling."""
    rng = random.Random(1234)
    draws = []
    for _ in range(2000):
        b = Backoff(rng=rng)
        for _ in range(10):
            b.next_delay()
        draws.append(b.next_delay())  # attempt 10: ceiling is the 30 s cap
    assert len(set(draws)) == len(draws)
    assert min(draws) < 3.0 and max(draws) > 27.0
    assert 12.0 < sum(draws) / len(draws) < 18.0  # mean of U(0, 30) is 15


def test_reset_starts_over() -> None:
    b = Backoff(rng=random.Random(0))
    for _ in range(12):
        b.next_delay()
    b.reset()
    assert b.attempts == 0
    assert b.next_delay() <= 0.1


def test_huge_attempt_numbers_do_not_overflow() -> None:
    b = Backoff()
    assert b.ceiling(10_000) == 30.0
    assert b.ceiling(2**40) == 30.0


def test_custom_parameters_and_validation() -> None:
    b = Backoff(base=1.0, cap=5.0, factor=3.0, rng=random.Random(7))
    assert [b.ceiling(n) for n in range(4)] == [1.0, 3.0, 5.0, 5.0]
    with pytest.raises(ValueError):
        Backoff(base=0)
    with pytest.raises(ValueError):
        Backoff(cap=-1)
    with pytest.raises(ValueError):
        Backoff(factor=0.5)
    with pytest.raises(ValueError):
        b.ceiling(-1)
