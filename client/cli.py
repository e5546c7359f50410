"""`liaotian`: the command-line client.

    liaotian register alice                 # asks for the password
    liaotian login alice --device laptop    # saves token, device and cursor
    liaotian send bob hello there
    liaotian listen                         # prints messages as they arrive, until Ctrl-C
    liaotian history bob --limit 20
    liaotian devices
    liaotian logout

Global options (before or after the command): --host/--port (defaults 127.0.0.1:7420, or
LIAOTIAN_HOST/LIAOTIAN_PORT, or the address saved at login), --user (LIAOTIAN_USER) and
--state FILE (default: $XDG_CONFIG_HOME/liaotian/session-<user>.json; with no --user the
only session there is used). Passwords come from --password, LIAOTIAN_PASSWORD, or a prompt.

Exit status: 0 ok, 1 the server refused the request (its code name and message are
printed), 2 usage error, 3 the server could not be reached or the connection failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from liaotian.protocol import (
    ChatMessage,
    CloseCode,
    ConnectionClosed,
    LiaotianError,
    ProtocolError,
    RequestError,
)

from .client import DEFAULT_PORT, Client, register
from .cursor import FileStore, MemoryStore, SessionState
from .events import Disconnected, MessageReceived, Reconnected, Resync

__all__ = ["EXIT_CONNECTION", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3

DEFAULT_HOST = "127.0.0.1"


class UsageError(Exception):
    """A problem with how the command was invoked (exit status 2)."""


# ---------------------------------------------------------------------- parsing


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port {port} out of range 1..65535")
    return port


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return n


def _position(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid position {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return n


def _common(defaults: bool) -> argparse.ArgumentParser:
    """The global options. Subcommands accept them too (so `liaotian send --port 1 ...`
    works); there their default is SUPPRESS so they do not overwrite the main parser's."""
    p = argparse.ArgumentParser(add_help=False)
    d: Any = None if defaults else argparse.SUPPRESS
    p.add_argument("--host", default=d,
                   help=f"server host (env LIAOTIAN_HOST; default {DEFAULT_HOST})")
    p.add_argument("--port", type=_port, default=d,
                   help=f"server port (env LIAOTIAN_PORT; default {DEFAULT_PORT})")
    p.add_argument("--state", metavar="FILE", default=d,
                   help="session state file (default: "
                        "~/.config/liaotian/session-<user>.json)")
    p.add_argument("--user", "-u", default=d,
                   help="which saved session to use (env LIAOTIAN_USER)")
    p.add_argument("--timeout", type=float, default=10.0 if defaults else argparse.SUPPRESS,
                   help="seconds to wait for each answer (default 10)")
    p.add_argument("--tls", action="store_true", default=False if defaults else d,
                   help="connect with TLS (system trust store)")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liaotian", parents=[_common(True)],
        description="Command-line client for a liaotian messaging server.",
        epilog="exit status: 0 ok, 1 refused by the server, 2 usage, 3 connection failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = [_common(False)]

    p = sub.add_parser("register", parents=common, help="create an account")
    p.add_argument("username", metavar="USER")
    p.add_argument("--password", help="password (env LIAOTIAN_PASSWORD; else prompted)")

    p = sub.add_parser("login", parents=common,
                       help="log in and save the session (token, device, cursor)")
    p.add_argument("username", metavar="USER")
    p.add_argument("--device", default=None,
                   help="device name (default: the saved one, else 'cli')")
    p.add_argument("--password", help="password (env LIAOTIAN_PASSWORD; else prompted)")

    p = sub.add_parser("send", parents=common, help="send a message")
    p.add_argument("to", metavar="TO")
    p.add_argument("text", metavar="TEXT", nargs="+",
                   help="message text (words are joined by spaces; '-' reads stdin)")

    p = sub.add_parser("listen", parents=common,
                       help="print incoming messages as they arrive, until Ctrl-C")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="do not report connection changes on stderr")

    p = sub.add_parser("history", parents=common, help="show a conversation")
    p.add_argument("with_user", metavar="WITH")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--before", type=_position, metavar="P",
                       help="messages before conversation position P")
    group.add_argument("--after", type=_position, metavar="P",
                       help="messages after conversation position P")
    p.add_argument("--limit", type=_positive, metavar="N", help="at most N messages")

    sub.add_parser("devices", parents=common, help="list this account's devices")

    p = sub.add_parser("revoke", parents=common, help="revoke a device of this account")
    p.add_argument("device", metavar="DEVICE")

    sub.add_parser("logout", parents=common, help="end this device's session")
    return parser


# ---------------------------------------------------------------------- resolving


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "liaotian"


def state_path(args: argparse.Namespace, username: str | None = None) -> Path:
    """The session file: --state, else session-<user>.json for the named user, else the
    only session file in the config directory."""
    if args.state:
        return Path(args.state).expanduser()
    user = username or args.user or os.environ.get("LIAOTIAN_USER")
    directory = config_dir()
    if user:
        return directory / f"session-{user}.json"
    found = sorted(directory.glob("session-*.json")) if directory.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError("not logged in: run `liaotian login USER` first")
    names = ", ".join(f.stem.removeprefix("session-") for f in found)
    raise UsageError(f"several saved sessions ({names}): choose one with --user")


def server_address(args: argparse.Namespace, state: SessionState | None = None
                   ) -> tuple[str, int]:
    """--host/--port, else LIAOTIAN_HOST/LIAOTIAN_PORT, else the address saved at login,
    else 127.0.0.1:7420."""
    saved = state.extra if state is not None else {}
    host = args.host or os.environ.get("LIAOTIAN_HOST") or saved.get("host") or DEFAULT_HOST
    if args.port is not None:
        port = int(args.port)
    elif os.environ.get("LIAOTIAN_PORT"):
        try:
            port = _port(os.environ["LIAOTIAN_PORT"])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"LIAOTIAN_PORT: {exc}") from None
    elif isinstance(saved.get("port"), int):
        port = saved["port"]
    else:
        port = DEFAULT_PORT
    return str(host), port


def get_password(args: argparse.Namespace, prompt: str) -> str:
    if getattr(args, "password", None):
        return str(args.password)
    env = os.environ.get("LIAOTIAN_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        raise UsageError("no password: use --password, LIAOTIAN_PASSWORD or a terminal")
    return getpass.getpass(prompt)


def load_session(args: argparse.Namespace) -> tuple[FileStore, SessionState]:
    store = FileStore(state_path(args))
    try:
        state = store.load()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not state.token:
        raise UsageError(f"no session in {store.path}: run `liaotian login USER` first")
    return store, state


def fmt_time(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_message(m: ChatMessage) -> str:
    return f"[{fmt_time(m.ts)}] {m.sender} -> {m.to}: {m.text}"


# ---------------------------------------------------------------------- commands


def _ssl(args: argparse.Namespace) -> bool | None:
    return True if args.tls else None


async def cmd_register(args: argparse.Namespace, out: TextIO) -> int:
    host, port = server_address(args)
    password = get_password(args, f"Password for new user {args.username}: ")
    user = await register(host, port, args.username, password, ssl=_ssl(args),
                          timeout=args.timeout)
    print(f"registered {user}", file=out)
    return EXIT_OK


async def cmd_login(args: argparse.Namespace, out: TextIO) -> int:
    store = FileStore(state_path(args, args.username))
    try:
        old = store.load()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    host, port = server_address(args, old)
    password = get_password(args, f"Password for {args.username}: ")
    device = args.device or (old.device if old.username == args.username else None) or "cli"
    # A fresh LOGIN: ignore any saved token, keep the cursor if it is the same device. The
    # client works on a copy in memory; the file changes only once the login succeeded.
    if old.username == args.username and old.device == device:
        base = old.with_changes(token=None)
    else:
        base = SessionState(username=args.username, device=device)
    memory = MemoryStore(base.with_changes(extra={**base.extra, "host": host, "port": port}))
    client = Client(host, port, username=args.username, password=password, device=device,
                    store=memory, ssl=_ssl(args), reconnect=False, sync=False,
                    initial_sync="new", request_timeout=args.timeout)
    async with client:
        user, device = client.user, client.device
    store.save(memory.load())
    print(f"logged in as {user} on device {device} (session saved in {store.path})", file=out)
    return EXIT_OK


def _session_client(args: argparse.Namespace, **options: Any) -> Client:
    store, state = load_session(args)
    host, port = server_address(args, state)
    options.setdefault("reconnect", False)
    options.setdefault("sync", False)
    return Client(host, port, store=store, ssl=_ssl(args), request_timeout=args.timeout,
                  initial_sync="new", **options)


async def cmd_send(args: argparse.Namespace, out: TextIO) -> int:
    text = sys.stdin.read().rstrip("\n") if args.text == ["-"] else " ".join(args.text)
    async with _session_client(args) as client:
        sent = await client.send(args.to, text)
    print(f"sent #{sent.pos} to {args.to} at {fmt_time(sent.ts)}", file=out)
    return EXIT_OK


async def cmd_listen(args: argparse.Namespace, out: TextIO) -> int:
    err = sys.stderr
    async with _session_client(args, reconnect=True, sync=True) as client:
        # Ctrl-C and SIGTERM end the loop through close(), which ACKs and saves the cursor.
        # (Installing the handlers also makes SIGINT work in a background job, where the
        # shell starts the process with SIGINT ignored.)
        loop = asyncio.get_running_loop()
        closing: set[asyncio.Task[None]] = set()

        def stop() -> None:
            task = loop.create_task(client.close())
            closing.add(task)
            task.add_done_callback(closing.discard)

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop)
        if not args.quiet:
            print(f"listening as {client.user} (Ctrl-C to stop)", file=err, flush=True)
        async for event in client:
            if isinstance(event, MessageReceived):
                print(fmt_message(event.message), file=out, flush=True)
            elif args.quiet:
                continue
            elif isinstance(event, Disconnected):
                print(f"(disconnected: {event.reason or event.code}; reconnecting)",
                      file=err, flush=True)
            elif isinstance(event, Reconnected):
                print("(reconnected)", file=err, flush=True)
            elif isinstance(event, Resync):
                print("(older messages are no longer in the server's log: "
                      "use `liaotian history` to see them)", file=err, flush=True)
    return EXIT_OK


async def cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        page = await client.history(args.with_user, before=args.before, after=args.after,
                                    limit=args.limit)
    for m in page.messages:
        print(f"#{m.pos} {fmt_message(m)}", file=out)
    if page.more and page.messages:
        hint = (f"--after {page.messages[-1].pos}" if args.after is not None
                else f"--before {page.messages[0].pos}")
        print(f"(more: {hint})", file=sys.stderr)
    return EXIT_OK


async def cmd_devices(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        devices = await client.devices()
        me = client.device
    for d in devices:
        mark = "*" if d.device == me else " "
        status = "online " if d.online else "offline"
        print(f"{mark} {d.device:<20} {status} last seen {fmt_time(d.last_seen)}  "
              f"acked {d.acked}", file=out)
    return EXIT_OK


async def cmd_revoke(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        await client.revoke_device(args.device)
    print(f"revoked {args.device}", file=out)
    return EXIT_OK


async def cmd_logout(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        await client.logout()  # also forgets the token in the state file
    print("logged out", file=out)
    return EXIT_OK


COMMANDS = {
    "register": cmd_register,
    "login": cmd_login,
    "send": cmd_send,
    "listen": cmd_listen,
    "history": cmd_history,
    "devices": cmd_devices,
    "revoke": cmd_revoke,
    "logout": cmd_logout,
}


# ---------------------------------------------------------------------- main


def _fail(message: str, status: int) -> int:
    print(f"liaotian: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on a usage error
    command = COMMANDS[args.command]
    try:
        return asyncio.run(command(args, sys.stdout))
    except KeyboardInterrupt:
        return EXIT_OK if args.command == "listen" else 130
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except RequestError as exc:
        return _fail(f"{exc.code.name}: {exc.message}", EXIT_REFUSED)
    except ConnectionClosed as exc:
        if exc.close_code == CloseCode.LOGGED_OUT:
            return _fail("LOGGED_OUT: this device's session was ended; log in again",
                         EXIT_REFUSED)
        return _fail(str(exc), EXIT_CONNECTION)
    except (OSError, ProtocolError) as exc:  # OSError includes TimeoutError
        what = "timed out" if isinstance(exc, TimeoutError) else str(exc)
        return _fail(f"connection failed: {what}", EXIT_CONNECTION)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except LiaotianError as exc:
        return _fail(str(exc), EXIT_CONNECTION)


if __name__ == "__main__":
    sys.exit(main())
