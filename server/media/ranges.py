"""Which byte ranges of an upload are held: a set of disjoint half-open ranges.

Ranges are `[start, end)` with `0 <= start < end`, kept sorted and merged (touching ranges
join: `[0, 4)` and `[4, 8)` are held as `[0, 8)`). Pure data, shared by the upload rules
(what the server answers about an upload) and the blob store (what its journal says is
on disk).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

__all__ = ["RangeSet"]


class RangeSet:
    """Disjoint, merged half-open byte ranges."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        """Hold `[start, end)`; an empty range is ignored."""
        if start < 0 or end < start:
            raise ValueError(f"bad range [{start}, {end})")
        if start == end:
            return
        # every range touching or overlapping [start, end) merges into one
        i = bisect_left(self._ends, start)  # first range whose end >= start
        j = bisect_right(self._starts, end)  # ranges before j start at or before end
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def contains(self, start: int, end: int) -> bool:
        """Whether every byte of `[start, end)` is held (an empty range is)."""
        if start >= end:
            return True
        i = bisect_right(self._starts, start) - 1
        return i >= 0 and self._ends[i] >= end

    def overlaps(self, start: int, end: int) -> bool:
        """Whether any byte of `[start, end)` is held."""
        if start >= end:
            return False
        i = bisect_right(self._ends, start)  # first range ending after start
        return i < len(self._starts) and self._starts[i] < end

    def missing(self, size: int) -> list[tuple[int, int]]:
        """The ranges of `[0, size)` not held, in order."""
        gaps: list[tuple[int, int]] = []
        at = 0
        for start, end in self:
            if start >= size:
                break
            if start > at:
                gaps.append((at, start))
            at = max(at, end)
        if at < size:
            gaps.append((at, size))
        return gaps

    def covers(self, size: int) -> bool:
        """Whether all of `[0, size)` is held."""
        return self.contains(0, size)

    @property
    def total(self) -> int:
        """Bytes held."""
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(zip(self._starts, self._ends, strict=True))

    def __len__(self) -> int:
        return len(self._starts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return self._starts == other._starts and self._ends == other._ends

    __hash__ = None  # type: ignore[assignment]  # mutable

    def copy(self) -> RangeSet:
        new = RangeSet()
        new._starts = list(self._starts)
        new._ends = list(self._ends)
        return new

    def __repr__(self) -> str:
        return f"RangeSet({list(self)!r})"
