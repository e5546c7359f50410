"""The chat list costs what its page costs (issue 11, item 16): a user with hundreds of
conversations pages their chat list, and has their delivered position looked up, in
about as many database steps as a user with a handful. Counted in SQLite virtual-machine
steps on the store's reader connections (a progress handler), not in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest
from liaotian.server.chat.ops import LeaveGroup
from liaotian.server.store.sqlite import SQLiteStore
from test_contract import Driver

MANY, FEW, PAGE = 600, 5, 20


@pytest.fixture
async def d(tmp_path: Path) -> AsyncIterator[Driver]:
    store = SQLiteStore(str(tmp_path / "cost.db"))
    await store.open()
    driver = Driver(store)
    try:
        yield driver
    finally:
        await driver.store.close()  # a test may have reopened it


async def steps(store: SQLiteStore, read: Awaitable[Any]) -> tuple[int, Any]:
    """The VM steps (in hundreds) the store's readers take for one read, and its answer."""
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    for conn in store.readers.conns:
        await conn.set_progress_handler(tick, 100)
    try:
        answer = await read
    finally:
        for conn in store.readers.conns:
            await conn.set_progress_handler(None, 0)
    return count[0], answer


async def test_a_page_of_the_chat_list_costs_the_same_for_many_conversations(
    d: Driver, tmp_path: Path
) -> None:
    peers = [f"p{i}" for i in range(MANY)]
    busy, quiet, *_ = await d.users("busy", "quiet", *peers)
    # busy hears from every peer (each its own conversation), quiet from a few
    for rnd in range(2):
        await d.run(*[d.send(p, "busy", f"r{rnd}") for p in peers])
    await d.run(*[d.send(p, "quiet", "hi") for p in peers[:FEW]])
    await d.store.close()  # a clean close folds the tail: all of it is in the index
    store = SQLiteStore(str(tmp_path / "cost.db"))
    await store.open()
    d.store = store
    busy_cost, busy_rows = await steps(store, store.conversations_of(busy, PAGE, None))
    quiet_cost, quiet_rows = await steps(store, store.conversations_of(quiet, PAGE, None))
    assert len(busy_rows) == PAGE + 1 and len(quiet_rows) == FEW
    # ordering all 600 conversations cost ~50x (measured: 355 vs 7); a page of 21 rows
    # against 5 costs a few times more
    assert busy_cost <= 6 * max(quiet_cost, 1), (busy_cost, quiet_cost)
    assert len(store.tail) == 0
    # the delivered position of a conversation busy's device acknowledged: a lookup
    assert await store.set_device_token(busy, "phone", b"b" * 32) == 0
    store.record_position(busy, "phone", await store.head(busy))
    oldest = busy_rows[-1][0]
    cost, pos = await steps(store, store.delivered_pos(busy, oldest))
    assert pos == 2 and cost <= 2, cost


async def next_ms() -> None:
    """Return once the wall clock's millisecond (a commit's timestamp) has moved on."""
    start = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 == start:
        await asyncio.sleep(0.0005)


async def test_the_chat_list_reads_the_tail_before_its_rows_are_folded(d: Driver) -> None:
    """Rows still in the update-log tail (not folded into the index) order the list too,
    and a tail conversation the user left is not listed."""
    _alice, bob, carol = await d.users("alice", "bob", "carol")
    store = d.store
    assert isinstance(store, SQLiteStore)
    store.tail.fold_age_ms = 1 << 40  # nothing folds during the test
    g = await d.group("alice", "bob", "carol")
    direct = (await d.one(d.send("carol", "bob", "c1"))).result.conv
    await next_ms()  # keys are (ms, conv): each commit below in a later millisecond
    await d.run(d.send("alice", text="g1", group=g))
    assert len(store.tail) > 0
    assert [r[0] for r in await store.conversations_of(bob, 10, None)] == [g, direct]
    await next_ms()
    await d.one(d.send("carol", "bob", "c2"))
    rows = await store.conversations_of(bob, 10, None)
    assert [r[0] for r in rows] == [direct, g] and rows[0][6] == 2
    assert [r[0] for r in await store.conversations_of(bob, 0, None)] == [direct]
    first = (rows[0][4], rows[0][0])
    assert [r[0] for r in await store.conversations_of(bob, 10, first)] == [g]
    await next_ms()
    left = await d.one(d.send("alice", text="g2", group=g))
    assert left.error is None
    assert (await d.one(LeaveGroup(actor=bob, group=g))).error is None
    assert [r[0] for r in await store.conversations_of(bob, 10, None)] == [direct]
    assert [r[0] for r in await store.conversations_of(carol, 10, None)] == [g, direct]
