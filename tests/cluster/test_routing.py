"""Nodes in one process over one shared store, routing over a real NATS: users on
different nodes chat, a 1:1 and a group conversation arrive complete, in order, once,
and notices that are lost (a fault hook drops them) lose nothing."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from liaotian.client import (
    ChannelNewsEvent,
    Client,
    MessageReceived,
    Resync,
    TypingEvent,
    register,
)
from liaotian.server.app import Server
from nodes import in_process

WAIT = 10.0
PASSWORD = "correct horse battery"


@asynccontextmanager
async def user(node: Server, name: str, *, new: bool = True) -> AsyncIterator[Client]:
    if new:
        await register("127.0.0.1", node.port, name, PASSWORD)
    async with Client("127.0.0.1", node.port, username=name, password=PASSWORD) as c:
        yield c


async def until(cond: Callable[[], bool]) -> None:
    """Wait (at most WAIT) for a condition a background task makes true."""
    async with asyncio.timeout(WAIT):
        while not cond():
            await asyncio.sleep(0.01)


async def messages(c: Client, n: int) -> list[MessageReceived]:
    """The next `n` messages this client's application sees (other events skipped)."""
    out: list[MessageReceived] = []

    async def take() -> None:
        async for ev in c:
            if isinstance(ev, MessageReceived):
                out.append(ev)
                if len(out) == n:
                    return

    await asyncio.wait_for(take(), WAIT)
    return out


def in_order_once(got: list[MessageReceived]) -> None:
    seqs = [m.seq for m in got]
    assert seqs == sorted(set(seqs)), "duplicated or reordered"


async def test_direct_messages_cross_nodes(prefix: str) -> None:
    async with in_process(3, prefix) as nodes:
        async with user(nodes[0], "alice") as alice, user(nodes[1], "bob") as bob:
            sent = [await alice.send("bob", f"m{i}") for i in range(30)]
            got = await messages(bob, 30)
            assert [m.text for m in got] == [f"m{i}" for i in range(30)]
            assert [m.message.pos for m in got] == [s.pos for s in sent]
            in_order_once(got)
            # and back, while alice's node also commits: her log interleaves both ways
            replies = [await bob.send("alice", f"r{i}") for i in range(10)]
            back = await messages(alice, 10)
            assert [m.text for m in back] == [f"r{i}" for i in range(10)]
            assert [m.message.id for m in back] == [r.id for r in replies]
            in_order_once(back)


async def test_group_across_three_nodes(prefix: str) -> None:
    async with in_process(3, prefix) as nodes:
        async with (
            user(nodes[0], "alice") as alice,
            user(nodes[1], "bob") as bob,
            user(nodes[2], "carol") as carol,
        ):
            await bob.account.set_privacy(groups="everyone")
            await carol.account.set_privacy(groups="everyone")
            g = await alice.groups.create("team", ["bob", "carol"])
            members = {"alice": alice, "bob": bob, "carol": carol}

            async def talk(name: str, c: Client) -> None:
                for i in range(15):
                    await c.groups.send(g.group, f"{name}{i}")

            await asyncio.gather(*(talk(n, c) for n, c in members.items()))
            for name, c in members.items():
                got = await messages(c, 30)  # the 15 of each of the two others
                in_order_once(got)
                assert all(m.group == g.group for m in got)
                poss = [m.message.pos for m in got]
                assert poss == sorted(poss), f"{name} got the group out of order"
                for other in members:
                    if other != name:
                        texts = [m.text for m in got if m.sender == other]
                        assert texts == [f"{other}{i}" for i in range(15)]


async def test_the_same_user_on_two_nodes(prefix: str) -> None:
    """A user's two devices on two nodes: each sees what the other sent, and what came
    in, in one order."""
    async with in_process(2, prefix) as nodes:
        await register("127.0.0.1", nodes[0].port, "dora", PASSWORD)
        async with (
            user(nodes[1], "erin") as erin,
            Client(
                "127.0.0.1", nodes[0].port, username="dora", password=PASSWORD, device="a"
            ) as dora_a,
            Client(
                "127.0.0.1", nodes[1].port, username="dora", password=PASSWORD, device="b"
            ) as dora_b,
        ):
            for i in range(10):
                await dora_a.send("erin", f"a{i}")
                await erin.send("dora", f"e{i}")
            got = await messages(dora_b, 20)
            in_order_once(got)
            assert [m.text for m in got if m.sender == "dora"] == [f"a{i}" for i in range(10)]
            assert [m.text for m in got if m.sender == "erin"] == [f"e{i}" for i in range(10)]


@pytest.mark.parametrize("every", [2, 1])
async def test_lost_notices_lose_nothing(prefix: str, every: int) -> None:
    """Bob's node drops every `every`-th notice it receives (all of them with 1): bob
    still gets every message, in order, once: from the next notice's gap, and from the
    sweep that compares his position with the log (every 0.3 s here)."""
    async with in_process(2, prefix, cluster_sweep_interval=0.3) as nodes:
        counter = itertools.count(1)
        cluster = nodes[1].cluster
        assert cluster is not None
        cluster.drop = lambda uid, kind: next(counter) % every == 0
        async with user(nodes[0], "alice") as alice, user(nodes[1], "bob") as bob:
            for i in range(25):
                await alice.send("bob", f"m{i}")
            got = await messages(bob, 25)
            assert [m.text for m in got] == [f"m{i}" for i in range(25)]
            in_order_once(got)
            assert cluster.dropped > 0
            # nothing more comes: no duplicate is on its way
            await asyncio.sleep(0.5)
            assert bob._session.inbox.head == got[-1].seq


async def test_typing_and_presence_cross_nodes(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "liaotian.cluster")  # a failed probe says why
    async with in_process(2, prefix) as nodes:
        async with user(nodes[0], "alice") as alice, user(nodes[1], "bob") as bob:
            await bob.account.set_privacy(presence="everyone")
            bus = nodes[1].cluster.bus if nodes[1].cluster else None
            assert bus is not None
            await until(lambda: len(bus.live) == 1)  # the NATS server has bob's subject
            (entry,) = await alice.presence.query("bob")
            assert entry.online, caplog.text  # bob is on the other node: a probe found him
            assert await alice.presence.typing(to="bob")

            async def typing() -> TypingEvent:
                async for ev in bob:
                    if isinstance(ev, TypingEvent):
                        return ev
                raise AssertionError("no typing event")

            ev = await asyncio.wait_for(typing(), WAIT)
            assert (ev.user, ev.typing) == ("alice", True)
        async with user(nodes[0], "carol") as carol:
            (entry,) = await carol.presence.query("bob")
            assert not entry.online


async def test_client_moves_to_another_node(prefix: str) -> None:
    """Alice's client knows three nodes; the first is not running, so it starts on the
    second; that one shuts down while bob sends: she resumes on the third from her
    cursor and gets every message once, in order."""
    async with in_process(3, prefix) as nodes:
        await register("127.0.0.1", nodes[0].port, "alice", PASSWORD)
        dead = ("127.0.0.1", 1)  # nothing listens there
        addresses = [dead, ("127.0.0.1", nodes[1].port), f"127.0.0.1:{nodes[2].port}"]
        async with (
            user(nodes[0], "bob") as bob,
            Client(username="alice", password=PASSWORD, addresses=addresses) as alice,
        ):
            assert alice.port == nodes[1].port
            for i in range(10):
                await bob.send("alice", f"m{i}")
            first = await messages(alice, 10)
            stop = asyncio.create_task(nodes[1].shutdown())
            for i in range(10, 30):
                await bob.send("alice", f"m{i}")
            await stop
            rest = await messages(alice, 20)
            assert alice.port == nodes[2].port
            got = first + rest
            assert [m.text for m in got] == [f"m{i}" for i in range(30)]
            in_order_once(got)


async def test_channel_news_crosses_nodes(prefix: str) -> None:
    """A post on node 0 is news to the channel's members online on node 1: coalesced
    there as on the posting node, one notice per channel and interval between nodes."""
    async with in_process(2, prefix) as nodes:
        n0, n1 = nodes
        async with user(n0, "alice") as alice, user(n1, "bob") as bob:
            info = await alice.channels.create("forum")
            await bob.channels.join(info.channel)
            bus1 = n1.cluster.bus  # type: ignore[union-attr]
            await until(lambda: info.channel in bus1.live_ch)  # bob's node hears it
            published = n0.cluster.bus.published  # type: ignore[union-attr]
            posted = [await alice.channels.post(info.channel, f"p{i}") for i in range(5)]
            last = posted[-1].pos
            news: list[ChannelNewsEvent] = []

            async def take() -> None:
                async for ev in bob:
                    if isinstance(ev, ChannelNewsEvent):
                        news.append(ev)
                        if ev.pos == last:
                            return

            await asyncio.wait_for(take(), WAIT)
            assert {ev.channel for ev in news} == {info.channel}
            assert [ev.pos for ev in news] == sorted({ev.pos for ev in news})
            assert n1.news.sent == len(news) <= len(posted)
            assert n0.cluster.bus.published > published  # type: ignore[union-attr]
            # bob leaves: his node no longer hears the channel
            await bob.channels.leave(info.channel)
            await until(lambda: info.channel not in bus1.live_ch)


async def test_a_session_behind_the_retained_log_is_told_to_resync(prefix: str) -> None:
    """Bob's node misses the notices of alice's messages, and a retention pass (any
    node's) prunes them before his node reads his log: it closes his connection 4003,
    so that his client reconnects and SYNC tells it to resync, instead of skipping them."""
    async with in_process(2, prefix) as nodes:
        n0, n1 = nodes
        async with user(n0, "alice") as alice, user(n1, "bob") as bob:
            assert n1.cluster is not None
            await until(lambda: n1.cluster.catchup.idle)  # type: ignore[union-attr]
            n1.cluster.drop = lambda uid, kind: True  # bob's node hears nothing
            for i in range(3):
                await alice.send("bob", f"m{i}")
            assert await n0.store.prune_updates(1 << 50) > 0  # everything is old now
            n1.cluster.drop = None
            n1.cluster.resync_all()
            await until(lambda: n1.counters.closes[4003] == 1)

            async def resync() -> Resync:
                async for ev in bob:
                    if isinstance(ev, Resync):
                        return ev
                raise AssertionError("no resync")

            await asyncio.wait_for(resync(), WAIT)
