"""People nearby through the client library against a real server (SPEC.md 29): shares,
buckets, privacy and blocks, implausible moves, hellos that become contact requests with
a note, and stopping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from liaotian.client import Client, register
from liaotian.client.events import ContactEvent
from liaotian.protocol import ErrorCode, RequestError
from liaotian.server.testing import RunningServer, run_server

PASSWORD = "correct horse battery"
WAIT = 30.0
HERE = (31.2304, 121.4737)  # People's Square, Shanghai
NEAR = (31.2330, 121.4760)  # ~400 m away


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path) as srv:
        yield srv


def client(srv: RunningServer, user: str, device: str = "d1") -> Client:
    return Client(srv.host, srv.port, username=user, password=PASSWORD, device=device)


async def test_two_users_near_each_other_see_each_other_and_say_hello(
    server: RunningServer,
) -> None:
    for name in ("alice", "bob", "carol", "dave"):
        await register(server.host, server.port, name, PASSWORD)
    async with (
        client(server, "alice") as a,
        client(server, "bob") as b,
        client(server, "carol") as c,
        client(server, "dave") as d,
    ):
        await b.account.set_profile(display_name="Bob B.")
        shared = await a.nearby.share(*HERE)
        assert len(shared.cell) == 15 and shared.expires > 0
        await b.nearby.share(*NEAR, ttl=600)
        await c.nearby.share(*NEAR)
        await d.nearby.share(*NEAR)
        # carol is not discoverable; dave blocked alice
        await c.account.set_privacy(nearby="nobody")
        await d.contacts.block("alice")
        found = [e async for e in a.nearby.people(*HERE)]
        assert [e.user for e in found] == ["bob"]
        bob = found[0]
        assert bob.name == "Bob B." and bob.within in (500, 1000) and bob.hello
        assert bob.lat is None and bob.lon is None  # a person's position is never told
        # bob finds alice and dave; dave does not find alice (blocks hide both ways)
        assert sorted(e.user for e in await _all(b)) == ["alice", "dave"]
        assert "alice" not in [e.user for e in await _all(d)]
        # a jump to Beijing within a second is refused
        with pytest.raises(RequestError) as err:
            await a.nearby.share(39.9042, 116.4074)
        assert err.value.code == ErrorCode.IMPLAUSIBLE_MOVE
        # hello: a contact request carrying the note; bob accepts, they chat
        await a.nearby.hello("bob", "hi from the square")
        note = await _request(b)
        assert note == "hi from the square"
        await b.contacts.accept("alice")
        await a.send("bob", "coffee?")
        assert [e.hello for e in await _all(a)] == [False]  # a contact now
        with pytest.raises(RequestError) as err:
            await a.nearby.hello("carol", "hi")  # not discoverable: not nearby
        assert err.value.code == ErrorCode.NOT_NEARBY
        # stopping hides at once
        await b.nearby.stop()
        assert await _all(a) == []


async def _all(c: Client) -> list[object]:
    return [e async for e in c.nearby.people(*HERE)]


async def _request(c: Client) -> str:
    async with asyncio.timeout(WAIT):
        async for event in c:
            if isinstance(event, ContactEvent) and event.event == "request":
                return event.note
    raise AssertionError("no request")


async def test_the_jump_check_and_the_hellos_of_the_day_survive_a_restart(
    tmp_path: Path,
) -> None:
    """Stopping, restarting the server and sharing again from Beijing a second later is
    still a teleport (the district of the last share is kept); a hello counted before the
    restart still counts (the day's hellos are kept)."""
    async with run_server(tmp_path) as srv:
        for name in ("alice", "bob"):
            await register(srv.host, srv.port, name, PASSWORD)
        async with client(srv, "alice") as a, client(srv, "bob") as b:
            await a.nearby.share(*HERE)
            await b.nearby.share(*NEAR)
            await a.nearby.hello("bob", "hi")
            await a.nearby.stop()
        assert srv.server is not None
        day = srv.server.nearby.wall_ms() // 86_400_000
    async with run_server(tmp_path) as srv:
        async with client(srv, "alice") as a:
            with pytest.raises(RequestError) as err:
                await a.nearby.share(39.9042, 116.4074)
            assert err.value.code == ErrorCode.IMPLAUSIBLE_MOVE
            await a.nearby.share(*NEAR)  # nearby is fine
        assert srv.server is not None
        store = srv.server.store
        uid = await store.user_id("alice")
        assert uid is not None
        # one of the day's hellos is used: a limit of one is reached
        assert not await store.nearby_take_hello(uid, day, 1)
