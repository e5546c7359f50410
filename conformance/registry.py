"""The check registry (`@check`), the per-check context with its helpers (fresh users,
connections closed at the end), and the assertions the checks use.

Every check is an `async def name(ctx: Context) -> None` that maps to one SPEC sentence; it
raises `Fail` (or lets an assertion of this module raise it) when the server breaks it and
`Skip` when it cannot be run (for example a case that needs the small-limits server).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .wire import Conn, Frame, Target

CheckFunc = Callable[["Context"], Awaitable[None]]
LEVELS = ("MUST", "SHOULD")
PASSWORD = "conformance-pw-1"


class Fail(Exception):
    """The server broke the SPEC sentence of the check."""


class Skip(Exception):
    """The check cannot run against this server or with these options."""


@dataclass(frozen=True)
class Check:
    name: str
    section: str
    level: str
    title: str
    func: CheckFunc
    small: bool = False  # needs the small-limits server (--small-limits-server)
    known_failure: str = ""  # a known defect of the reference server, e.g. "issue 11 item 28"

    def key(self) -> tuple[tuple[int, ...], int]:
        return section_key(self.section), ORDER.index(self)

    def selected(self, prefixes: list[str]) -> bool:
        return not prefixes or any(
            self.section == p or self.section.startswith(p + ".") for p in prefixes
        )


ORDER: list[Check] = []


def section_key(section: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", section))


def check(
    *, section: str, level: str = "MUST", title: str, small: bool = False, known_failure: str = ""
) -> Callable[[CheckFunc], CheckFunc]:
    """Register a check for the SPEC sentence of `section` (MUST or SHOULD)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")

    def register(func: CheckFunc) -> CheckFunc:
        if any(c.name == func.__name__ for c in ORDER):
            raise ValueError(f"duplicate check name {func.__name__}")
        ORDER.append(Check(func.__name__, section, level, title, func, small, known_failure))
        return func

    return register


def all_checks() -> list[Check]:
    from . import (  # noqa: F401  (importing registers the checks)
        checks_accounts,
        checks_bots,
        checks_channels,
        checks_framing,
        checks_handshake,
        checks_limits,
        checks_media,
        checks_messaging,
        checks_nearby,
        checks_social,
        checks_states,
        checks_wallet,
    )

    return sorted(ORDER, key=Check.key)


@dataclass
class Session:
    """A logged-in user on one connection."""

    conn: Conn
    user: str
    password: str
    device: str
    token: str
    head: int

    async def req(self, msg_type: int, payload: Any) -> Frame:
        return await self.conn.request(msg_type, payload)


@dataclass
class Context:
    """What one check runs against; closes every connection it opened when the check ends."""

    target: Target
    timeout: float
    small_target: Target | None = None
    conns: list[Conn] = field(default_factory=list)
    _welcome: dict[str, Any] = field(default_factory=dict)
    _small: bool = False

    def small(self) -> Context:
        """The same helpers against the small-limits server (Skip when there is none)."""
        if self.small_target is None:
            raise Skip("needs --small-limits-server")
        ctx = Context(self.small_target, self.timeout, None, self.conns)
        ctx._small = True
        return ctx

    @staticmethod
    def name(prefix: str = "ct") -> str:
        """A fresh valid username (SPEC 9.1): 3..32 of [a-z0-9_.-]."""
        return f"{prefix}{secrets.token_hex(6)}"

    @staticmethod
    def cmid() -> str:
        return "c" + secrets.token_hex(8)

    async def connect(self) -> Conn:
        conn = await Conn.open(self.target, self.timeout)
        self.conns.append(conn)
        return conn

    async def anon(self) -> Conn:
        """A connection past HELLO/WELCOME (state CONNECTED)."""
        conn = await self.connect()
        f = await conn.request(wire.HELLO, {"versions": [1], "client": "liaotian-conformance"})
        expect_type(f, wire.WELCOME, "HELLO")
        self._welcome = f.payload
        return conn

    async def limits(self) -> dict[str, Any]:
        """WELCOME.limits of this server."""
        if not self._welcome:
            await (await self.anon()).close()
        limits = self._welcome.get("limits", {})
        if not isinstance(limits, dict):
            raise Fail(f"WELCOME.limits is not a map: {limits!r}")
        return limits

    async def limit(self, key: str) -> Any:
        value = (await self.limits()).get(key)
        if value is None:
            raise Fail(f"WELCOME.limits has no {key!r}")
        return value

    async def register(self, conn: Conn | None = None, prefix: str = "ct") -> str:
        own = conn is None
        c = conn if conn is not None else await self.anon()
        name = self.name(prefix)
        f = await c.request(wire.REGISTER, {"username": name, "password": PASSWORD})
        expect_type(f, wire.REGISTERED, "REGISTER")
        if own:
            await c.close()
        return name

    async def login(
        self, user: str, device: str = "d1", *, sync: bool = True, password: str = PASSWORD
    ) -> Session:
        """A new connection logged in as user (and synced from 0 so it is live)."""
        conn = await self.anon()
        f = await conn.request(
            wire.LOGIN, {"username": user, "password": password, "device": device}
        )
        expect_type(f, wire.AUTHENTICATED, "LOGIN")
        s = Session(
            conn, user, password, device, str(f.payload.get("token")), int(f.payload.get("head", 0))
        )
        if sync:
            await sync_all(s)
        return s

    async def user(self, device: str = "d1", *, sync: bool = True, prefix: str = "ct") -> Session:
        """A fresh account, logged in on a new connection (live unless sync=False)."""
        return await self.login(await self.register(prefix=prefix), device, sync=sync)

    async def close_all(self) -> None:
        for c in self.conns:
            await c.close()
        self.conns.clear()


async def sync_all(s: Session, since: int = 0, limit: int | None = None) -> list[list[Any]]:
    """SYNC from `since` while `more`; the entries in order (the connection is then live)."""
    got: list[list[Any]] = []
    for _ in range(10_000):
        payload: dict[str, Any] = {"since": since}
        if limit is not None:
            payload["limit"] = limit
        f = await s.req(wire.SYNC, payload)
        expect_type(f, wire.UPDATES, "SYNC")
        updates = f.payload.get("updates")
        if not isinstance(updates, list):
            raise Fail(f"UPDATES.updates is not an array: {f}")
        got.extend(updates)
        if updates:
            since = updates[-1][0]
        if f.payload.get("more") is not True:
            return got
    raise Fail("SYNC never ended with more=false")


async def send(s: Session, to: str, text: str = "hi", **extra: Any) -> Frame:
    """SEND a direct message and return the SENT."""
    f = await s.req(wire.SEND, {"to": to, "cmid": Context.cmid(), "text": text, **extra})
    expect_type(f, wire.SENT, "SEND")
    return f


def number(value: Any) -> bool:
    """A msgpack integer or float (not a boolean) that is >= 0."""
    return type(value) in (int, float) and value >= 0


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise Fail(message)


def expect_type(f: Frame, msg_type: int, what: str) -> Frame:
    if f.type != msg_type:
        raise Fail(f"{what}: expected {wire.NAMES.get(msg_type)}, got {f}")
    return f


def expect_error(f: Frame, code: int, what: str, rid: int | None = None) -> Frame:
    if f.type != wire.ERROR or f.code != code:
        raise Fail(f"{what}: expected ERROR {code}, got {f}")
    if rid is not None and f.rid != rid:
        raise Fail(f"{what}: ERROR {code} carried rid {f.rid}, expected {rid}")
    return f


async def expect_closed(conn: Conn, code: int, what: str) -> None:
    """The server sends CLOSE `code` and then ends the connection."""
    try:
        f = await conn.close_frame()
    except wire.Ended as exc:
        raise Fail(f"{what}: connection ended without CLOSE {code}") from exc
    except TimeoutError as exc:
        raise Fail(f"{what}: no CLOSE {code} ({exc})") from exc
    expect(f.code == code, f"{what}: expected CLOSE {code}, got {f}")
    expect(await conn.wait_eof(), f"{what}: connection still open after CLOSE {code}")


async def error_rid0(conn: Conn, code: int, what: str) -> Frame:
    """An ERROR `code` with rid 0 arrives before the PONG of a barrier."""

    def match(f: Frame) -> bool:
        return f.type == wire.ERROR and f.rid == 0

    try:  # answers may come in any order (3.1): wait for the rid-0 ERROR itself
        f = await conn.next(match, f"ERROR {code} with rid 0")
    except TimeoutError as exc:
        raise Fail(f"{what}: {exc}") from None
    if f.code != code:
        raise Fail(f"{what}: expected ERROR {code} with rid 0, got {f}")
    return f
