"""Abuse of the account requests (issue 11, items 14, 15, 20, 25 and the device bound of 16):
login throttling counted before verifying and by (account, address), registration throttling
and the bound on concurrent argon2 hashes, re-login closing the device's old connections,
idle token expiry and the per-user device bound. Every test runs over real sockets."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from liaotian.protocol import (
    Auth,
    Authenticated,
    CloseCode,
    Error,
    ErrorCode,
    Login,
    Register,
    Registered,
    RevokeDevice,
)
from liaotian.server.handlers.accounts import AccountHandlers
from liaotian.server.testing import RunningServer, run_server
from rawclient import PASSWORD, RawClient

WRONG = "wrong password"


def accounts(srv: RunningServer) -> AccountHandlers:
    """The server's account service (the handler routed for LOGIN)."""
    assert srv.server is not None
    handler = srv.server.router._handlers[Login][0]
    svc = handler.__self__  # type: ignore[attr-defined]
    assert isinstance(svc, AccountHandlers)
    return svc


@asynccontextmanager
async def from_address(srv: RunningServer, address: str) -> AsyncIterator[RawClient]:
    """A client past HELLO whose connection comes from `address` (any of 127.0.0.0/8)."""
    reader, writer = await asyncio.open_connection(srv.host, srv.port, local_addr=(address, 0))
    c = RawClient(reader, writer)
    try:
        await c.hello()
        yield c
    finally:
        await c.close()


async def wait_for(cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


# ---------------------------------------------------------------- item 14


async def test_parallel_wrong_logins_are_counted_before_they_are_verified(
    tmp_path, clients
) -> None:
    """40 parallel wrong guesses for one account from one address: at most the free
    failures of the (account, address) pair are verified, the rest are THROTTLED."""
    async with run_server(tmp_path) as srv:
        await clients.register(srv, "alice")
        svc = accounts(srv)
        free = srv.config.login_free_failures
        store = svc.store
        gate = threading.Event()  # holds every verification until all 40 are past the check
        looked_up = 0
        original_lookup = store.user_by_name
        original_verify = svc._verify

        async def counting_lookup(name: str) -> Any:
            nonlocal looked_up
            looked_up += 1  # a LOGIN past the throttle check looks its user up
            return await original_lookup(name)

        def gated_verify(stored: str | None, password: str) -> bool:
            gate.wait(10.0)
            return original_verify(stored, password)

        store.user_by_name = counting_lookup  # type: ignore[method-assign]
        svc._verify = gated_verify  # type: ignore[method-assign]
        try:
            conns = [await clients.anonymous(srv) for _ in range(40)]
            rids = []
            for c in conns:
                rid = c.rid()
                rids.append(rid)
                await c.write(Login(rid=rid, username="alice", password=WRONG, device="d1"))

            pending = [
                asyncio.ensure_future(c.answer(rid, 15.0))
                for c, rid in zip(conns, rids, strict=True)
            ]
            # answered so far = refused without verifying (verifications wait for the gate)
            await wait_for(
                lambda: looked_up + sum(t.done() for t in pending) >= 40,
                "every LOGIN to be refused or to reach its verification",
                10.0,
            )
        finally:
            gate.set()
        answers = await asyncio.gather(*pending)
        codes = [a.code for a in answers if isinstance(a, Error)]
        assert len(codes) == 40
        assert codes.count(ErrorCode.BAD_CREDENTIALS) == looked_up <= free
        assert codes.count(ErrorCode.THROTTLED) == 40 - looked_up
        for a in answers:
            assert isinstance(a, Error)
            if a.code == ErrorCode.THROTTLED:
                assert a.retry_after is not None and a.retry_after > 0


# ---------------------------------------------------------------- item 15


async def test_a_burst_from_one_address_locks_no_owner_out(tmp_path, clients) -> None:
    """An attacker at 127.0.0.1 guesses at 8 accounts until refused; the owners, from
    127.0.0.2, still log in with their passwords, and a device holding a token still AUTHs,
    even from the attacker's address. The attacker's own attempts are THROTTLED."""
    names = [f"user{i}" for i in range(8)]
    async with run_server(tmp_path) as srv:
        await clients.register(srv, *names)
        holder = await clients.user(srv, "user0", "phone", register=False, sync=False)
        await holder.close()
        cfg = srv.config
        attacker = await clients.anonymous(srv)
        guesses = 0
        for name in names:
            for _ in range(cfg.login_free_failures + 1):
                ans = await attacker.request(
                    Login(rid=attacker.rid(), username=name, password=WRONG, device="x")
                )
                assert isinstance(ans, Error)
                if ans.code == ErrorCode.THROTTLED:
                    assert ans.retry_after is not None
                    assert 0 < ans.retry_after <= cfg.login_window
                    break
                assert ans.code == ErrorCode.BAD_CREDENTIALS
                guesses += 1
            else:
                raise AssertionError(f"{name}: never throttled")
        assert guesses <= cfg.login_failures_per_address
        # the attacker's pair is slowed down: even the right password waits there
        err = await attacker.expect_error(
            Login(rid=attacker.rid(), username="user0", password=PASSWORD, device="x"),
            ErrorCode.THROTTLED,
        )
        assert err.retry_after is not None and err.retry_after > 0

        for name in names:  # every owner, from another address
            async with from_address(srv, "127.0.0.2") as owner:
                auth = await owner.login(name, device="laptop")
                assert auth.user == name
        # a token is never throttled by password failures, not even from the attacker's address
        resumed = await clients.anonymous(srv)
        assert holder.token is not None
        assert (await resumed.auth(holder.token)).device == "phone"


async def test_account_ceiling_over_all_addresses(tmp_path, clients) -> None:
    """Guesses spread over addresses still meet the per-account ceiling."""
    async with run_server(tmp_path, login_failures_per_account=4, login_free_failures=2) as srv:
        await clients.register(srv, "alice")
        for address in ("127.0.0.3", "127.0.0.4"):
            async with from_address(srv, address) as c:
                for _ in range(2):
                    await c.expect_error(
                        Login(rid=c.rid(), username="alice", password=WRONG, device="d1"),
                        ErrorCode.BAD_CREDENTIALS,
                    )
        async with from_address(srv, "127.0.0.5") as c:
            err = await c.expect_error(
                Login(rid=c.rid(), username="alice", password=WRONG, device="d1"),
                ErrorCode.THROTTLED,
            )
            assert err.retry_after is not None and 0 < err.retry_after <= srv.config.login_window


# ---------------------------------------------------------------- item 20


async def test_registration_is_throttled_per_address(tmp_path, clients) -> None:
    async with run_server(tmp_path, register_rate=0.001, register_burst=3) as srv:
        c = await clients.anonymous(srv)
        for name in ("reg1", "reg2", "reg3"):
            await c.register(name)
        err = await c.expect_error(
            Register(rid=c.rid(), username="reg4", password=PASSWORD), ErrorCode.RATE_LIMITED
        )
        assert err.retry_after is not None and err.retry_after > 0
        async with from_address(srv, "127.0.0.2") as other:  # another address has its own
            await other.register("reg4")


async def test_concurrent_hashes_are_bounded_and_leave_room_for_logins(tmp_path, clients) -> None:
    """While one REGISTER's hash runs, a second REGISTER is refused (RATE_LIMITED with
    retry_after) instead of queueing another 64 MiB hash, and a LOGIN still verifies."""
    async with run_server(tmp_path, argon2_max_concurrent=2, register_max_concurrent=1) as srv:
        await clients.register(srv, "alice")
        svc = accounts(srv)
        gate = threading.Event()
        started = threading.Event()
        lock = threading.Lock()
        running = peak = 0
        real = svc.hasher

        class Hasher:
            def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
                nonlocal running, peak
                with lock:
                    running += 1
                    peak = max(peak, running)
                try:
                    return fn(*args)
                finally:
                    with lock:
                        running -= 1

            def hash(self, password: str) -> str:
                started.set()
                gate.wait(10.0)
                return str(self._run(real.hash, password))

            def verify(self, stored: str, password: str) -> bool:
                return bool(self._run(real.verify, stored, password))

        svc.hasher = Hasher()  # type: ignore[assignment]
        try:
            first = await clients.anonymous(srv)
            rid = first.rid()
            await first.write(Register(rid=rid, username="bob", password=PASSWORD))
            await wait_for(started.is_set, "the first registration's hash")
            second = await clients.anonymous(srv)
            err = await second.expect_error(
                Register(rid=second.rid(), username="carol", password=PASSWORD),
                ErrorCode.RATE_LIMITED,
            )
            assert err.retry_after is not None and err.retry_after > 0
            login = await clients.anonymous(srv)
            assert isinstance(await login.login("alice"), Authenticated)
        finally:
            gate.set()
        assert isinstance(await first.answer(rid), Registered)
        assert peak <= 2
        await second.register("carol")  # the slot is free again


# ---------------------------------------------------------------- item 25


async def test_relogin_closes_the_old_connections_of_the_device(server, clients) -> None:
    old = await clients.user(server, "alice", "d1")
    old2 = await clients.resume(server, old.token or "")
    other = await clients.user(server, "alice", "d2", register=False)
    new = await clients.user(server, "alice", "d1", register=False)
    await old.expect_close(CloseCode.LOGGED_OUT)
    await old2.expect_close(CloseCode.LOGGED_OUT)
    await other.barrier()  # another device is untouched
    await new.barrier()  # and the new login works
    c = await clients.anonymous(server)
    await c.expect_error(Auth(rid=c.rid(), token=old.token or ""), ErrorCode.INVALID_TOKEN)


async def test_token_unused_longer_than_the_idle_lifetime_is_refused(tmp_path, clients) -> None:
    async with run_server(tmp_path, token_idle_days=30) as srv:
        svc = accounts(srv)
        alice = await clients.user(srv, "alice", "d1", sync=False)
        bob = await clients.user(srv, "bob", "d1", sync=False)
        await alice.close()
        await bob.close()
        assert srv.server is not None
        hub = srv.server.hub
        await wait_for(lambda: not hub.connections, "the server to drop both connections")
        assert alice.token and bob.token
        now = time.time()
        svc.wall_clock = lambda: now + 29 * 86400  # within the lifetime
        c = await clients.anonymous(srv)
        await c.auth(bob.token)
        svc.wall_clock = lambda: now + 31 * 86400
        c = await clients.anonymous(srv)
        err = await c.expect_error(Auth(rid=c.rid(), token=alice.token), ErrorCode.INVALID_TOKEN)
        assert "expired" in err.message
        await c.login("alice")  # the password still works


async def test_token_idle_lifetime_zero_never_expires(tmp_path, clients) -> None:
    async with run_server(tmp_path, token_idle_days=0) as srv:
        svc = accounts(srv)
        alice = await clients.user(srv, "alice", "d1", sync=False)
        svc.wall_clock = lambda: time.time() + 3650 * 86400
        c = await clients.anonymous(srv)
        await c.auth(alice.token or "")


# ---------------------------------------------------------------- devices bound (item 16)


async def test_devices_per_user_are_bounded(tmp_path, clients) -> None:
    async with run_server(tmp_path, max_devices_per_user=2) as srv:
        d1 = await clients.user(srv, "alice", "d1", sync=False)
        await clients.user(srv, "alice", "d2", register=False, sync=False)
        c = await clients.anonymous(srv)
        err = await c.expect_error(
            Login(rid=c.rid(), username="alice", password=PASSWORD, device="d3"),
            ErrorCode.LIMIT_REACHED,
        )
        assert err.data == {"limit": "max_devices_per_user", "max": 2}
        await c.login("alice", device="d1")  # an existing device logs in again
        await d1.expect_close(CloseCode.LOGGED_OUT)
        await c.request(RevokeDevice(rid=c.rid(), device="d2"))
        other = await clients.anonymous(srv)
        await other.login("alice", device="d3")  # room again
