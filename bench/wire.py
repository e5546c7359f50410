"""Just enough of the liaotian framing for the load generator and the relay.

A frame is a 4-byte big-endian length, then a msgpack body `[type, rid, payload]`. Because
the body always starts with 0x93 (fixarray of 3) and every message type is a positive
fixint (< 128), the type of a frame is simply `body[1]`: the hot paths read that byte and
decode nothing else unless they need to.
"""

from __future__ import annotations

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
