"""Read-ahead for downloads: a download's next ranges read in one hop to the media pool.

A client downloads a blob as DOWNLOADs of one length at consecutive offsets, several in
flight (SPEC.md 27.3). Reading each range in a hop of its own costs the event loop a
thread hand-off per range; here the first DOWNLOAD of a run reads `count` ranges at once,
the next ones are answered from them, and the next `count` are read (in the pool, without
waiting) when the last range of a window is taken, so the disk stays ahead of the socket.

A window belongs to one connection and blob (`key`). Who may read what and how many bytes
a user may download are decided by the handler before each range is asked for here: reading
ahead only reads sooner what the same user may read anyway. Held bytes are bounded by
`max_bytes` over all windows: beyond it the least recently used windows are dropped (a
request they would have answered reads its range again). Ranges are handed out once; a
range asked for again (a retry) is read again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

__all__ = ["ReadAhead"]

ReadMany = Callable[[bytes, int, int, int], Awaitable[list[bytes]]]


@dataclass(slots=True)
class _Window:
    start: int
    length: int
    count: int
    parts: asyncio.Future[list[bytes]]
    taken: set[int] = field(default_factory=set)

    def index(self, offset: int, length: int) -> int | None:
        k, rest = divmod(offset - self.start, self.length)
        if length != self.length or rest or not 0 <= k < self.count or k in self.taken:
            return None
        return k


class ReadAhead:
    """Per (connection, blob) windows of ranges read ahead (see the module text)."""

    def __init__(self, read_many: ReadMany, *, count: int = 4, max_bytes: int = 64 << 20) -> None:
        self._read_many = read_many
        self.count = count
        self.max_bytes = max_bytes
        self._windows: OrderedDict[tuple[Hashable, int], _Window] = OrderedDict()
        self._held = 0  # bytes the windows may hold (count x length each)

    async def read(self, key: Hashable, blob: bytes, offset: int, length: int, size: int) -> bytes:
        """Bytes [offset, offset + length) of the blob (`length` already cut to `size`)."""
        if self.count <= 1:
            return (await self._read_many(blob, offset, length, 1))[0]
        here = (key, 0)
        w = self._windows.get(here)
        k = None if w is None else w.index(offset, length)
        if k is None:
            ahead = self._windows.get((key, 1))
            k = None if ahead is None else ahead.index(offset, length)
            if ahead is not None and k is not None:  # the client moved on to the next one
                self._drop(here)
                self._windows[here] = w = self._windows.pop((key, 1))
        if w is None or k is None:  # a new run, or a range no window has
            self._drop(here)
            self._drop((key, 1))
            w = self._start(here, blob, offset, length, size)
            k = 0
        w.taken.add(k)
        if k >= w.count // 2:  # half way through this window: read the next one
            nxt = w.start + w.count * w.length
            if nxt < size and (key, 1) not in self._windows:
                self._start((key, 1), blob, nxt, w.length, size)
        if len(w.taken) == w.count:
            self._drop_if(here, w)
        parts = await asyncio.shield(w.parts)
        data = parts[k] if k < len(parts) else b""
        if len(data) != length:  # the blob is not what the window expected: read as asked
            return (await self._read_many(blob, offset, length, 1))[0]
        return data

    def forget(self, key: Hashable) -> None:
        """Drop the windows of `key`'s connection (it closed)."""
        for k in [k for k in self._windows if k[0] == key]:
            self._drop(k)

    def _start(
        self, k: tuple[Hashable, int], blob: bytes, offset: int, length: int, size: int
    ) -> _Window:
        count = max(1, min(self.count, -(-(size - offset) // length)))
        fut = asyncio.ensure_future(self._read_many(blob, offset, length, count))
        fut.add_done_callback(_quiet)
        w = _Window(offset, length, count, fut)
        self._windows[k] = w
        self._held += count * length
        while self._held > self.max_bytes and len(self._windows) > 1:
            self._drop(next(iter(self._windows)))  # the least recently started
        return w

    def _drop_if(self, k: tuple[Hashable, int], w: _Window) -> None:
        if self._windows.get(k) is w:
            self._drop(k)

    def _drop(self, k: tuple[Hashable, int]) -> None:
        w = self._windows.pop(k, None)
        if w is not None:
            self._held -= w.count * w.length


def _quiet(fut: asyncio.Future[list[bytes]]) -> None:
    """A window nobody awaits any more must not log 'exception was never retrieved'."""
    if not fut.cancelled():
        with contextlib.suppress(BaseException):
            fut.exception()
