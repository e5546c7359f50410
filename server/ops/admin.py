"""The operator's commands (`liaotian-server admin ...`), on a running server or its database.

A running server serves them on a local Unix socket (`admin_socket`; by default
`<db_path>.admin`, beside the database), created 0600 and answering only peers of the
server's own user (or root) where the system tells (SO_PEERCRED). One request per
connection, one JSON object per line each way:

    -> {"command": "disable", "args": {"user": "alice"}}
    <- {"ok": true, "result": {...}}        or  {"ok": false, "error": "no user 'alice'"}

On a stopped server's database the same commands run on a store opened by the command
itself (it takes the database lock as a server does, so a server cannot start meanwhile),
except those about live connections (`RUNNING_ONLY`).

Commands (arguments in brackets): status; users [limit, after]; devices [user]; sessions
[user]; disable [user]: LOGIN refused (2002, as a wrong password), devices signed out (AUTH:
2006), connections closed (CLOSE 4002); enable [user]; reset_password [user, password_hash,
sign_out]: the caller hashes; sign_out (default) signs every device out and closes its
connections (4002); revoke [user, device]: as REVOKE_DEVICE (4002 to its connections);
kick [conn or user, reconnect]: CLOSE 1000, or 1001 with reconnect; checkpoint: the WAL
copied into the database file and truncated; backup [dest]: backup.py's online copy;
mint [to, amount, memo, key], grant [to, kind], wallet_report [tasks]: the wallet's
(wallet_admin.py); account_kind [user, kind]: "merchant" or "person" (SPEC.md 29.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from liaotian.protocol import CloseCode, validate_device

from ..store.sqlite import admin as admin_sql
from ..store.sqlite.admin import queue_depth
from ..store.sqlite.backup import BackupError, backup
from ..store.sqlite.files import PRIVATE
from . import package_version, wallet_admin
from .lifecycle import by_state, peer_of

if TYPE_CHECKING:
    from ..config import Config
    from ..net.peer import Peer as ServerConnection
    from ..store import SQLiteStore
    from .host import Host

log = logging.getLogger("liaotian.admin")
ACCOUNT_KINDS = ("person", "merchant")  # store.contract KIND_PERSON, KIND_MERCHANT
RUNNING_ONLY = frozenset({"status", "sessions", "kick"})
MAX_REQUEST = 64 * 1024  # bytes of one request line
UNIX_PATH_MAX = 107  # bytes of a Unix socket path (sun_path less its NUL), Linux


class AdminError(Exception):
    """A command failed; the text (one line) says why."""


def socket_path(config: Config) -> str | None:
    """Where the admin socket of a server with this configuration is, or None (off)."""
    if config.admin_socket.lower() == "off":
        return None
    return config.admin_socket or config.db_path + ".admin"


class Admin:
    """The commands, on `store`; with `server`, on a running server (its live connections)."""

    def __init__(self, store: SQLiteStore, server: Host | None = None) -> None:
        self.store = store
        self.server = server
        self.started = time.time()
        self._commands: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "status": self.status,
            "users": self.users,
            "devices": self.devices,
            "sessions": self.sessions,
            "disable": self.disable,
            "enable": self.enable,
            "reset_password": self.reset_password,
            "revoke": self.revoke,
            "kick": self.kick,
            "checkpoint": self.checkpoint,
            "backup": self.backup,
            "mint": self.mint,
            "grant": self.grant,
            "wallet_report": self.wallet_report,
            "account_kind": self.account_kind,
        }

    async def call(self, command: str, args: dict[str, Any]) -> Any:
        fn = self._commands.get(command)
        if fn is None:
            raise AdminError(f"unknown command {command!r}")
        if command in RUNNING_ONLY and self.server is None:
            raise AdminError(f"{command} needs a running server")
        return await fn(args)

    # ------------------------------------------------------------------ helpers

    async def _db(self, fn: Callable[[Any], Any]) -> Any:
        return await self.store.run_in_commit(fn)

    async def _user(self, args: dict[str, Any]) -> tuple[str, int, bool]:
        name = _text(args, "user")
        found = await self._db(lambda db: admin_sql.user_of(db, name))
        if found is None:
            raise AdminError(f"no user {name!r}")
        return name, found[0], found[1]

    def _close(self, conns: list[ServerConnection], code: int, reason: str) -> int:
        for c in conns:
            c.close(code, reason)
        return len(conns)

    def _conns_of(self, uid: int) -> list[ServerConnection]:
        return list(self.server.hub.of_user(uid)) if self.server else []

    # ------------------------------------------------------------------ commands

    async def status(self, args: dict[str, Any]) -> dict[str, Any]:
        server = self.server
        assert server is not None
        hub, store, cfg = server.hub, server.store, server.config
        states, users = by_state(hub)
        accounts, disabled = await self._db(admin_sql.count_users)
        db, wal = store.disk_sizes()
        metrics_port = server.metrics_port
        return {
            "version": package_version(),
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 1),
            "listening": f"{cfg.host}:{server.port}",
            "tls": server.tls_enabled,
            "database": os.path.abspath(store.path) if store.engine == "sqlite" else store.path,
            "database_bytes": db,
            "wal_bytes": wal,
            "accounts": accounts,
            "disabled_accounts": disabled,
            "connections": len(hub.connections),
            "authenticated": states.get("authenticated", 0),
            "users_online": users,
            "messages_committed": store.committed_sends,
            "commits": store.batches,
            "write_queue": queue_depth(store),
            "outbound_bytes": hub.outbound,
            "metrics": (
                f"http://{cfg.metrics_host}:{metrics_port}/metrics"
                if metrics_port is not None
                else None
            ),
        }

    async def users(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        limit = _int(args, "limit", 100, lo=1, hi=100_000)
        after = _int(args, "after", 0, lo=0)
        rows: list[dict[str, Any]] = await self._db(
            lambda db: admin_sql.list_users(db, limit, after)
        )
        if self.server is not None:
            hub = self.server.hub
            for r in rows:
                r["connections"] = len(hub.of_user(r["id"]))
        return rows

    async def devices(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        _, uid, _ = await self._user(args)
        rows: list[dict[str, Any]] = await self._db(lambda db: admin_sql.list_devices(db, uid))
        if self.server is not None:
            online = self.server.hub.online_devices(uid)
            for r in rows:
                r["online"] = r["device"] in online
        return rows

    async def sessions(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.server is not None
        hub = self.server.hub
        conns = sorted(hub.connections, key=lambda c: c.id)
        if args.get("user"):
            _, uid, _ = await self._user(args)
            conns = [c for c in conns if c.user_id == uid]
        lifecycle = self.server.lifecycle
        return [
            {
                "conn": c.id,
                "peer": peer_of(c),
                "user": c.username or None,
                "device": c.device or None,
                "state": c.conn.state.value,
                "live": c.live,
                "seconds": lifecycle.age(c),
                "unread_bytes": c.unread,
            }
            for c in conns
        ]

    async def disable(self, args: dict[str, Any]) -> dict[str, Any]:
        name, uid, was = await self._user(args)
        hub = self.server.hub if self.server else None
        if hub is not None:  # first: a LOGIN finishing while this commits is refused too
            hub.disabled.add(uid)
        try:
            signed_out = await self._db(lambda db: admin_sql.set_disabled(db, uid, True))
        except BaseException:
            if hub is not None and not was:
                hub.disabled.discard(uid)
            raise
        closed = self._close(self._conns_of(uid), CloseCode.LOGGED_OUT, "account disabled")
        log.info(
            "admin: disabled %s (%d devices signed out, %d connections closed)",
            name,
            signed_out,
            closed,
        )
        return {
            "user": name,
            "disabled": True,
            "was_disabled": was,
            "devices_signed_out": signed_out,
            "connections_closed": closed,
        }

    async def enable(self, args: dict[str, Any]) -> dict[str, Any]:
        name, uid, was = await self._user(args)
        await self._db(lambda db: admin_sql.set_disabled(db, uid, False))
        if self.server is not None:
            self.server.hub.disabled.discard(uid)
        log.info("admin: enabled %s", name)
        return {"user": name, "disabled": False, "was_disabled": was}

    async def reset_password(self, args: dict[str, Any]) -> dict[str, Any]:
        name, uid, _ = await self._user(args)
        hashed = _text(args, "password_hash")
        if not hashed.startswith("$argon2"):
            raise AdminError("password_hash must be an argon2 hash (the admin command makes it)")
        sign_out = bool(args.get("sign_out", True))
        signed_out = await self._db(
            lambda db: admin_sql.set_password(db, uid, hashed, sign_out=sign_out)
        )
        closed = (
            self._close(self._conns_of(uid), CloseCode.LOGGED_OUT, "password reset")
            if sign_out
            else 0
        )
        log.info(
            "admin: reset the password of %s (%d devices signed out, %d connections closed)",
            name,
            signed_out,
            closed,
        )
        return {"user": name, "devices_signed_out": signed_out, "connections_closed": closed}

    async def revoke(self, args: dict[str, Any]) -> dict[str, Any]:
        name, uid, _ = await self._user(args)
        device = _text(args, "device")
        if not validate_device(device) or not await self.store.delete_device(uid, device):
            raise AdminError(f"user {name!r} has no device {device!r}")
        conns = [c for c in self._conns_of(uid) if c.device == device]
        closed = self._close(conns, CloseCode.LOGGED_OUT, "device revoked")
        log.info("admin: revoked device %s of %s (%d connections closed)", device, name, closed)
        return {"user": name, "device": device, "connections_closed": closed}

    async def kick(self, args: dict[str, Any]) -> dict[str, Any]:
        assert self.server is not None
        hub = self.server.hub
        if args.get("user"):
            name, uid, _ = await self._user(args)
            conns = list(hub.of_user(uid))
            what = f"user {name!r}"
        else:
            conn_id = _int(args, "conn", 0, lo=1)
            conns = [c for c in hub.connections if c.id == conn_id]
            what = f"connection {conn_id}"
        if not conns:
            raise AdminError(f"no open connection of {what}")
        reconnect = bool(args.get("reconnect", False))
        code = CloseCode.GOING_AWAY if reconnect else CloseCode.NORMAL
        closed = self._close(conns, code, "closed by the server operator")
        log.info("admin: closed %d connections of %s with %d", closed, what, code)
        return {"connections_closed": closed, "code": int(code)}

    def _sqlite_only(self, what: str) -> None:
        """Checkpoints and file backups are SQLite's; PostgreSQL has its own tools."""
        if self.store.engine != "sqlite":
            raise AdminError(f"{what} is for SQLite databases; on PostgreSQL use pg_dump")

    async def checkpoint(self, args: dict[str, Any]) -> dict[str, Any]:
        self._sqlite_only("checkpoint")
        result = await admin_sql.checkpoint(self.store)
        log.info("admin: checkpoint: %s", result)
        return result

    # the wallet (wallet_admin.py)

    async def mint(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            return await wallet_admin.mint(self.store, args)
        except wallet_admin.WalletAdminError as exc:
            raise AdminError(str(exc)) from None

    async def grant(self, args: dict[str, Any]) -> Any:
        try:
            return await wallet_admin.grant(self.store, args, None)
        except wallet_admin.WalletAdminError as exc:
            raise AdminError(str(exc)) from None

    async def wallet_report(self, args: dict[str, Any]) -> dict[str, Any]:
        tasks = self.server.config.tasks() if self.server is not None else None
        return await wallet_admin.report(self.store, args, tasks)

    async def account_kind(self, args: dict[str, Any]) -> dict[str, Any]:
        """Make an account a merchant (SPEC.md 29.4) or a person again."""
        name, uid, _disabled = await self._user(args)
        kind = _text(args, "kind")
        if kind not in ACCOUNT_KINDS:
            raise AdminError(f"kind must be one of {', '.join(ACCOUNT_KINDS)}")
        await self.store.set_account_kind(uid, ACCOUNT_KINDS.index(kind))
        log.info("admin: account %s is a %s now", name, kind)
        return {"user": name, "kind": kind}

    async def backup(self, args: dict[str, Any]) -> dict[str, Any]:
        self._sqlite_only("backup")
        dest = _text(args, "dest")
        if not os.path.isabs(dest):
            raise AdminError(f"backup destination {dest!r} must be an absolute path")
        try:
            result = await asyncio.to_thread(backup, self.store.path, dest)
        except BackupError as exc:
            raise AdminError(str(exc)) from None
        log.info("admin: backup written to %s", dest)
        return result


def _text(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise AdminError(f"{key} is required")
    return value


def _int(
    args: dict[str, Any], key: str, default: int, *, lo: int = 0, hi: int | None = None
) -> int:
    value = args.get(key, default)
    if value is None:
        value = default
    if type(value) is not int or value < lo or (hi is not None and value > hi):
        raise AdminError(
            f"{key} must be a whole number of at least {lo}"
            + (f" and at most {hi}" if hi is not None else "")
        )
    return value


class AdminSocket:
    """Serves `Admin` on a Unix socket (see the module text)."""

    def __init__(self, admin: Admin, path: str) -> None:
        self.admin = admin
        self.path = path
        self._server: asyncio.base_events.Server | None = None
        self._inode: tuple[int, int] | None = None

    async def start(self) -> None:
        """Create the socket 0600 and serve. AdminError (one line) if it cannot."""
        path = self.path
        if len(os.fsencode(path)) > UNIX_PATH_MAX:
            raise AdminError(
                f"admin socket path {path} is longer than {UNIX_PATH_MAX} bytes "
                "(set admin_socket to a shorter path, or off)"
            )
        await self._remove_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)  # created 0600: no moment when others may connect
            try:
                sock.bind(path)
            finally:
                os.umask(old)
            os.chmod(path, PRIVATE)
            st = os.stat(path)
            self._inode = (st.st_dev, st.st_ino)
            sock.listen(16)
            self._server = await asyncio.start_unix_server(
                self._serve, sock=sock, limit=MAX_REQUEST
            )
        except OSError as exc:
            sock.close()
            raise AdminError(f"cannot create admin socket {path}: {exc.strerror or exc}") from None

    async def _remove_stale(self) -> None:
        """A socket left by a server that died (we hold the database lock, so it is not
        another server of this database's) is removed; another server's answering one, or
        a file that is not a socket, stops us."""
        path = self.path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise AdminError(f"admin socket path {path} exists and is not a socket")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), 2.0)
        except (OSError, TimeoutError):
            os.unlink(path)
            return
        writer.close()
        raise AdminError(f"admin socket {path} is in use by another server")

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(OSError):  # only if it is still ours
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._inode:
                os.unlink(self.path)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1.0)
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _peer_allowed(writer):
                log.warning("admin: refused a peer of another user")
                return
            try:
                line = await asyncio.wait_for(reader.readline(), 30.0)
                request = json.loads(line)
                command, args = request["command"], request.get("args") or {}
                if not isinstance(command, str) or not isinstance(args, dict):
                    raise ValueError
            except (ValueError, KeyError, TypeError, asyncio.LimitOverrunError):
                answer: dict[str, Any] = {"ok": False, "error": "bad request"}
            else:
                try:
                    answer = {"ok": True, "result": await self.admin.call(command, args)}
                except AdminError as exc:
                    answer = {"ok": False, "error": str(exc)}
                except Exception:
                    log.exception("admin command %s failed", command)
                    answer = {"ok": False, "error": "internal error (see the server's log)"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()


def _peer_allowed(writer: asyncio.StreamWriter) -> bool:
    """The peer runs as our user or root (when the system says; the 0600 mode of the
    socket file says the same)."""
    sock = writer.get_extra_info("socket")
    opt = getattr(socket, "SO_PEERCRED", None)
    if sock is None or opt is None:
        return True
    try:
        _pid, uid, _gid = struct.unpack(
            "3i", sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
        )
    except (OSError, struct.error):
        return True
    return uid in (0, os.getuid())
