"""The wallet through the client library (`client.wallet`) and the `liaotian` CLI, against
a real server: the issue's "done when". Two CLI users earn coins from a task; one pays the
other and sends a red packet into a group of three that both others claim; every user sees
the same balance and history on two devices, and each device got every change as a
WalletChanged event."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cliproc import CLI
from liaotian.client import CaughtUp, Client, WalletChanged, register
from liaotian.protocol import ErrorCode, RequestError
from liaotian.server.chat.audit import audit
from liaotian.server.testing import RunningServer, run_server

PASSWORD = "correct horse battery"
WAIT = 30.0


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    (tmp_path / "db").mkdir()
    async with run_server(tmp_path / "db") as srv:
        yield srv


def client(srv: RunningServer, user: str, device: str) -> Client:
    return Client(srv.host, srv.port, username=user, password=PASSWORD, device=device)


async def befriend(srv: RunningServer, a: str, b: str) -> None:
    async with client(srv, a, "setup") as ca, client(srv, b, "setup") as cb:
        await ca.contacts.request(b)
        await cb.contacts.accept(a)


async def wallet_events(c: Client, n: int) -> list[WalletChanged]:
    """The next n WalletChanged events of a client (other events are passed over)."""
    got: list[WalletChanged] = []
    async with asyncio.timeout(WAIT):
        async for event in c:
            if isinstance(event, WalletChanged):
                got.append(event)
                if len(got) == n:
                    return got
    raise AssertionError("event stream ended")


async def caught_up(c: Client) -> None:
    async with asyncio.timeout(WAIT):
        async for event in c:
            if isinstance(event, CaughtUp):
                return


async def test_two_cli_users_earn_pay_and_share_a_red_packet(
    server: RunningServer, tmp_path: Path
) -> None:
    for name in ("alice", "bob", "carol"):
        await register(server.host, server.port, name, PASSWORD)
    await befriend(server, "alice", "bob")
    await befriend(server, "alice", "carol")
    await befriend(server, "bob", "carol")
    cli = {
        name: CLI(server.host, server.port, tmp_path / name, LIAOTIAN_PASSWORD=PASSWORD)
        for name in ("alice", "bob")
    }

    async def run(name: str, *args: str) -> str:
        code, out, err = await cli[name].run(*args)
        assert code == 0, (name, args, out, err)
        return out

    for name in ("alice", "bob"):
        await run(name, "login", name, "--device", "cli")
        out = await run(name, "tasks", "check-in")
        assert "checkin: +10" in out and "balance 10" in out, out
        assert "1/1 per day" in out
    async with client(server, "alice", "phone") as alice:
        group = (await alice.groups.create("trip", ["bob", "carol"])).group
    out = await run("alice", "pay", "bob", "3", "--memo", "coffee")
    assert "paid 3 to bob; balance 7" in out, out
    out = await run(
        "alice", "red-packet", "send", "6", "2", "--group", str(group), "--memo", "gong xi"
    )
    packet = int(re.search(r"red packet #(\d+)", out).group(1))  # type: ignore[union-attr]
    out = await run("bob", "red-packet", "claim", str(packet))
    got_bob = int(re.search(r"claimed (\d+)", out).group(1))  # type: ignore[union-attr]
    async with client(server, "carol", "phone") as carol:
        got_carol = (await carol.wallet.claim(packet)).amount
        again = await carol.wallet.claim(packet)
        assert again.duplicate and again.amount == got_carol
    assert got_bob + got_carol == 6
    out = await run("alice", "red-packet", "show", str(packet))
    assert "emptied" in out and "bob" in out and "carol" in out
    want = {"alice": 1, "bob": 13 + got_bob, "carol": got_carol}
    # two devices of each user: the same balance, the same history
    for name, balance in want.items():
        views = []
        for device in ("d1", "d2"):
            async with client(server, name, device) as c:
                b = await c.wallet()
                history = [t async for t in c.wallet.history(page_size=2)]
                views.append((b.balance, b.pending_out, [t.id for t in history]))
        assert views[0] == views[1] and views[0][0] == balance and views[0][1] == 0, views
    out = await run("bob", "wallet")
    assert f"balance: {13 + got_bob}" in out and "+3" in out and "from alice (pay" in out
    assert server.server is not None
    dump = await server.server.store.ledger_dump()
    assert audit(dump, server.server.policy.wallet.tasks) == []


async def test_every_device_gets_the_changes_and_keys_make_retries_safe(
    server: RunningServer,
) -> None:
    for name in ("alice", "bob"):
        await register(server.host, server.port, name, PASSWORD)
    await befriend(server, "alice", "bob")
    async with (
        client(server, "alice", "a1") as a1,
        client(server, "alice", "a2") as a2,
        client(server, "bob", "b1") as b1,
    ):
        for c in (a1, a2, b1):
            await caught_up(c)
        done = await a1.wallet.check_in()
        assert done.balance == 10
        first = await a1.wallet.pay("bob", 4, "tea", key="pay-1")
        again = await a2.wallet.pay("bob", 4, "tea", key="pay-1")  # another device, same key
        assert again.duplicate and again.transfer == first.transfer
        with pytest.raises(RequestError) as exc:
            await a1.wallet.pay("bob", 5, "tea", key="pay-1")
        assert exc.value.code == ErrorCode.IDEMPOTENCY_MISMATCH
        for c in (a1, a2):  # the reward, then the payment: on both of alice's devices
            events = await wallet_events(c, 2)
            assert [e.transfer["code"] for e in events if e.transfer] == ["reward", "pay"]
            assert events[-1].balance == 6
        (bobs,) = await wallet_events(b1, 1)
        assert bobs.balance == 4 and bobs.transfer and bobs.transfer["memo"] == "tea"
        with pytest.raises(RequestError) as exc:
            await b1.wallet.pay("alice", 5)
        assert exc.value.code == ErrorCode.INSUFFICIENT_FUNDS
        with pytest.raises(ValueError):
            await a1.wallet.red_packet(1, 1)
        tasks = await a1.wallet.tasks()
        assert [(t.name, t.done, t.cap) for t in tasks] == [("checkin", 1, 1)]
        assert await a1.wallet.items() == []
