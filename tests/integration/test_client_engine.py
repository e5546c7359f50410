"""The client's session engine against real servers (port 0, own database each): the limits
of WELCOME, CaughtUp after each (re)connect, send() through rate limits and outages, and
the feature facades end to end.

Every wait is for an event under a generous timeout. One test lets time pass on purpose
(an outage longer than a send's timeout): that time passing is what it checks.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from liaotian.client import (
    Backoff,
    CaughtUp,
    Client,
    ClientEvent,
    Disconnected,
    ErrorCode,
    GroupChanged,
    MessageReceived,
    Reconnected,
    RequestError,
    SendTimeout,
    register,
)
from liaotian.protocol import Sent
from liaotian.server.testing import RunningServer, run_server

MIB = 1024 * 1024
WAIT = 15.0  # seconds: generous upper bound for any single expected event
PASSWORD = "correct horse battery"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path) as srv:
        yield srv


async def make_users(srv: RunningServer, *names: str) -> None:
    for name in names:
        assert await register(srv.host, srv.port, name, PASSWORD) == name


def client(srv: RunningServer, user: str, **options: Any) -> Client:
    options.setdefault("password", PASSWORD)
    return Client(srv.host, srv.port, username=user, **options)


async def next_event(c: Client, timeout: float = WAIT) -> ClientEvent:
    return await asyncio.wait_for(c.__anext__(), timeout)


async def until_caught_up(c: Client) -> tuple[list[ClientEvent], CaughtUp]:
    """The events before the next CaughtUp, and the CaughtUp."""
    before: list[ClientEvent] = []
    while True:
        ev = await next_event(c)
        if isinstance(ev, CaughtUp):
            return before, ev
        before.append(ev)


class _Longest(random.Random):
    """Backoff always waits its ceiling: reconnects come no earlier than planned."""

    def uniform(self, a: float, b: float) -> float:
        return b


# ---------------------------------------------------------------------- WELCOME's limits


async def test_a_larger_max_frame_size_is_adopted(tmp_path: Path) -> None:
    """A server that allows 4 MiB frames pushes, pages and answers with frames above the
    1 MiB default; the client takes them (it refused them with CLOSE 1009 before)."""
    async with run_server(
        tmp_path, max_frame_size=4 * MIB, max_text_len=2 * MIB, send_bytes_burst=8 * MIB
    ) as srv:
        await make_users(srv, "alice", "bob")
        big = [ch * (MIB + MIB // 2) for ch in "xyz"]  # 1.5 MiB each
        async with client(srv, "alice") as alice:
            assert alice.limits.max_frame_size == 4 * MIB
            assert alice.limits.max_text_len == 2 * MIB
            assert alice.server_limits["max_frame_size"] == 4 * MIB
            await alice.send("bob", big[0])
            async with client(srv, "bob") as bob:  # the backlog: a SYNC page above 1 MiB
                first = await next_event(bob)
                assert isinstance(first, MessageReceived) and first.message.text == big[0]
                assert isinstance(await next_event(bob), CaughtUp)
                for text in big[1:]:  # live pushes above 1 MiB
                    await alice.send("bob", text)
                    got = await next_event(bob)
                    assert isinstance(got, MessageReceived) and got.message.text == text
                page = await bob.history("alice")  # pages are cut by size: more than one
                texts = [m.text for m in page.messages]
                before = page.messages[0].pos if page.messages else 0
                while page.more:
                    page = await bob.history("alice", before=before)
                    texts[:0] = [m.text for m in page.messages]
                    before = page.messages[0].pos
                assert texts == big
                assert bob.connected and bob._session.conn is not None
            with pytest.raises(RequestError) as exc:  # the server's text limit, checked here
                await alice.send("bob", "x" * (2 * MIB + 1))
            assert exc.value.code == ErrorCode.MESSAGE_TOO_LARGE
            assert "checked locally" in exc.value.message


async def test_a_smaller_text_limit_is_checked_locally(tmp_path: Path) -> None:
    async with run_server(tmp_path, max_text_len=100) as srv:
        await make_users(srv, "alice")
        async with client(srv, "alice") as alice:
            assert alice.limits.max_text_len == 100
            await alice.send("alice", "y" * 100)
            with pytest.raises(RequestError) as exc:
                await alice.send("alice", "y" * 101)
            assert "checked locally" in exc.value.message


async def test_requests_stay_within_max_inflight_requests(tmp_path: Path) -> None:
    """The server refuses a request beyond 4 in flight with RATE_LIMITED and no retry_after;
    the client queues its requests instead, so 40 at once all succeed."""
    async with run_server(tmp_path, max_inflight_requests=4) as srv:
        await make_users(srv, "alice", "bob")
        async with client(srv, "alice") as alice:
            assert alice.limits.max_inflight_requests == 4
            await alice.send("bob", "hello")
            pages = await asyncio.wait_for(
                asyncio.gather(*(alice.history("bob") for _ in range(40))), WAIT
            )
            assert all([m.text for m in p.messages] == ["hello"] for p in pages)
            sent = await asyncio.wait_for(
                asyncio.gather(*(alice.send("bob", f"m{i}") for i in range(40))), WAIT
            )
            assert sorted(s.pos for s in sent) == list(range(2, 42))


# ---------------------------------------------------------------------- CaughtUp


async def test_caught_up_follows_the_backlog_then_each_reconnect(server: RunningServer) -> None:
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice:
        for i in range(5):
            await alice.send("bob", f"old{i}")
        backoff = Backoff(0.3, 0.3, rng=_Longest())
        async with client(server, "bob", backoff=backoff) as bob:
            before, up = await until_caught_up(bob)
            assert [e.message.text for e in before if isinstance(e, MessageReceived)] == [
                f"old{i}" for i in range(5)
            ]
            assert up == CaughtUp(5) and len(before) == 5
            # Cut bob off; alice writes while he is away (or just back: then as pushes).
            conn = bob._session.conn
            assert conn is not None
            conn.abort()
            for i in range(3):
                await alice.send("bob", f"new{i}")
            before, up = await until_caught_up(bob)
            assert isinstance(before[0], Disconnected)
            synced = [e for e in before if isinstance(e, MessageReceived)]
            assert all(e.seq <= up.head for e in synced)
            assert isinstance(await next_event(bob), Reconnected)
            later: list[MessageReceived] = []
            while len(synced) + len(later) < 3:  # the rest came live, after the SYNC
                ev = await next_event(bob)
                assert isinstance(ev, MessageReceived) and ev.seq > up.head
                later.append(ev)
            assert [e.message.text for e in synced + later] == [f"new{i}" for i in range(3)]


async def test_caught_up_waits_for_the_refetch_after_an_overflow(server: RunningServer) -> None:
    """A queue of 4 and a backlog of 30: entries are dropped and fetched again as the
    application reads, and CaughtUp comes only after the last of them."""
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice:
        for i in range(30):
            await alice.send("bob", f"m{i}")
    async with client(server, "bob", queue_size=4) as bob:
        before, up = await until_caught_up(bob)
        assert [e.message.text for e in before if isinstance(e, MessageReceived)] == [
            f"m{i}" for i in range(30)
        ]
        assert up == CaughtUp(30)


# ---------------------------------------------------------------------- send()


async def test_send_waits_out_a_rate_limit_with_the_same_cmid(tmp_path: Path) -> None:
    """Four sends per second, bursts of 1: four sends at once are refused with RATE_LIMITED
    and a retry_after; each is retried after it and stored exactly once."""
    async with run_server(tmp_path, send_rate=4.0, send_burst=1) as srv:
        await make_users(srv, "alice", "bob")
        async with client(srv, "alice") as alice, client(srv, "bob") as bob:
            sent = await asyncio.wait_for(
                asyncio.gather(*(alice.send("bob", f"m{i}", timeout=None) for i in range(4))), WAIT
            )
            assert sorted(s.pos for s in sent) == [1, 2, 3, 4]
            assert not any(s.duplicate for s in sent)
            texts = []
            while len(texts) < 4:
                ev = await next_event(bob)
                if isinstance(ev, MessageReceived):
                    texts.append(ev.message.text)
            assert sorted(texts) == [f"m{i}" for i in range(4)]
            # A wait that would outlast the timeout is not waited: nothing was stored, and
            # the RequestError (with its retry_after) says so at once.
            await alice.send("bob", "spend the token", timeout=None)
            with pytest.raises(RequestError) as exc:
                await alice.send("bob", "too soon", timeout=0.01)
            assert exc.value.code == ErrorCode.RATE_LIMITED and exc.value.retry_after
            page = await bob.history("alice")
            assert "too soon" not in [m.text for m in page.messages]


async def test_send_timeout_does_not_count_an_outage(server: RunningServer) -> None:
    """The server is down for longer than the send's timeout: the send waits for the
    reconnect and then succeeds, because the timeout counts connected time only."""
    await make_users(server, "alice", "bob")
    async with client(server, "alice", backoff=Backoff(0.05, 0.2)) as alice:
        await alice.send("bob", "before")
        await until_caught_up(alice)
        await server.stop()
        assert isinstance(await next_event(alice), Disconnected)
        sending = asyncio.ensure_future(alice.send("bob", "during", timeout=0.5))
        await asyncio.sleep(1.5)  # the outage outlasts the timeout: the point of the test
        assert not sending.done()
        await server.start()
        sent = await asyncio.wait_for(sending, WAIT)
        assert sent.pos == 2 and not sent.duplicate


async def test_send_without_an_answer_says_the_outcome_is_unknown(server: RunningServer) -> None:
    """A live connection that never answers: SendTimeout carries the cmid, and sending
    again with it answers the question without a second copy."""
    await make_users(server, "alice", "bob")
    alice = client(server, "alice")
    original = alice._session._on_message
    swallowed: list[Sent] = []

    def swallow_sent(c: Any, msg: Any) -> bool:
        if isinstance(msg, Sent) and not swallowed:
            swallowed.append(msg)
            return True  # the request never hears of it; the connection lives on
        return original(c, msg)

    alice._session._on_message = swallow_sent  # type: ignore[method-assign]
    async with alice:
        conn = alice._session.conn
        with pytest.raises(SendTimeout) as exc:
            await alice.send("bob", "lost answer", cmid="c-1", timeout=0.5)
        assert isinstance(exc.value, TimeoutError) and exc.value.cmid == "c-1"
        assert swallowed and alice.connected and alice._session.conn is conn
        again = await alice.send("bob", "lost answer", cmid=exc.value.cmid)
        assert again.duplicate and again.id == swallowed[0].id


# ---------------------------------------------------------------------- the facades


async def test_facades_end_to_end(server: RunningServer) -> None:
    await make_users(server, "alice", "bob", "carol")
    async with (
        client(server, "alice") as alice,
        client(server, "bob") as bob,
        client(server, "carol") as carol,
    ):
        await bob.account.set_privacy(groups="everyone")
        await carol.account.set_privacy(groups="everyone")
        team = await alice.groups.create("team", ["bob"], topic="t")
        ev = await next_event(bob)
        while not isinstance(ev, GroupChanged):
            ev = await next_event(bob)
        assert (ev.type, ev.group, ev.actor) == ("created", team.group, "alice")
        sent = await alice.groups.send(team.group, "hello team")
        pos = await alice.groups.add(team.group, "carol")
        assert pos == sent.pos + 1
        assert await alice.groups.set_role(team.group, "bob", "admin") == pos + 1
        await alice.groups.update(team.group, name="crew")
        assert [(g.group, g.name, g.role) for g in await alice.groups.list()] == [
            (team.group, "crew", "owner")
        ]
        assert await alice.groups() == await alice.groups.list()
        page, more = await alice.groups.page(limit=1)
        assert [g.group for g in page] == [team.group] and not more
        info = await bob.groups.info(team.group)
        assert {m.user: m.role for m in info.members} == {
            "alice": "owner",
            "bob": "admin",
            "carol": "member",
        }
        history = await carol.groups.history(team.group)
        assert [m.event["type"] for m in history.messages if m.event] == [
            "added",
            "role",
            "renamed",
        ]
        # bob sees the membership changes as GroupChanged events, the message as a message
        seen: list[tuple[str, str]] = []
        while len(seen) < 4:
            ev = await next_event(bob)
            if isinstance(ev, GroupChanged):
                seen.append(("event", ev.type))
            elif isinstance(ev, MessageReceived):
                seen.append(("message", ev.message.text))
        assert seen == [
            ("message", "hello team"),
            ("event", "added"),
            ("event", "role"),
            ("event", "renamed"),
        ]
        await carol.groups.leave(team.group)
        await alice.groups.transfer(team.group, "bob")
        assert (await bob.groups.info(team.group)).owner == "bob"

        await alice.contacts.request("carol")
        await carol.contacts.accept("alice")
        assert (await alice.contacts()).contacts == ("carol",)
        await alice.contacts.block("bob")
        assert (await alice.contacts.list()).blocked == ("bob",)
        await alice.contacts.unblock("bob")

        await alice.account.set_profile(display_name="Alice")
        assert (await carol.account.profile("alice")).display_name == "Alice"
        await alice.account.set_privacy(receipts="nobody")
        assert (await alice.account.privacy()).receipts == "nobody"
        assert [d.device for d in await alice.account.devices()] == ["default"]
        online = {p.user: p.online for p in await alice.presence.query(["carol"])}
        assert online == {"carol": True}
        assert await alice.presence("carol") == await alice.presence.query("carol")
        assert await alice.presence.typing("carol")
