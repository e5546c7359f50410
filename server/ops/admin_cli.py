"""`liaotian-server admin COMMAND ...`: the operator's commands (admin.py).

With a server running on the database, the command goes through its admin socket. With
none running, the commands that make sense on a stopped server's database (users, devices,
disable, enable, reset-password, revoke, checkpoint, backup) open it themselves, taking
the database lock as a server does; status, sessions and kick need a running server.

Output: a table or `key=value` line, or with `--json` the result as JSON. Exit status 0,
1 if the command failed (one line on stderr says why), 2 for a usage or configuration
error. A new password is read from the terminal (twice) or from the first line of
standard input, never from the command line; it is hashed here, with the configured
argon2 parameters.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from liaotian.protocol import MAX_PASSWORD_LEN, MIN_PASSWORD_LEN

from ..config import Config
from ..store.contract import StoreOpenError
from ..store.sqlite.files import DatabaseInUse
from .admin import RUNNING_ONLY, Admin, AdminError, socket_path

PROG = "liaotian-server admin"
SOCKET_TIMEOUT = 600.0  # seconds for an answer (a backup of a large database takes a while)


class Usage(Exception):
    """A usage or configuration error (exit status 2)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Administer a liaotian server: through its admin socket when "
        "it runs, on its database when it does not (status, sessions "
        "and kick need it running).",
    )
    p.add_argument("--config", metavar="FILE", help="TOML configuration file of the server")
    p.add_argument(
        "--db-path",
        dest="db_path",
        help="its database (default: from the configuration, LIAOTIAN_DB_PATH or liaotian.db)",
    )
    p.add_argument(
        "--socket",
        dest="admin_socket",
        metavar="PATH",
        help="its admin socket (default: admin_socket, or <db_path>.admin)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("status", help="the running server: uptime, connections, rates, files")
    s = sub.add_parser("users", help="accounts, by id")
    s.add_argument("--limit", type=int, default=100)
    s.add_argument("--after", type=int, default=0, metavar="ID", help="ids above this")
    s = sub.add_parser("devices", help="an account's devices")
    s.add_argument("user")
    s = sub.add_parser("sessions", help="live connections (of one user)")
    s.add_argument("user", nargs="?")
    s = sub.add_parser("disable", help="refuse an account's logins, sign it out everywhere")
    s.add_argument("user")
    s = sub.add_parser("enable", help="let a disabled account log in again")
    s.add_argument("user")
    s = sub.add_parser(
        "reset-password", help="set a new password (read from the terminal or standard input)"
    )
    s.add_argument("user")
    s.add_argument(
        "--keep-devices", action="store_true", help="leave the account's devices signed in"
    )
    s = sub.add_parser("revoke", help="delete a device and its token, close its connections")
    s.add_argument("user")
    s.add_argument("device")
    s = sub.add_parser("kick", help="close a connection (by id, see sessions) or a user's")
    s.add_argument("conn", nargs="?", type=int)
    s.add_argument("--user")
    s.add_argument(
        "--reconnect",
        action="store_true",
        help="close with 1001 (clients reconnect) instead of 1000",
    )
    sub.add_parser("checkpoint", help="copy the WAL into the database file, truncate it")
    s = sub.add_parser("backup", help="write a consistent copy of the database")
    s.add_argument("dest", help="file to create (must not exist)")
    s = sub.add_parser("mint", help="create coins for a user (or *rewards); logged")
    s.add_argument("to", metavar="USER")
    s.add_argument("amount", type=int)
    s.add_argument("--memo", required=True, help="why (kept with the transfer)")
    s.add_argument("--key", help="idempotency key: the same mint is not made twice")
    s = sub.add_parser("grant", help="give a user a new item (an F code, an invitation)")
    s.add_argument("to", metavar="USER")
    s.add_argument("kind", help="fcode, invite, ...")
    sub.add_parser("wallet-report", help="check the wallet's invariants; totals")
    s = sub.add_parser("account-kind", help="make an account a merchant, or a person again")
    s.add_argument("user")
    s.add_argument("kind", choices=("person", "merchant"))
    return p


def request_of(ns: argparse.Namespace, config: Config) -> tuple[str, dict[str, Any]]:
    """The command and its arguments, as sent to the socket."""
    cmd = ns.command
    if cmd == "users":
        return cmd, {"limit": ns.limit, "after": ns.after}
    if cmd in ("devices", "disable", "enable"):
        return cmd, {"user": ns.user}
    if cmd == "sessions":
        return cmd, {"user": ns.user} if ns.user else {}
    if cmd == "revoke":
        return cmd, {"user": ns.user, "device": ns.device}
    if cmd == "kick":
        if (ns.conn is None) == (ns.user is None):
            raise Usage("kick takes a connection id or --user USER")
        target: dict[str, Any] = {"user": ns.user} if ns.user else {"conn": ns.conn}
        return cmd, {**target, "reconnect": ns.reconnect}
    if cmd == "backup":
        return cmd, {"dest": os.path.abspath(ns.dest)}
    if cmd == "mint":
        return cmd, {"to": ns.to, "amount": ns.amount, "memo": ns.memo, "key": ns.key or ""}
    if cmd == "grant":
        return cmd, {"to": ns.to, "kind": ns.kind}
    if cmd == "account-kind":
        return "account_kind", {"user": ns.user, "kind": ns.kind}
    if cmd == "wallet-report":
        return "wallet_report", {"tasks": config.wallet_tasks}
    if cmd == "reset-password":
        return "reset_password", {
            "user": ns.user,
            "password_hash": _new_hash(config),
            "sign_out": not ns.keep_devices,
        }
    return cmd, {}


def _new_hash(config: Config) -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            raise Usage("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not MIN_PASSWORD_LEN <= len(password) <= MAX_PASSWORD_LEN:
        raise Usage(f"a password has {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters")
    from argon2 import PasswordHasher

    return PasswordHasher(
        time_cost=config.argon2_time_cost,
        memory_cost=config.argon2_memory_kib,
        parallelism=config.argon2_parallelism,
    ).hash(password)


async def through_socket(path: str, command: str, args: dict[str, Any]) -> Any:
    """Send one command to a running server; its result, or AdminError. ConnectionError
    (or FileNotFoundError) when no server answers on `path`."""
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 26)
    try:
        writer.write(json.dumps({"command": command, "args": args}).encode() + b"\n")
        await writer.drain()
        async with asyncio.timeout(SOCKET_TIMEOUT):
            line = await reader.readline()
    finally:
        writer.close()
    if not line:
        raise AdminError(f"the server closed its admin socket {path} without an answer")
    answer = json.loads(line)
    if not answer.get("ok"):
        raise AdminError(str(answer.get("error", "failed")))
    return answer.get("result")


async def on_database(db_path: str, path: str | None, command: str, args: dict[str, Any]) -> Any:
    """Run a command on a stopped server's database."""
    from ..store import SQLiteStore

    if not os.path.exists(db_path):
        raise AdminError(
            f"no database at {db_path} (choose it with --db-path, "
            "LIAOTIAN_DB_PATH or db_path in --config)"
        )
    store = SQLiteStore(db_path, read_connections=1)
    try:
        await store.open()
    except DatabaseInUse as exc:
        where = (
            f"its admin socket {path} does not answer"
            if path
            else "its admin socket is off (admin_socket = off)"
        )
        raise AdminError(f"{exc}, but {where}") from None
    except StoreOpenError as exc:
        raise AdminError(str(exc)) from None
    try:
        return await Admin(store).call(command, args)
    finally:
        await store.close()


async def run(config: Config, command: str, args: dict[str, Any]) -> Any:
    path = socket_path(config)
    if path is not None:
        try:
            return await through_socket(path, command, args)
        except (FileNotFoundError, ConnectionRefusedError):
            pass  # no server answers there
        except OSError as exc:
            raise AdminError(f"cannot use the admin socket {path}: {exc.strerror or exc}") from None
    if command in RUNNING_ONLY:
        where = f"nothing answers on its admin socket {path}" if path else "admin_socket is off"
        raise AdminError(f"{command} needs a running server; {where}")
    return await on_database(config.db_path, path, command, args)


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    try:
        config = Config.load(
            file=ns.config, flags={"db_path": ns.db_path, "admin_socket": ns.admin_socket}
        )
        command, args = request_of(ns, config)
    except (OSError, ValueError, Usage) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(run(config, command, args))
    except AdminError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if ns.json else render(result))
    return 0


def render(result: Any) -> str:
    """A list of records as a table, a record as `key=value` pairs."""
    if isinstance(result, list):
        if not result:
            return "(none)"
        keys = list(result[0])
        rows = [[_cell(k, r.get(k)) for k in keys] for r in result]
        widths = [max(len(k), *(len(row[i]) for row in rows)) for i, k in enumerate(keys)]
        lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)).rstrip()]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        return "\n".join(lines)
    if isinstance(result, dict):
        return " ".join(f"{k}={_cell(k, v)}" for k, v in result.items())
    return str(result)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in ("created", "last_seen") and isinstance(value, int):
        if not value:
            return "-"
        return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
