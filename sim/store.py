"""The simulation's store: the server's real `MemoryStore`, with the timing of a real one.

`MemoryStore` commits as soon as the loop comes round and answers reads at once, so on
its own nothing ever happens *during* a commit or a read. `SimStore` gives both a
duration drawn from the seed: a group commit runs a few (virtual) milliseconds after the
first write queued since the last one, so requests arriving meanwhile share a batch; a
read of the update log or of history sees the state as of its start and answers a little
later, as a database snapshot read does, so commits land while it is under way.

Crashes: `committed_state()` takes what a crash leaves (the store's own `crash()` drops
what is queued and not committed, then a deep copy of the rest); `restored()` makes a new
store of it for the next server, so nothing the dead server's objects do later reaches
the new one; `kill()` makes the old one refuse writes.
"""

from __future__ import annotations

import asyncio
import copy
import random
from typing import TYPE_CHECKING, Any

from liaotian.server.store.contract import UpdatePage
from liaotian.server.store.memory import MemoryStore

from .loop import EPOCH

if TYPE_CHECKING:
    from .world import World

COMMIT_DELAYS = (0.0, 0.0005, 0.002, 0.005, 0.015)  # seconds from the first queued write
READ_DELAYS = (0.0, 0.0, 0.0005, 0.002, 0.008)  # seconds a snapshot read takes


class SimStore(MemoryStore):
    def __init__(self, world: World) -> None:
        loop = world.loop
        super().__init__(clock=lambda: int((EPOCH + loop.time()) * 1000), auto_commit=False)
        self._loop = loop
        self._rng: random.Random = world.store_rng
        self._commit: asyncio.TimerHandle | None = None

    def _soon(self) -> None:
        if self._commit is None:
            self._commit = self._loop.call_later(self._rng.choice(COMMIT_DELAYS), self._commit_now)

    def _commit_now(self) -> None:
        self._commit = None
        while self.queue or self.positions:
            self.commit()

    async def _takes_time(self) -> None:
        delay = self._rng.choice(READ_DELAYS)
        if delay:
            await asyncio.sleep(delay)

    async def read_updates(
        self, user_id: int, since: int, limit: int, max_bytes: int = 1 << 62
    ) -> UpdatePage:
        page = await super().read_updates(user_id, since, limit, max_bytes)
        await self._takes_time()
        return page

    async def head(self, user_id: int) -> int:
        head = await super().head(user_id)
        await self._takes_time()
        return head

    async def history(
        self,
        conv: int,
        before: int | None,
        after: int | None,
        limit: int,
        max_bytes: int = 1 << 62,
        min_pos: int = 1,
    ) -> tuple[list[bytes], bool]:
        page = await super().history(conv, before, after, limit, max_bytes, min_pos)
        await self._takes_time()
        return page


def fresh(world: World) -> SimStore:
    return SimStore(world)


def committed_state(store: SimStore) -> SimStore:
    """What survives a crash of `store`'s server: its committed state, copied."""
    store.crash()
    if store._commit is not None:
        store._commit.cancel()
        store._commit = None
    keep = store.on_committed, store._loop, store._rng, store.clock
    store.on_committed = _nothing
    store._loop = store._rng = store.clock = None  # type: ignore[assignment]
    try:
        snap = copy.deepcopy(store)
    finally:
        store.on_committed, store._loop, store._rng, store.clock = keep
    return snap


def restored(world: World, snap: SimStore) -> SimStore:
    """A store for the next server, over the committed state of `snap` (which it takes)."""
    new = snap
    loop = world.loop
    new._loop = loop
    new._rng = world.store_rng
    new.clock = lambda: int((EPOCH + loop.time()) * 1000)
    new._accepting = False  # open() is the server's
    return new


def kill(store: SimStore) -> None:
    """The crashed server's store: it takes no more writes."""
    store._accepting = False
    store.crash()


def _nothing(ops: list[Any]) -> None:
    return None
