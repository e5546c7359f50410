"""Three server processes on loopback, one PostgreSQL schema, one NATS (issue 17 item 4).

Users on different nodes chat one to one and in a group; then, under load, one node is
SIGKILLed: its clients resume on another node (the client knows every node's address),
and every message whose SENT was received reaches every recipient exactly once, in order.
Skipped, saying why, without PostgreSQL, its driver or NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from liaotian.client import Client, MessageReceived, register
from nodes import NATS_URL, need_nats
from procs import NodeProcess, cluster, metrics

PASSWORD = "correct horse battery"
WAIT = 30.0


@pytest.fixture
async def db_url() -> AsyncIterator[str]:
    need_nats()
    try:
        from liaotian.server.store.postgres.scratch import scratch_schema, unreachable
    except ImportError as exc:
        pytest.skip(f"the PostgreSQL store is unavailable: {exc}")
    reason = unreachable()
    if reason is not None:
        pytest.skip(reason)
    async with scratch_schema(prefix="cl") as url:
        yield url


class Reader:
    """A client and every message its application received, in arrival order."""

    def __init__(self, name: str, client: Client) -> None:
        self.name = name
        self.client = client
        self.got: list[MessageReceived] = []
        self.seen: list[str] = []  # every other event and how the stream ended (diagnosis)
        self.more = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for ev in self.client:
                if isinstance(ev, MessageReceived):
                    self.got.append(ev)
                    self.more.set()
                else:
                    self.seen.append(repr(ev)[:200])
            self.seen.append("the event stream ended")
        except BaseException as exc:
            self.seen.append(f"the event stream failed: {exc!r}")
            raise
        finally:
            self.more.set()

    async def wait_for(self, n: int) -> None:
        """Until `n` messages arrived; else an AssertionError saying what did."""
        try:
            async with asyncio.timeout(WAIT):
                while len(self.got) < n:
                    self.more.clear()
                    if self.task.done():
                        break
                    await self.more.wait()
        except TimeoutError:
            pass
        if len(self.got) < n:
            raise AssertionError(self.report(n))

    def report(self, n: int) -> str:
        last = [(m.seq, m.text) for m in self.got[-3:]]
        return (
            f"{self.name} received {len(self.got)} of {n} messages (the last: {last}); "
            f"its other events: {self.seen[-12:]}"
        )

    def check(self) -> None:
        seqs = [m.seq for m in self.got]
        assert seqs == sorted(set(seqs)), f"{self.name}: duplicated or reordered"
        ids = [m.message.id for m in self.got]
        assert len(ids) == len(set(ids)), f"{self.name}: a message arrived twice"


def addresses(nodes: list[NodeProcess], first: int) -> list[tuple[str, int]]:
    """Every node, the user's own first, then the rest in ring order."""
    n = len(nodes)
    return [("127.0.0.1", nodes[(first + k) % n].port) for k in range(n)]


@contextlib.asynccontextmanager
async def readers(
    nodes: list[NodeProcess], placement: dict[str, int]
) -> AsyncIterator[dict[str, Reader]]:
    out: dict[str, Reader] = {}
    try:
        for name, at in placement.items():
            c = Client(username=name, password=PASSWORD, addresses=addresses(nodes, at))
            await c.start()
            out[name] = Reader(name, c)
        yield out
    finally:
        for r in out.values():
            await r.client.close()
            r.task.cancel()
            await asyncio.gather(r.task, return_exceptions=True)


async def test_three_nodes_chat_then_one_is_killed_under_load(
    tmp_path: Path, db_url: str, prefix: str
) -> None:
    async with cluster(3, tmp_path, db_url, NATS_URL, prefix, cluster_sweep_interval=0.5) as nodes:
        placement = {"ua0": 0, "ua1": 0, "ub0": 1, "ub1": 1, "uc0": 2, "uc1": 2}
        for name in placement:
            await register("127.0.0.1", nodes[0].port, name, PASSWORD)
        async with readers(nodes, placement) as users:
            for name in placement:
                await users[name].client.account.set_privacy(groups="everyone")
            team = await users["ua0"].client.groups.create(
                "team", [n for n in placement if n != "ua0"]
            )

            # 1. across nodes, before any failure: 1:1 both ways and the group
            await users["ua0"].client.send("ub0", "hello b0")
            await users["ub0"].client.send("ua0", "hello a0")
            await users["uc0"].client.groups.send(team.group, "hello team")
            await users["ub0"].wait_for(2)  # a0's message and c0's group message
            await users["ua0"].wait_for(2)
            for r in users.values():
                await r.wait_for(0 if r.name == "uc0" else 1)  # the group's, but c0's own
            base = {name: len(r.got) for name, r in users.items()}

            # 2. under load; node 1 (ub0, ub1) is killed a third of the way through
            pairs = {
                "ua0": "ub1",
                "ub1": "uc0",
                "uc1": "ua1",
                "ub0": "ua0",
                "ua1": "uc1",
                "uc0": "ub0",
            }
            n_direct, n_group = 30, 10
            acked: dict[str, list[int]] = {name: [] for name in placement}
            sent_count = 0
            third = asyncio.Event()

            async def load(name: str) -> None:
                nonlocal sent_count
                c = users[name].client
                for i in range(n_direct):
                    s = await c.send(pairs[name], f"{name}>{i}")
                    acked[name].append(s.id)
                    if i < n_group:
                        g = await c.groups.send(team.group, f"{name}#{i}")
                        acked[name].append(g.id)
                    sent_count += 1
                    if sent_count >= len(placement) * n_direct // 3:
                        third.set()

            senders = [asyncio.create_task(load(name)) for name in placement]
            await asyncio.wait_for(third.wait(), WAIT)
            nodes[1].kill()
            async with asyncio.timeout(60):
                await asyncio.gather(*senders)

            # every acknowledged message reaches every recipient once, in order
            senders_of = {to: [s for s, t in pairs.items() if t == to] for to in placement}
            for name, r in users.items():
                others = [o for o in placement if o != name]
                expect = len(senders_of[name]) * n_direct + len(others) * n_group
                await r.wait_for(base[name] + expect)
                r.check()
                got = r.got[base[name] :]
                for s in senders_of[name]:
                    texts = [m.text for m in got if m.sender == s and m.group is None]
                    assert texts == [f"{s}>{i}" for i in range(n_direct)], (name, s)
                for o in others:
                    texts = [m.text for m in got if m.sender == o and m.group == team.group]
                    assert texts == [f"{o}#{i}" for i in range(n_group)], (name, o)
            for name in ("ub0", "ub1"):  # their node is gone: they live elsewhere now
                assert users[name].client.port != nodes[1].port
            # what the operator sees on a surviving node
            seen = await metrics(nodes[0].metrics_port)
            assert seen["liaotian_cluster_nats_connected"] == 1
            assert seen["liaotian_cluster_notices_published_total"] > 0
            assert seen["liaotian_cluster_notices_received_total"] > 0
            assert seen["liaotian_cluster_log_reads_total"] > 0
