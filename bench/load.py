"""The load-generator process.

One process owns a share of the sender/recipient pairs (both ends of a pair live here, so
send and receive times come from one clock) and obeys commands from the controller
(bench.runner) over a multiprocessing pipe: idle_prepare, idle_open, idle_close, setup,
group_create, group_live, throughput, latency, offline_fill, offline_drain, group_throughput,
group_latency, group_wait, exit. Every command is bounded in time and answers ("ok", result)
or ("error", traceback).

Group members and idle connections are spread over all load processes; a group message sent
from one process is received in all of them, so group latency probes carry
time.monotonic_ns() (CLOCK_MONOTONIC: one clock for every process on Linux).

It is kept as light as possible because it shares the CPUs with the server: uvloop, one
asyncio.Protocol per connection, SEND frames built from a pre-encoded template, and on the
hot path no decoding beyond the type byte (body[1]) and, for UPDATES pushes, the array
header that says how many updates the push carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import traceback
from typing import Any

from .wire import (
    HDR,
    T_AUTH,
    T_AUTHENTICATED,
    T_CLOSE,
    T_ERROR,
    T_GROUP_CREATE,
    T_GROUP_INFO,
    T_HELLO,
    T_LOGIN,
    T_OK,
    T_PING,
    T_PONG,
    T_REGISTER,
    T_REGISTERED,
    T_SEND,
    T_SENT,
    T_SET_PRIVACY,
    T_SYNC,
    T_UPDATES,
    T_WELCOME,
    SendTemplate,
    count_updates,
    decode,
    frame,
)

HOST = "127.0.0.1"  # the only address this harness ever talks to
PASSWORD = "bench-password-1"
DEVICE = "bench"
CLIENT_NAME = "liaotian-bench/1.0"
TEXT = "hello from the liaotian benchmark, 48 bytes....."  # 48 ASCII characters
HEARTBEAT_S = 15.0  # PING every connection this often (server idle timeout is 90 s)

IDLE_DEVICE = "idle"

_unpack_hdr = HDR.unpack_from
perf_ns = time.perf_counter_ns
mono_ns = time.monotonic_ns


class BenchError(Exception):
    pass


class RequestFailed(BenchError):
    def __init__(self, text: str, code: int | None) -> None:
        super().__init__(text)
        self.code = code


def sender_name(i: int) -> str:
    return f"snd{i:05d}"


def recipient_name(i: int) -> str:
    return f"rcv{i:05d}"


def offline_sender_name(j: int) -> str:
    return f"ofs{j:03d}"


def offline_user_name(r: int) -> str:
    return f"off{r:03d}"


def group_member_name(i: int) -> str:
    return f"grp{i:05d}"


def idle_user_name(i: int) -> str:
    return f"idl{i:04d}"


class Stats:
    __slots__ = (
        "acked",
        "closes",
        "delivered",
        "errors",
        "g_acked",
        "g_pushed",
        "g_sent",
        "login_retries",
        "lost",
        "notes",
        "sent",
        "unexpected",
    )

    def __init__(self) -> None:
        self.sent = 0  # SENDs written in throughput and latency phases (cumulative)
        self.acked = 0  # SENT answers received for them
        self.delivered = 0  # updates pushed to their recipients
        self.g_sent = 0  # group SENDs written by this process's group senders (cumulative)
        self.g_acked = 0  # SENT answers received for them
        self.g_pushed = 0  # group updates pushed to this process's online members
        self.errors = 0  # ERROR frames
        self.closes = 0  # CLOSE frames
        self.unexpected = 0  # anything else the hot path did not expect
        self.lost = 0  # connections that ended while not closing
        self.login_retries = 0  # LOGIN right after REGISTERED refused (see README)
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        if len(self.notes) < 20:
            self.notes.append(text)

    def problems(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "closes": self.closes,
            "unexpected": self.unexpected,
            "lost": self.lost,
            "login_retries": self.login_retries,
            "notes": list(self.notes),
        }


class Pair:
    __slots__ = ("pending", "recipient", "sender", "to")

    def __init__(self, sender: Client, recipient: Client, to: str) -> None:
        self.sender = sender
        self.recipient = recipient
        self.to = to
        self.pending = 0  # latency phase: SENT + delivery still expected
        sender.pair = self
        recipient.pair = self


class LatencyState:
    __slots__ = ("cut", "samples")

    def __init__(self, cut: int) -> None:
        self.cut = cut  # perf_counter_ns: messages sent before this are warm-up
        self.samples: list[float] = []


class GroupLatency:
    __slots__ = ("cut", "samples")

    def __init__(self, cut: int) -> None:
        self.cut = cut  # time.monotonic_ns: probes sent before this are warm-up
        self.samples: list[float] = []


class FillState:
    __slots__ = ("acked", "done", "issued", "n")

    def __init__(self, n: int, done: asyncio.Future[None]) -> None:
        self.n = n
        self.issued = 0
        self.acked = 0
        self.done = done


class DrainState:
    __slots__ = (
        "count",
        "done",
        "expect",
        "first",
        "gaps",
        "last",
        "limit",
        "pages",
        "rid",
        "t_end",
    )

    def __init__(self, limit: int, done: asyncio.Future[None]) -> None:
        self.limit = limit
        self.done = done
        self.rid = 0
        self.count = 0
        self.pages = 0
        self.first = 0
        self.last = 0
        self.expect = 1  # next seq a contiguous log must show
        self.gaps = 0
        self.t_end = 0.0


class Client(asyncio.Protocol):
    """One connection. `handler(buf, start, end)` sees each frame body; it is swapped per
    phase so that the hot path has no mode checks."""

    def __init__(self, loader: Loader, name: str) -> None:
        self.loader = loader
        self.stats = loader.stats
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.n = 0  # rid counter (also the cmid counter of SENDs)
        self.waiters: dict[int, asyncio.Future[tuple[int, Any]]] = {}
        self.out: list[bytes] = []
        self.handler = self.on_setup
        self.template: SendTemplate | None = None
        self.pair: Pair | None = None
        self.head = 0
        self.token = ""  # from AUTHENTICATED after LOGIN
        self.inflight = 0  # group latency phase: SENDs not yet acknowledged
        self.bye = False  # closed on purpose: losing it is not a failure

    # ------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.loader.closing and not self.bye:
            self.stats.lost += 1
            self.stats.note(f"{self.name}: connection lost ({exc})")
        for fut in self.waiters.values():
            if not fut.done():
                fut.set_exception(BenchError(f"{self.name}: connection lost"))
        self.waiters.clear()

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
        n = len(data)
        pos = 0
        h = self.handler
        while n - pos >= 4:
            end = pos + 4 + _unpack_hdr(data, pos)[0]
            if end > n:
                break
            h(data, pos + 4, end)
            pos = end
        self.buf = data[pos:] if pos < n else b""
        if self.out:
            t = self.transport
            if t is not None:
                t.write(b"".join(self.out))
            self.out.clear()

    def close(self) -> None:
        self.bye = True
        if self.transport is not None:
            self.transport.close()

    def write(self, data: bytes) -> None:
        t = self.transport
        if t is None:
            raise BenchError(f"{self.name}: not connected")
        t.write(data)

    def next_frame(self) -> bytes:
        self.n += 1
        return self.template.frame(self.n)  # type: ignore[union-attr]

    # ------------------------------------------------------------------ setup

    async def request(
        self, msg_type: int, payload: dict[str, Any], expect: int, timeout: float = 30.0
    ) -> dict[str, Any]:
        self.n += 1
        rid = self.n
        fut: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self.waiters[rid] = fut
        self.write(frame(msg_type, rid, payload))
        try:
            typ, p = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise BenchError(f"{self.name}: no answer to type {msg_type} in {timeout} s") from None
        finally:
            self.waiters.pop(rid, None)
        if typ != expect:
            code = p.get("code") if typ == T_ERROR and isinstance(p, dict) else None
            raise RequestFailed(
                f"{self.name}: type {msg_type} answered by type {typ}: {p!r:.300}", code
            )
        return p  # type: ignore[no-any-return]

    def on_setup(self, buf: bytes, s: int, e: int) -> None:
        typ, rid, p = decode(buf, s, e)
        fut = self.waiters.get(rid) if rid else None
        if fut is not None and not fut.done():
            fut.set_result((typ, p))
        else:
            self.other(typ, rid, p)

    # ------------------------------------------------------------------ anything unexpected

    def other(self, typ: int, rid: int, p: Any) -> None:
        if typ == T_PONG:
            return
        st = self.stats
        if typ == T_ERROR:
            st.errors += 1
        elif typ == T_CLOSE:
            st.closes += 1
        else:
            st.unexpected += 1
        st.note(f"{self.name}: type {typ} rid {rid}: {p!r:.200}")

    def other_raw(self, buf: bytes, s: int, e: int) -> None:
        if buf[s + 1] == T_PONG:
            return
        try:
            typ, rid, p = decode(buf, s, e)
        except Exception as exc:
            typ, rid, p = buf[s + 1], -1, f"<undecodable: {exc}>"
        self.other(typ, rid, p)

    # ------------------------------------------------------------------ throughput (hot path)

    def on_tp_sender(self, buf: bytes, s: int, e: int) -> None:
        if buf[s + 1] == T_SENT:
            st = self.stats
            st.acked += 1
            if self.loader.running:
                st.sent += 1
                self.n += 1
                self.out.append(self.template.frame(self.n))  # type: ignore[union-attr]
        else:
            self.other_raw(buf, s, e)

    def on_tp_recipient(self, buf: bytes, s: int, e: int) -> None:
        if buf[s + 1] == T_UPDATES:
            self.stats.delivered += count_updates(buf, s, e)
        else:
            self.other_raw(buf, s, e)

    # ------------------------------------------------------------------ group (hot path)

    def on_grp_member(self, buf: bytes, s: int, e: int) -> None:
        """Every online group member: count pushed updates; a sender also gets SENT and
        then writes its next group SEND while the phase runs."""
        t = buf[s + 1]
        if t == T_UPDATES:
            self.stats.g_pushed += count_updates(buf, s, e)
        elif t == T_SENT:
            st = self.stats
            st.g_acked += 1
            if self.loader.running:
                st.g_sent += 1
                self.n += 1
                self.out.append(self.template.frame(self.n))  # type: ignore[union-attr]
        else:
            self.other_raw(buf, s, e)

    def on_grp_lat(self, buf: bytes, s: int, e: int) -> None:
        t = buf[s + 1]
        if t == T_UPDATES:
            now = mono_ns()
            ups = decode(buf, s, e)[2]["updates"]
            glat = self.loader.glat
            for u in ups:
                text = u[2].get("text", "")
                if text.startswith("lat "):
                    t0 = int(text[4:24])
                    if glat is not None and t0 >= glat.cut:
                        glat.samples.append((now - t0) / 1e6)
            self.stats.g_pushed += len(ups)
        elif t == T_SENT:
            self.stats.g_acked += 1
            self.inflight -= 1
        else:
            self.other_raw(buf, s, e)

    def send_group_probe(self, group: int) -> None:
        self.n += 1
        t0 = mono_ns()
        text = f"lat {t0:020d} " + TEXT[:23]  # same 48-character length as TEXT
        self.write(frame(T_SEND, self.n, {"group": group, "cmid": f"{self.n:08x}", "text": text}))

    # ------------------------------------------------------------------ latency

    def on_lat_sender(self, buf: bytes, s: int, e: int) -> None:
        if buf[s + 1] == T_SENT:
            self.stats.acked += 1
            self.pair.pending -= 1  # type: ignore[union-attr]
        else:
            self.other_raw(buf, s, e)

    def on_lat_recipient(self, buf: bytes, s: int, e: int) -> None:
        if buf[s + 1] != T_UPDATES:
            self.other_raw(buf, s, e)
            return
        now = perf_ns()
        ups = decode(buf, s, e)[2]["updates"]
        lat = self.loader.lat
        for u in ups:
            text = u[2].get("text", "")
            if text.startswith("lat "):
                t0 = int(text[4:24])
                if lat is not None and t0 >= lat.cut:
                    lat.samples.append((now - t0) / 1e6)
        self.stats.delivered += len(ups)
        self.pair.pending -= len(ups)  # type: ignore[union-attr]

    def send_latency_probe(self, to: str) -> None:
        self.n += 1
        t0 = perf_ns()
        text = f"lat {t0:020d} " + TEXT[:23]  # same 48-character length as TEXT
        self.write(frame(T_SEND, self.n, {"to": to, "cmid": f"{self.n:08x}", "text": text}))

    # ------------------------------------------------------------------ offline fill / drain

    def on_fill_sender(self, buf: bytes, s: int, e: int) -> None:
        if buf[s + 1] == T_SENT:
            f = self.loader.fill
            f.acked += 1  # type: ignore[union-attr]
            if f.issued < f.n:  # type: ignore[union-attr]
                f.issued += 1  # type: ignore[union-attr]
                self.n += 1
                self.out.append(self.template.frame(self.n))  # type: ignore[union-attr]
            elif f.acked >= f.n and not f.done.done():  # type: ignore[union-attr]
                f.done.set_result(None)  # type: ignore[union-attr]
        else:
            self.other_raw(buf, s, e)
            if buf[s + 1] in (T_ERROR, T_CLOSE):
                f = self.loader.fill
                if f is not None and not f.done.done():
                    f.done.set_exception(BenchError(f"{self.name}: {self.stats.notes[-1:]}"))

    def on_drain(self, buf: bytes, s: int, e: int) -> None:
        typ, rid, p = decode(buf, s, e)
        d = self.loader.drain
        if d is None or rid != d.rid or rid == 0:
            self.other(typ, rid, p)
            return
        if typ != T_UPDATES:
            self.other(typ, rid, p)
            if not d.done.done():
                d.done.set_exception(BenchError(f"SYNC answered by type {typ}: {p!r:.300}"))
            return
        ups = p["updates"]
        more = bool(p.get("more"))
        if more:  # ask for the next page before looking at this one
            self.n += 1
            d.rid = self.n
            since = ups[-1][0] if ups else d.last
            self.write(frame(T_SYNC, d.rid, {"since": since, "limit": d.limit}))
        else:
            d.t_end = time.perf_counter()
        d.pages += 1
        if ups:
            if not d.first:
                d.first = ups[0][0]
            expect = d.expect
            for u in ups:
                seq = u[0]
                if seq != expect:
                    d.gaps += 1
                expect = seq + 1
            d.expect = expect
            d.last = ups[-1][0]
            d.count += len(ups)
        if not more and not d.done.done():
            d.done.set_result(None)


class Loader:
    def __init__(self, pipe: Any, cfg: dict[str, Any]) -> None:
        self.pipe = pipe
        self.cfg = cfg
        self.stats = Stats()
        self.clients: list[Client] = []
        self.pairs: dict[str, list[Pair]] = {"server": [], "relay": []}
        self.offline_senders: list[Client] = []
        self.group_members: list[Client] = []  # online group members (live), this process
        self.group_senders: list[Client] = []  # the senders among them
        self.group_id: int | None = None
        self.group_owner: Client | None = None  # after group_create, until group_live
        self.g_base = 0  # g_pushed at the start of the current group phase
        self.idle_tokens: list[str] = []
        self.idle: list[Client] = []
        self.running = False
        self.closing = False
        self.lat: LatencyState | None = None
        self.glat: GroupLatency | None = None
        self.fill: FillState | None = None
        self.drain: DrainState | None = None
        self.loop = asyncio.get_event_loop()

    # ------------------------------------------------------------------ command loop

    async def main(self) -> None:
        self.loop = asyncio.get_running_loop()
        beat = self.loop.create_task(self._heartbeat())
        try:
            while True:
                try:
                    cmd, args = await self._recv()
                except (EOFError, OSError):
                    return  # the controller is gone
                if cmd == "exit":
                    await self._close_all()
                    self.pipe.send(("ok", None))
                    return
                try:
                    res = await getattr(self, "cmd_" + cmd)(**args)
                    self.pipe.send(("ok", res))
                except Exception:
                    self.pipe.send(
                        ("error", f"loader {self.cfg['index']}: {cmd}: " + traceback.format_exc())
                    )
        finally:
            beat.cancel()
            await self._close_all()

    async def _recv(self) -> tuple[str, dict[str, Any]]:
        fd = self.pipe.fileno()
        fut: asyncio.Future[None] = self.loop.create_future()
        self.loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            self.loop.remove_reader(fd)
            # add_reader (libuv) switched the pipe to non-blocking mode: a large answer (the
            # latency samples) would then fail half-written with EAGAIN and leave a truncated
            # message in the pipe. Blocking again for recv() and send().
            os.set_blocking(fd, True)
        return self.pipe.recv()  # type: ignore[no-any-return]

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            for c in self.clients:
                if c.transport is not None and not self.closing:
                    c.n += 1
                    c.transport.write(frame(T_PING, c.n, {}))

    async def _close_all(self) -> None:
        self.closing = True
        for c in self.clients:
            if c.transport is not None:
                c.transport.close()
        deadline = time.monotonic() + 2.0
        while any(c.transport is not None for c in self.clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for c in self.clients:
            if c.transport is not None:
                c.transport.abort()
        self.clients.clear()

    # ------------------------------------------------------------------ connections

    async def open_client(
        self,
        port: int,
        name: str,
        *,
        register: bool = False,
        login: bool = True,
        go_live: bool = True,
        device: str = DEVICE,
    ) -> Client:
        """Connect and HELLO; then REGISTER and/or LOGIN (and SYNC since head: live)."""
        loop = self.loop
        try:
            transport, c = await asyncio.wait_for(
                loop.create_connection(lambda: Client(self, name), HOST, port), 10.0
            )
        except TimeoutError:
            raise BenchError(f"{name}: connect to {HOST}:{port} timed out") from None
        try:
            await c.request(T_HELLO, {"versions": [1], "client": CLIENT_NAME}, T_WELCOME)
            if register:
                await c.request(
                    T_REGISTER, {"username": name, "password": PASSWORD}, T_REGISTERED, 60.0
                )
            if login:
                for attempt in range(4):
                    try:
                        a = await c.request(
                            T_LOGIN,
                            {"username": name, "password": PASSWORD, "device": device},
                            T_AUTHENTICATED,
                            60.0,
                        )
                        break
                    except RequestFailed as exc:
                        if exc.code != 2002 or attempt == 3:  # BAD_CREDENTIALS
                            raise
                        self.stats.login_retries += 1
                        self.stats.note(
                            f"{name}: LOGIN after REGISTERED refused with 2002, retrying"
                        )
                        await asyncio.sleep(0.25 * (attempt + 1))
                c.head = int(a["head"])
                c.token = str(a.get("token", ""))
                if go_live:
                    await self.go_live(c)
        except BaseException:
            transport.abort()
            raise
        self.clients.append(c)
        return c

    @staticmethod
    async def go_live(c: Client) -> None:
        """SYNC since the head known at login until more=false: the connection is live."""
        since = c.head
        for _ in range(100):
            u = await c.request(T_SYNC, {"since": since, "limit": 1000}, T_UPDATES)
            ups = u.get("updates") or []
            if ups:
                since = ups[-1][0]
            if not u.get("more"):
                return
        raise BenchError(f"{c.name}: still more=true after 100 SYNC pages")

    async def cmd_setup(self) -> dict[str, Any]:
        """Register every user first (one short connection each), then log the pairs and
        the offline senders in and make them live; same for the relay."""
        cfg = self.cfg
        sem = asyncio.Semaphore(cfg["setup_concurrency"])

        async def register(port: int, name: str) -> None:
            async with sem:
                c = await self.open_client(port, name, register=True, login=False)
                self.clients.remove(c)
                c.close()

        async def register_open(port: int, name: str) -> None:
            """A group member: registered, and anyone may add it to groups (the default is
            contacts only; a server without the setting ignores the key)."""
            async with sem:
                c = await self.open_client(port, name, register=True, go_live=False, device="setup")
                await c.request(T_SET_PRIVACY, {"groups": "everyone"}, T_OK)
                self.clients.remove(c)
                c.close()

        async def live(port: int, name: str) -> Client:
            async with sem:
                return await self.open_client(port, name)

        async def make_pair(port: int, i: int) -> Pair:
            s = await live(port, sender_name(i))
            r = await live(port, recipient_name(i))
            s.handler = s.on_tp_sender
            r.handler = r.on_tp_recipient
            s.template = SendTemplate(recipient_name(i), TEXT)
            return Pair(s, r, recipient_name(i))

        idx = cfg["pair_indices"]
        names = [f(i) for i in idx for f in (sender_name, recipient_name)]
        timing = {}
        for target in ("server", "relay"):
            port = cfg[target + "_port"]
            t0 = time.monotonic()
            extra = cfg["offline_senders"] + cfg["offline_users"] if target == "server" else []
            members = cfg["group_register"] if target == "server" else []
            await asyncio.gather(
                *(register(port, n) for n in names + extra),
                *(register_open(port, n) for n in members),
            )
            t1 = time.monotonic()
            self.pairs[target] = list(await asyncio.gather(*(make_pair(port, i) for i in idx)))
            if target == "server":
                self.offline_senders = list(
                    await asyncio.gather(*(live(port, n) for n in cfg["offline_senders"]))
                )
            timing[target] = {
                "register_s": round(t1 - t0, 2),
                "login_s": round(time.monotonic() - t1, 2),
            }
        return {"connections": len(self.clients), "timing": timing, **self.stats.problems()}

    # ------------------------------------------------------------------ phases

    async def _drained(self, timeout: float) -> bool:
        st = self.stats
        deadline = time.monotonic() + timeout
        while st.acked < st.sent or st.delivered < st.sent:
            if time.monotonic() >= deadline or st.lost:
                return False
            await asyncio.sleep(0.01)
        return True

    async def cmd_throughput(
        self,
        target: str,
        t_start: float,
        t_w0: float,
        t_w1: float,
        window: int,
        drain_timeout: float,
    ) -> dict[str, Any]:
        pairs = self.pairs[target]
        st = self.stats
        base = (st.sent, st.acked, st.delivered)
        for p in pairs:
            p.sender.handler = p.sender.on_tp_sender
            p.recipient.handler = p.recipient.on_tp_recipient
        await _sleep_until(t_start)
        self.running = True
        try:
            for p in pairs:
                s = p.sender
                s.write(b"".join([s.next_frame() for _ in range(window)]))
                st.sent += window
            await _sleep_until(t_w0)
            m0, a0, d0 = time.monotonic(), st.acked, st.delivered
            await _sleep_until(t_w1)
            m1, a1, d1 = time.monotonic(), st.acked, st.delivered
        finally:
            self.running = False
        drained = await self._drained(drain_timeout)
        return {
            "target": target,
            "pairs": len(pairs),
            "window_s": m1 - m0,
            "acked": a1 - a0,
            "delivered": d1 - d0,
            "sent_total": st.sent - base[0],
            "acked_total": st.acked - base[1],
            "delivered_total": st.delivered - base[2],
            "drained": drained,
            **st.problems(),
        }

    async def cmd_latency(
        self, rate: float, t_start: float, t_warm: float, t_end: float, drain_timeout: float
    ) -> dict[str, Any]:
        pairs = self.pairs["server"]
        st = self.stats
        for p in pairs:
            p.pending = 0
            p.sender.handler = p.sender.on_lat_sender
            p.recipient.handler = p.recipient.on_lat_recipient
        self.lat = lat = LatencyState(perf_ns() + int((t_warm - time.monotonic()) * 1e9))
        await _sleep_until(t_start)
        t0 = time.monotonic()
        issued = overlapped = 0
        rr = 0
        npairs = len(pairs)
        try:
            while True:
                now = time.monotonic()
                if now >= t_end:
                    break
                due = int((now - t0) * rate) - issued
                while due > 0:
                    # the next pair with nothing in flight; if every pair is busy, the next
                    # one anyway: the rate holds whatever the latency (no coordinated omission)
                    for k in range(npairs):
                        p = pairs[(rr + k) % npairs]
                        if not p.pending:
                            break
                    else:
                        k = 0
                        p = pairs[rr]
                        overlapped += 1
                    rr = (rr + k + 1) % npairs
                    p.pending += 2  # its SENT and its delivery
                    st.sent += 1
                    p.sender.send_latency_probe(p.to)
                    issued += 1
                    due -= 1
                await asyncio.sleep(0.001)
            drained = await self._drained(drain_timeout)
        finally:
            for p in pairs:
                p.sender.handler = p.sender.on_tp_sender
                p.recipient.handler = p.recipient.on_tp_recipient
            self.lat = None
        return {
            "rate": rate,
            "issued": issued,
            "overlapped": overlapped,
            "samples": lat.samples,
            "drained": drained,
            **st.problems(),
        }

    async def cmd_offline_fill(
        self, user: str, n: int, window: int, timeout: float
    ) -> dict[str, Any]:
        senders = self.offline_senders
        if not senders:
            raise BenchError("this loader has no offline senders")
        done: asyncio.Future[None] = self.loop.create_future()
        self.fill = f = FillState(n, done)
        t0 = time.perf_counter()
        try:
            for s in senders:
                s.template = SendTemplate(user, TEXT)
                s.handler = s.on_fill_sender
                k = min(window, n - f.issued)
                if k > 0:
                    f.issued += k
                    s.write(b"".join([s.next_frame() for _ in range(k)]))
            try:
                await asyncio.wait_for(done, timeout)
            except TimeoutError:
                raise BenchError(
                    f"offline fill: {f.acked}/{n} acknowledged after {timeout} s"
                ) from None
        finally:
            self.fill = None
            for s in senders:
                s.handler = s.on_setup
        el = time.perf_counter() - t0
        return {"user": user, "messages": f.acked, "fill_s": el, "fill_msgs_per_s": f.acked / el}

    async def cmd_offline_drain(
        self, user: str, expect: int, limit: int, timeout: float
    ) -> dict[str, Any]:
        c = await self.open_client(self.cfg["server_port"], user, register=False, go_live=False)
        done: asyncio.Future[None] = self.loop.create_future()
        self.drain = d = DrainState(limit, done)
        try:
            c.handler = c.on_drain
            c.n += 1
            d.rid = c.n
            t0 = time.perf_counter()
            c.write(frame(T_SYNC, d.rid, {"since": 0, "limit": limit}))
            try:
                await asyncio.wait_for(done, timeout)
            except TimeoutError:
                raise BenchError(f"offline drain: {d.count} updates after {timeout} s") from None
        finally:
            self.drain = None
            if c in self.clients:
                self.clients.remove(c)
            c.close()
        el = d.t_end - t0
        ok = d.count == expect and d.gaps == 0 and d.first == 1 and d.last == expect
        return {
            "user": user,
            "head_at_login": c.head,
            "messages": d.count,
            "pages": d.pages,
            "first_seq": d.first,
            "last_seq": d.last,
            "gaps": d.gaps,
            "verified": ok,
            "drain_s": el,
            "msgs_per_s": d.count / el if el > 0 else 0.0,
        }

    # ------------------------------------------------------------------ group fan-out

    async def cmd_group_create(
        self, owner: str, members: list[str], name: str, timeout: float
    ) -> dict[str, Any]:
        """The owner (an online member of this process) logs in and creates the group with
        every other member in one GROUP_CREATE; it goes live later, in group_live."""
        port = self.cfg["server_port"]
        c = await self.open_client(port, owner, go_live=False)
        t0 = time.monotonic()
        info = await c.request(
            T_GROUP_CREATE, {"name": name, "members": members, "topic": ""}, T_GROUP_INFO, timeout
        )
        got = len(info.get("members") or [])
        if got != len(members) + 1:
            raise BenchError(
                f"GROUP_CREATE: {got} members in GROUP_INFO, expected {len(members) + 1}"
            )
        self.group_owner = c
        return {
            "group": int(info["group"]),
            "members": got,
            "pos": info.get("pos"),
            "create_s": round(time.monotonic() - t0, 3),
        }

    async def cmd_group_live(self, group: int) -> dict[str, Any]:
        """Log in this process's online members (device `bench`), SYNC each to live; the
        senders get a pre-encoded group SEND template."""
        port = self.cfg["server_port"]
        sem = asyncio.Semaphore(self.cfg["setup_concurrency"])
        self.group_id = group

        async def live(name: str) -> Client:
            owner = self.group_owner
            if owner is not None and owner.name == name:
                await self.go_live(owner)
                return owner
            async with sem:
                return await self.open_client(port, name)

        online = self.cfg["group_online"]
        t0 = time.monotonic()
        conns = list(await asyncio.gather(*(live(n) for n, _ in online)))
        self.group_owner = None
        self.group_members = conns
        self.group_senders = [c for c, (_, snd) in zip(conns, online, strict=True) if snd]
        for c in conns:
            c.handler = c.on_grp_member
        for c in self.group_senders:
            c.template = SendTemplate(None, TEXT, group=group)
        return {
            "online": len(conns),
            "senders": len(self.group_senders),
            "login_s": round(time.monotonic() - t0, 2),
            **self.stats.problems(),
        }

    async def _group_acked(self, timeout: float) -> bool:
        st = self.stats
        deadline = time.monotonic() + timeout
        while st.g_acked < st.g_sent:
            if time.monotonic() >= deadline or st.lost:
                return False
            await asyncio.sleep(0.01)
        return True

    async def cmd_group_throughput(
        self, t_start: float, t_w0: float, t_w1: float, window: int, drain_timeout: float
    ) -> dict[str, Any]:
        """Each local sender keeps `window` group SENDs unacknowledged; count SENTs and the
        updates pushed to every local online member over [t_w0, t_w1]. Returns once every
        local SEND is acknowledged; the pushes from other processes' senders may still be
        arriving: the controller checks them with group_wait."""
        st = self.stats
        self.g_base = st.g_pushed
        base_sent = st.g_sent
        for c in self.group_members:
            c.handler = c.on_grp_member
        await _sleep_until(t_start)
        self.running = True
        try:
            for c in self.group_senders:
                c.write(b"".join([c.next_frame() for _ in range(window)]))
                st.g_sent += window
            await _sleep_until(t_w0)
            m0, a0, p0 = time.monotonic(), st.g_acked, st.g_pushed
            await _sleep_until(t_w1)
            m1, a1, p1 = time.monotonic(), st.g_acked, st.g_pushed
        finally:
            self.running = False
        acked_all = await self._group_acked(drain_timeout)
        return {
            "online": len(self.group_members),
            "senders": len(self.group_senders),
            "window_s": m1 - m0,
            "acked": a1 - a0,
            "pushed": p1 - p0,
            "sent_total": st.g_sent - base_sent,
            "acked_all": acked_all,
            **st.problems(),
        }

    async def cmd_group_latency(
        self, rate: float, t_start: float, t_end: float, cut_ns: int, drain_timeout: float
    ) -> dict[str, Any]:
        """Group SENDs at a fixed rate from the local senders (round-robin, preferring one
        with nothing unacknowledged; never holding back), the send time in the text; every
        online member in every process records monotonic_ns() at the push minus that."""
        st = self.stats
        self.g_base = st.g_pushed
        base_sent = st.g_sent
        group = self.group_id
        if group is None:
            raise BenchError("group_latency before group_live")
        self.glat = GroupLatency(cut_ns)
        for c in self.group_members:
            c.inflight = 0
            c.handler = c.on_grp_lat
        senders = self.group_senders
        ns = len(senders)
        issued = overlapped = rr = 0
        try:
            await _sleep_until(t_start)
            t0 = time.monotonic()
            while ns and rate > 0:
                now = time.monotonic()
                if now >= t_end:
                    break
                due = int((now - t0) * rate) - issued
                while due > 0:
                    for k in range(ns):
                        c = senders[(rr + k) % ns]
                        if not c.inflight:
                            break
                    else:
                        k = 0
                        c = senders[rr]
                        overlapped += 1
                    rr = (rr + k + 1) % ns
                    c.inflight += 1
                    st.g_sent += 1
                    c.send_group_probe(group)
                    issued += 1
                    due -= 1
                await asyncio.sleep(0.001)
            await _sleep_until(t_end)
            acked_all = await self._group_acked(drain_timeout)
        except BaseException:
            self.glat = None
            for c in self.group_members:
                c.handler = c.on_grp_member
            raise
        # the handlers stay on_grp_lat until group_wait: probes from other processes'
        # senders may still be on their way here
        return {
            "rate": rate,
            "issued": issued,
            "overlapped": overlapped,
            "sent_total": st.g_sent - base_sent,
            "acked_all": acked_all,
            **st.problems(),
        }

    async def cmd_group_wait(self, expect: int, timeout: float) -> dict[str, Any]:
        """Wait until the local online members have received `expect` updates since the
        start of the last group phase; returns what arrived (and the latency samples)."""
        st = self.stats
        deadline = time.monotonic() + timeout
        while st.g_pushed - self.g_base < expect:
            if time.monotonic() >= deadline or st.lost:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # anything beyond the expected count would show up now
        glat, self.glat = self.glat, None
        for c in self.group_members:
            c.handler = c.on_grp_member
        return {
            "pushed_total": st.g_pushed - self.g_base,
            "expected": expect,
            "samples": glat.samples if glat is not None else [],
            **st.problems(),
        }

    # ------------------------------------------------------------------ idle connections

    async def cmd_idle_prepare(self, users: list[str]) -> dict[str, Any]:
        """Register the idle users and LOGIN each once (device `idle`): their tokens let
        every idle connection authenticate with AUTH (no password hashing per connection)."""
        port = self.cfg["server_port"]
        sem = asyncio.Semaphore(self.cfg["setup_concurrency"])

        async def one(name: str) -> str:
            async with sem:
                c = await self.open_client(
                    port, name, register=True, go_live=False, device=IDLE_DEVICE
                )
                self.clients.remove(c)
                c.close()
                if not c.token:
                    raise BenchError(f"{name}: LOGIN answered without a token")
                return c.token

        t0 = time.monotonic()
        self.idle_tokens = list(await asyncio.gather(*(one(n) for n in users)))
        return {
            "users": len(users),
            "seconds": round(time.monotonic() - t0, 2),
            **self.stats.problems(),
        }

    async def cmd_idle_open(self, count: int, concurrency: int, timeout: float) -> dict[str, Any]:
        """Open `count` connections, each HELLO + AUTH (pipelined in one write) with the
        idle users' tokens in turn; return when every one is authenticated. They stay open,
        doing nothing (the 15 s heartbeat PINGs them), until idle_close."""
        tokens = self.idle_tokens
        if count and not tokens:
            raise BenchError("idle_open before idle_prepare")
        port = self.cfg["server_port"]
        loop = self.loop
        sem = asyncio.Semaphore(concurrency)
        hello = {"versions": [1], "client": CLIENT_NAME}

        async def one(i: int) -> None:
            async with sem:
                name = f"idle-{self.cfg['index']}-{i}"
                try:
                    _, c = await asyncio.wait_for(
                        loop.create_connection(lambda: Client(self, name), HOST, port), 10.0
                    )
                except TimeoutError:
                    raise BenchError(f"{name}: connect timed out") from None
                self.clients.append(c)
                self.idle.append(c)
                f1: asyncio.Future[tuple[int, Any]] = loop.create_future()
                f2: asyncio.Future[tuple[int, Any]] = loop.create_future()
                c.waiters[1] = f1
                c.waiters[2] = f2
                c.n = 2
                c.write(
                    frame(T_HELLO, 1, hello) + frame(T_AUTH, 2, {"token": tokens[i % len(tokens)]})
                )
                try:
                    (t1, p1), (t2, p2) = await asyncio.wait_for(asyncio.gather(f1, f2), 30.0)
                except TimeoutError:
                    raise BenchError(f"{name}: no answer to HELLO + AUTH in 30 s") from None
                finally:
                    c.waiters.clear()
                if t1 != T_WELCOME or t2 != T_AUTHENTICATED:
                    raise BenchError(
                        f"{name}: HELLO + AUTH answered by types {t1}, {t2}: "
                        f"{p1!r:.200} {p2!r:.200}"
                    )

        t0 = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), timeout)
        except TimeoutError:
            raise BenchError(
                f"idle_open: {len(self.idle)}/{count} connections after {timeout} s"
            ) from None
        el = time.monotonic() - t0
        return {
            "opened": len(self.idle),
            "open_s": round(el, 2),
            "per_s": round(len(self.idle) / el, 1) if el > 0 else None,
            **self.stats.problems(),
        }

    async def cmd_idle_close(self, timeout: float) -> dict[str, Any]:
        idle, self.idle = self.idle, []
        for c in idle:
            c.close()
        deadline = time.monotonic() + timeout
        while any(c.transport is not None for c in idle) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        left = 0
        for c in idle:
            if c.transport is not None:
                left += 1
                c.transport.abort()
        gone = set(map(id, idle))
        self.clients = [c for c in self.clients if id(c) not in gone]
        return {"closed": len(idle), "aborted": left, **self.stats.problems()}

    async def cmd_problems(self) -> dict[str, Any]:
        return self.stats.problems()


async def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def _raise_nofile() -> None:
    with contextlib.suppress(Exception):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def loader_entry(pipe: Any, cfg: dict[str, Any]) -> None:
    """multiprocessing (spawn) target."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the controller handles Ctrl-C and cleans up
    _raise_nofile()  # thousands of idle connections per process
    try:
        import uvloop

        uvloop.run(Loader(pipe, cfg).main())
    except Exception:
        with contextlib.suppress(Exception):  # the controller reports it
            pipe.send(("error", f"loader {cfg.get('index')} crashed: " + traceback.format_exc()))


__all__ = ["BenchError", "Loader", "group_member_name", "idle_user_name", "loader_entry"]
