"""Just enough of the liaotian framing for the load generator and the relay.

A frame is a 4-byte big-endian length, then a msgpack body `[type, rid, payload]`. Because
the body always starts with 0x93 (fixarray of 3) and every message type is a positive
fixint (< 128), the type of a frame is simply `body[1]`: the hot paths read that byte and
decode nothing else unless they need to.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from typing import Any

import msgpack
from liaotian.protocol import MessageType

HDR = struct.Struct(">I")
packb = msgpack.packb

T_HELLO = int(MessageType.HELLO)
T_WELCOME = int(MessageType.WELCOME)
T_PING = int(MessageType.PING)
T_PONG = int(MessageType.PONG)
T_CLOSE = int(MessageType.CLOSE)
T_ERROR = int(MessageType.ERROR)
T_REGISTER = int(MessageType.REGISTER)
T_REGISTERED = int(MessageType.REGISTERED)
T_LOGIN = int(MessageType.LOGIN)
T_AUTH = int(MessageType.AUTH)
T_AUTHENTICATED = int(MessageType.AUTHENTICATED)
T_SEND = int(MessageType.SEND)
T_SENT = int(MessageType.SENT)
T_SYNC = int(MessageType.SYNC)
T_UPDATES = int(MessageType.UPDATES)
T_OK = int(MessageType.OK)
T_SET_PRIVACY = int(MessageType.SET_PRIVACY)
T_GROUP_CREATE = int(MessageType.GROUP_CREATE)
T_GROUP_INFO = int(MessageType.GROUP_INFO)
T_GROUP_ADD = int(MessageType.GROUP_ADD)

# body of a push made by protocol.encode_updates_frame: 93 21 00 83 a7 "updates" <array hdr>
_UPDATES_KEY = packb("updates")  # b"\xa7updates"
_KEY_END = 4 + len(_UPDATES_KEY)


def frame(msg_type: int, rid: int, payload: dict[str, Any]) -> bytes:
    body = packb((msg_type, rid, payload))
    return HDR.pack(len(body)) + body


def decode(buf: bytes | bytearray, start: int, end: int) -> Any:
    """Full decode of one body (setup, errors, latency samples, sync pages)."""
    return msgpack.unpackb(bytes(buf[start:end]), raw=False, strict_map_key=False)


def count_updates(buf: bytes | bytearray, s: int, e: int) -> int:
    """Number of updates in an UPDATES body at buf[s:e], without decoding them.

    Fast path for the server's canonical layout (rid 0 push, "updates" the first key);
    anything else falls back to a full decode.
    """
    if buf[s + 2] == 0 and buf[s + 4 : s + _KEY_END] == _UPDATES_KEY and buf[s + 3] in (0x83, 0x84):
        h = buf[s + _KEY_END]
        if h & 0xF0 == 0x90:
            return h & 0x0F
        if h == 0xDC:
            return int.from_bytes(buf[s + _KEY_END + 1 : s + _KEY_END + 3], "big")
        if h == 0xDD:
            return int.from_bytes(buf[s + _KEY_END + 1 : s + _KEY_END + 5], "big")
    return len(decode(buf, s, e)[2]["updates"])


class SendTemplate:
    """A pre-encoded SEND frame for one (to, text), or with `group` for one (group, text):
    only rid and cmid change per message.

    rid is written as msgpack uint32 (0xce + 4 bytes) and cmid as 8 hex digits, so the
    frame length is constant and the length prefix is encoded once.
    """

    __slots__ = ("_head", "_mid", "_tail")

    def __init__(self, to: str | None, text: str, *, group: int | None = None) -> None:
        dest = packb("to") + packb(to) if group is None else packb("group") + packb(group)
        self._mid = b"\x83" + dest + packb("cmid") + b"\xa8"
        self._tail = packb("text") + packb(text)
        body_len = 3 + 4 + len(self._mid) + 8 + len(self._tail)
        self._head = HDR.pack(body_len) + bytes((0x93, T_SEND, 0xCE))

    def frame(self, n: int) -> bytes:
        """The SEND frame with rid n and cmid "%08x" % n (n in 1..2**32-1)."""
        return b"".join((self._head, n.to_bytes(4, "big"), self._mid, b"%08x" % n, self._tail))


class RawConn:
    """One raw connection for the feature benches (wallet.py, channels.py): requests
    answered by rid; pushes of the types in `dropped` skipped by their type byte, unread;
    every other push handed to `on_push`."""

    dropped: frozenset[int] = frozenset({T_UPDATES})

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.rids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[tuple[int, dict[str, Any]]]] = {}
        self.task = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, port: int, client: str) -> Any:
        """A connection to 127.0.0.1:`port` that has said HELLO (an instance of `cls`)."""
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        c = cls(r, w)
        await c.ask(T_HELLO, {"versions": [1], "client": client}, T_WELCOME)
        return c

    def on_push(self, msg_type: int, payload: dict[str, Any]) -> None:
        """A push (rid 0) not dropped: ignored unless a subclass wants it."""

    async def _read(self) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                (n,) = HDR.unpack(await self.reader.readexactly(4))
                body = await self.reader.readexactly(n)
                if body[2] == 0 and body[1] in self.dropped:  # a push, by its fixint bytes
                    continue
                msg_type, rid, payload = decode(body, 0, n)
                if rid == 0:
                    self.on_push(msg_type, payload)
                    continue
                fut = self.waiting.pop(rid, None)
                if fut is not None and not fut.done():
                    fut.set_result((msg_type, payload))
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionError("closed"))

    def send(self, msg_type: int, payload: dict[str, Any]) -> asyncio.Future[Any]:
        rid = next(self.rids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[rid] = fut
        self.writer.write(frame(int(msg_type), rid, payload))
        return fut

    async def ask(
        self, msg_type: int, payload: dict[str, Any], want: int | None = None
    ) -> dict[str, Any]:
        got_type, payload = await self.send(msg_type, payload)
        if want is not None and got_type != want:
            name = MessageType(msg_type).name
            raise RuntimeError(f"{name} answered {got_type} {payload}")
        return payload

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        self.task.cancel()
