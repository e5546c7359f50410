"""EventQueue: bounded without ever blocking the producer; close ends the stream."""

from __future__ import annotations

import asyncio

import pytest
from liaotian.client.events import EventQueue, MessageReceived, Resync
from liaotian.protocol import ChatMessage


async def test_fifo_and_bound() -> None:
    q: EventQueue[int] = EventQueue(2)
    assert q.put_nowait(1) and q.put_nowait(2)
    assert q.full() and q.free == 0
    assert not q.put_nowait(3)  # refused, not blocked
    assert q.put_nowait(99, force=True)  # state events bypass the bound
    assert q.qsize() == 2 and len(q) == 3
    assert [await q.get() for _ in range(3)] == [1, 2, 99]
    assert q.qsize() == 0 and not q.full()


async def test_get_waits_for_an_item() -> None:
    q: EventQueue[str] = EventQueue(4)
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.put_nowait("x")
    assert await asyncio.wait_for(getter, 5) == "x"


async def test_close_stops_iteration_and_wakes_waiters() -> None:
    q: EventQueue[int] = EventQueue(4)
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(getter, 5)
    assert not q.put_nowait(1)


async def test_close_with_error_raises_it_even_with_items_left() -> None:
    q: EventQueue[int] = EventQueue(4)
    q.put_nowait(1)
    boom = RuntimeError("logged out")
    q.close(boom)
    with pytest.raises(RuntimeError, match="logged out"):
        await q.get()
    q.close(ValueError("second close is ignored"))
    with pytest.raises(RuntimeError):
        await q.get()


def test_event_types() -> None:
    m = ChatMessage(id=1, conv=1, pos=1, sender="bob", to="alice", ts=0, cmid="c", text="hi")
    ev = MessageReceived(3, m)
    assert (ev.sender, ev.text, ev.seq) == ("bob", "hi", 3)
    assert Resync(7).head == 7
    with pytest.raises(ValueError):
        EventQueue(0)
