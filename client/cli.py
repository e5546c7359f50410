"""`liaotian`: the command-line client.

    liaotian register alice                 # asks for the password
    liaotian login alice --device laptop    # saves token, device and cursor; alice is
                                            # now the current session
    liaotian switch bob                     # make another saved session the current one
    liaotian send bob hello there
    liaotian listen [--mark-read]           # unread messages, then new ones as they
                                            # arrive, until Ctrl-C
    liaotian history bob --limit 20
    liaotian chat [--with bob | --group trip]   # full-screen chat (Ctrl-Q quits)
    liaotian devices
    liaotian logout

    liaotian group create team --member bob --member carol --topic "release"
    liaotian group list / info G / add G USER... / remove G USER / leave G
    liaotian send --group G hello team      # or: liaotian gsend G hello team
    liaotian history --group G
    liaotian chats                          # conversations and channels, newest first,
                                            # unread counts
    liaotian read CONV POS / receipts CONV
    liaotian contacts / contact request|accept|decline|cancel|remove USER
    liaotian block USER / unblock USER / presence USER...
    liaotian profile [USER] / profile set --name N --status S
    liaotian privacy [--presence V] [--profile V] [--messages V] [--groups V] [--receipts V]

    liaotian send-file bob notes.pdf [--text T] / send-image bob beach.jpg / send-voice bob v.ogg
    liaotian send-track bob song.mp3 --clip 0:30-1:00 [--cover art.png] [--title T] [--artist A]
    liaotian download --with bob --pos 15 [DEST]   # the photo, file, ... of message #15
    liaotian download BLOB DEST                    # by blob id (64 hex digits)

    liaotian channel create news / join LINK / post news "hi" / comment news 1 "yes" /
    liaotian channel like news 1 / search news hi / read news / list   (channel_cli.py)

Global options (before or after the command): --host/--port (defaults 127.0.0.1:7420, or
LIAOTIAN_HOST/LIAOTIAN_PORT, or the address saved at login), --user (LIAOTIAN_USER) and
--state FILE (default: $XDG_CONFIG_HOME/liaotian/session-<user>.json; with no --user the
current session: the last `login` or `switch`, else the only saved one). Passwords come from
--password, LIAOTIAN_PASSWORD, or a prompt.

Everything printed that a peer or the server chose (message text, names, topics, statuses,
error messages) goes through `terminal.safe()`: control characters show as escapes, and the
lines of a multi-line message after the first are indented.

Exit status: 0 ok, 1 the server refused the request (its code name and message are
printed), 2 usage error, 3 the server could not be reached or the connection failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import math
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from liaotian.protocol import (
    ChatMessage,
    CloseCode,
    ConnectionClosed,
    ErrorCode,
    LiaotianError,
    ProtocolError,
    RequestError,
)
from liaotian.protocol.social import MESSAGE_POLICY, VISIBILITY, GroupInfo

from . import bot_cli, channel_cli, nearby_cli, shop_cli, wallet_cli
from .backoff import Backoff
from .client import DEFAULT_PORT, Client, register
from .cursor import FileStore, MemoryStore, SessionState
from .events import (
    ContactEvent,
    Disconnected,
    GroupChanged,
    GroupEvent,
    MessageReceived,
    PresenceChanged,
    ReadReceipt,
    Reconnected,
    Resync,
    TypingEvent,
)
from .mediacli import ProgressBar, blob_hex, clip_range, default_name, media_line
from .terminal import CONTINUATION, safe

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


def _conv_id(value: str) -> int:
    """A group or conversation id; "#5" is accepted as printed by the CLI."""
    try:
        n = int(value.removeprefix("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid id {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return n


def _common(defaults: bool) -> argparse.ArgumentParser:
    """The global options. Subcommands accept them too (so `liaotian send --port 1 ...`
    works); there their default is SUPPRESS so they do not overwrite the main parser's."""
    p = argparse.ArgumentParser(add_help=False)
    d: Any = None if defaults else argparse.SUPPRESS
    p.add_argument(
        "--host", default=d, help=f"server host (env LIAOTIAN_HOST; default {DEFAULT_HOST})"
    )
    p.add_argument(
        "--port",
        type=_port,
        default=d,
        help=f"server port (env LIAOTIAN_PORT; default {DEFAULT_PORT})",
    )
    p.add_argument(
        "--state",
        metavar="FILE",
        default=d,
        help="session state file (default: ~/.config/liaotian/session-<user>.json)",
    )
    p.add_argument("--user", "-u", default=d, help="which saved session to use (env LIAOTIAN_USER)")
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0 if defaults else argparse.SUPPRESS,
        help="seconds to wait for each answer (default 10)",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        default=False if defaults else d,
        help="connect with TLS (system trust store)",
    )
    p.add_argument(
        "--ca-file",
        metavar="PEM",
        default=d,
        help="connect with TLS, trusting this CA certificate (self-signed "
        "deployments; env LIAOTIAN_CA_FILE); the server's certificate and "
        "name are still verified",
    )
    return p


class _Parser(argparse.ArgumentParser):
    """Checks argparse cannot express: `send` takes TO or --group, `history` WITH or
    --group (exactly one)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        ns, extra = super().parse_known_args(args, namespace)
        command = getattr(ns, "command", None)
        if command == "send":
            if ns.group is not None:
                if ns.to is not None:  # TO was really the first word of the text
                    ns.text = [ns.to, *ns.text]
                    ns.to = None
            elif ns.to is None:
                self.error("send: give TO and TEXT, or --group G and TEXT")
        elif command == "history" and (ns.group is None) == (ns.with_user is None):
            self.error("history: give WITH (a user) or --group G, not both")
        return ns, extra


def _version() -> str:
    import importlib.metadata

    try:
        return "liaotian " + importlib.metadata.version("liaotian")
    except importlib.metadata.PackageNotFoundError:
        return "liaotian (version unknown: not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="liaotian",
        parents=[_common(True)],
        description="Command-line client for a liaotian messaging server.",
        epilog="exit status: 0 ok, 1 refused by the server, 2 usage, 3 connection failure",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=argparse.ArgumentParser
    )
    common = [_common(False)]

    p = sub.add_parser("register", parents=common, help="create an account")
    p.add_argument("username", metavar="USER")
    p.add_argument("--password", help="password (env LIAOTIAN_PASSWORD; else prompted)")
    p.add_argument("--invite", metavar="CODE", help="an invitation code you were given")

    p = sub.add_parser(
        "login", parents=common, help="log in and save the session (token, device, cursor)"
    )
    p.add_argument("username", metavar="USER")
    p.add_argument(
        "--device", default=None, help="device name (default: the saved one, else 'cli')"
    )
    p.add_argument("--password", help="password (env LIAOTIAN_PASSWORD; else prompted)")

    p = sub.add_parser(
        "send",
        parents=common,
        help="send a message (to a user or a group)",
        usage="liaotian send [options] TO TEXT... | liaotian send [options] --group G TEXT...",
    )
    p.add_argument(
        "--group", "-g", type=_conv_id, metavar="G", help="send to group G instead of a user"
    )
    p.add_argument("to", metavar="TO", nargs="?", help="the recipient's username")
    p.add_argument(
        "text",
        metavar="TEXT",
        nargs="+",
        help="message text (words are joined by spaces; '-' reads stdin)",
    )

    p = sub.add_parser("gsend", parents=common, help="send a message to a group")
    p.add_argument("group", metavar="G", type=_conv_id)
    p.add_argument(
        "text",
        metavar="TEXT",
        nargs="+",
        help="message text (words are joined by spaces; '-' reads stdin)",
    )

    p = sub.add_parser(
        "listen",
        parents=common,
        help="print unread messages, then new ones as they arrive, until "
        "Ctrl-C (waits for the server if it is down)",
    )
    p.add_argument(
        "--quiet", "-q", action="store_true", help="do not report connection changes on stderr"
    )
    p.add_argument("--mark-read", action="store_true", help="mark what is printed as read")
    p.add_argument(
        "--unread",
        type=_position,
        default=20,
        metavar="N",
        help="unread messages shown per conversation at start (default 20; 0 = none)",
    )

    p = sub.add_parser(
        "chat",
        parents=common,
        help="full-screen chat: the chat list, or one chat (needs a terminal)",
        usage="liaotian chat [options] [--with USER | --group NAME]",
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument("--with", dest="with_user", metavar="USER", help="open the chat with USER")
    target.add_argument(
        "--group",
        "-g",
        metavar="NAME",
        help="open the group NAME (its number, '#3', only if several "
        "of your groups share the name)",
    )
    p.add_argument(
        "--downloads",
        metavar="DIR",
        default=".",
        help="where Ctrl+S saves a chat's newest media (default: the current directory)",
    )
    p.set_defaults(quiet=False)

    p = sub.add_parser(
        "switch", parents=common, help="make a saved session the current one (see `login`)"
    )
    p.add_argument("username", metavar="USER")

    p = sub.add_parser(
        "history",
        parents=common,
        help="show a conversation",
        usage="liaotian history [options] (WITH | --group G)",
    )
    p.add_argument("with_user", metavar="WITH", nargs="?", help="the other user")
    p.add_argument("--group", "-g", type=_conv_id, metavar="G", help="a group's timeline")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--before", type=_position, metavar="P", help="messages before conversation position P"
    )
    group.add_argument(
        "--after", type=_position, metavar="P", help="messages after conversation position P"
    )
    p.add_argument("--limit", type=_positive, metavar="N", help="at most N messages")

    sub.add_parser("devices", parents=common, help="list this account's devices")

    p = sub.add_parser("revoke", parents=common, help="revoke a device of this account")
    p.add_argument("device", metavar="DEVICE")

    sub.add_parser("logout", parents=common, help="end this device's session")

    # --- groups
    g = sub.add_parser("group", parents=common, help="groups: create, list, info, members")
    gsub = g.add_subparsers(dest="group_command", metavar="ACTION", required=True)
    p = gsub.add_parser("create", parents=common, help="create a group (you own it)")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--member",
        "-m",
        action="append",
        default=[],
        metavar="USER",
        help="a member to add (repeat for more)",
    )
    p.add_argument("--topic", default="", metavar="T")
    gsub.add_parser("list", parents=common, help="the groups you are in")
    p = gsub.add_parser("info", parents=common, help="a group's details and members")
    p.add_argument("group", metavar="G", type=_conv_id)
    p = gsub.add_parser("add", parents=common, help="add members (owner, admin)")
    p.add_argument("group", metavar="G", type=_conv_id)
    p.add_argument("users", metavar="USER", nargs="+")
    p = gsub.add_parser("remove", parents=common, help="remove a member (owner, admin)")
    p.add_argument("group", metavar="G", type=_conv_id)
    p.add_argument("who", metavar="USER")
    p = gsub.add_parser("leave", parents=common, help="leave a group")
    p.add_argument("group", metavar="G", type=_conv_id)
    p = gsub.add_parser("update", parents=common, help="rename or set the topic (owner, admin)")
    p.add_argument("group", metavar="G", type=_conv_id)
    p.add_argument("--name", metavar="NAME")
    p.add_argument("--topic", metavar="T")
    p = gsub.add_parser("role", parents=common, help="make a member admin or member (owner)")
    p.add_argument("group", metavar="G", type=_conv_id)
    p.add_argument("who", metavar="USER")
    p.add_argument("role", choices=("admin", "member"))
    p = gsub.add_parser("transfer", parents=common, help="hand ownership to a member (owner)")
    p.add_argument("group", metavar="G", type=_conv_id)
    p.add_argument("who", metavar="USER")

    # --- read state and the chat list
    p = sub.add_parser(
        "chats", parents=common, help="your conversations, newest first, with unread counts"
    )
    p.add_argument("--limit", type=_positive, metavar="N", help="at most N (default 20)")
    p.add_argument("--all", action="store_true", help="every conversation (all pages)")
    p = sub.add_parser("read", parents=common, help="mark a conversation read up to a position")
    p.add_argument("conv", metavar="CONV", type=_conv_id)
    p.add_argument("pos", metavar="POS", type=_positive)
    p = sub.add_parser(
        "receipts", parents=common, help="how far the others have received and read a conversation"
    )
    p.add_argument("conv", metavar="CONV", type=_conv_id)

    # --- contacts, blocking, presence
    sub.add_parser("contacts", parents=common, help="contacts, pending requests and blocked users")
    p = sub.add_parser("contact", parents=common, help="contact requests and removal")
    p.add_argument("action", choices=("request", "accept", "decline", "cancel", "remove"))
    p.add_argument("who", metavar="USER")
    p = sub.add_parser("block", parents=common, help="block a user")
    p.add_argument("who", metavar="USER")
    p = sub.add_parser("unblock", parents=common, help="unblock a user")
    p.add_argument("who", metavar="USER")
    p = sub.add_parser("presence", parents=common, help="who is online")
    p.add_argument("users", metavar="USER", nargs="+")

    # --- media (SPEC.md 27)
    for kind, what in (
        ("file", "a file"),
        ("image", "a photo (the server makes its thumbnail)"),
        ("voice", "a voice note"),
        ("track", "a song track"),
    ):
        p = sub.add_parser(
            f"send-{kind}",
            parents=common,
            help=f"upload and send {what}",
            usage=f"liaotian send-{kind} [options] (TO | --group G) PATH",
        )
        p.add_argument("--group", "-g", type=_conv_id, metavar="G", help="send to group G")
        p.add_argument(
            "target",
            metavar="TO|PATH",
            nargs="+",
            help="the recipient and the file (only the file with --group)",
        )
        p.add_argument("--text", default="", help="a caption")
        if kind in ("file", "image"):
            p.add_argument("--name", help="the file name shown (default: the file's)")
        if kind == "track":
            p.add_argument("--title", help="title (default: the file's tags)")
            p.add_argument("--artist", help="artist (default: the file's tags)")
            p.add_argument(
                "--clip",
                type=clip_range,
                metavar="START-END",
                help="the part to play, e.g. 0:30-1:00 or 30-60 (seconds)",
            )
            p.add_argument("--cover", metavar="IMAGE", help="a cover image to upload")
        p.set_defaults(media_kind=kind)
    p = sub.add_parser(
        "download",
        parents=common,
        help="download the media of a message, or a blob by id",
        usage="liaotian download [options] (--with USER | --group G) --pos P [DEST] | BLOB DEST",
    )
    p.add_argument(
        "what",
        metavar="BLOB|DEST",
        nargs="*",
        help="a blob id and where to save it; or, with --pos, where to save "
        "(default: the file's name)",
    )
    p.add_argument("--with", dest="with_user", metavar="USER", help="the conversation")
    p.add_argument("--group", "-g", type=_conv_id, metavar="G", help="a group's timeline")
    p.add_argument("--pos", type=_positive, metavar="P", help="the message's position")
    p.add_argument(
        "--thumb", action="store_true", help="the image's thumbnail instead of the image"
    )

    # --- profile and privacy
    p = sub.add_parser(
        "profile",
        parents=common,
        help="show a profile (yours by default), or `profile set`",
        usage="liaotian profile [options] [USER] | liaotian profile set [--name N] [--status S]",
    )
    p.add_argument(
        "target",
        metavar="USER",
        nargs="?",
        help="whose profile (or 'set' to change yours; '@set' for a user 'set')",
    )
    p.add_argument("--name", metavar="N", help="with set: your display name")
    p.add_argument("--status", metavar="S", help="with set: your status line")
    p = sub.add_parser("privacy", parents=common, help="show your privacy settings, or change them")
    p.add_argument("--presence", choices=VISIBILITY, help="who sees your online state")
    p.add_argument("--profile", choices=VISIBILITY, help="who sees your profile")
    p.add_argument("--messages", choices=MESSAGE_POLICY, help="who may message you")
    p.add_argument("--groups", choices=VISIBILITY, help="who may add you to groups")
    p.add_argument(
        "--receipts", choices=VISIBILITY, help="who sees how far you have read and received"
    )
    p.add_argument("--coins", choices=VISIBILITY, help="who may send you coins")
    p.add_argument("--nearby", choices=VISIBILITY, help="who finds you nearby")

    # --- the wallet (wallet_cli.py)
    wallet_cli.add_parsers(sub, common)
    # --- people and merchants nearby (nearby_cli.py)
    nearby_cli.add_parsers(sub, common)
    # --- the shop (shop_cli.py)
    shop_cli.add_parsers(sub, common)
    # --- channels (channel_cli.py)
    channel_cli.add_parsers(sub, common)
    # --- bots (bot_cli.py)
    bot_cli.add_parsers(sub, common)
    return parser


# ---------------------------------------------------------------------- resolving


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "liaotian"


CURRENT_FILE = "current"  # in config_dir(): the username of the current session


def session_file(user: str) -> Path:
    return config_dir() / f"session-{user}.json"


def current_user() -> str | None:
    """The current session's user (the last `login` or `switch`), if it is still saved."""
    try:
        user = (config_dir() / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return user if user and session_file(user).is_file() else None


def set_current_user(user: str) -> None:
    """Make `user`'s saved session the current one (written atomically)."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = directory / f".{CURRENT_FILE}.{os.getpid()}.tmp"
    tmp.write_text(user + "\n", encoding="utf-8")
    os.replace(tmp, directory / CURRENT_FILE)


def saved_users() -> list[str]:
    directory = config_dir()
    found = sorted(directory.glob("session-*.json")) if directory.is_dir() else []
    return [f.stem.removeprefix("session-") for f in found]


def state_path(args: argparse.Namespace, username: str | None = None) -> Path:
    """The session file: --state; else session-<user>.json for the user named (argument,
    --user, LIAOTIAN_USER); else the current session (the last `login` or `switch`); else
    the only session file in the config directory."""
    if args.state:
        return Path(args.state).expanduser()
    user = username or args.user or os.environ.get("LIAOTIAN_USER") or current_user()
    if user:
        return session_file(user)
    found = saved_users()
    if len(found) == 1:
        return session_file(found[0])
    if not found:
        raise UsageError("not logged in: run `liaotian login USER` first")
    raise UsageError(
        f"several saved sessions ({', '.join(found)}): choose one with --user "
        "or `liaotian switch USER`"
    )


def server_address(args: argparse.Namespace, state: SessionState | None = None) -> tuple[str, int]:
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


def fmt_group(group: int, names: dict[int, str] | None = None) -> str:
    name = (names or {}).get(group)
    return f"#{group} {safe(name)}" if name else f"#{group}"


def _users(names: Sequence[str]) -> str:
    return ", ".join(safe(n) for n in names) if names else "nobody"


def describe_group_event(ev: GroupEvent) -> str:
    """A group timeline event as a sentence (peer text made safe to print)."""
    a = safe(ev.actor)
    if ev.type == "created":
        others = [u for u in ev.users if u != a]
        return f'{a} created the group "{safe(ev.name or "")}"' + (
            f" with {_users(others)}" if others else ""
        )
    if ev.type == "added":
        return f"{a} added {_users(ev.users)}"
    if ev.type == "removed":
        return f"{a} removed {_users(ev.users)}"
    if ev.type == "left":
        return f"{_users(ev.users or (a,))} left"
    if ev.type == "renamed":
        return f'{a} renamed the group to "{safe(ev.name or "")}"'
    if ev.type == "topic":
        return f'{a} set the topic to "{safe(ev.topic or "")}"'
    if ev.type == "role":
        return f"{a} made {safe(ev.user)} {'an admin' if ev.role == 'admin' else 'a member'}"
    if ev.type == "owner":
        return f"{a} made {safe(ev.user)} the owner"
    return f"{a}: {safe(ev.type)} {safe(ev.raw)}"


def describe_direct_event(e: dict[str, Any]) -> str:
    """A direct conversation's event (coins, red packets, orders, product cards)."""
    kind = safe(str(e.get("type", "")))
    if kind == "order":
        return (
            f"order #{e.get('order')}: {e.get('qty')} x {safe(str(e.get('title', '')))}, "
            f"{e.get('amount')} coins, {safe(str(e.get('state', '')))}"
        )
    if kind == "product":
        return (
            f"product #{e.get('product')}: {safe(str(e.get('title', '')))}, "
            f"{e.get('price')} coins (liaotian shop order {e.get('product')})"
        )
    if kind == "coins":
        return f"{e.get('amount')} coins"
    return kind


def fmt_message(
    m: ChatMessage, groups: dict[int, str] | None = None, indent: str = CONTINUATION
) -> str:
    """One line per message: `[time] alice -> bob: text` for direct messages,
    `[time] alice -> #5 team: text` in a group, `[time] #5 team: * alice added bob` for a
    group timeline event. Peer text is made safe to print; the lines after the first of a
    multi-line message start with `indent`, so no message can forge a line of its own."""
    text = safe(m.text, indent) if m.media is None else safe(media_line(m), indent) + f" (#{m.pos})"
    if m.group is None and m.event and not m.text:
        text = f"* {describe_direct_event(m.event)}"
    if m.edited:
        text += f" (edited {fmt_time(m.edited)})"
    buttons = bot_cli.fmt_buttons(m) if m.meta else None
    if buttons is not None:
        text += "\n" + buttons
    if m.group is None:
        return f"[{fmt_time(m.ts)}] {safe(m.sender)} -> {safe(m.to)}: {text}"
    where = fmt_group(m.group, groups)
    ev = GroupEvent.from_message(m)
    if ev is not None:
        return f"[{fmt_time(m.ts)}] {where}: * {describe_group_event(ev)}"
    return f"[{fmt_time(m.ts)}] {safe(m.sender)} -> {where}: {text}"


_CONTACT_TEXT = {
    "request": "{u} asks to be your contact (liaotian contact accept|decline {u})",
    "accepted": "{u} accepted your contact request",
    "declined": "{u} declined your contact request",
    "cancelled": "{u} withdrew their contact request",
    "removed": "{u} removed you from their contacts",
    "changed": "your contact list changed ({u})",
}


def fmt_event(
    event: Any, groups: dict[int, str] | None = None, me: str | None = None
) -> str | None:
    """The `listen` line of an event; None for connection state events."""
    if isinstance(event, MessageReceived | GroupChanged):
        return fmt_message(event.message, groups)
    if isinstance(event, ReadReceipt):
        who = "you" if event.user == me else safe(event.user)
        return f"(read) {who} read conversation #{event.conv} up to #{event.pos}"
    if isinstance(event, ContactEvent):
        text = _CONTACT_TEXT.get(
            event.event, "{u}: " + safe(event.event).replace("{", "{{").replace("}", "}}")
        )
        return f"(contact) {text.format(u=safe(event.user))}"
    if isinstance(event, TypingEvent):
        where = f" in {fmt_group(event.group, groups)}" if event.group is not None else ""
        return (
            f"(typing) {safe(event.user)} {'is typing' if event.typing else 'stopped typing'}"
            f"{where}"
        )
    if isinstance(event, PresenceChanged):
        if event.online:
            return f"(presence) {safe(event.user)} is online"
        seen = f", last seen {fmt_time(event.last_seen)}" if event.last_seen else ""
        return f"(presence) {safe(event.user)} is offline{seen}"
    return bot_cli.fmt_bot_event(event)


# ---------------------------------------------------------------------- commands


def _ssl(args: argparse.Namespace) -> ssl.SSLContext | bool | None:
    ca_file = getattr(args, "ca_file", None) or os.environ.get("LIAOTIAN_CA_FILE")
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return True if args.tls else None


async def cmd_register(args: argparse.Namespace, out: TextIO) -> int:
    host, port = server_address(args)
    password = get_password(args, f"Password for new user {args.username}: ")
    user = await register(
        host,
        port,
        args.username,
        password,
        ssl=_ssl(args),
        timeout=args.timeout,
        invite=args.invite,
    )
    print(f"registered {safe(user)}", file=out)
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
    client = Client(
        host,
        port,
        username=args.username,
        password=password,
        device=device,
        store=memory,
        ssl=_ssl(args),
        reconnect=False,
        sync=False,
        initial_sync="new",
        request_timeout=args.timeout,
    )
    async with client:
        user, device = client.user, client.device
    # A new generation: a process still running with an older login of this file (a
    # `listen`) can no longer overwrite it (FileStore.save).
    store.save(memory.load().new_login(old))
    print(
        f"logged in as {safe(user)} on device {safe(device)} (session saved in {store.path})",
        file=out,
    )
    if not args.state:
        set_current_user(args.username)
        others = [u for u in saved_users() if u != args.username]
        if others:
            print(
                f"{safe(args.username)} is now the current session (others: "
                f"{_users(others)}; pick one with --user or `liaotian switch USER`)",
                file=out,
            )
    return EXIT_OK


async def cmd_switch(args: argparse.Namespace, out: TextIO) -> int:
    if not session_file(args.username).is_file():
        raise UsageError(
            f"no saved session for {args.username}: run `liaotian login {args.username}` first"
        )
    set_current_user(args.username)
    print(f"{safe(args.username)} is now the current session", file=out)
    return EXIT_OK


def _session_client(args: argparse.Namespace, **options: Any) -> Client:
    store, state = load_session(args)
    host, port = server_address(args, state)
    options.setdefault("reconnect", False)
    options.setdefault("sync", False)
    return Client(
        host,
        port,
        store=store,
        ssl=_ssl(args),
        request_timeout=args.timeout,
        initial_sync="new",
        **options,
    )


def _text(args: argparse.Namespace) -> str:
    return sys.stdin.read().rstrip("\n") if args.text == ["-"] else " ".join(args.text)


async def cmd_send(args: argparse.Namespace, out: TextIO) -> int:
    text = _text(args)
    if getattr(args, "group", None) is not None:
        async with _session_client(args) as client:
            sent = await client.send_group(args.group, text)
        print(f"sent #{sent.pos} to group #{args.group} at {fmt_time(sent.ts)}", file=out)
        return EXIT_OK
    async with _session_client(args) as client:
        sent = await client.send(args.to, text)
    print(f"sent #{sent.pos} to {args.to} at {fmt_time(sent.ts)}", file=out)
    return EXIT_OK


# ERROR codes after which starting again later may succeed (listen keeps trying).
_RETRY_START = frozenset(
    {ErrorCode.THROTTLED, ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL_ERROR, ErrorCode.UNAVAILABLE}
)


async def _start_with_retry(args: argparse.Namespace, err: TextIO, **options: Any) -> Client:
    """Start a session client, waiting for the server: while it cannot be reached (or
    answers a retryable ERROR), retry with jittered exponential backoff as the client does
    after a disconnect. Errors that a retry cannot fix (a refused token, ...) are raised."""
    backoff = Backoff(base=0.5, cap=30.0)
    while True:
        client = _session_client(args, **options)
        try:
            return await client.start()
        except RequestError as exc:
            if exc.code not in _RETRY_START:
                raise
            reason = f"{exc.code.name}: {exc.message}"
            delay = max(backoff.next_delay(), exc.retry_after or 0.0)
        except ConnectionClosed as exc:
            if exc.close_code is not None and not exc.close_code.reconnect:
                raise
            reason, delay = str(exc), backoff.next_delay()
        except OSError as exc:  # refused, unreachable, timed out
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            delay = backoff.next_delay()
        if not args.quiet:
            print(
                f"(cannot connect to {client.host}:{client.port}: {safe(reason)}; "
                f"retrying in {delay:.1f} s)",
                file=err,
                flush=True,
            )
        await asyncio.sleep(delay)


class _Printer:
    """What `listen` prints: each message once (the unread ones shown at start may come
    again from the log), optionally marking what it printed as read."""

    def __init__(
        self, client: Client, out: TextIO, groups: dict[int, str], mark_read: bool
    ) -> None:
        self.client = client
        self.out = out
        self.groups = groups
        self.mark_read = mark_read
        self.shown: set[tuple[int, int]] = set()  # (conv, pos) printed
        self.marked: set[tuple[int, int]] = set()  # (conv, pos) this process marked read

    async def message(self, m: ChatMessage) -> None:
        key = (m.conv, m.pos)
        if key in self.shown:
            return
        self.shown.add(key)
        print(fmt_message(m, self.groups), file=self.out, flush=True)
        if self.mark_read:
            await self.mark(m.conv, m.pos)

    async def mark(self, conv: int, pos: int) -> None:
        self.marked.add((conv, pos))
        try:
            await self.client.mark_read(conv, pos)
        except RequestError as exc:
            print(
                f"(could not mark #{conv} read: {safe(exc.code.name)}: {safe(exc.message)})",
                file=sys.stderr,
                flush=True,
            )
        except ConnectionClosed as exc:
            if self.client.closed:
                raise
            # The connection dropped under the request; the client reconnects, and the
            # next message printed marks this one too (a read marker covers all before it).
            print(f"(could not mark #{conv} read: {safe(exc)})", file=sys.stderr, flush=True)

    def own_mark(self, event: ReadReceipt) -> bool:
        """A READ entry of this process's own marking (not worth a line)."""
        return event.user == self.client.user and (event.conv, event.pos) in self.marked

    async def unread(self, per_conversation: int) -> None:
        """What is unread, per conversation, oldest conversation first: the last
        `per_conversation` unread messages of each (a note says how many more there are)."""
        if per_conversation <= 0:
            return
        convs = [c async for c in self.client.iter_conversations() if c.unread > 0]
        for c in sorted(convs, key=lambda c: (c.ts, c.conv)):
            limit = min(c.unread, per_conversation)
            if c.kind == "group":
                page = await self.client.history_group(c.conv, limit=limit)
                where = f"--group {c.conv}"
            else:
                peer = c.peer or c.name
                page = await self.client.history(peer, limit=limit)
                where = safe(peer)
            messages = [m for m in page.messages if m.pos > c.read]
            if c.unread > len(messages):
                first = messages[0].pos if messages else c.read + 1
                print(
                    f"({c.unread - len(messages)} earlier unread in #{c.conv}: "
                    f"liaotian history {where} --before {first})",
                    file=sys.stderr,
                    flush=True,
                )
            for m in messages:
                await self.message(m)


async def cmd_listen(args: argparse.Namespace, out: TextIO) -> int:
    err = sys.stderr
    client = await _start_with_retry(args, err, reconnect=True, sync=True)
    async with client:
        # Ctrl-C and SIGTERM end the loop through close(), which ACKs and saves the cursor.
        # (Installing the handlers also makes SIGINT work in a background job, where the
        # shell starts the process with SIGINT ignored.)
        loop = asyncio.get_running_loop()
        closing: set[asyncio.Task[None]] = set()
        stopping = asyncio.Event()

        def stop() -> None:
            stopping.set()
            task = loop.create_task(client.close())
            closing.add(task)
            task.add_done_callback(closing.discard)

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop)
        try:
            await _listen(client, args, out, err)
        except ConnectionClosed:
            if not stopping.is_set():
                raise
            # Ctrl-C while a request (history, mark read) was on its way: a normal stop
    return EXIT_OK


async def _listen(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    """The unread messages, then every event, until the client is closed."""
    # Group names for the message lines; kept current from the timeline events.
    groups = {g.group: g.name for g in await client.groups()}
    printer = _Printer(client, out, groups, args.mark_read)
    if not args.quiet:
        print(f"listening as {safe(client.user)} (Ctrl-C to stop)", file=err, flush=True)
    # What arrived before (even before this device's first login) and is still unread;
    # the log's entries for the same messages are not printed again.
    await printer.unread(args.unread)
    async for event in client:
        if isinstance(event, MessageReceived | GroupChanged):
            ge = event.change if isinstance(event, GroupChanged) else None
            if ge is not None and ge.type in ("created", "renamed") and ge.name is not None:
                groups[ge.group] = ge.name
            await printer.message(event.message)
            continue
        if isinstance(event, ReadReceipt) and printer.own_mark(event):
            continue
        line = fmt_event(event, groups, client.user)
        if line is not None:
            print(line, file=out, flush=True)
        elif args.quiet:
            continue
        elif isinstance(event, Disconnected):
            print(
                f"(disconnected: {safe(event.reason or event.code)}; reconnecting)",
                file=err,
                flush=True,
            )
        elif isinstance(event, Reconnected):
            print("(reconnected)", file=err, flush=True)
        elif isinstance(event, Resync):
            print(
                "(older messages are no longer in the server's log: "
                "use `liaotian history` to see them)",
                file=err,
                flush=True,
            )


async def cmd_chat(args: argparse.Namespace, out: TextIO) -> int:
    if not (sys.stdin.isatty() and out.isatty()):
        raise UsageError("chat needs a terminal (for a script, use `listen` and `send`)")
    from .tui import run_chat  # Textual is imported by this command only

    client = await _start_with_retry(args, sys.stderr, reconnect=True, sync=True)
    async with client:
        return await run_chat(
            client, with_user=args.with_user, group=args.group, download_dir=args.downloads
        )


async def cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        if args.group is not None:
            page = await client.history_group(
                args.group, before=args.before, after=args.after, limit=args.limit
            )
        else:
            page = await client.history(
                args.with_user, before=args.before, after=args.after, limit=args.limit
            )
    for m in page.messages:
        print(f"#{m.pos} {fmt_message(m)}", file=out)
    if page.more and page.messages:
        hint = (
            f"--after {page.messages[-1].pos}"
            if args.after is not None
            else f"--before {page.messages[0].pos}"
        )
        print(f"(more: {hint})", file=sys.stderr)
    return EXIT_OK


async def cmd_devices(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        devices = await client.devices()
        me = client.device
    for d in devices:
        mark = "*" if d.device == me else " "
        status = "online " if d.online else "offline"
        print(
            f"{mark} {safe(d.device):<20} {status} last seen {fmt_time(d.last_seen)}  "
            f"acked {d.acked}",
            file=out,
        )
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


async def cmd_gsend(args: argparse.Namespace, out: TextIO) -> int:
    return await cmd_send(args, out)


def print_group_info(info: GroupInfo, out: TextIO) -> None:
    print(f"group #{info.group} {safe(info.name)}", file=out)
    if info.topic:
        print(f"  topic:   {safe(info.topic)}", file=out)
    print(f"  owner:   {safe(info.owner)}", file=out)
    print(f"  created: {fmt_time(info.created)}   newest position: #{info.pos}", file=out)
    print(f"  members ({len(info.members)}):", file=out)
    for m in info.members:
        print(f"    {safe(m.user):<32} {safe(m.role):<6} joined {fmt_time(m.joined)}", file=out)


async def cmd_group(args: argparse.Namespace, out: TextIO) -> int:
    action = args.group_command
    async with _session_client(args) as client:
        if action == "create":
            info = await client.create_group(args.name, args.member, args.topic)
            members = _users([m.user for m in info.members])
            print(f'created group #{info.group} "{safe(info.name)}" (members: {members})', file=out)
        elif action == "list":
            for g in await client.groups():
                topic = f"  - {safe(g.topic)}" if g.topic else ""
                print(
                    f"#{g.group:<6} {safe(g.name):<24} {safe(g.role):<6} {g.members} "
                    f"members{topic}",
                    file=out,
                )
        elif action == "info":
            print_group_info(await client.group_info(args.group), out)
        elif action == "add":
            pos = await client.add_members(args.group, args.users)
            print(f"added {', '.join(args.users)} to #{args.group} (event #{pos})", file=out)
        elif action == "remove":
            pos = await client.remove_member(args.group, args.who)
            print(f"removed {args.who} from #{args.group} (event #{pos})", file=out)
        elif action == "leave":
            await client.leave_group(args.group)
            print(f"left group #{args.group}", file=out)
        elif action == "update":
            if args.name is None and args.topic is None:
                raise UsageError("group update: give --name and/or --topic")
            await client.update_group(args.group, name=args.name, topic=args.topic)
            print(f"updated group #{args.group}", file=out)
        elif action == "role":
            await client.set_role(args.group, args.who, args.role)
            print(f"{args.who} is now {args.role} in #{args.group}", file=out)
        elif action == "transfer":
            await client.transfer_group(args.group, args.who)
            print(f"{args.who} now owns #{args.group}", file=out)
        else:  # pragma: no cover - argparse restricts the choices
            raise UsageError(f"unknown group action {action!r}")
    return EXIT_OK


async def cmd_chats(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        if args.all:
            entries = [c async for c in client.iter_conversations(args.limit, channels=True)]
            more = False
        else:
            page = await client.conversations(args.limit, channels=True)
            entries, more = list(page.conversations), page.more
    for c in entries:
        name = safe(c.name) if c.kind == "direct" else f"{safe(c.name)} ({c.kind})"
        unread = f"{c.unread} unread" if c.unread else "read"
        last = ""
        if c.last is not None:
            ev = GroupEvent.from_message(c.last)
            body = (
                f"* {describe_group_event(ev)}"
                if ev is not None
                else f"{safe(c.last.sender)}: {safe(c.last.text)}"
            )
            last = f"  {body[:60]}"
        print(f"#{c.conv:<6} {name:<32} {unread:<10} [{fmt_time(c.ts)}]{last}", file=out)
    if more:
        print("(more: use --all or a larger --limit)", file=sys.stderr)
    return EXIT_OK


async def cmd_read(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        await client.mark_read(args.conv, args.pos)
    print(f"marked #{args.conv} read up to #{args.pos}", file=out)
    return EXIT_OK


async def cmd_receipts(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        r = await client.receipts(args.conv)
    delivered = {m.user: m.pos for m in r.delivered}
    read = {m.user: m.pos for m in r.read}
    for user in dict.fromkeys([*read, *delivered]):
        print(
            f"{safe(user):<32} delivered #{delivered.get(user, 0):<6} read #{read.get(user, 0)}",
            file=out,
        )
    return EXIT_OK


async def cmd_contacts(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        c = await client.contacts()
    for title, names in (
        ("contacts", c.contacts),
        ("incoming requests", c.incoming),
        ("outgoing requests", c.outgoing),
        ("blocked", c.blocked),
    ):
        print(f"{title}: {_users(names) if names else '-'}", file=out)
    return EXIT_OK


async def cmd_contact(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        action = getattr(client, f"contact_{args.action}")
        await action(args.who)
    done = {
        "request": "sent a contact request to",
        "accept": "accepted",
        "decline": "declined",
        "cancel": "withdrew the request to",
        "remove": "removed",
    }[args.action]
    print(f"{done} {args.who}", file=out)
    return EXIT_OK


async def cmd_block(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        await client.block(args.who)
    print(f"blocked {args.who}", file=out)
    return EXIT_OK


async def cmd_unblock(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        await client.unblock(args.who)
    print(f"unblocked {args.who}", file=out)
    return EXIT_OK


async def cmd_presence(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        entries = {p.user: p for p in await client.presence(args.users)}
    for user in dict.fromkeys(args.users):
        p = entries.get(user)
        if p is None:
            state = "unknown (not visible to you)"
        elif p.online:
            state = "online"
        else:
            state = "offline" + (f", last seen {fmt_time(p.last_seen)}" if p.last_seen else "")
        print(f"{safe(user):<32} {state}", file=out)
    return EXIT_OK


async def cmd_profile(args: argparse.Namespace, out: TextIO) -> int:
    if args.target == "set":
        if args.name is None and args.status is None:
            raise UsageError("profile set: give --name and/or --status")
        async with _session_client(args) as client:
            await client.set_profile(display_name=args.name, status=args.status)
        print("profile updated", file=out)
        return EXIT_OK
    if args.name is not None or args.status is not None:
        raise UsageError("--name and --status go with `profile set`")
    user = args.target.removeprefix("@") if args.target else None
    async with _session_client(args) as client:
        p = await client.profile(user)
    print(f"user:   {safe(p.user)}", file=out)
    print(f"name:   {safe(p.display_name)}", file=out)
    print(f"status: {safe(p.status)}", file=out)
    if p.bot:
        print("bot:    yes (a bot account)", file=out)
    return EXIT_OK


async def cmd_privacy(args: argparse.Namespace, out: TextIO) -> int:
    async with _session_client(args) as client:
        settings = (args.presence, args.profile, args.messages, args.groups, args.receipts)
        if (*settings, args.coins, args.nearby) != (None,) * 7:
            await client.account.set_privacy(
                presence=args.presence,
                profile=args.profile,
                messages=args.messages,
                groups=args.groups,
                receipts=args.receipts,
                coins=args.coins,
                nearby=args.nearby,
            )
        p = await client.privacy()
    print(f"presence: {safe(p.presence)}", file=out)
    print(f"profile:  {safe(p.profile)}", file=out)
    print(f"messages: {safe(p.messages)}", file=out)
    if p.groups is not None:
        print(f"groups:   {safe(p.groups)}", file=out)
    print(f"receipts: {safe(p.receipts or 'contacts')}", file=out)
    print(f"coins:    {safe(p.coins or 'contacts')}", file=out)
    print(f"nearby:   {safe(p.nearby or 'everyone')}", file=out)
    return EXIT_OK


async def cmd_send_media(args: argparse.Namespace, out: TextIO) -> int:
    target = list(args.target)
    if (args.group is None) != (len(target) == 2):
        raise UsageError(f"send-{args.media_kind}: give TO and PATH, or --group G and PATH")
    to = target[0] if args.group is None else None
    path = target[-1]
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    bar = ProgressBar(f"uploading {os.path.basename(path)}")
    async with _session_client(args, reconnect=True) as client:
        m = client.media
        common: dict[str, Any] = {"text": args.text, "group": args.group, "progress": bar}
        if args.media_kind == "file":
            sent = await m.send_file(to, path, name=args.name, **common)
        elif args.media_kind == "image":
            sent = await m.send_image(to, path, name=args.name, **common)
        elif args.media_kind == "voice":
            sent = await m.send_voice(to, path, **common)
        else:
            if args.cover is not None and not os.path.isfile(args.cover):
                raise UsageError(f"no such file: {args.cover}")
            sent = await m.send_track(
                to,
                path,
                title=args.title,
                artist=args.artist,
                clip=args.clip,
                cover=args.cover,
                **common,
            )
    where = f"group #{args.group}" if args.group is not None else to
    print(f"sent #{sent.pos} ({args.media_kind}) to {where} at {fmt_time(sent.ts)}", file=out)
    return EXIT_OK


async def cmd_download(args: argparse.Namespace, out: TextIO) -> int:
    by_message = args.pos is not None
    if by_message == (args.with_user is None and args.group is None) or (
        args.with_user is not None and args.group is not None
    ):
        raise UsageError("download: give --with USER or --group G with --pos P, or BLOB DEST")
    if (by_message and len(args.what) > 1) or (not by_message and len(args.what) != 2):
        raise UsageError("download: --pos takes at most a DEST; a BLOB needs a DEST")
    async with _session_client(args, reconnect=True) as client:
        if by_message:
            if args.group is not None:
                page = await client.groups.history(args.group, after=args.pos - 1, limit=1)
            else:
                page = await client.history(args.with_user, after=args.pos - 1, limit=1)
            found = [m for m in page.messages if m.pos == args.pos]
            if not found or found[0].media is None:
                raise UsageError(f"message #{args.pos} has no media")
            media = dict(found[0].media)
            if args.thumb:
                thumb = media.get("thumb")
                if not isinstance(thumb, dict):
                    raise UsageError(f"message #{args.pos} has no thumbnail")
                media = {"blob": thumb.get("blob"), "name": "thumb-" + default_name(media)}
            blob = media.get("blob")
            dest = args.what[0] if args.what else default_name(media)
            if not args.what and os.path.exists(dest):  # a name the sender chose
                raise UsageError(f"{safe(dest)} exists: give DEST to save it elsewhere")
        else:
            try:
                blob = blob_hex(args.what[0])
            except argparse.ArgumentTypeError as exc:
                raise UsageError(str(exc)) from None
            dest = args.what[1]
        if not isinstance(blob, bytes):
            raise UsageError("the message's media names no blob")
        size = await client.media.download(blob, dest, progress=ProgressBar(f"downloading {dest}"))
    print(f"saved {size} bytes to {safe(dest)}", file=out)
    return EXIT_OK


async def cmd_bot(args: argparse.Namespace, out: TextIO) -> int:
    """bot create|list|token|delete|commands|privacy, press (bot_cli.py)."""
    try:
        async with _session_client(args) as client:
            return await bot_cli.run(client, args, out)
    except bot_cli.UsageError as exc:
        raise UsageError(str(exc)) from None


async def cmd_wallet(args: argparse.Namespace, out: TextIO) -> int:
    """wallet, pay, red-packet, tasks, items (wallet_cli.py)."""
    try:
        async with _session_client(args) as client:
            return await wallet_cli.run(client, args, out)
    except wallet_cli.UsageError as exc:
        raise UsageError(str(exc)) from None


async def cmd_nearby(args: argparse.Namespace, out: TextIO) -> int:
    """nearby share|stop|people|merchants|hello|merchant-set|merchant (nearby_cli.py)."""
    async with _session_client(args) as client:
        return await nearby_cli.run(client, args, out)


async def cmd_shop(args: argparse.Namespace, out: TextIO) -> int:
    """shop list|show|order|orders|card|add|stock|accept|decline|fulfil|cancel."""
    try:
        async with _session_client(args) as client:
            return await shop_cli.run(client, args, out)
    except shop_cli.UsageError as exc:
        raise UsageError(str(exc)) from None


async def cmd_channel(args: argparse.Namespace, out: TextIO) -> int:
    """channel create, join, post, ... (channel_cli.py)."""
    try:
        async with _session_client(args) as client:
            return await channel_cli.run(client, args, out)
    except channel_cli.UsageError as exc:
        raise UsageError(str(exc)) from None


COMMANDS = {
    "send-file": cmd_send_media,
    "send-image": cmd_send_media,
    "send-voice": cmd_send_media,
    "send-track": cmd_send_media,
    "download": cmd_download,
    "register": cmd_register,
    "login": cmd_login,
    "switch": cmd_switch,
    "send": cmd_send,
    "gsend": cmd_gsend,
    "listen": cmd_listen,
    "chat": cmd_chat,
    "history": cmd_history,
    "devices": cmd_devices,
    "revoke": cmd_revoke,
    "logout": cmd_logout,
    "group": cmd_group,
    "chats": cmd_chats,
    "read": cmd_read,
    "receipts": cmd_receipts,
    "contacts": cmd_contacts,
    "contact": cmd_contact,
    "block": cmd_block,
    "unblock": cmd_unblock,
    "presence": cmd_presence,
    "profile": cmd_profile,
    "privacy": cmd_privacy,
    **{name: cmd_wallet for name in wallet_cli.COMMANDS},
    **{name: cmd_nearby for name in nearby_cli.COMMANDS},
    **{name: cmd_shop for name in shop_cli.COMMANDS},
    **{name: cmd_channel for name in channel_cli.COMMANDS},
    **{name: cmd_bot for name in bot_cli.COMMANDS},
}


# ---------------------------------------------------------------------- main


def _subject(args: argparse.Namespace) -> list[str]:
    """What the command named (users, a group, a conversation, a device), for errors."""
    names: list[str] = []
    for attr in ("to", "with_user", "who", "username", "device"):
        value = getattr(args, attr, None)
        if isinstance(value, str):
            names.append(value)
    names.extend(getattr(args, "users", None) or [])
    names.extend(getattr(args, "member", None) or [])
    target = getattr(args, "target", None)
    if isinstance(target, str) and target != "set":
        names.append(target.removeprefix("@"))
    if getattr(args, "group", None) is not None and isinstance(args.group, int):
        names.append(f"group #{args.group}")
    if getattr(args, "conv", None) is not None:
        names.append(f"conversation #{args.conv}")
    return names


def describe_refusal(exc: RequestError, args: argparse.Namespace) -> str:
    """`CODE: message`, naming what the command was about when the server's message does
    not (`UNKNOWN_USER: no such user: mallory`), and the wait of a THROTTLED or
    RATE_LIMITED (`... (try again in 12 s)`)."""
    text = f"{exc.code.name}: {exc.message or exc.code.explanation}"
    subject = _subject(args)
    if subject and not any(name in exc.message for name in subject):
        text += ": " + ", ".join(subject)
    if exc.retry_after is not None or exc.code in (ErrorCode.THROTTLED, ErrorCode.RATE_LIMITED):
        wait = exc.retry_after
        text += f" (try again in {math.ceil(wait)} s)" if wait else " (try again later)"
    return text


def _fail(message: str, status: int) -> int:
    print(f"liaotian: {safe(message)}", file=sys.stderr)  # may quote the server
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
        return _fail(describe_refusal(exc, args), EXIT_REFUSED)
    except ConnectionClosed as exc:
        if exc.close_code == CloseCode.LOGGED_OUT:
            return _fail("LOGGED_OUT: this device's session was ended; log in again", EXIT_REFUSED)
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
