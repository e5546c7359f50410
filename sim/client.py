"""Simulated devices, speaking the protocol through `liaotian.protocol.Connection` directly.

A `Device` is what an app keeps on a phone: its token, its cursor (the highest seq it has
handled, entries 1..cursor all taken in order) and its outbox of sends not yet answered.
It outlives its connections. A `ClientConn` is one connection of a device: HELLO, then AUTH
with the token (or LOGIN, after REGISTER for the user's first device), then SYNC pages from
the cursor until one says `more: false`, and then pushes. Sends go out as soon as the
connection is authenticated and are retried with the same cmid on the next connection
until a SENT or a definitive error answers them (SPEC 10.2, 10.3).

Every entry a device takes is handed to the oracle (oracle.py), which checks it against the
other devices, the timelines and the membership; the device itself checks that its log
arrives without gaps (`no-gap`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from liaotian.protocol import (
    Auth,
    Authenticated,
    CloseCode,
    Connection,
    ConnectionTerminated,
    Error,
    ErrorCode,
    Hello,
    History,
    HistoryPage,
    Login,
    Message,
    ProtocolViolation,
    Register,
    Registered,
    Role,
    Send,
    Sent,
    Sync,
    Updates,
    Welcome,
)
from liaotian.protocol.social import GroupInfo, Ok

from .net import Link
from .oracle import (
    Entry,
    HistoryRecord,
    OkRecord,
    SentRecord,
    describe,
    message_entry,
    sent_entry,
    update_entry,
)

if TYPE_CHECKING:
    import asyncio

    from .world import World

# errors that settle a send for good: it was not stored and never will be
FINAL_SEND_ERRORS = frozenset(
    (
        ErrorCode.NOT_ALLOWED,
        ErrorCode.NOT_MEMBER,
        ErrorCode.UNKNOWN_USER,
        ErrorCode.MESSAGE_TOO_LARGE,
    )
)
# answers that are part of normal life for the other requests
EXPECTED_ERRORS = frozenset(
    (
        ErrorCode.NOT_ALLOWED,
        ErrorCode.NOT_MEMBER,
        ErrorCode.UNKNOWN_USER,
        ErrorCode.GROUP_FULL,
        ErrorCode.FORBIDDEN,
        ErrorCode.CONFLICT,
        ErrorCode.LIMIT_REACHED,
        ErrorCode.RATE_LIMITED,
        ErrorCode.UNAVAILABLE,
        ErrorCode.THROTTLED,
    )
)


@dataclass(slots=True)
class PendingSend:
    cmid: str
    to: str
    group: int | None
    text: str
    inflight: bool = False
    attempts: int = 0


class SimUser:
    def __init__(self, world: World, index: int, name: str, devices: int) -> None:
        self.world = world
        self.index = index
        self.name = name
        self.password = f"pw-{name}-secret"
        self.registered = False
        self.devices = [Device(world, self, i) for i in range(devices)]

    def online(self) -> list[Device]:
        return [d for d in self.devices if d.conn is not None and d.conn.live]


class Device:
    def __init__(self, world: World, user: SimUser, index: int) -> None:
        self.world = world
        self.user = user
        self.index = index
        self.name = f"d{index}"
        self.label = f"{user.name}/{self.name}"
        self.token: str | None = None
        self.cursor = 0
        self.ahead: dict[int, Entry] = {}  # own SENT entries a sync has not reached yet
        self.outbox: dict[str, PendingSend] = {}
        self.sends = 0
        self.want_online = False
        self.conn: ClientConn | None = None
        self.connections = 0
        self._retry: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ connecting

    def go_online(self) -> None:
        self.want_online = True
        if self.conn is None and self._retry is None:
            self.connect()

    def go_offline(self) -> None:
        self.want_online = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.conn is not None:
            self.conn.close()

    def connect(self) -> None:
        self._retry = None
        if self.conn is not None or not self.want_online:
            return
        self.connections += 1
        self.conn = ClientConn(self, self.connections)

    def connection_over(self, conn: ClientConn, why: str, delay: float | None = None) -> None:
        if self.conn is not conn:
            return
        self.conn = None
        self.ahead.clear()
        for p in self.outbox.values():
            p.inflight = False
        self.world.trace(f"{self.label} conn {conn.n} over: {why}")
        if self.want_online and self._retry is None:
            rng = self.world.client_rng
            wait = delay if delay is not None else rng.uniform(0.02, 0.4)
            self._retry = self.world.loop.call_later(wait, self.connect)

    # ------------------------------------------------------------------ the log

    def take(self, seq: int, entry: Entry, how: str, live: bool) -> None:
        """An entry arrived (page, push or own SENT while live)."""
        oracle = self.world.oracle
        if seq <= self.cursor:
            known = oracle.user(self.user.name).log.get(seq)
            if known is not None and known != entry:
                oracle.fail(
                    "devices-agree",
                    f"{self.label} got seq {seq} again by {how} as "
                    f"{describe(entry)}, first {describe(known)}",
                )
            elif live and how == "push":  # SPEC 10.4: no gap and no duplicate once live
                oracle.fail(
                    "no-gap",
                    f"{self.label} at cursor {self.cursor} was pushed seq "
                    f"{seq} again on a live connection",
                )
            return
        if seq != self.cursor + 1:
            oracle.fail(
                "no-gap",
                f"{self.label} at cursor {self.cursor} got seq {seq} by {how}"
                f"{' on a live connection' if live else ''}: "
                f"{describe(entry)}",
            )
            return
        early = self.ahead.pop(seq, None)
        if early is not None and early != entry:
            oracle.fail(
                "devices-agree",
                f"{self.label}: SENT said seq {seq} is "
                f"{describe(early)}, the log says {describe(entry)}",
            )
        oracle.accept(self.user.name, self.name, seq, entry)
        self.cursor = seq

    # ------------------------------------------------------------------ sending

    def queue_send(self, to: str, group: int | None, text: str) -> str:
        self.sends += 1
        cmid = f"{self.name}-{self.sends}"
        self.outbox[cmid] = PendingSend(cmid, to, group, text)
        self.flush_outbox()
        return cmid

    def flush_outbox(self) -> None:
        conn = self.conn
        if conn is None or not conn.authenticated:
            return
        for p in list(self.outbox.values()):
            if not p.inflight:
                conn.send_message(p)


class ClientConn:
    """One connection of a device."""

    def __init__(self, device: Device, n: int) -> None:
        self.device = device
        self.world = device.world
        self.n = n
        self.loop = self.world.loop
        self.proto = Connection(Role.CLIENT, limits=self.world.limits, now=self.loop.time())
        self.authenticated = False
        self.live = False
        self.closed = False
        self._answers: dict[int, Callable[[Message], None]] = {}
        self._lost: dict[int, Callable[[], None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        u = device.user
        self.link = self.world.net.connect(
            self, (f"10.0.{u.index}.{device.index}", 40000 + n), f"{device.label}#{n}"
        )

    # ------------------------------------------------------------------ network events

    def net_connected(self, link: Link) -> None:
        self._request(lambda rid: Hello(rid=rid, versions=(1,), client="sim"), self._welcome)
        self._arm()

    def net_data(self, link: Link, data: bytes) -> None:
        if self.closed:
            return
        self.proto.receive_data(data, self.loop.time())
        self._drain_events()

    def net_closed(self, link: Link, reset: bool) -> None:
        if self.closed:
            return
        self.proto.receive_eof()
        self._drain_events()
        self._over("reset" if reset else "end of stream")

    def _drain_events(self) -> None:
        while not self.closed:
            event = self.proto.next_event()
            if event is None:
                break
            self._event(event)
        self._flush()

    def _event(self, event: Any) -> None:
        if isinstance(event, ConnectionTerminated):
            why = f"closed {event.code} {event.reason}" if event.code is not None else "EOF"
            delay = None
            if event.code == CloseCode.LOGGED_OUT:
                self.device.token = None
            self._flush()
            self._over(why, delay)
            return
        if isinstance(event, ProtocolViolation):
            self.world.oracle.fail(
                "no-internal-error",
                f"{self.device.label}: the server broke the protocol: {event.code} {event.message}",
            )
            return
        if isinstance(event, Updates) and event.rid == 0:
            self._push(event)
            return
        if isinstance(event, Error) and event.code == ErrorCode.INTERNAL_ERROR:
            self.world.oracle.fail(
                "no-internal-error", f"{self.device.label}: ERROR 5001 for rid {event.rid}"
            )
        handler = self._answers.pop(event.rid, None) if event.rid else None
        self._lost.pop(event.rid, None)
        if handler is not None:
            handler(event)
        elif (
            isinstance(event, Error)
            and event.code not in EXPECTED_ERRORS
            and event.code != ErrorCode.INVALID_CURSOR
        ):
            self.world.oracle.fail(
                "no-internal-error",
                f"{self.device.label}: unexpected ERROR {event.code} "
                f"{event.message} (rid {event.rid})",
            )

    # ------------------------------------------------------------------ requests

    def _request(
        self,
        make: Callable[[int], Message],
        on_answer: Callable[[Any], None],
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        if self.closed:
            if on_lost is not None:
                on_lost()
            return
        rid = self.proto.next_rid()
        msg = make(rid)
        self._answers[rid] = on_answer
        if on_lost is not None:
            self._lost[rid] = on_lost
        self.proto.send(msg)
        self._flush()

    def request(self, make: Callable[[int], Message], on_answer: Callable[[Any], None]) -> None:
        self._request(make, on_answer)

    def send_oneway(self, msg: Message) -> None:
        if not self.closed and self.proto.send(msg):
            self._flush()

    def _flush(self) -> None:
        data = self.proto.data_to_send()
        if data:
            self.link.client_send(data)
        self._arm()

    def close(self) -> None:
        """Leave politely: CLOSE 1000, then end the stream."""
        if self.closed:
            return
        self.proto.close(CloseCode.NORMAL, "bye")
        self._flush()
        self._over("closed by the device")

    def abandon(self) -> None:
        """The device gives up on this connection without telling the server."""
        if not self.closed:
            self.link.vanish_client()

    def _over(self, why: str, delay: float | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        self.authenticated = self.live = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.link.client_close()
        lost = list(self._lost.values())
        self._answers.clear()
        self._lost.clear()
        for cb in lost:
            cb()
        self.device.connection_over(self, why, delay)

    # ------------------------------------------------------------------ timers

    def _arm(self) -> None:
        if self.closed:
            return
        when = self.proto.get_timer()
        if when is None:
            return
        if self._timer is not None:
            if self._timer_at <= when:
                return  # it fires first; _on_timer arms again
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.closed:
            return
        self.proto.handle_timer(self.loop.time())
        self._drain_events()
        if self.proto.closed and not self.closed:
            self._flush()
            self._over(f"timed out ({self.proto.close_reason})")

    # ------------------------------------------------------------------ session

    def _welcome(self, msg: Message) -> None:
        if not isinstance(msg, Welcome):
            self.close()
            return
        d = self.device
        if d.token is not None:
            self._request(lambda rid: Auth(rid=rid, token=d.token or ""), self._auth_answer)
        elif not d.user.registered:
            u = d.user
            self._request(
                lambda rid: Register(rid=rid, username=u.name, password=u.password),
                self._registered,
            )
        else:
            self._login()

    def _registered(self, msg: Message) -> None:
        if isinstance(msg, Registered) or (
            isinstance(msg, Error) and msg.code == ErrorCode.USERNAME_TAKEN
        ):
            self.device.user.registered = True
            self._login()
        else:
            self.close()

    def _login(self) -> None:
        d = self.device
        self._request(
            lambda rid: Login(
                rid=rid, username=d.user.name, password=d.user.password, device=d.name
            ),
            self._auth_answer,
        )

    def _auth_answer(self, msg: Message) -> None:
        d = self.device
        if isinstance(msg, Error):
            if msg.code == ErrorCode.INVALID_TOKEN:
                d.token = None
                self._login()
            elif msg.code == ErrorCode.BAD_CREDENTIALS and not d.user.registered:
                self.close()
            else:
                self.world.trace(f"{d.label} conn {self.n}: login refused {msg.code}")
                self.close()
            return
        assert isinstance(msg, Authenticated)
        if msg.token is not None:
            d.token = msg.token
        d.user.registered = True
        self.authenticated = True
        self.world.trace(
            f"{d.label} conn {self.n} authenticated (head {msg.head}, cursor {d.cursor})"
        )
        self._sync()
        d.flush_outbox()

    def _sync(self) -> None:
        limit = self.world.client_rng.choice((1, 2, 3, 5, 50, 500))
        since = self.device.cursor
        self._request(
            lambda rid: Sync(rid=rid, since=since, limit=limit), lambda m: self._page(m, since)
        )

    def _page(self, msg: Message, since: int) -> None:
        d = self.device
        if isinstance(msg, Error):
            self.world.oracle.fail(
                "no-gap", f"{d.label}: SYNC from {since} refused: {msg.code} {msg.message}"
            )
            return
        assert isinstance(msg, Updates)
        if msg.resync:
            self.world.oracle.fail(
                "no-gap",
                f"{d.label}: SYNC from {since} answered resync (nothing is pruned in a simulation)",
            )
            return
        for u in msg.updates:
            d.take(u.seq, update_entry(u), f"sync page from {since}", False)
        if msg.more:
            self._sync()
            return
        if msg.head != d.cursor:  # "caught up" must mean every entry up to head was given
            self.world.oracle.fail(
                "no-gap",
                f"{d.label}: the last SYNC page (from {since}) "
                f"says head {msg.head} but gave entries only up "
                f"to {d.cursor}",
            )
            return
        self.live = True
        if d.ahead:
            seqs = sorted(d.ahead)
            self.world.oracle.fail(
                "no-gap",
                f"{d.label} went live at {d.cursor} but SENT "
                f"answers named seqs {seqs} the sync never gave",
            )
        self.world.trace(f"{d.label} conn {self.n} live at {d.cursor}")

    def _push(self, msg: Updates) -> None:
        d = self.device
        for u in msg.updates:
            d.take(u.seq, update_entry(u), "push", self.live)
        if self.live and self.world.client_rng.random() < 0.3:
            from liaotian.protocol import Ack

            self.send_oneway(Ack(rid=0, seq=d.cursor))

    # ------------------------------------------------------------------ sends

    def send_message(self, p: PendingSend) -> None:
        d = self.device
        p.inflight = True
        p.attempts += 1
        if p.attempts > 1:
            self.world.trace(f"{d.label} conn {self.n} retries {p.cmid} (attempt {p.attempts})")

        def lost() -> None:
            p.inflight = False

        self._request(
            lambda rid: Send(rid=rid, to=p.to, cmid=p.cmid, text=p.text, group=p.group),
            lambda m: self._send_answer(p, m),
            lost,
        )

    def _send_answer(self, p: PendingSend, msg: Message) -> None:
        d = self.device
        if isinstance(msg, Error):
            if msg.code in FINAL_SEND_ERRORS:
                d.outbox.pop(p.cmid, None)
                self.world.trace(f"{d.label} {p.cmid} refused: {ErrorCode(msg.code).name}")
                return
            p.inflight = False
            wait = msg.retry_after if msg.retry_after else 0.5
            self.loop.call_later(wait, d.flush_outbox)
            return
        assert isinstance(msg, Sent)
        d.outbox.pop(p.cmid, None)
        if msg.cmid != p.cmid:
            self.world.oracle.fail(
                "cmid-once", f"{d.label}: SEND {p.cmid} answered with cmid {msg.cmid}"
            )
        self.world.trace(
            f"{d.label} {p.cmid} SENT id {msg.id} conv {msg.conv} pos {msg.pos} "
            f"seq {msg.seq}{' (duplicate)' if msg.duplicate else ''}"
        )
        self.world.oracle.sent_answer(SentRecord(d.user.name, p.to, p.group, p.text, msg))
        entry = sent_entry(d.user.name, p.to, p.group, p.text, msg)
        if self.live:
            d.take(msg.seq, entry, "own SENT", True)
        elif msg.seq <= d.cursor:
            d.take(msg.seq, entry, "own SENT", False)
        else:
            d.ahead[msg.seq] = entry

    # ------------------------------------------------------------------ other requests

    def group_request(self, make: Callable[[int], Message], group: int, event: str) -> None:
        label = self.device.label

        def answer(m: Message) -> None:
            if isinstance(m, Ok):
                if m.pos is None:
                    self.world.oracle.fail("ok-pos", f"{label}: OK for {event} without pos")
                else:
                    self.world.oracle.ok_answer(
                        OkRecord(self.device.user.name, group, m.pos, event)
                    )
                self.world.trace(f"{label} {event} in group {group}: OK pos {m.pos}")
            elif isinstance(m, Error):
                self.world.trace(f"{label} {event} in group {group}: {ErrorCode(m.code).name}")

        self.request(make, answer)

    def create_group(self, make: Callable[[int], Message]) -> None:
        label = self.device.label

        def answer(m: Message) -> None:
            if isinstance(m, GroupInfo):
                self.world.groups.append(m.group)
                self.world.trace(
                    f"{label} created group {m.group} (pos {m.pos}, members "
                    f"{[x.user for x in m.members]})"
                )
            elif isinstance(m, Error):
                self.world.trace(f"{label} group create: {ErrorCode(m.code).name}")

        self.request(make, answer)

    def history(
        self, group: int, limit: int, before: int | None = None, after: int | None = None
    ) -> None:
        d = self.device

        def answer(m: Message) -> None:
            if isinstance(m, HistoryPage):
                entries = tuple(message_entry(x) for x in m.messages)
                self.world.oracle.history_answer(HistoryRecord(d.user.name, group, entries))
                self.world.trace(
                    f"{d.label} history of group {group}: positions {[e[3] for e in entries]}"
                )

        self.request(
            lambda rid: History(
                rid=rid, with_user="", group=group, limit=limit, before=before, after=after
            ),
            answer,
        )

    def simple(self, make: Callable[[int], Message], what: str) -> None:
        label = self.device.label

        def answer(m: Message) -> None:
            result = ErrorCode(m.code).name if isinstance(m, Error) else "OK"
            self.world.trace(f"{label} {what}: {result}")

        self.request(make, answer)
