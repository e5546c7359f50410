"""PostgreSQL away under load (issue 17 item 4): nodes ride through it.

Requests during the outage are refused with 5001 (StoreUnavailable's message), which the
client retries (a send with its cmid); the store reconnects by itself, logs the outage
once and the recovery once; nothing acknowledged is lost and every message reaches its
recipient exactly once, in order.

* Through a TCP proxy in front of the shared PostgreSQL, cut and restored: every
  connection of the store dies at once and nothing answers meanwhile (deterministic,
  one node in this process, no NATS).
* A PostgreSQL of the test's own (private_pg.py) restarted with `pg_ctl restart -m fast`,
  then `-m immediate`, while two node processes (NATS between them) carry a load of
  sends across nodes. The shared PostgreSQL is never restarted.

Skipped, saying why, without PostgreSQL (the shared one, or its programs), its driver or
(the second) NATS.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from liaotian.client import Client, register
from liaotian.protocol import ErrorCode, RequestError
from liaotian.server.testing import run_server
from nodes import NATS_URL
from procs import cluster, metrics
from proxy import Proxy, free_port
from test_processes import PASSWORD, Reader, addresses

WAIT = 30.0


def _pg() -> tuple[object, object]:
    try:
        from liaotian.server.store.postgres.scratch import scratch_schema, unreachable
    except ImportError as exc:
        pytest.skip(f"the PostgreSQL store is unavailable: {exc}")
    return scratch_schema, unreachable


@pytest.fixture
async def shared_pg() -> AsyncIterator[str]:
    """A scratch schema on the shared PostgreSQL (never restarted)."""
    scratch_schema, unreachable = _pg()
    reason = unreachable()  # type: ignore[operator]
    if reason is not None:
        pytest.skip(reason)
    async with scratch_schema(prefix="po") as url:  # type: ignore[operator]
        yield url


def via(url: str, port: int) -> str:
    """`url` with its server replaced by 127.0.0.1:`port` (the proxy)."""
    u = urlparse(url)
    user = u.netloc.rsplit("@", 1)[0] + "@" if "@" in u.netloc else ""
    return urlunparse(u._replace(netloc=f"{user}127.0.0.1:{port}"))


async def until(cond: object, timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not cond():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_connections_cut_under_load(
    tmp_path: Path, shared_pg: str, caplog: pytest.LogCaptureFixture
) -> None:
    u = urlparse(shared_pg)
    proxy = Proxy(free_port(), (u.hostname or "127.0.0.1", u.port or 5432))
    await proxy.up()
    caplog.set_level(logging.INFO, "liaotian.store")
    try:
        async with run_server(tmp_path, db_url=via(shared_pg, proxy.port)) as srv:
            assert srv.server is not None
            store = srv.server.store
            for name in ("alice", "bob"):
                await register("127.0.0.1", srv.port, name, PASSWORD)
            alice = Client("127.0.0.1", srv.port, username="alice", password=PASSWORD)
            bob = Client("127.0.0.1", srv.port, username="bob", password=PASSWORD)
            async with alice, bob:
                got = Reader("bob", bob)
                n, cut_at = 60, 20
                cut = asyncio.Event()
                sent = []

                async def load() -> None:
                    for i in range(n):
                        sent.append(await alice.send("bob", f"m{i}", timeout=None))
                        if i == cut_at:
                            cut.set()

                task = asyncio.create_task(load())
                await asyncio.wait_for(cut.wait(), WAIT)
                await proxy.down()  # every connection of the store dies; nothing listens
                await until(lambda: store.writer.down)  # type: ignore[attr-defined]
                # meanwhile: refused at once, with the documented retryable code
                with pytest.raises(RequestError) as refused:
                    await bob.history("alice")
                assert refused.value.code == ErrorCode.INTERNAL_ERROR
                assert "unreachable" in refused.value.message
                await proxy.up()
                await asyncio.wait_for(task, WAIT)
                await got.wait_for(n)
                got.check()
                assert [m.text for m in got.got] == [f"m{i}" for i in range(n)]
                assert [m.message.id for m in got.got] == [s.id for s in sent]
                assert len({s.id for s in sent}) == n
                page = await bob.history("alice", limit=100)  # stored once each
                assert [m.text for m in page.messages] == [f"m{i}" for i in range(n)]
                got.task.cancel()
            assert store.link.outages == 1  # type: ignore[attr-defined]
            db, _wal = store.disk_sizes()  # type: ignore[attr-defined]
            assert db is not None and db > 0
            assert caplog.text.count("lost PostgreSQL") == 1
            assert caplog.text.count("PostgreSQL back") == 1
    finally:
        await proxy.down()


@pytest.fixture
async def private_pg() -> AsyncIterator[str]:
    """A PostgreSQL server of this test's own (private_pg.py), to restart."""
    _pg()
    from nodes import need_nats
    from private_pg import PrivatePostgres, need_binaries

    need_nats()
    need_binaries()
    pg = PrivatePostgres()
    try:
        await pg.start()
        yield pg  # type: ignore[misc]
    finally:
        await pg.close()


async def test_postgres_restarted_under_load(
    tmp_path: Path, private_pg: object, prefix: str
) -> None:
    pg = private_pg
    async with cluster(
        2, tmp_path, pg.url, NATS_URL, prefix, cluster_sweep_interval=0.5, log_level="debug"
    ) as nodes:  # type: ignore[attr-defined]
        placement = {"ua0": 0, "ua1": 0, "ub0": 1, "ub1": 1}
        pairs = {"ua0": "ub0", "ub0": "ua1", "ua1": "ub1", "ub1": "ua0"}  # across nodes, a ring
        for name in placement:
            await register("127.0.0.1", nodes[0].port, name, PASSWORD)
        users: dict[str, Reader] = {}
        try:
            for name, at in placement.items():
                c = Client(username=name, password=PASSWORD, addresses=addresses(nodes, at))
                await c.start()
                users[name] = Reader(name, c)
            n = 90
            progress = {name: 0 for name in placement}
            marks = [asyncio.Event(), asyncio.Event()]

            async def load(name: str) -> None:
                c = users[name].client
                for i in range(n):
                    await c.send(pairs[name], f"{name}>{i}", timeout=None)
                    progress[name] = i + 1
                    done = min(progress.values())
                    if done >= n // 3:
                        marks[0].set()
                    if done >= 2 * n // 3:
                        marks[1].set()

            senders = [asyncio.create_task(load(name)) for name in placement]
            await asyncio.wait_for(marks[0].wait(), WAIT)
            await pg.restart("fast")  # type: ignore[attr-defined]
            await asyncio.wait_for(marks[1].wait(), WAIT)
            await pg.restart("immediate")  # type: ignore[attr-defined]
            async with asyncio.timeout(60):
                await asyncio.gather(*senders)
            for name, r in users.items():
                frm = next(s for s, t in pairs.items() if t == name)
                try:
                    await r.wait_for(n)
                except AssertionError as exc:
                    tails = [
                        f"{node.name}: "
                        + "\n".join((tmp_path / f"{node.name}.log").read_text().splitlines()[-40:])
                        for node in nodes
                    ]
                    raise AssertionError("\n".join([str(exc), *tails])) from None
                r.check()
                assert [m.text for m in r.got] == [f"{frm}>{i}" for i in range(n)], name
        finally:
            for r in users.values():
                await r.client.close()
                r.task.cancel()
                await asyncio.gather(r.task, return_exceptions=True)
        seen = await metrics(nodes[0].metrics_port)
        assert seen["liaotian_database_size_bytes"] > 0  # pg_database_size
        assert seen["liaotian_wal_size_bytes"] > 0  # pg_ls_waldir: the test's server, superuser
        assert seen["liaotian_store_reachable"] == 1
        logs = [(tmp_path / f"{node.name}.log").read_text() for node in nodes]
    for text in logs:  # each outage a node saw: logged once, its end once
        assert text.count("lost PostgreSQL") == text.count("PostgreSQL back") <= 2
    assert sum(text.count("lost PostgreSQL") for text in logs) >= 1
