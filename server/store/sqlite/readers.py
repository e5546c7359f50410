"""A fair scheduler for the store's reader connections.

The store reads through a few SQLite connections (WAL lets them all read beside the
writer). Every read takes one connection for one statement: each statement is its own
autocommit transaction, so each read still sees one consistent snapshot, taken when it
starts on its connection (the tail's "copy the tail, then ask the database" rule in
tail.py holds: a read queued here starts later, never earlier, than the copy).

Reads are owned by whoever asked (a user id, or a connection not yet authenticated; see
`read_owner` in store/contract.py). When every connection is busy, each owner's reads
wait in a FIFO of its own and the owners are served round-robin: an owner with 250 queued
reads gets one connection turn per round like an owner with one, so one account's reads
cannot starve the others'.
Nothing is refused: an owner's queue is bounded by what it can have in flight (each
connection's `max_inflight_requests`), and it only ever delays itself.

A free connection with nobody waiting is handed out at once, without a queue hop.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

C = TypeVar("C")


class FairReaders(Generic[C]):
    """Hands out a fixed set of connections to owners, one per read, round-robin."""

    def __init__(self, conns: list[C]) -> None:
        self.conns = list(conns)
        self._free: list[C] = conns[::-1]  # a stack: the connection used last (its page
        # cache warmest) is handed out next
        # owner -> its waiting reads, in arrival order; the dict's order is the rotation
        self._waiting: OrderedDict[Hashable | None, deque[asyncio.Future[C]]] = OrderedDict()

    def add(self, conn: C) -> None:
        """One more connection (the store opens them one by one)."""
        self.conns.append(conn)
        self._free.insert(0, conn)  # the first stays on top: an idle store reads on one
        self._dispatch()

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    async def acquire(self, owner: Hashable | None) -> C:
        """A connection for one read of `owner`'s; give it back with release()."""
        if self._free and not self._waiting:
            return self._free.pop()
        assert self.conns, "no reader connections (the store is not open)"
        fut: asyncio.Future[C] = asyncio.get_running_loop().create_future()
        q = self._waiting.get(owner)
        if q is None:
            q = self._waiting[owner] = deque()
        q.append(fut)
        self._dispatch()
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed over, then cancelled: give back
                self.release(fut.result())
            else:
                self._forget(owner, fut)
            raise

    def reset(self) -> list[C]:
        """Take every connection out (the store closes them); nobody may be waiting."""
        conns, self.conns, self._free = self.conns, [], []
        return conns

    def release(self, conn: C) -> None:
        self._free.append(conn)
        self._dispatch()

    @asynccontextmanager
    async def reader(self, owner: Hashable | None = None) -> AsyncIterator[C]:
        conn = await self.acquire(owner)
        try:
            yield conn
        finally:
            self.release(conn)

    def _dispatch(self) -> None:
        """Give free connections to the owners at the front of the rotation, one each;
        an owner with more waiting goes to the back."""
        while self._free and self._waiting:
            owner, q = next(iter(self._waiting.items()))
            fut = q.popleft()
            if q:
                self._waiting.move_to_end(owner)
            else:
                del self._waiting[owner]
            if not fut.done():
                fut.set_result(self._free.pop())

    def _forget(self, owner: Hashable | None, fut: asyncio.Future[C]) -> None:
        q = self._waiting.get(owner)
        if q is not None and fut in q:
            q.remove(fut)
            if not q:
                del self._waiting[owner]
