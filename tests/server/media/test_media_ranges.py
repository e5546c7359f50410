"""RangeSet: disjoint merged half-open ranges, checked against a set of byte offsets."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from liaotian.server.media.ranges import RangeSet


def test_touching_and_overlapping_ranges_merge() -> None:
    r = RangeSet([(0, 4), (8, 12)])
    assert list(r) == [(0, 4), (8, 12)]
    r.add(4, 8)  # touches both
    assert list(r) == [(0, 12)]
    r.add(20, 30)
    r.add(25, 40)
    r.add(15, 16)
    assert list(r) == [(0, 12), (15, 16), (20, 40)]
    r.add(0, 50)
    assert list(r) == [(0, 50)]


def test_contains_overlaps_missing_covers() -> None:
    r = RangeSet([(10, 20), (30, 40)])
    assert r.contains(10, 20) and r.contains(12, 15) and r.contains(5, 5)
    assert not r.contains(15, 25) and not r.contains(0, 10) and not r.contains(20, 30)
    assert r.overlaps(19, 31) and r.overlaps(0, 11) and not r.overlaps(20, 30)
    assert not r.overlaps(0, 10) and not r.overlaps(40, 50) and not r.overlaps(15, 15)
    assert r.missing(50) == [(0, 10), (20, 30), (40, 50)]
    assert r.missing(35) == [(0, 10), (20, 30)]
    assert r.missing(5) == [(0, 5)]
    assert RangeSet([(0, 10)]).missing(10) == []
    assert RangeSet().missing(0) == [] and RangeSet().covers(0)
    assert not r.covers(40) and RangeSet([(0, 40)]).covers(40)
    assert r.total == 20 and len(r) == 2


def test_bad_and_empty_ranges() -> None:
    r = RangeSet()
    r.add(5, 5)
    assert list(r) == []
    with pytest.raises(ValueError):
        r.add(-1, 3)
    with pytest.raises(ValueError):
        r.add(5, 4)


def test_copy_is_independent_and_equality() -> None:
    r = RangeSet([(0, 4)])
    c = r.copy()
    c.add(10, 12)
    assert r == RangeSet([(0, 4)]) and c == RangeSet([(0, 4), (10, 12)])
    assert r != c
    assert repr(r) == "RangeSet([(0, 4)])"


ranges = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 40)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(ranges, st.integers(0, 200), st.integers(0, 60), st.integers(0, 260))
def test_matches_a_set_of_offsets(adds: list[tuple[int, int]], qs: int, ql: int, size: int) -> None:
    r = RangeSet()
    model: set[int] = set()
    for start, length in adds:
        r.add(start, start + length)
        model.update(range(start, start + length))
    # invariants: sorted, disjoint, not touching, non-empty
    spans = list(r)
    for (_, e1), (s2, _) in itertools.pairwise(spans):
        assert e1 < s2
    assert all(s < e for s, e in spans)
    assert {i for s, e in spans for i in range(s, e)} == model
    assert r.total == len(model)
    q = set(range(qs, qs + ql))
    assert r.contains(qs, qs + ql) == q.issubset(model)
    assert r.overlaps(qs, qs + ql) == bool(q & model)
    gaps = {i for s, e in r.missing(size) for i in range(s, e)}
    assert gaps == set(range(size)) - model
    assert r.covers(size) == (not gaps)
