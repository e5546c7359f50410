"""NATS away: a node serves its own users, logs the loss once, and when NATS is back the
sessions it holds get what other nodes committed meanwhile (read from the log)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlparse

import pytest
from liaotian.client import register
from nodes import NATS_URL, in_process
from proxy import Proxy, free_port
from test_routing import PASSWORD, in_order_once, messages, user


async def wait_until(cond: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_nats_down_then_back(prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    u = urlparse(NATS_URL)
    proxy = Proxy(free_port(), (u.hostname or "127.0.0.1", u.port or 4222))
    caplog.set_level(logging.INFO, "liaotian.cluster")
    urls = [NATS_URL, f"nats://127.0.0.1:{proxy.port}"]
    async with in_process(2, prefix, nats_urls=urls, require_nats=False) as nodes:
        n0, n1 = nodes
        assert n1.cluster is not None and not n1.cluster.bus.connected
        assert "unreachable" in caplog.text
        # node 1 has no NATS: its own users chat as ever
        await register("127.0.0.1", n1.port, "carol", PASSWORD)
        async with user(n1, "bob") as bob, user(n0, "alice") as alice:
            async with user(n1, "carol", new=False) as carol:
                await carol.send("bob", "local")
                assert [m.text for m in await messages(bob, 1)] == ["local"]
            # alice (node 0) writes to bob while his node cannot hear it (once the read
            # every new session makes after going live is done: catchup.py)
            await wait_until(lambda: n1.cluster.catchup.idle)  # type: ignore[union-attr]
            for i in range(5):
                await alice.send("bob", f"m{i}")
            await proxy.up()  # NATS reachable: node 1 connects and reads bob's log
            got = await messages(bob, 5)
            assert [m.text for m in got] == [f"m{i}" for i in range(5)]
            assert n1.cluster.bus.connected
            # lost once connected: logged once, and the same once it is back
            await proxy.down()
            await wait_until(lambda: not n1.cluster.bus.connected)  # type: ignore[union-attr]
            for i in range(5, 10):
                await alice.send("bob", f"m{i}")
            await proxy.up()
            got += await messages(bob, 5)
            assert [m.text for m in got] == [f"m{i}" for i in range(10)]
            in_order_once(got)
            assert caplog.text.count("lost NATS") == 1
        await proxy.down()
