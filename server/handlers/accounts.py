"""Accounts and sessions: register, login, token auth, logout, devices.

Passwords are hashed with argon2id off the event loop. Session tokens are 256 random bits
and are stored only as SHA-256 hashes (a token is not guessable, so a slow hash adds
nothing). An unknown username costs the same argon2 verification as a wrong password, so
timing does not reveal which accounts exist.

Abuse bounds: LOGIN attempts are counted before the password is verified (LoginThrottle);
at most `argon2_max_concurrent` argon2 computations run at once, so their memory stays
below that many times `argon2_memory_kib`, and REGISTER may use only
`register_max_concurrent` of them (and is throttled per address), so registrations cannot
crowd out logins. A token unused for `token_idle_days` is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from liaotian.protocol import (
    MAX_PASSWORD_LEN,
    MIN_PASSWORD_LEN,
    Auth,
    Authenticated,
    CloseCode,
    DeviceInfo,
    DeviceList,
    DeviceRevoked,
    ErrorCode,
    ListDevices,
    LoggedOut,
    Login,
    Logout,
    Register,
    Registered,
    RequestError,
    RevokeDevice,
    validate_device,
    validate_username,
)

from ..config import Config
from ..net.hub import Hub
from ..net.peer import Peer
from ..net.router import Router
from ..store import Store, UsernameTaken
from .throttle import KeyedBuckets, LoginThrottle

T = TypeVar("T")


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AccountHandlers:
    def __init__(self, store: Store, hub: Hub, config: Config, clock: Callable[[], float]) -> None:
        self.store = store
        self.hub = hub
        self.config = config
        self.clock = clock  # monotonic seconds (the loop's)
        cfg = config
        self.hasher = PasswordHasher(
            time_cost=cfg.argon2_time_cost,
            memory_cost=cfg.argon2_memory_kib,
            parallelism=cfg.argon2_parallelism,
        )
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        self.logins = LoginThrottle(
            free_failures=cfg.login_free_failures,
            base_delay=cfg.login_delay,
            max_delay=cfg.login_max_delay,
            per_account=cfg.login_failures_per_account,
            per_address=cfg.login_failures_per_address,
            window=cfg.login_window,
        )
        self.registrations = KeyedBuckets(cfg.register_rate, cfg.register_burst)
        self._argon2_slots = asyncio.Semaphore(cfg.argon2_max_concurrent)
        self._registering = 0  # REGISTERs between their admission and their end
        self._hash_seconds = 0.5  # moving average of one REGISTER's hash, for retry_after
        self.token_idle_ms = int(cfg.token_idle_days * 86_400_000)
        self.wall_clock: Callable[[], float] = time.time  # seconds since the epoch
        # REGISTER with an invitation code: (connection, request, password hash) to the
        # wallet (app.py), which creates the account and pays its inviter in one commit
        # and answers after it; None: the code is ignored
        self.register_invited: Callable[[Peer, Register, str], None] | None = None

    def route(self, r: Router) -> None:
        r.route(Register, self.register, exclusive=True)
        r.route(Login, self.login, exclusive=True)
        r.route(Auth, self.auth, exclusive=True)
        r.route(Logout, self.logout, exclusive=True)
        r.route(ListDevices, self.list_devices)
        r.route(RevokeDevice, self.revoke_device)

    async def _argon2(self, fn: Callable[..., T], *args: Any) -> T:
        """Run an argon2 hash or verify in a thread, at most argon2_max_concurrent at once."""
        async with self._argon2_slots:
            return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def _admit_registration(self, conn: Peer) -> None:
        """Refuse a REGISTER beyond the concurrent-hash share or the address's bucket."""
        cfg = self.config
        if self._registering >= cfg.register_max_concurrent:
            raise RequestError(
                ErrorCode.RATE_LIMITED,
                "too many registrations at once",
                retry_after=round(max(self._hash_seconds, 0.05), 3),
            )
        wait = self.registrations.take(conn.peer_host, self.clock())
        if wait is not None:
            raise RequestError(
                ErrorCode.RATE_LIMITED,
                "too many registrations from this address",
                retry_after=round(max(wait, 0.001), 3),
            )

    async def register(self, conn: Peer, msg: Register) -> None:
        if not validate_username(msg.username):
            raise RequestError(
                ErrorCode.INVALID_USERNAME,
                "3-32 characters: a-z 0-9 _ . -, starting with a letter or digit",
            )
        if not MIN_PASSWORD_LEN <= len(msg.password) <= MAX_PASSWORD_LEN:
            raise RequestError(
                ErrorCode.WEAK_PASSWORD,
                f"password needs {MIN_PASSWORD_LEN}..{MAX_PASSWORD_LEN} characters",
            )
        self._admit_registration(conn)
        self._registering += 1
        try:
            if await self.store.user_by_name(msg.username) is not None:
                raise RequestError(ErrorCode.USERNAME_TAKEN)
            started = self.clock()
            hashed = await self._argon2(self.hasher.hash, msg.password)
            self._hash_seconds += (self.clock() - started - self._hash_seconds) / 8
            if msg.invite and self.register_invited is not None:
                self.register_invited(conn, msg, hashed)  # REGISTERED after its commit
                return
            uid = await self.store.create_user(msg.username, hashed)
        except UsernameTaken:
            raise RequestError(ErrorCode.USERNAME_TAKEN) from None
        finally:
            self._registering -= 1
        conn.log.info("registered %s (user %d)", msg.username, uid)
        conn.send(Registered(rid=msg.rid, user=msg.username))

    async def login(self, conn: Peer, msg: Login) -> None:
        if not validate_device(msg.device):
            raise RequestError(
                ErrorCode.INVALID_DEVICE,
                "1-64 characters: A-Z a-z 0-9 _ . : -, starting alphanumeric",
            )
        # counted as a failure before the (awaited) verification, handed back on success:
        # parallel guesses cannot all pass the check before the first failure is recorded
        account, address = msg.username, conn.peer_host
        wait = self.logins.reserve(account, address, self.clock())
        if wait is not None:
            raise RequestError(ErrorCode.THROTTLED, retry_after=round(wait, 3))
        try:
            user = await self.store.user_by_name(account)
            ok = await self._argon2(
                self._verify, user.password_hash if user else None, msg.password
            )
        except BaseException:
            self.logins.abandoned(account, address)
            raise
        # a disabled account's right password fails as a wrong one, and counts as one:
        # guesses at it stay throttled, and nothing tells it is disabled
        if user is None or not ok or user.id in self.hub.disabled:
            self.logins.failed(account, address, self.clock())
            conn.log.info("failed login for %r from %s", account, address)
            raise RequestError(ErrorCode.BAD_CREDENTIALS)
        self.logins.succeeded(account, address)
        self.hub.check_user_slots(user.id)  # before the device's token is replaced
        token = secrets.token_urlsafe(32)
        max_devices = self.config.max_devices_per_user
        acked = await self.store.set_device_token(
            user.id, msg.device, token_hash(token), max_devices=max_devices
        )
        if acked is None:
            raise RequestError(
                ErrorCode.LIMIT_REACHED,
                f"at most {max_devices} devices",
                data={"limit": "max_devices_per_user", "max": max_devices},
            )
        # the device's old token is dead: so are the connections that authenticated with it
        self._disconnect_device(user.id, msg.device, "logged in again")
        await self._bind(conn, user.id, user.username, msg.device)
        conn.log.debug("login %s/%s", user.username, msg.device)  # info: ops/lifecycle.py
        conn.send(
            Authenticated(
                rid=msg.rid,
                user=user.username,
                device=msg.device,
                head=conn.head_at_auth,
                acked=acked,
                token=token,
            )
        )

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored or self._dummy_hash, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def auth(self, conn: Peer, msg: Auth) -> None:
        found = await self.store.device_by_token(token_hash(msg.token))
        if found is None:
            raise RequestError(ErrorCode.INVALID_TOKEN)
        user, device = found
        if (
            self.token_idle_ms
            and not self.hub.of_device(user.id, device.device)
            and self.wall_clock() * 1000 - device.last_seen > self.token_idle_ms
        ):
            conn.log.info("expired token of %s/%s", user.username, device.device)
            raise RequestError(ErrorCode.INVALID_TOKEN, "token expired: log in again")
        await self._bind(conn, user.id, user.username, device.device)
        self.store.touch_device(user.id, device.device)
        conn.log.debug("auth %s/%s", user.username, device.device)  # info: ops/lifecycle.py
        conn.send(
            Authenticated(
                rid=msg.rid,
                user=user.username,
                device=device.device,
                head=conn.head_at_auth,
                acked=device.acked,
            )
        )

    async def _bind(self, conn: Peer, uid: int, username: str, device: str) -> None:
        conn.authenticated(uid, username, device, await self.store.head(uid))
        self.hub.bind(conn)

    async def logout(self, conn: Peer, msg: Logout) -> None:
        await self.store.delete_device(conn.user_id, conn.device)
        conn.send(LoggedOut(rid=msg.rid))
        self._disconnect_device(conn.user_id, conn.device)

    def _disconnect_device(self, uid: int, device: str, reason: str = "device logged out") -> None:
        for other in list(self.hub.of_device(uid, device)):
            other.close(CloseCode.LOGGED_OUT, reason)

    def unbound(self, conn: Peer) -> None:
        """A device's connection ended: it was in use until now (for token_idle_days)."""
        self.store.touch_device(conn.user_id, conn.device)

    async def list_devices(self, conn: Peer, msg: ListDevices) -> None:
        online = self.hub.online_devices(conn.user_id)
        devices = await self.store.devices_of(conn.user_id)
        conn.send(
            DeviceList(
                rid=msg.rid,
                devices=tuple(
                    DeviceInfo(
                        device=d.device,
                        created=d.created,
                        last_seen=d.last_seen,
                        online=d.device in online,
                        acked=d.acked,
                    )
                    for d in devices
                ),
            )
        )

    async def revoke_device(self, conn: Peer, msg: RevokeDevice) -> None:
        if not validate_device(msg.device):
            raise RequestError(ErrorCode.INVALID_DEVICE)
        if not await self.store.delete_device(conn.user_id, msg.device):
            raise RequestError(ErrorCode.UNKNOWN_DEVICE)
        conn.send(DeviceRevoked(rid=msg.rid, device=msg.device))
        self._disconnect_device(conn.user_id, msg.device)
