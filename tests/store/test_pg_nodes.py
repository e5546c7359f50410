"""Two nodes on one PostgreSQL database (issue 17, item 3): two PostgresStore instances
write for the same users and the same group at once; every user's log, every
conversation's positions and the message ids stay gap-free and strictly increasing, and
every acknowledged send is stored exactly once. Skipped without PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest
from liaotian.server.chat.ops import SendRequest
from liaotian.server.store.postgres import PostgresStore
from liaotian.server.store.postgres.scratch import scratch_schema, unreachable
from test_contract import Driver

ROUNDS = 15
PER_ROUND = 12  # sends per node per round, submitted together


__all__ = ["url"]  # the fixture, shared with test_pg_dialect.py


@pytest.fixture
async def url() -> AsyncIterator[str]:
    """A scratch schema's URL (skipped without PostgreSQL)."""
    reason = unreachable()
    if reason is not None:
        pytest.skip(reason)
    async with scratch_schema() as u:
        yield u


async def node_sends(d: Driver, tag: str, group: int) -> list[SendRequest]:
    """Rounds of sends between alice, bob and carol and to their group, as one node."""
    names = ["alice", "bob", "carol"]
    sent: list[SendRequest] = []
    for r in range(ROUNDS):
        ops = []
        for i in range(PER_ROUND):
            sender = names[(r + i) % 3]
            if i % 3 == 0:
                op = d.send(sender, group=group, cmid=f"{tag}-{r}-{i}")
            else:
                op = d.send(sender, names[(r + i + 1) % 3], cmid=f"{tag}-{r}-{i}")
            ops.append(op)
        sent += await d.run(*ops)
    return sent


def column(conn: psycopg.Connection, sql: str, *args: object) -> list[int]:
    return [r[0] for r in conn.execute(sql, args).fetchall()]  # type: ignore[arg-type]


async def test_two_nodes_keep_every_sequence_gap_free(url: str) -> None:
    a, b = PostgresStore(url), PostgresStore(url)
    await a.open()
    await b.open()
    try:
        da, db = Driver(a), Driver(b)
        await da.users("alice", "bob", "carol")
        db.ids = dict(da.ids)
        group = await da.group("alice", "bob", "carol")
        sa, sb = await asyncio.gather(node_sends(da, "a", group), node_sends(db, "b", group))
    finally:
        await a.close()
        await b.close()
    sent = sa + sb
    assert all(op.error is None for op in sent), [op.error_message for op in sent if op.error]
    assert all(op.result is not None and not op.result.duplicate for op in sent)
    assert a.writer.replans + b.writer.replans > 0  # the nodes did meet

    with psycopg.connect(url) as conn:
        ids = column(conn, "SELECT id FROM messages ORDER BY id")
        assert ids == list(range(1, len(ids) + 1))  # message ids: no gap, no reuse
        assert {op.result.id for op in sent if op.result} <= set(ids)
        stored = conn.execute(
            "SELECT sender_id, cmid, id, conv_id, pos, sender_seq FROM messages "
            "WHERE cmid NOT LIKE '#event:%%'"
        ).fetchall()
        assert sorted(stored) == sorted(
            (op.sender_id, op.cmid, r.id, r.conv, r.pos, r.sender_seq)
            for op in sent
            if (r := op.result) is not None
        )  # every acknowledged send exactly once, as acknowledged
        for conv in column(conn, "SELECT DISTINCT conv_id FROM messages"):
            pos = column(conn, "SELECT pos FROM messages WHERE conv_id = %s ORDER BY id", conv)
            assert pos == list(range(1, len(pos) + 1)), conv  # increasing with the ids too
        for uid in da.ids.values():
            seqs = column(conn, "SELECT seq FROM updates WHERE user_id = %s ORDER BY seq", uid)
            assert seqs == list(range(1, len(seqs) + 1)), uid
            mids = column(
                conn,
                "SELECT message_id FROM updates WHERE user_id = %s AND message_id IS NOT NULL "
                "ORDER BY seq",
                uid,
            )
            assert mids == sorted(mids) and len(set(mids)) == len(mids), uid


async def test_a_commit_brings_a_node_up_to_date(url: str) -> None:
    """A node's cached head misses another node's commit until its own next commit
    (drain commits at once); the log read from the database never misses it."""
    a, b = PostgresStore(url), PostgresStore(url)
    await a.open()
    await b.open()
    try:
        da, db = Driver(a), Driver(b)
        await da.users("x", "y")
        db.ids = dict(da.ids)
        y = da.ids["y"]
        await da.run(da.send("x", "y", cmid="1"))
        assert a.cached_head(y) == 1
        await db.run(db.send("x", "y", cmid="2"))
        assert [s for s, _k, _d in await da.log("y")] == [1, 2]  # the database: at once
        await a.drain()
        assert await a.head(y) == 2 and await a.committed_head(y) == 2
        (op,) = await da.run(da.send("y", "x", cmid="3"))
        assert op.error is None and op.result.sender_seq == 3
    finally:
        await a.close()
        await b.close()


async def test_two_nodes_never_oversell_the_shop(url: str) -> None:
    """The shop is held whole in each node's memory (sqlite/shop.py): buyers racing on two
    nodes for one product get its stock and no more, and a node opened afterwards loads
    the catalogue as it stands."""
    from liaotian.protocol import ErrorCode
    from liaotian.server.chat.ops import PlaceOrder
    from test_shop_contract import POLICY, setup

    a, b = PostgresStore(url), PostgresStore(url)
    await a.open()
    await b.open()
    try:
        da, db = Driver(a), Driver(b)
        buyers = [f"b{i:03d}" for i in range(20)]
        pid = await setup(da, *buyers, stock=7)
        db.ids = dict(da.ids)

        def orders(d: Driver, names: list[str]) -> list[PlaceOrder]:
            return [PlaceOrder(actor=d.ids[n], product=pid, key="k", policy=POLICY) for n in names]

        ra, rb = await asyncio.gather(
            da.run(*orders(da, buyers[::2])), db.run(*orders(db, buyers[1::2]))
        )
        won = [op for op in ra + rb if op.error is None]
        assert len(won) == 7
        assert {op.error for op in ra + rb if op.error is not None} == {ErrorCode.OUT_OF_STOCK}
    finally:
        await a.close()
        await b.close()
    c = PostgresStore(url)
    await c.open()
    try:
        assert c.cache.shop.products[pid].stock == 0
        assert (await c.product_by_id(pid)).stock == 0  # type: ignore[union-attr]
    finally:
        await c.close()


async def test_a_retention_pass_on_one_node_is_seen_by_the_other(url: str) -> None:
    """Node a prunes bob's log; node b, which had cached bob's floor, answers a read from
    below the new floor with resync (from the database's floor, or from the gap if the
    pass lands between its floor read and its log read), never with a page that skips
    entries; and two passes at once prune once."""
    a, b = PostgresStore(url), PostgresStore(url)
    await a.open()
    await b.open()
    try:
        da, db = Driver(a), Driver(b)
        await da.users("alice", "bob")
        db.ids = dict(da.ids)
        await db.run(*[db.send("alice", "bob", cmid=f"b{i}") for i in range(3)])  # b caches bob
        assert await b.floor(db.ids["bob"]) == 0
        bob = db.ids["bob"]
        page = await b.read_updates(bob, 1, 100)
        assert not page.resync and len(page.updates) == 2
        future = 1 << 50  # every entry is older than this horizon
        pruned = await asyncio.gather(a.prune_updates(future), b.prune_updates(future))
        assert sorted(pruned) == [0, 2]  # alice and bob, by one of them
        await da.run(*[da.send("alice", "bob", cmid=f"a{i}") for i in range(2)])
        for store in (a, b):
            assert await store.floor(bob) == 3
            page = await store.read_updates(bob, 1, 100)
            assert page.resync and not page.updates
            page = await store.read_updates(bob, 3, 100)
            assert not page.resync and len(page.updates) == 2
        # the gap alone says "pruned": a floor read before the pass is no excuse
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE users SET log_floor = 0 WHERE id = %s", (bob,))
        page = await b.read_updates(bob, 1, 100)
        assert page.resync and not page.updates
    finally:
        await a.close()
        await b.close()


async def test_a_closed_store_never_reconnects_its_readers(url: str) -> None:
    """A read that finds the store closed (it ran while the store closed, or came after)
    is refused with StoreClosed and opens no connection: one opened then would never be
    closed (psycopg warns of it when it is collected; CI failed on that warning)."""
    from liaotian.server.store import StoreClosed

    store = PostgresStore(url)
    await store.open()
    readers = list(store.readers.conns)
    store.disk_sizes()  # starts a size read in the background, which close() ends
    await store.close()
    assert store._sizes_task is None
    for r in readers:
        with pytest.raises(StoreClosed):
            await r.execute_fetchall("SELECT 1")
        with pytest.raises(StoreClosed):
            await r._reconnect(None)  # a reconnection that was due when close() ran
        assert r.conn.closed


async def test_a_batch_in_doubt_is_not_taken_for_another_nodes_commit(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node a's connection dies after COMMIT was sent and the commit did not happen (its
    batch is in doubt); node b, reconnected first, commits with the clock value a's batch
    would have set. a must not take b's commit for its own: its send is written again and
    stored, not acknowledged and lost (the PG-restart test lost 3 messages that way)."""
    from liaotian.server.store.postgres import writer as pg_writer
    from liaotian.server.store.postgres.recovery import InDoubt

    a, b = PostgresStore(url), PostgresStore(url)
    await a.open()
    await b.open()
    loop = asyncio.get_running_loop()
    real = pg_writer.write_batch
    faults = {"left": 1}

    def lost_commit(db: object, *args: object, **kw: object) -> object:
        if faults["left"] and db is a.writer._db:  # in a's writer thread
            faults["left"] = 0
            db.conn.execute("ROLLBACK")  # type: ignore[attr-defined]
            # b commits now, with the clock value a's batch held (released above)
            asyncio.run_coroutine_threadsafe(db_b.run(db_b.send("y", "x", cmid="b1")), loop).result(
                10
            )
            raise InDoubt([], 0.0)
        return real(db, *args, **kw)  # type: ignore[arg-type]

    try:
        da, db_b = Driver(a), Driver(b)
        await da.users("x", "y")
        db_b.ids = dict(da.ids)
        monkeypatch.setattr(pg_writer, "write_batch", lost_commit)
        (op,) = await da.run(da.send("x", "y", cmid="a1"))
        assert faults["left"] == 0  # the fault happened
        (again,) = await da.run(da.send("x", "y", cmid="a2"))
    finally:
        await a.close()
        await b.close()
    assert op.error is None and op.result is not None and not op.result.duplicate
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT cmid, id FROM messages ORDER BY id").fetchall()
        assert ("a1", op.result.id) in stored, stored  # acknowledged means stored
        y = da.ids["y"]
        seqs = column(conn, "SELECT seq FROM updates WHERE user_id = %s ORDER BY seq", y)
        assert seqs == list(range(1, len(seqs) + 1))  # no gap in y's log
    assert again.error is None
