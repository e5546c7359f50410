#!/usr/bin/env python3
"""Fuzz the sans-I/O protocol core: liaotian.protocol.Connection, both roles.

    pip install atheris
    python fuzz/fuzz_decoder.py --seed-corpus corpus/        # seeds from the test vectors
    python fuzz/fuzz_decoder.py -max_total_time=3600 corpus/ # libFuzzer flags after that

Each input drives one Connection (Role.SERVER or Role.CLIENT) like a real endpoint would:
`receive_data` in chunkings chosen by the input (single bytes up to the whole stream),
`handle_timer` at times the input chooses, `next_event` until None (sometimes only later,
so frames pile up), a small application that answers what it receives (a server answers
HELLO with WELCOME, LOGIN with AUTHENTICATED, ...; a client sends HELLO, LOGIN, SYNC, SEND
as the state allows), then `receive_eof` and a final drain. The bytes come from one of:

* mode 0/1: the input itself, raw, to a server / a client connection;
* mode 2/3: well-formed frames (the protocol_v1 test vectors and a scripted session of
  each direction), decoded, mutated structurally (values replaced by hostile ones, keys
  dropped or added, type and rid changed, nesting, ext values) and re-encoded, with
  occasional byte-level damage (length prefixes, bit flips, truncation).

What must hold (anything else is a crash):

* no exception escapes `receive_data`, `receive_eof`, `next_event`, `handle_timer` or
  `data_to_send` (the core "never raises for the peer's mistakes"); `send` may raise only
  the documented LocalProtocolError, and the application here never provokes it;
* events are Messages of the peer's direction, ProtocolViolations, or exactly one final
  ConnectionTerminated after which nothing more comes;
* everything queued for sending splits into whole frames (FrameReader), each body passes
  `unpack_body` and `decode_message` with the default limits, has this side's direction,
  and CLOSE, if any, is the last frame.

`TestOneInput(data: bytes)` needs nothing from atheris; tests/faults/test_fuzz_smoke.py
runs it under hypothesis when atheris is not installed, and this script for a bounded
number of runs when it is.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import struct
import sys
from pathlib import Path
from typing import Any

try:
    import atheris
except ImportError:  # the harness function works without it (see test_fuzz_smoke.py)
    atheris = None

_instrument = (
    atheris.instrument_imports(include=["liaotian"])
    if atheris is not None and __name__ == "__main__"
    else contextlib.nullcontext()
)
with _instrument:
    import msgpack
    from liaotian.protocol import (
        DEFAULT_LIMITS,
        Ack,
        Auth,
        Authenticated,
        ChatMessage,
        Close,
        Connection,
        ConnectionTerminated,
        Error,
        FrameReader,
        Hello,
        History,
        Limits,
        LocalProtocolError,
        LoggedOut,
        Login,
        Logout,
        Message,
        MessageType,
        Ping,
        Pong,
        ProtocolViolation,
        Register,
        Registered,
        Role,
        Send,
        Sent,
        State,
        Sync,
        Update,
        Updates,
        Welcome,
        decode_message,
        unpack_body,
    )
    from liaotian.protocol.messages import CLIENT_TYPES, ONE_WAY_CLIENT_TYPES, SERVER_TYPES
    from liaotian.protocol.social import GetGroup, GroupCreate, Presence, Typing, TypingNotice

HEADER = struct.Struct(">I")
VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "protocol_v1.json"

SMALL_LIMITS = Limits(
    max_frame_size=256,
    max_text_len=64,
    max_meta_size=32,
    max_cmid_len=8,
    max_array_len=4,
    max_map_len=4,
    max_sync_page=3,
    default_sync_page=2,
    max_history_page=3,
    default_history_page=2,
    heartbeat_interval=1.0,
    idle_timeout=3.0,
    auth_timeout=2.0,
    max_protocol_errors=2,
    max_inflight_requests=2,
)
LIMITS = (DEFAULT_LIMITS, SMALL_LIMITS, Limits(max_protocol_errors=0, max_inflight_requests=1))


class Input:
    """Deterministic choices drawn from the input bytes (zeros once exhausted)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n: int) -> int:
        if n <= 1:
            return 0
        v = self.byte() | self.byte() << 8 if n > 256 else self.byte()
        return v % n

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


# ---------------------------------------------------------------------- seed frames


def _scripted_client_frames() -> list[bytes]:
    """A client's side of a plausible session (rids match the server app below)."""
    msgs: list[Message] = [
        Hello(rid=1, versions=(1,), client="fuzz/1"),
        Register(rid=2, username="alice", password="password1"),
        Login(rid=3, username="alice", password="password1", device="d1"),
        Sync(rid=4, since=0, limit=10),
        Send(rid=5, to="bob", cmid="c1", text="hello", meta={"k": [1, 2.5, None]}),
        Ack(rid=0, seq=1),
        History(rid=6, with_user="bob", before=5, limit=10),
        GroupCreate(rid=7, name="g", members=("bob",), topic="t"),
        GetGroup(rid=8, group=1),
        Typing(rid=0, typing=True, to="bob"),
        Ping(rid=9),
        Logout(rid=10),
        Auth(rid=11, token="A" * 43),
        Close(rid=0, code=1000, reason="bye"),
    ]
    return [m.encode() for m in msgs]


def _scripted_server_frames() -> list[bytes]:
    """A server's side of the session the client app below runs (rids 1, 2, 3, 4, 5)."""
    m = ChatMessage(
        id=1, conv=1, pos=1, sender="bob", to="alice", ts=1, cmid="x", text="hi", meta={"a": 1}
    )
    g = ChatMessage(
        id=2,
        conv=2,
        pos=1,
        sender="bob",
        to="",
        ts=1,
        cmid="",
        text="",
        group=2,
        event={"type": "created", "users": ["alice", "bob"]},
    )
    msgs: list[Message] = [
        Welcome(
            rid=1,
            version=1,
            server="liaotian/0.1.0",
            time=1,
            heartbeat=30.0,
            limits=DEFAULT_LIMITS.advertised(),
        ),
        Authenticated(rid=2, user="alice", device="d1", head=2, acked=0, token="T" * 43),
        Updates(
            rid=3,
            updates=(
                Update(seq=1, kind=1, message=m),
                Update(seq=2, kind=1, message=g),
                Update(seq=3, kind=2, data={"conv": 1, "user": "bob", "pos": 1}),
            ),
            head=3,
            more=False,
        ),
        Sent(rid=4, id=3, conv=1, pos=2, ts=2, seq=4, cmid="c1", duplicate=False),
        Updates(rid=0, updates=(Update(seq=5, kind=1, message=m),), head=5),
        Pong(rid=5, time=3),
        TypingNotice(rid=0, user="bob", typing=True, ttl=6.0),
        Presence(rid=0, user="bob", online=True, last_seen=0),
        Error(rid=0, code=3003, message="cursor"),
        Close(rid=0, code=1001, reason="going away"),
    ]
    return [m.encode() for m in msgs]


def _vector_frames() -> tuple[list[bytes], list[bytes]]:
    to_server: list[bytes] = []
    to_client: list[bytes] = []
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        for v in json.loads(VECTORS.read_text()):
            frame = bytes.fromhex(v["hex"])
            (to_server if v["direction"].startswith("client") else to_client).append(frame)
    return to_server, to_client


CLIENT_SESSION = _scripted_client_frames()  # what a server receives, in order
SERVER_SESSION = _scripted_server_frames()  # what a client receives, in order
VECTORS_TO_SERVER, VECTORS_TO_CLIENT = _vector_frames()

# ---------------------------------------------------------------------- mutation

HOSTILE: list[Any] = [
    -1,
    0,
    1,
    255,
    65535,
    65536,
    2**31,
    2**32 - 1,
    2**32,
    2**63 - 1,
    2**63,
    2**64 - 1,
    -(2**63),
    0.0,
    -0.5,
    1.5,
    float("inf"),
    float("nan"),
    True,
    False,
    None,
    "",
    "x" * 300,
    "\u0000",
    "\ud7ff\ue000",
    "é" * 70,
    b"",
    b"bin",
    [],
    [[[]]],
    {},
    {"k": {}},
    {1: 2},
    msgpack.ExtType(1, b"x"),
    msgpack.Timestamp(1, 0),
    list(range(20)),
    {f"k{i}": i for i in range(12)},
]


def hostile(inp: Input) -> Any:
    """A fresh copy of a hostile value (mutations change values in place: a shared one
    would grow from run to run)."""
    return copy.deepcopy(HOSTILE[inp.below(len(HOSTILE))])


def _paths(obj: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    out = [prefix]
    if depth > 6:
        return out
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k), depth + 1)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i), depth + 1)
    return out


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _get(obj, path[:-1])[path[-1]] = value
    return obj


def _deep(n: int) -> Any:
    v: Any = 0
    for _ in range(n):
        v = [v]
    return v


def mutate_body(body: bytes, inp: Input) -> bytes:
    """Decode a body, change its structure a few times, re-encode it."""
    try:
        obj: Any = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception:
        return body
    for _ in range(1 + inp.below(4)):
        paths = _paths(obj)
        path = paths[inp.below(len(paths))]
        op = inp.below(9)
        try:
            target = _get(obj, path)
            if op == 0:
                obj = _set(obj, path, hostile(inp))
            elif op == 1 and isinstance(target, dict) and target:
                keys = list(target)
                del target[keys[inp.below(len(keys))]]
            elif op == 2 and isinstance(target, dict):
                key = ["rid", "type", "seq", "cmid", "to", "group", "with", "x", 7][inp.below(9)]
                target[key] = hostile(inp)
            elif op == 3 and isinstance(obj, list) and obj:
                obj[0] = [0, 1, 2, 3, 5, 6, 7, 13, 30, 31, 33, 60, 99, 65535, 65536][inp.below(15)]
            elif op == 4 and isinstance(obj, list) and len(obj) > 1:
                obj[1] = [0, 1, 2, 9, 2**32 - 1, 2**32, -1][inp.below(7)]
            elif op == 5 and len(paths) < 2000:
                obj = _set(obj, path, [target] * (1 + inp.below(3)))
            elif op == 6:
                obj = _set(obj, path, _deep(inp.below(1200)))
            elif op == 7 and isinstance(target, str) and len(target) < 4096:
                obj = _set(obj, path, target * (1 + inp.below(40)))
            elif op == 8 and isinstance(obj, list):
                obj.append(hostile(inp))
        except (KeyError, IndexError, TypeError):
            pass
    try:
        return msgpack.packb(obj, use_bin_type=True)
    except Exception:  # e.g. nesting too deep to encode: keep the original
        return body


def damage(frame: bytes, inp: Input) -> bytes:
    """Byte-level damage to a whole frame (prefix included), rarely."""
    op = inp.below(8)
    if op == 0 and frame:
        i = inp.below(len(frame))
        return frame[:i] + bytes([frame[i] ^ (1 << inp.below(8))]) + frame[i + 1 :]
    if op == 1 and len(frame) >= 4:
        size = HEADER.unpack_from(frame)[0]
        size = [size + 1, max(0, size - 1), 0, 2**32 - 1, 1 << 20, (1 << 20) + 1][inp.below(6)]
        return HEADER.pack(size) + frame[4:]
    if op == 2 and frame:
        return frame[: inp.below(len(frame))]  # truncated
    if op == 3:  # invalid UTF-8 inside the first non-empty fixstr
        for i in range(4, len(frame) - 1):
            if 0xA1 <= frame[i] <= 0xBF:
                return frame[: i + 1] + b"\xff" + frame[i + 2 :]
    return frame


def mutated_stream(inp: Input, session: list[bytes], extra: list[bytes]) -> bytes:
    """Frames in session order (so the later states are reached), or picked from all
    seeds; each one possibly mutated and, rarely, damaged."""
    in_order = inp.below(2) == 0
    pool = session + extra
    count = 1 + inp.below(len(session) + 4)
    out = bytearray()
    for i in range(count):
        frame = session[i % len(session)] if in_order else pool[inp.below(len(pool))]
        body = frame[4:]
        if inp.below(3) == 0:
            body = mutate_body(body, inp)
        frame = HEADER.pack(len(body)) + body
        if inp.below(8) == 0:
            frame = damage(frame, inp)
        out += frame
    if inp.below(4) == 0:
        out += inp.rest()  # the rest of the input: raw bytes after the frames
    return bytes(out)


# ---------------------------------------------------------------------- the endpoints


class ServerApp:
    """Answers requests the way the real server's router would (minimally)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def start(self) -> None:
        pass

    def on_message(self, msg: Message) -> None:
        rid = msg.rid
        if int(msg.TYPE) in ONE_WAY_CLIENT_TYPES or rid == 0:
            return
        if isinstance(msg, Hello):
            answer: Message = Welcome(
                rid=rid,
                version=1,
                server="fuzz/1",
                time=0,
                heartbeat=self.conn.limits.heartbeat_interval,
                limits=self.conn.limits.advertised(),
            )
        elif isinstance(msg, Ping):
            answer = Pong(rid=rid, time=0)
        elif isinstance(msg, Register):
            answer = Registered(rid=rid, user=msg.username)
        elif isinstance(msg, Login | Auth):
            answer = Authenticated(
                rid=rid,
                user="alice",
                device="d1",
                head=0,
                acked=0,
                token="T" * 43 if isinstance(msg, Login) else None,
            )
        elif isinstance(msg, Logout):
            answer = LoggedOut(rid=rid)
        elif isinstance(msg, Sync):
            answer = Updates(rid=rid, updates=(), head=0)
        else:
            answer = Error(rid=rid, code=5001, message="fuzz server")
        send(self.conn, answer)

    def act(self, inp_byte: int) -> None:
        if inp_byte % 16 == 0 and self.conn.state is State.AUTHENTICATED:
            send(self.conn, Updates(rid=0, updates=(), head=0))


class ClientApp:
    """Goes through HELLO, LOGIN, SYNC and SEND as the state allows."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def start(self) -> None:
        send(self.conn, Hello(rid=self.conn.next_rid(), versions=(1,), client="fuzz/1"))

    def on_message(self, msg: Message) -> None:
        c = self.conn
        if isinstance(msg, Welcome) and c.state is State.CONNECTED:
            send(c, Login(rid=c.next_rid(), username="alice", password="password1", device="d1"))
        elif isinstance(msg, Authenticated) and c.state is State.AUTHENTICATED:
            send(c, Sync(rid=c.next_rid(), since=0))
            send(c, Send(rid=c.next_rid(), to="bob", cmid="c1", text="hello"))

    def act(self, inp_byte: int) -> None:
        c = self.conn
        if c.state in (State.CONNECTED, State.AUTHENTICATED):
            if inp_byte % 16 == 0:
                send(c, Ping(rid=c.next_rid()))
            elif inp_byte % 16 == 1 and c.state is State.AUTHENTICATED:
                send(c, Ack(rid=0, seq=0))
        if inp_byte == 255:
            send(c, Close(rid=0, code=1000, reason="fuzz"))


def send(conn: Connection, msg: Message) -> None:
    with contextlib.suppress(LocalProtocolError):  # documented: not allowed in this state
        conn.send(msg)


# ---------------------------------------------------------------------- one run


class Checker:
    def __init__(self, conn: Connection, app: ServerApp | ClientApp) -> None:
        self.conn, self.app = conn, app
        self.out = bytearray()
        self.terminated = False
        self.peer_types = CLIENT_TYPES if conn.role is Role.SERVER else SERVER_TYPES

    def drain(self) -> None:
        for _ in range(100_000):
            ev = self.conn.next_event()
            if ev is None:
                break
            assert not self.terminated, f"event after ConnectionTerminated: {ev!r}"
            if isinstance(ev, ConnectionTerminated):
                self.terminated = True
                assert self.conn.closed
            elif isinstance(ev, ProtocolViolation):
                assert 1000 <= int(ev.code) <= 9999, ev
            else:
                assert isinstance(ev, Message), ev
                assert int(ev.TYPE) in self.peer_types, f"{ev!r} is not a peer message"
                assert ev.TYPE != MessageType.CLOSE, "CLOSE must end as ConnectionTerminated"
                self.app.on_message(ev)
        else:
            raise AssertionError("next_event never returned None")
        self.collect()

    def collect(self) -> None:
        self.out += self.conn.data_to_send()

    def check_output(self) -> None:
        reader = FrameReader(1 << 31)
        bodies = reader.feed(bytes(self.out))
        assert reader.error is None and reader.buffered == 0, "partial frame queued"
        own = SERVER_TYPES if self.conn.role is Role.SERVER else CLIENT_TYPES
        for i, body in enumerate(bodies):
            msg_type, rid, payload = unpack_body(body, DEFAULT_LIMITS)
            msg = decode_message(msg_type, rid, payload, DEFAULT_LIMITS)
            assert msg_type in own, f"{msg!r} sent by the wrong side"
            if msg_type == MessageType.CLOSE:
                assert i == len(bodies) - 1, "frames queued after CLOSE"


def run(role: Role, limits: Limits, stream: bytes, rng: random.Random) -> None:
    conn = Connection(role, limits=limits, now=0.0)
    app: ServerApp | ClientApp = ServerApp(conn) if role is Role.SERVER else ClientApp(conn)
    check = Checker(conn, app)
    app.start()
    check.collect()
    now = 0.0
    pos = 0
    while pos < len(stream):
        kind = rng.random()
        n = 1 if kind < 0.2 else rng.randint(1, 16) if kind < 0.6 else rng.randint(1, 4096)
        chunk = stream[pos : pos + n]
        pos += len(chunk)
        now += rng.choice((0.0, 0.001, 0.1, 1.0, 5.0, 100.0)) if rng.random() < 0.3 else 0.0
        conn.receive_data(chunk, now)
        if rng.random() < 0.2:
            timer = conn.get_timer()
            assert timer is None or timer == timer  # never NaN
            conn.handle_timer(now)
        if rng.random() < 0.8:  # sometimes let frames pile up before pulling events
            check.drain()
        app.act(rng.randrange(256))
        check.collect()
    check.drain()
    conn.receive_eof()
    check.drain()
    conn.handle_timer(now + 1000.0)
    check.drain()
    assert check.terminated, "the connection did not end after end of stream"
    assert conn.data_to_send() == b""
    check.check_output()


def TestOneInput(data: bytes) -> None:  # libFuzzer's name for the entry point
    inp = Input(data)
    mode = inp.byte() % 4
    limits = LIMITS[inp.byte() % len(LIMITS)]
    rng = random.Random(int.from_bytes(inp.take(2), "big"))
    role = Role.SERVER if mode in (0, 2) else Role.CLIENT
    if mode < 2:
        stream = inp.rest()
    elif role is Role.SERVER:
        stream = mutated_stream(inp, CLIENT_SESSION, VECTORS_TO_SERVER)
    else:
        stream = mutated_stream(inp, SERVER_SESSION, VECTORS_TO_CLIENT)
    run(role, limits, stream, rng)


# ---------------------------------------------------------------------- seeds, main


def seed_inputs() -> list[bytes]:
    """Inputs that start the fuzzer off with whole sessions, raw and to be mutated."""
    out = []
    rnd = random.Random(0)
    for limits_sel in range(len(LIMITS)):
        out.append(bytes([0, limits_sel, 0, 1]) + b"".join(CLIENT_SESSION))
        out.append(bytes([1, limits_sel, 0, 2]) + b"".join(SERVER_SESSION))
        for frame in VECTORS_TO_SERVER:
            out.append(bytes([0, limits_sel, 0, 3]) + CLIENT_SESSION[0] + frame)
        for frame in VECTORS_TO_CLIENT:
            out.append(bytes([1, limits_sel, 0, 4]) + frame)
        for seed in range(8):
            out.append(bytes([2, limits_sel, 0, seed]) + rnd.randbytes(48))
            out.append(bytes([3, limits_sel, 1, seed]) + rnd.randbytes(48))
    return out


def write_seed_corpus(directory: str) -> int:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    seeds = seed_inputs()
    for i, s in enumerate(seeds):
        (path / f"seed-{i:04d}").write_bytes(s)
    return len(seeds)


def main(argv: list[str]) -> None:
    if len(argv) >= 3 and argv[1] == "--seed-corpus":
        n = write_seed_corpus(argv[2])
        print(f"wrote {n} seed inputs to {argv[2]}")
        return
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris")
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
