"""REGISTER, LOGIN, AUTH, throttling, LOGOUT, LIST_DEVICES and REVOKE_DEVICE."""

from __future__ import annotations

import asyncio
import re

import pytest
from liaotian.protocol import (
    Auth,
    CloseCode,
    DeviceRevoked,
    ErrorCode,
    LoggedOut,
    Login,
    Logout,
    Register,
    RevokeDevice,
)
from liaotian.server.testing import run_server
from rawclient import PASSWORD


@pytest.mark.parametrize(
    "name", ["ab", "Alice", "_alice", "-bob", ".bob", "bob smith", "a" * 33, "bob!", "émile", ""]
)
async def test_register_rejects_invalid_usernames(server, clients, name) -> None:
    c = await clients.anonymous(server)
    await c.expect_error(
        Register(rid=c.rid(), username=name, password=PASSWORD), ErrorCode.INVALID_USERNAME
    )


@pytest.mark.parametrize("name", ["abc", "a" * 32, "0day", "x_y.z-w", "bob"])
async def test_register_accepts_valid_usernames(server, clients, name) -> None:
    c = await clients.anonymous(server)
    assert (await c.register(name)).user == name
    await c.login(name)


async def test_register_password_rules_and_taken(server, clients) -> None:
    c = await clients.anonymous(server)
    for bad in ("", "short", "1234567", "x" * 1025):
        await c.expect_error(
            Register(rid=c.rid(), username="carol", password=bad), ErrorCode.WEAK_PASSWORD
        )
    assert (await c.register("carol", "12345678")).user == "carol"  # 8 is enough
    assert (await c.register("dave", "é" * 1024)).user == "dave"  # characters, not bytes
    await c.expect_error(
        Register(rid=c.rid(), username="carol", password=PASSWORD), ErrorCode.USERNAME_TAKEN
    )
    # a failed REGISTER created nothing and the first password still works
    other = await clients.anonymous(server)
    await other.login("carol", "12345678")
    await other.close()
    other = await clients.anonymous(server)
    await other.expect_error(
        Login(rid=other.rid(), username="carol", password=PASSWORD, device="d1"),
        ErrorCode.BAD_CREDENTIALS,
    )


async def test_login_answers(server, clients) -> None:
    await clients.register(server, "alice")
    c = await clients.anonymous(server)
    wrong = await c.expect_error(
        Login(rid=c.rid(), username="alice", password="wrong pass", device="d1"),
        ErrorCode.BAD_CREDENTIALS,
    )
    unknown = await c.expect_error(
        Login(rid=c.rid(), username="nobody", password=PASSWORD, device="d1"),
        ErrorCode.BAD_CREDENTIALS,
    )
    assert wrong.message == unknown.message  # indistinguishable
    for bad_device in ("", "-x", "a b", "x" * 65, "dév"):
        await c.expect_error(
            Login(rid=c.rid(), username="alice", password=PASSWORD, device=bad_device),
            ErrorCode.INVALID_DEVICE,
        )
    auth = await c.login("alice", device="Phone_1.a:b-c")
    assert (auth.user, auth.device, auth.head, auth.acked) == ("alice", "Phone_1.a:b-c", 0, 0)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", auth.token)
    # account requests after authentication: 2008
    await c.expect_error(
        Login(rid=c.rid(), username="alice", password=PASSWORD, device="d2"),
        ErrorCode.ALREADY_AUTHENTICATED,
        raw=True,
    )
    await c.expect_error(
        Auth(rid=c.rid(), token=auth.token), ErrorCode.ALREADY_AUTHENTICATED, raw=True
    )
    await c.expect_error(
        Register(rid=c.rid(), username="zed", password=PASSWORD),
        ErrorCode.ALREADY_AUTHENTICATED,
        raw=True,
    )
    await c.barrier()


async def test_auth_with_token(server, clients) -> None:
    alice = await clients.user(server, "alice", "laptop")
    c = await clients.anonymous(server)
    await c.expect_error(Auth(rid=c.rid(), token="not-a-token"), ErrorCode.INVALID_TOKEN)
    await c.expect_error(Auth(rid=c.rid(), token=""), ErrorCode.INVALID_TOKEN)
    auth = await c.auth(alice.token)
    assert (auth.user, auth.device) == ("alice", "laptop")
    assert auth.token is None


async def test_login_throttled_per_account(server, clients) -> None:
    await clients.register(server, "alice", "bob")
    c = await clients.anonymous(server)
    for _ in range(5):
        await c.expect_error(
            Login(rid=c.rid(), username="alice", password="wrong pass", device="d1"),
            ErrorCode.BAD_CREDENTIALS,
        )
    err = await c.expect_error(
        Login(rid=c.rid(), username="alice", password="wrong pass", device="d1"),
        ErrorCode.THROTTLED,
    )
    assert err.retry_after is not None and 0 < err.retry_after <= 900
    # even the right password is refused while throttled
    err = await c.expect_error(
        Login(rid=c.rid(), username="alice", password=PASSWORD, device="d1"), ErrorCode.THROTTLED
    )
    assert err.retry_after > 0
    # other accounts are not affected
    await c.login("bob")


async def test_successful_login_clears_account_failures(server, clients) -> None:
    await clients.register(server, "alice")
    c = await clients.anonymous(server)
    for _ in range(4):
        await c.expect_error(
            Login(rid=c.rid(), username="alice", password="wrong pass", device="d1"),
            ErrorCode.BAD_CREDENTIALS,
        )
    await c.login("alice")
    c = await clients.anonymous(server)
    for _ in range(4):  # counting starts again
        await c.expect_error(
            Login(rid=c.rid(), username="alice", password="wrong pass", device="d1"),
            ErrorCode.BAD_CREDENTIALS,
        )
    await c.login("alice")


async def test_login_throttled_per_address(tmp_path, clients) -> None:
    async with run_server(tmp_path, login_failures_per_address=3) as srv:
        await clients.register(srv, "alice")
        c = await clients.anonymous(srv)
        for name in ("u1", "u2", "u3"):
            await c.expect_error(
                Login(rid=c.rid(), username=name, password="wrong pass", device="d1"),
                ErrorCode.BAD_CREDENTIALS,
            )
        err = await c.expect_error(
            Login(rid=c.rid(), username="alice", password=PASSWORD, device="d1"),
            ErrorCode.THROTTLED,
        )
        assert err.retry_after > 0


async def test_logout_closes_every_connection_of_the_device(server, clients) -> None:
    c1 = await clients.user(server, "alice", "d1")
    token = c1.token
    c2 = await clients.resume(server, token)
    other_device = await clients.user(server, "alice", "d2", register=False)

    ans = await c1.request(Logout(rid=c1.rid()))
    assert isinstance(ans, LoggedOut)
    await c1.expect_close(CloseCode.LOGGED_OUT)
    await c2.expect_close(CloseCode.LOGGED_OUT)
    # the other device is untouched
    await other_device.barrier()
    assert [d.device for d in (await other_device.devices()).devices] == ["d2"]

    c3 = await clients.anonymous(server)
    await c3.expect_error(Auth(rid=c3.rid(), token=token), ErrorCode.INVALID_TOKEN)
    # logging in again with the password creates the device afresh
    auth = await c3.login("alice", device="d1")
    assert auth.token != token


async def test_list_devices_online_flags(server, clients) -> None:
    phone = await clients.user(server, "alice", "phone")
    laptop = await clients.user(server, "alice", "laptop", register=False)
    await clients.user(server, "bob")
    listing = {d.device: d for d in (await phone.devices()).devices}
    assert set(listing) == {"phone", "laptop"}
    assert listing["phone"].online and listing["laptop"].online
    assert all(d.created > 0 and d.last_seen >= d.created for d in listing.values())

    await laptop.close_gracefully()  # the server has dropped it once the socket is closed
    listing = {d.device: d for d in (await phone.devices()).devices}
    assert listing["phone"].online and not listing["laptop"].online

    # a second connection of the same device: online while any one is open
    extra = await clients.resume(server, phone.token)
    await phone.close_gracefully()
    listing = {d.device: d for d in (await extra.devices()).devices}
    assert listing["phone"].online and not listing["laptop"].online


async def test_revoke_device(server, clients) -> None:
    phone = await clients.user(server, "alice", "phone")
    laptop = await clients.user(server, "alice", "laptop", register=False)
    laptop2 = await clients.resume(server, laptop.token)
    bob = await clients.user(server, "bob")

    await phone.expect_error(
        RevokeDevice(rid=phone.rid(), device="tablet"), ErrorCode.UNKNOWN_DEVICE
    )
    # bob cannot revoke alice's device: it is not on his account
    await bob.expect_error(RevokeDevice(rid=bob.rid(), device="laptop"), ErrorCode.UNKNOWN_DEVICE)
    await laptop.barrier()

    ans = await phone.request(RevokeDevice(rid=phone.rid(), device="laptop"))
    assert isinstance(ans, DeviceRevoked) and ans.device == "laptop"
    await laptop.expect_close(CloseCode.LOGGED_OUT)
    await laptop2.expect_close(CloseCode.LOGGED_OUT)
    assert [d.device for d in (await phone.devices()).devices] == ["phone"]
    c = await clients.anonymous(server)
    await c.expect_error(Auth(rid=c.rid(), token=laptop.token), ErrorCode.INVALID_TOKEN)
    await phone.expect_error(
        RevokeDevice(rid=phone.rid(), device="laptop"), ErrorCode.UNKNOWN_DEVICE
    )
    # revoking oneself: answered, then closed
    ans = await phone.request(RevokeDevice(rid=phone.rid(), device="phone"))
    assert isinstance(ans, DeviceRevoked)
    await phone.expect_close(CloseCode.LOGGED_OUT)
    # bob never noticed
    await bob.barrier()


async def test_second_login_of_a_device_replaces_its_token(server, clients) -> None:
    first = await clients.user(server, "alice", "d1")
    second = await clients.user(server, "alice", "d1", register=False)
    assert first.token != second.token
    c = await clients.anonymous(server)
    await c.expect_error(Auth(rid=c.rid(), token=first.token), ErrorCode.INVALID_TOKEN)
    await c.auth(second.token)
    assert [d.device for d in (await c.devices()).devices] == ["d1"]


async def test_token_survives_restart(server, clients) -> None:
    alice = await clients.user(server, "alice", "d1")
    await server.restart()
    c = await clients.anonymous(server)
    auth = await c.auth(alice.token)
    assert (auth.user, auth.device) == ("alice", "d1")


async def test_login_right_after_register_while_other_reads_run(server, clients) -> None:
    """A read answered over two reader-thread calls (execute, then fetch) left its statement
    open in between; any read interleaved there joined that statement's old snapshot, so a
    LOGIN right after REGISTERED sometimes could not see the new user (seen in the bench).
    Every read is now one call; this keeps reads busy while accounts are created."""
    readers = [await clients.user(server, f"reader{i}") for i in range(4)]
    await readers[0].send("reader1", "hello")
    stop = asyncio.Event()

    async def keep_reading(c) -> int:
        n = 0
        while not stop.is_set():
            await c.history("reader1" if c is not readers[1] else "reader0")
            n += 1
        return n

    tasks = [asyncio.ensure_future(keep_reading(c)) for c in readers]
    try:
        fresh = await clients.anonymous(server)
        for i in range(25):
            await fresh.register(f"newcomer{i}")
            other = await clients.anonymous(server)
            await other.login(f"newcomer{i}")  # raises if answered BAD_CREDENTIALS
            await other.close()
    finally:
        stop.set()
        counts = await asyncio.gather(*tasks)
    assert all(n > 0 for n in counts)
