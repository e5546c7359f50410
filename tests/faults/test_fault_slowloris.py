"""Slowloris: connections that hold a slot without ever authenticating.

The authentication deadline counts from the TCP accept, whatever arrives meanwhile: a
silent connection, one that only said HELLO, one that registered but never logged in, one
that failed its login, and ones that trickle a frame one byte at a time all get CLOSE 4000
at auth_timeout (0.5 s here). A connection that authenticated in time stays. And with
max_connections_per_address=5 the sixth connection from 127.0.0.1 gets CLOSE 4005; slots
come back when connections end (including by the auth deadline).
"""

from __future__ import annotations

import asyncio

from faultkit import Opened, server_conns, wait_for
from liaotian.protocol import CloseCode, ErrorCode, Hello, Login, Welcome
from liaotian.server.testing import run_server
from rawclient import PASSWORD, RawClient

AUTH_TIMEOUT = 0.5
LATE = 1.5  # seconds after the deadline by which the CLOSE must have come (generous)


async def closed_after(c: RawClient, code: int, start: float) -> float:
    await c.expect_close(code, timeout=AUTH_TIMEOUT + LATE + 3)
    return asyncio.get_running_loop().time() - start


async def test_unauthenticated_connections_are_closed_at_auth_timeout(
    tmp_path, opened: Opened
) -> None:
    async with run_server(tmp_path, auth_timeout=AUTH_TIMEOUT) as srv:
        setup = await opened.anonymous(srv)
        await setup.register("alice")
        await setup.close()
        await wait_for(lambda: not server_conns(srv), "the setup connection to end")

        start = asyncio.get_running_loop().time()
        silent = await opened.client(srv)
        hello_only = await opened.client(srv)
        await hello_only.hello()
        registered = await opened.anonymous(srv)
        await registered.register("bob")  # REGISTER does not log in
        failed = await opened.anonymous(srv)
        await failed.expect_error(
            Login(rid=failed.rid(), username="alice", password="wrong password", device="d1"),
            ErrorCode.BAD_CREDENTIALS,
        )
        in_time = await opened.user(srv, "alice")

        for c in (silent, hello_only, registered, failed):
            took = await closed_after(c, CloseCode.AUTH_TIMEOUT, start)
            assert AUTH_TIMEOUT - 0.05 <= took <= AUTH_TIMEOUT + LATE, took
        await in_time.barrier()  # authenticated in time: not affected
        await wait_for(
            lambda: len(server_conns(srv)) == 1, "only the authenticated connection to remain"
        )
        assert server_conns(srv, "alice") != []


async def trickle(c: RawClient, data: bytes, every: float = 0.03) -> int:
    """Write `data` one byte at a time; stop when the server has closed. Returns the
    number of bytes written."""
    for i in range(len(data)):
        if c.writer.is_closing() or c.eof or c.terminated is not None:
            return i
        try:
            c.writer.write(data[i : i + 1])
            await c.writer.drain()
        except (ConnectionError, OSError):
            return i
        await asyncio.sleep(every)
    return len(data)


async def test_trickled_frames_do_not_extend_the_deadline(tmp_path, opened: Opened) -> None:
    async with run_server(tmp_path, auth_timeout=AUTH_TIMEOUT) as srv:
        start = asyncio.get_running_loop().time()
        # the HELLO itself, byte by byte (never complete before the deadline)
        slow_hello = await opened.client(srv)
        hello = Hello(rid=1, versions=(1,), client="slowloris/1.0").encode()
        # a complete HELLO, then a LOGIN byte by byte
        slow_login = await opened.anonymous(srv)
        login = Login(
            rid=slow_login.rid(), username="alice", password=PASSWORD, device="d1"
        ).encode()
        assert len(hello) * 0.03 > 2 * AUTH_TIMEOUT and len(login) * 0.03 > 2 * AUTH_TIMEOUT
        writers = [
            asyncio.ensure_future(trickle(slow_hello, hello)),
            asyncio.ensure_future(trickle(slow_login, login)),
        ]
        try:
            for c in (slow_hello, slow_login):
                took = await closed_after(c, CloseCode.AUTH_TIMEOUT, start)
                assert AUTH_TIMEOUT - 0.05 <= took <= AUTH_TIMEOUT + LATE, took
            written = await asyncio.wait_for(asyncio.gather(*writers), 5)
        finally:
            for w in writers:
                w.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
        assert written[0] < len(hello) and written[1] < len(login)  # never completed
        assert slow_hello.log == []  # no frame was ever complete: nothing was answered
        assert [type(m) for m in slow_login.log] == [Welcome]
        await wait_for(lambda: not server_conns(srv), "both connections to be gone")


async def test_sixth_connection_from_one_address_gets_4005(tmp_path, opened: Opened) -> None:
    async with run_server(tmp_path, max_connections_per_address=5) as srv:
        setup = await opened.anonymous(srv)
        await setup.register("alice")
        others = [await opened.anonymous(srv) for _ in range(3)]
        others.append(await opened.user(srv, "alice"))  # authenticated ones count too
        assert len(server_conns(srv)) == 5
        sixth = await opened.client(srv)
        await sixth.expect_close(CloseCode.TOO_MANY_CONNECTIONS)
        for c in [setup, *others]:
            await c.barrier()  # the five are unaffected

        # a slot comes back when a connection ends
        await setup.close_gracefully()
        await wait_for(lambda: len(server_conns(srv)) == 4, "the closed slot to be freed")
        again = await opened.anonymous(srv)
        await again.barrier()
        await (await opened.client(srv)).expect_close(CloseCode.TOO_MANY_CONNECTIONS)


async def test_slowloris_slots_come_back_at_the_auth_deadline(tmp_path, opened: Opened) -> None:
    async with run_server(
        tmp_path, max_connections_per_address=5, auth_timeout=AUTH_TIMEOUT
    ) as srv:
        start = asyncio.get_running_loop().time()
        squatters = [await opened.client(srv) for _ in range(5)]  # silent, never HELLO
        refused = await opened.client(srv)
        await refused.expect_close(CloseCode.TOO_MANY_CONNECTIONS)
        assert asyncio.get_running_loop().time() - start < AUTH_TIMEOUT, (
            "too slow to open six connections before the deadline: the test is void"
        )
        for c in squatters:  # accepted (not 4005), then cut at the deadline
            took = await closed_after(c, CloseCode.AUTH_TIMEOUT, start)
            assert took <= AUTH_TIMEOUT + LATE, took
        await wait_for(lambda: not server_conns(srv), "the squatters' slots to be freed")
        legit = await opened.anonymous(srv)
        await legit.register("carol")
        await legit.login("carol")
        await legit.sync_all()
        await legit.barrier()
