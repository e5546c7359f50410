"""Accounts and sessions: register, login, token auth, logout, devices.

Passwords are hashed with argon2id off the event loop. Session tokens are 256 random bits
and are stored only as SHA-256 hashes (a token is not guessable, so a slow hash adds
nothing). An unknown username costs the same argon2 verification as a wrong password, so
timing does not reveal which accounts exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

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

from ..store import StoreClosed
from .throttle import FailureWindow

if TYPE_CHECKING:
    from ..app import Server
    from ..transport import ServerConnection

T = TypeVar("T")


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AccountService:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.store = server.store
        cfg = server.config
        self.hasher = PasswordHasher(time_cost=cfg.argon2_time_cost,
                                     memory_cost=cfg.argon2_memory_kib,
                                     parallelism=cfg.argon2_parallelism)
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        self.by_account = FailureWindow(cfg.login_failures_per_account, cfg.login_window)
        self.by_address = FailureWindow(cfg.login_failures_per_address, cfg.login_window)
        r = server.router
        r.route(Register, self.register, exclusive=True)
        r.route(Login, self.login, exclusive=True)
        r.route(Auth, self.auth, exclusive=True)
        r.route(Logout, self.logout, exclusive=True)
        r.route(ListDevices, self.list_devices)
        r.route(RevokeDevice, self.revoke_device)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def register(self, conn: ServerConnection, msg: Register) -> None:
        if not validate_username(msg.username):
            raise RequestError(ErrorCode.INVALID_USERNAME,
                               "3-32 characters: a-z 0-9 _ . -, starting with a letter or digit")
        if not MIN_PASSWORD_LEN <= len(msg.password) <= MAX_PASSWORD_LEN:
            raise RequestError(ErrorCode.WEAK_PASSWORD,
                               f"password needs {MIN_PASSWORD_LEN}..{MAX_PASSWORD_LEN} characters")
        if await self.store.user_by_name(msg.username) is not None:
            raise RequestError(ErrorCode.USERNAME_TAKEN)
        hashed = await self._in_thread(self.hasher.hash, msg.password)
        try:
            await self.store.create_user(msg.username, hashed)
        except sqlite3.IntegrityError:
            raise RequestError(ErrorCode.USERNAME_TAKEN) from None
        except StoreClosed:
            raise RequestError(ErrorCode.UNAVAILABLE) from None
        conn.log.info("registered %s", msg.username)
        conn.send(Registered(rid=msg.rid, user=msg.username))

    def _check_throttle(self, conn: ServerConnection, username: str) -> None:
        now = self.server.loop.time()
        wait = max(self.by_account.retry_after(username, now) or 0,
                   self.by_address.retry_after(conn.peer_host, now) or 0)
        if wait:
            raise RequestError(ErrorCode.THROTTLED, retry_after=round(wait, 3))

    async def login(self, conn: ServerConnection, msg: Login) -> None:
        if not validate_device(msg.device):
            raise RequestError(ErrorCode.INVALID_DEVICE,
                               "1-64 characters: A-Z a-z 0-9 _ . : -, starting alphanumeric")
        self._check_throttle(conn, msg.username)
        user = await self.store.user_by_name(msg.username)
        ok = await self._in_thread(self._verify, user.password_hash if user else None,
                                   msg.password)
        now = self.server.loop.time()
        if user is None or not ok:
            self.by_account.fail(msg.username, now)
            self.by_address.fail(conn.peer_host, now)
            conn.log.info("failed login for %r from %s", msg.username, conn.peer_host)
            raise RequestError(ErrorCode.BAD_CREDENTIALS)
        self.by_account.clear(msg.username)
        self.server.hub.check_user_slots(user.id)  # before the device's token is replaced
        token = secrets.token_urlsafe(32)
        try:
            acked = await self.store.set_device_token(user.id, msg.device, token_hash(token))
        except StoreClosed:
            raise RequestError(ErrorCode.UNAVAILABLE) from None
        await self._bind(conn, user.id, user.username, msg.device)
        conn.log.info("login %s/%s", user.username, msg.device)
        conn.send(Authenticated(rid=msg.rid, user=user.username, device=msg.device,
                                head=conn.head_at_auth, acked=acked, token=token))

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored or self._dummy_hash, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def auth(self, conn: ServerConnection, msg: Auth) -> None:
        found = await self.store.device_by_token(token_hash(msg.token))
        if found is None:
            raise RequestError(ErrorCode.INVALID_TOKEN)
        user, device = found
        await self._bind(conn, user.id, user.username, device.device)
        self.store.touch_device(user.id, device.device)
        conn.log.info("auth %s/%s", user.username, device.device)
        conn.send(Authenticated(rid=msg.rid, user=user.username, device=device.device,
                                head=conn.head_at_auth, acked=device.acked))

    async def _bind(self, conn: ServerConnection, uid: int, username: str, device: str) -> None:
        head = await self.store.head(uid)
        conn.user_id, conn.username, conn.device = uid, username, device
        conn.head_at_auth = head
        self.server.hub.bind(conn)

    async def logout(self, conn: ServerConnection, msg: Logout) -> None:
        await self.store.delete_device(conn.user_id, conn.device)
        conn.send(LoggedOut(rid=msg.rid))
        self._disconnect_device(conn.user_id, conn.device)

    def _disconnect_device(self, uid: int, device: str) -> None:
        for other in list(self.server.hub.of_device(uid, device)):
            other.close(CloseCode.LOGGED_OUT, "device logged out")

    async def list_devices(self, conn: ServerConnection, msg: ListDevices) -> None:
        online = self.server.hub.online_devices(conn.user_id)
        devices = await self.store.devices_of(conn.user_id)
        conn.send(DeviceList(rid=msg.rid, devices=tuple(
            DeviceInfo(device=d.device, created=d.created, last_seen=d.last_seen,
                       online=d.device in online, acked=d.acked) for d in devices)))

    async def revoke_device(self, conn: ServerConnection, msg: RevokeDevice) -> None:
        if not validate_device(msg.device):
            raise RequestError(ErrorCode.INVALID_DEVICE)
        if not await self.store.delete_device(conn.user_id, msg.device):
            raise RequestError(ErrorCode.UNKNOWN_DEVICE)
        conn.send(DeviceRevoked(rid=msg.rid, device=msg.device))
        self._disconnect_device(conn.user_id, msg.device)

