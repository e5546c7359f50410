"""The reader scheduler's fairness, without a database: connections are plain strings."""

from __future__ import annotations

import asyncio

import pytest
from liaotian.server.store.contract import read_owner
from liaotian.server.store.sqlite.readers import FairReaders


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_free_connection_is_handed_out_at_once() -> None:
    r = FairReaders(["c0", "c1"])
    assert await r.acquire("a") == "c0"  # the first stays on top while idle
    assert await r.acquire("a") == "c1"
    r.release("c1")
    assert await r.acquire("b") == "c1"  # the one used last (warmest) goes out next


async def test_owners_are_served_round_robin_not_in_arrival_order() -> None:
    """A owns 250 queued reads, B and C one each, queued after all of A's: B and C are
    served within the next round, not after A's 250."""
    r = FairReaders(["c0"])
    held = await r.acquire("a")
    order: list[str] = []

    async def read(owner: str, tag: str) -> None:
        conn = await r.acquire(owner)
        order.append(tag)
        r.release(conn)

    tasks = [asyncio.ensure_future(read("a", f"a{i}")) for i in range(250)]
    tasks += [asyncio.ensure_future(read("b", "b0")), asyncio.ensure_future(read("c", "c0"))]
    await settle()
    assert r.queued == 252 and order == []
    r.release(held)
    await asyncio.gather(*tasks)
    assert order[:3] == ["a0", "b0", "c0"]
    assert order[3:] == [f"a{i}" for i in range(1, 250)]  # A's own reads stay in order


async def test_each_owner_gets_one_turn_per_round() -> None:
    r = FairReaders(["c0", "c1"])
    held = [await r.acquire(None), await r.acquire(None)]
    order: list[str] = []

    async def read(owner: str, tag: str) -> None:
        async with r.reader(owner):
            order.append(tag)
            await asyncio.sleep(0)

    tasks = [
        asyncio.ensure_future(read(o, f"{o}{i}"))
        for o, n in (("a", 3), ("b", 2), ("c", 1))
        for i in range(n)
    ]
    await settle()
    for c in held:
        r.release(c)
    await asyncio.gather(*tasks)
    assert order == ["a0", "b0", "c0", "a1", "b1", "a2"]


async def test_a_cancelled_waiter_leaves_the_queue_and_loses_no_connection() -> None:
    r = FairReaders(["c0"])
    held = await r.acquire("a")
    gone = asyncio.ensure_future(r.acquire("b"))
    kept = asyncio.ensure_future(r.acquire("c"))
    await settle()
    gone.cancel()
    await settle()
    assert r.queued == 1
    r.release(held)
    assert await kept == "c0"
    r.release("c0")
    assert await r.acquire("d") == "c0"


async def test_a_waiter_cancelled_after_the_hand_over_gives_the_connection_back() -> None:
    r = FairReaders(["c0"])
    held = await r.acquire("a")
    late = asyncio.ensure_future(r.acquire("b"))
    await settle()
    r.release(held)  # handed to `late`, which has not run yet
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    assert await asyncio.wait_for(r.acquire("c"), 1) == "c0"


async def test_the_owner_comes_from_the_context() -> None:
    """The router sets read_owner per request; a task started there inherits it."""
    seen: list[object] = []

    async def handler() -> None:
        seen.append(read_owner.get())

    token = read_owner.set(42)
    try:
        task = asyncio.ensure_future(handler())
    finally:
        read_owner.reset(token)
    await task
    assert seen == [42] and read_owner.get() is None
