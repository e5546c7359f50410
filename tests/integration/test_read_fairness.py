"""One user's pipelined reads cannot starve another user's: the store serves reads per user
in turn (store/readers.py). Checked by the order in which the database runs the reads (a
trace of the reader connections), not by time."""

from __future__ import annotations

import asyncio
from typing import Any

from liaotian.protocol.messages import History, HistoryPage
from liaotian.protocol.social import ConversationList, GroupCreate, ListConversations
from liaotian.server.testing import RunningServer

GROUPS = 100
LISTS = 250


async def test_another_users_read_runs_before_a_pipelined_burst_ends(
    server: RunningServer, clients: Any
) -> None:
    a = await clients.user(server, "alice")
    b = await clients.user(server, "bob")
    await b.send("bob", "a note to self")  # bob has a conversation to page
    creates = [GroupCreate(rid=a.rid(), name=f"g{i}", members=()) for i in range(GROUPS)]
    await a.write(*creates)
    for m in creates:
        await a.answer(m.rid)

    assert server.server is not None
    store = server.server.store
    conns = store.readers.conns
    ran: list[str] = []  # every statement the readers run, in the order they run them
    for conn in conns:
        await conn.set_trace_callback(ran.append)
    try:
        tasks = server.server.router.tasks
        lists = [ListConversations(rid=a.rid(), limit=20) for _ in range(LISTS)]
        await a.write(*lists)
        # every one of alice's requests is running (waiting for the store) before bob asks
        while len(tasks) < LISTS and not ran:
            await asyncio.sleep(0)
        hist = History(rid=b.rid(), with_user="bob", limit=10)
        await b.write(hist)
        page = await b.answer(hist.rid)
        assert isinstance(page, HistoryPage) and len(page.messages) == 1
        for m in lists:
            assert isinstance(await a.answer(m.rid), ConversationList)
    finally:
        for conn in conns:
            await conn.set_trace_callback(None)

    lists_run = [i for i, s in enumerate(ran) if s.startswith("SELECT conv_id, ts FROM chats")]
    bobs = [i for i, s in enumerate(ran) if s.startswith("SELECT body FROM messages")]
    assert len(lists_run) == LISTS and len(bobs) == 1
    # Served in turn, bob's one read waits at most for the reads already running on a
    # connection; served in arrival order, it waited for all of alice's queued ones.
    assert bobs[0] < lists_run[10], (bobs[0], lists_run[:12])
