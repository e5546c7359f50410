"""SYNC paging, going live, the sync/push hand-over, ordering on one connection, ACK and
resync after pruning."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from liaotian.protocol import Ack, Error, ErrorCode, Sent, Sync, Updates
from rawclient import messages_of


def seqs(pages) -> list[int]:
    return [u.seq for u in messages_of(pages)]


async def test_offline_user_gets_everything_in_pages_then_live(server, clients) -> None:
    alice = await clients.user(server, "alice")
    await clients.register(server, "bob")
    sent = [await alice.send("bob", f"m{i}") for i in range(1, 11)]
    assert [s.seq for s in sent] == list(range(1, 11))

    bob = await clients.anonymous(server)
    auth = await bob.login("bob")
    assert (auth.head, auth.acked) == (10, 0)
    # not live yet: a message committed now is not pushed before the sync completes
    await alice.send("bob", "m11")
    await bob.assert_no_push()

    pages = []
    since = 0
    while True:
        page = await bob.sync(since, limit=3)
        pages.append(page)
        assert len(page.updates) <= 3
        assert page.head == 11
        if not page.more:
            break
        since = page.updates[-1].seq
    assert [p.more for p in pages] == [True, True, True, False]
    assert [len(p.updates) for p in pages] == [3, 3, 3, 2]
    log = messages_of(pages)
    assert [u.seq for u in log] == list(range(1, 12))
    assert [u.message.text for u in log] == [f"m{i}" for i in range(1, 12)]
    assert [u.message.pos for u in log] == list(range(1, 12))
    assert [u.message.id for u in log[:10]] == [s.id for s in sent]

    # live now: the next message is pushed, continuing right after the last page
    s12 = await alice.send("bob", "m12")
    push = await bob.next_updates()
    assert [u.seq for u in push.updates] == [12] and push.head == 12
    assert push.updates[0].message.id == s12.id
    await bob.assert_no_push()


async def test_sync_from_the_middle_and_at_head(server, clients) -> None:
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob")
    for i in range(5):
        await alice.send("bob", f"m{i}")
    for _ in range(5):
        await bob.next_updates()
    other = await clients.user(server, "bob", "d2", register=False, sync=False)
    assert seqs(await other.sync_all(3)) == [4, 5]
    page = await other.sync(5)
    assert page.updates == () and not page.more and page.head == 5
    await other.expect_error(Sync(rid=other.rid(), since=6), ErrorCode.INVALID_CURSOR)


@pytest.mark.parametrize("page_limit", [1, 7, 64])
async def test_sync_handover_race_has_no_gap_and_no_duplicate(server, clients, page_limit) -> None:
    """While alice pipelines N sends, connections of bob join one after another and page
    through bob's log: for each, the pages and the pushes that follow them carry every seq
    1..N exactly once, in order, and no page comes after a push."""
    n, window, joiners = 300, 10, 6
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob", sync=False)
    # authenticated up front, so each one starts paging the moment its turn comes
    bobs = [bob] + [
        await clients.resume(server, bob.token, sync_since=None) for _ in range(joiners - 1)
    ]
    turns = [asyncio.Event() for _ in bobs]
    sent: list[Sent] = []

    async def sender() -> None:
        for start in range(0, n, window):
            msgs = [alice.send_msg("bob", f"m{i + 1}") for i in range(start, start + window)]
            await alice.write(*msgs)
            for m in msgs:
                ans = await alice.answer(m.rid)
                assert isinstance(ans, Sent), ans
                sent.append(ans)
            for k, turn in enumerate(turns):  # joiner k starts after k/joiners of the sends
                if len(sent) >= n * k // joiners:
                    turn.set()

    async def receiver(c, turn) -> None:
        await turn.wait()
        since = 0
        while True:
            page = await c.sync(since, page_limit)
            if page.updates:
                since = page.updates[-1].seq
            if not page.more:
                break
        await c.wait_until(lambda: _last_seq(c) >= n, f"seq {n}", timeout=20)

    await asyncio.gather(sender(), *(receiver(c, t) for c, t in zip(bobs, turns, strict=True)))
    assert [s.seq for s in sent] == list(range(1, n + 1))
    assert [s.pos for s in sent] == list(range(1, n + 1))

    for k, c in enumerate(bobs):
        # everything this connection received, in arrival order
        got = []
        saw_push = False
        for m in c.log:
            if isinstance(m, Updates):
                if m.rid == 0:
                    saw_push = True
                else:
                    assert not saw_push, f"joiner {k}: a SYNC page arrived after a push"
                got.extend(m.updates)
        assert [u.seq for u in got] == list(range(1, n + 1)), f"joiner {k}"
        assert [u.message.text for u in got] == [f"m{i}" for i in range(1, n + 1)]
        assert [u.message.id for u in got] == [s.id for s in sent]
        c.pushes.clear()  # consumed through c.log above
        await c.assert_no_push()


def _last_seq(c) -> int:
    last = 0
    for m in c.log:
        if isinstance(m, Updates) and m.updates:
            last = max(last, m.updates[-1].seq)
    return last


async def test_sent_and_pushes_arrive_in_seq_order_on_one_connection(server, clients) -> None:
    """alice and bob both pipeline sends at each other: on each connection, the seqs of the
    SENT answers and pushed updates, in arrival order, are exactly 1..total."""
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob")
    rounds, per_round = 10, 20
    total = 2 * rounds * per_round

    async def talk(me, peer: str) -> None:
        for r in range(rounds):
            msgs = [me.send_msg(peer, f"{me.user}-{r}-{i}") for i in range(per_round)]
            await me.write(*msgs)
            for m in msgs:
                assert isinstance(await me.answer(m.rid, timeout=20), Sent)

    await asyncio.gather(talk(alice, "bob"), talk(bob, "alice"))
    for c in (alice, bob):
        await c.wait_until(lambda c=c: _seen(c) >= total, f"{total} entries", timeout=20)
        order = []
        for m in c.log:
            if isinstance(m, Sent):
                order.append(m.seq)
            elif isinstance(m, Updates) and m.rid == 0:
                order.extend(u.seq for u in m.updates)
        assert order == list(range(1, total + 1)), c.user


def _seen(c) -> int:
    return sum(1 for m in c.log if isinstance(m, Sent)) + sum(
        len(m.updates) for m in c.log if isinstance(m, Updates) and m.rid == 0
    )


async def test_sync_and_ack_record_the_device_position(server, clients) -> None:
    """Positions are flushed in batches (about every second) and at shutdown, so they are
    checked across a restart, where the answer is deterministic."""
    alice = await clients.user(server, "alice")
    await clients.register(server, "bob")
    for i in range(6):
        await alice.send("bob", f"m{i}")
    bob = await clients.user(server, "bob", register=False, sync=False)
    token = bob.token
    await bob.sync_all(2)  # SYNC records since=2 as the position
    await server.restart()

    bob = await clients.anonymous(server)
    auth = await bob.auth(token)
    assert (auth.head, auth.acked) == (6, 2)
    assert [(d.device, d.acked) for d in (await bob.devices()).devices] == [("d1", 2)]
    await bob.sync_all(2)
    await bob.ack(5)
    await bob.ack(4)  # positions only move forward
    await bob.ack(1)
    # ACK past head: ERROR 3003 with rid 0, the connection stays usable
    await bob.write(Ack(rid=0, seq=7))
    err = await bob.next_push()
    assert isinstance(err, Error) and err.rid == 0 and err.code == ErrorCode.INVALID_CURSOR
    await bob.barrier()  # every ACK above was processed
    await server.restart()

    bob = await clients.anonymous(server)
    auth = await bob.auth(token)
    assert (auth.head, auth.acked) == (6, 5)
    assert [(d.device, d.acked) for d in (await bob.devices()).devices] == [("d1", 5)]


async def test_reported_position_never_goes_back_during_a_commit(server, clients) -> None:
    """Regression: the commit that stores pending positions used to take them out of the
    in-memory table before COMMIT, so while it ran a device's acked read as its last
    flushed value."""
    alice = await clients.user(server, "alice")
    await clients.register(server, "bob")
    for i in range(6):
        await alice.send("bob", f"m{i}")
    bob = await clients.user(server, "bob", register=False)
    await bob.ack(5)
    await bob.barrier()
    assert [d.acked for d in (await bob.devices()).devices] == [5]

    # hold a group commit open (any commit does: touch_device, the 1 s position flush...);
    # the writer's statements run in its own thread, so the hold is a thread event
    entered, release = threading.Event(), threading.Event()

    def hold(db) -> None:
        entered.set()
        release.wait(10)

    held = asyncio.ensure_future(server.server.store.run_in_commit(hold))
    try:
        assert await asyncio.to_thread(entered.wait, 5)
        during = [d.acked for d in (await bob.devices()).devices]
        again = await clients.anonymous(server)
        during_auth = (await again.auth(bob.token)).acked
    finally:
        release.set()
        await held
    assert during == [5]
    assert during_auth == 5


async def test_second_sync_while_one_runs_is_refused_or_answered(server, clients) -> None:
    """Two pipelined SYNCs: each gets exactly one answer (UPDATES or BAD_STATE)."""
    alice = await clients.user(server, "alice", sync=False)
    s1, s2 = Sync(rid=alice.rid(), since=0), Sync(rid=alice.rid(), since=0)
    await alice.write(s1, s2)
    a1, a2 = await alice.answer(s1.rid), await alice.answer(s2.rid)
    assert isinstance(a1, Updates)
    assert isinstance(a2, Updates) or (isinstance(a2, Error) and a2.code == ErrorCode.BAD_STATE)


async def test_resync_after_the_log_was_pruned(server, clients) -> None:
    alice = await clients.user(server, "alice")
    await clients.register(server, "bob")
    for i in range(4):
        await alice.send("bob", f"old{i}")
    bob = await clients.user(server, "bob", register=False, sync=False)

    pruned = await server.server.store.prune_updates(int(time.time() * 1000) + 60_000)
    assert pruned == 2  # alice's and bob's logs

    page = await bob.sync(0)
    assert page.resync is True
    assert page.updates == () and page.head == 4 and not page.more
    # live from head: the next message is pushed with the next seq
    s = await alice.send("bob", "new")
    assert s.seq == 5
    push = await bob.next_updates()
    assert [u.seq for u in push.updates] == [5]
    assert push.updates[0].message.text == "new"
    # history still has everything
    assert [m.text for m in await bob.full_history("alice")] == [
        "old0",
        "old1",
        "old2",
        "old3",
        "new",
    ]

    # a cursor at the floor is not a resync: it continues normally
    other = await clients.user(server, "bob", "d2", register=False, sync=False)
    page = await other.sync(4)
    assert not page.resync and [u.seq for u in page.updates] == [5]
    # since > head is still an error
    await other.expect_error(Sync(rid=other.rid(), since=6), ErrorCode.INVALID_CURSOR)


async def test_resync_on_a_fresh_connection_after_restart(server, clients) -> None:
    alice = await clients.user(server, "alice")
    await clients.register(server, "bob")
    for i in range(3):
        await alice.send("bob", f"m{i}")
    await server.server.store.prune_updates(int(time.time() * 1000) + 60_000)
    await server.restart()
    bob = await clients.user(server, "bob", register=False, sync=False)
    page = await bob.sync(1)
    assert page.resync and page.head == 3
    alice2 = await clients.user(server, "alice", "d2", register=False)
    assert (await alice2.send("bob", "after")).seq == 4
    push = await bob.next_updates()
    assert [u.seq for u in push.updates] == [4]


async def test_ack_of_entries_committed_but_not_yet_published_is_accepted(server, clients) -> None:
    """A SYNC page is read from the database, which holds a batch from its COMMIT on; the
    server's caches get it a moment later. An ACK in between is checked against the
    database, not refused (found by the crash soak as 'ack 17484 is ahead of 17482')."""
    alice = await clients.user(server, "alice")
    await clients.register(server, "bob")
    for i in range(4):
        await alice.send("bob", f"m{i}")
    bob = await clients.user(server, "bob", register=False, sync=False)
    store = server.server.store
    uid = await store.user_id("bob")
    published = store.cache.heads[uid]
    store.cache.heads[uid] = 1  # as if the last batches were committed but not yet published
    try:
        page = await bob.expect(Sync(rid=bob.rid(), since=0), Updates)
        assert [u.seq for u in page.updates] == [1, 2, 3, 4] and page.head == 4
        await bob.ack(4)
        await bob.write(Ack(rid=0, seq=5))  # truly ahead of the database: refused
        err = await bob.next_push()
        assert isinstance(err, Error) and err.code == ErrorCode.INVALID_CURSOR
        await bob.barrier()
    finally:
        store.cache.heads[uid] = max(store.cache.heads[uid], published)
    assert [d.acked for d in (await bob.devices()).devices] == [4]


async def test_a_commit_published_during_a_page_read_gives_no_empty_page(
    server, clients, monkeypatch
) -> None:
    """A SYNC page read awaits the database; a commit published meanwhile may be in
    neither the read's copy of the recent tail nor its database snapshot. An empty page
    with `more` would tell the client it is caught up while the server keeps it off the
    live stream (the client asks for no next page): the server reads again instead."""
    alice = await clients.user(server, "alice")
    await clients.register(server, "bob")
    bob = await clients.user(server, "bob", register=False, sync=False)
    store = server.server.store
    real, first = store.read_updates, []

    async def racing(uid, since, limit, max_bytes=1 << 62):
        page = await real(uid, since, limit, max_bytes)
        if not first:
            first.append(page)
            await alice.send("bob", "during")  # committed and published meanwhile
        return page

    monkeypatch.setattr(store, "read_updates", racing)
    page = await bob.sync(0)
    assert first[0].updates == []
    assert [u.seq for u in page.updates] == [1] and not page.more
    s = await alice.send("bob", "live")  # and bob is live
    assert [u.seq for u in (await bob.next_updates()).updates] == [s.seq] == [2]
