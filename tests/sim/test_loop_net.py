"""The simulation's loop and network on their own: virtual time, TCP-like links, faults."""

from __future__ import annotations

import asyncio
import random
import secrets
import time

from liaotian.sim.loop import EPOCH, INCARNATION, SimLoop, deterministic
from liaotian.sim.net import Link, NetParams, Network


class Upper(asyncio.Protocol):
    """A server protocol that answers every chunk in capitals."""

    def __init__(self) -> None:
        self.lost: list[Exception | None] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data.upper())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)


class Peer:
    def __init__(self) -> None:
        self.got = bytearray()
        self.chunks = 0
        self.connected = False
        self.closed: bool | None = None  # reset?

    def net_connected(self, link: Link) -> None:
        self.connected = True

    def net_data(self, link: Link, data: bytes) -> None:
        self.got += data
        self.chunks += 1

    def net_closed(self, link: Link, reset: bool) -> None:
        self.closed = reset


def setup(seed: int = 1) -> tuple[SimLoop, Network, list[Upper]]:
    loop = SimLoop()
    net = Network(loop, random.Random(seed), NetParams(split=0.9))
    servers: list[Upper] = []

    def factory() -> Upper:
        servers.append(Upper())
        return servers[-1]

    async def listen() -> None:
        listener = await loop.create_server(factory, "sim", 0)
        await listener.start_serving()

    loop.run_until_complete(listen())
    return loop, net, servers


def test_virtual_time_jumps_to_the_next_timer() -> None:
    loop = SimLoop()
    started = time.perf_counter()
    loop.run_until_complete(asyncio.sleep(86_400))
    assert loop.time() == 86_400
    assert time.perf_counter() - started < 1.0
    loop.close()


def test_the_machine_clock_and_secrets_follow_the_simulation() -> None:
    loop = SimLoop()
    with deterministic(loop, random.Random(5)):
        loop.run_until_complete(asyncio.sleep(10))
        assert time.time() == EPOCH + 10 and time.monotonic() == 10
        token = secrets.token_urlsafe(32)
    loop.close()
    other = SimLoop()
    with deterministic(other, random.Random(5)):
        assert secrets.token_urlsafe(32) == token
    other.close()
    assert secrets.token_urlsafe(32) != token  # restored


def test_a_link_keeps_order_but_splits_and_coalesces() -> None:
    loop, net, _ = setup()
    peer = Peer()
    link = net.connect(peer, ("10.0.0.1", 1), "p")
    loop.run_until_complete(asyncio.sleep(1))
    assert peer.connected
    sent = b"".join(f"chunk {i};".encode() for i in range(200))
    for i in range(200):
        link.client_send(f"chunk {i};".encode())
    loop.run_until_complete(asyncio.sleep(5))
    assert bytes(peer.got) == sent.upper()
    assert peer.chunks != 200  # not one delivery per write
    loop.close()


def test_a_reset_tells_both_sides_and_a_half_open_link_tells_only_one() -> None:
    loop, net, servers = setup()
    a, b = Peer(), Peer()
    cut = net.connect(a, ("10.0.0.1", 1), "a")
    half = net.connect(b, ("10.0.0.2", 1), "b")
    loop.run_until_complete(asyncio.sleep(1))
    cut.reset()
    half.vanish_server()
    loop.run_until_complete(asyncio.sleep(1))
    assert a.closed is True and isinstance(servers[0].lost[0], ConnectionResetError)
    assert b.closed is None and len(servers[1].lost) == 1  # b still thinks it is connected
    half.client_send(b"into the void")
    loop.run_until_complete(asyncio.sleep(1))
    assert b.got == b""
    loop.close()


def test_a_crash_cancels_the_tasks_of_its_incarnation_only() -> None:
    loop = SimLoop()
    done: list[str] = []

    async def work(name: str) -> None:
        await asyncio.sleep(10)
        done.append(name)

    token = INCARNATION.set(1)
    doomed = loop.create_task(work("server 1"))
    INCARNATION.reset(token)
    kept = loop.create_task(work("simulation"))
    loop.run_until_complete(asyncio.sleep(1))
    loop.crash(1)
    loop.run_until_complete(asyncio.sleep(20))
    assert doomed.cancelled() and kept.done() and done == ["simulation"]
    loop.close()
