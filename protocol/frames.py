"""Framing: a 4-byte big-endian unsigned length, then that many bytes of msgpack body.

The body is always a msgpack array of three elements `[type, rid, payload]` (SPEC.md,
section Framing). The reader checks the announced length against the limit as soon as the
four prefix bytes are in, so an oversized frame is refused before any of its body is kept.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import msgpack

from .codes import ErrorCode
from .errors import FrameTooLarge, ProtocolError
from .limits import DEFAULT_LIMITS, Limits

HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size
MAX_UINT32 = 0xFFFFFFFF

_packb: Callable[[Any], bytes] = msgpack.packb  # msgpack ships no type hints
_VIEW_FROM = 64 * 1024  # bodies from this size are copied out through a memoryview


class FrameReader:
    """Splits a byte stream into frame bodies; keeps at most one partial frame.

    A large body (a media chunk) that has not fully arrived gets a buffer of its exact size
    as soon as its length is known; what arrives is copied into it once and the buffer
    itself is the body returned (a bytearray), instead of collecting the stream and copying
    the body out of it.
    """

    __slots__ = ("_body", "_buf", "_have", "_max", "error")

    def __init__(self, max_frame_size: int = DEFAULT_LIMITS.max_frame_size) -> None:
        self._buf = bytearray()
        self._body: bytearray | None = None  # a large body being filled
        self._have = 0  # bytes of _body filled
        self._max = max_frame_size
        self.error: FrameTooLarge | None = None

    @property
    def limit(self) -> int:
        """The largest body accepted; a prefix is compared with it when it arrives."""
        return self._max

    @limit.setter
    def limit(self, value: int) -> None:
        self._max = value

    def clear(self) -> None:
        """Drop any partial frame (the connection is over) and free its buffer at once."""
        self._buf = bytearray()
        self._body = None
        self._have = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame (a partial frame)."""
        return len(self._buf) + (HEADER_SIZE + self._have if self._body is not None else 0)

    def feed(self, data: bytes) -> list[bytes | bytearray]:
        """Add bytes; return the bodies of every frame now complete, in order.

        A length prefix above the limit stops parsing: the frames before it are returned,
        `error` is set, and every later call returns nothing (the stream cannot resync).
        """
        if self.error is not None:
            return []
        out: list[bytes | bytearray] = []
        body = self._body
        if body is not None:  # go on filling a large body
            have = self._have
            take = min(len(body) - have, len(data))
            body[have : have + take] = data if take == len(data) else memoryview(data)[:take]
            have += take
            if have < len(body):
                self._have = have
                return out
            out.append(body)
            self._body = None
            self._have = 0
            if take == len(data):
                return out
            data = memoryview(data)[take:]  # type: ignore[assignment]
        buf = self._buf
        buf += data
        pos = 0
        end = len(buf)
        limit = self._max
        unpack_from = HEADER.unpack_from
        view_from = _VIEW_FROM
        while end - pos >= HEADER_SIZE:
            (size,) = unpack_from(buf, pos)
            if size > limit:
                del buf[:]
                self.error = FrameTooLarge(size, limit)
                return out
            stop = pos + HEADER_SIZE + size
            if stop > end:
                if size >= view_from:  # its own buffer from now on
                    start = pos + HEADER_SIZE
                    body = bytearray(size)
                    body[: end - start] = memoryview(buf)[start:end]
                    self._body = body
                    self._have = end - start
                    pos = end
                break
            if size < view_from:
                out.append(bytes(buf[pos + HEADER_SIZE : stop]))
            else:  # one copy of a large body, not two (slice, then bytes); the view is
                # gone by the end of the statement, before `del buf[:pos]` below
                out.append(bytes(memoryview(buf)[pos + HEADER_SIZE : stop]))
            pos = stop
        if pos:
            del buf[:pos]
        return out


def encode_frame(body: bytes) -> bytes:
    """Prefix a body with its length."""
    return HEADER.pack(len(body)) + body


def _bin_header(n: int) -> bytes:
    """msgpack's own (smallest) bin header for `n` bytes."""
    if n < 0x100:
        return b"\xc4" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


def frame_head_for_bin(
    msg_type: int, rid: int, payload: dict[str, Any], key: str, size: int
) -> bytes:
    """The frame of `(msg_type, rid, payload | {key: data})` up to where `data`'s `size` raw
    bytes start: length prefix, body and the bin header, byte for byte what msgpack packs
    with `key` last. Writing this head and then `data` as it is sends a media chunk without
    copying it into a body (the chunk is most of the frame)."""
    n = len(payload) + 1
    if n > 15:
        raise ValueError("frame_head_for_bin packs maps of up to 15 keys")
    head = b"".join(
        (
            b"\x93",
            _packb(msg_type),
            _packb(rid),
            bytes((0x80 | n,)),
            *(_packb(k) + _packb(v) for k, v in payload.items()),
            _packb(key),
            _bin_header(size),
        )
    )
    return HEADER.pack(len(head) + size) + head


def pack_body(msg_type: int, rid: int, payload: dict[str, Any]) -> bytes:
    return _packb((msg_type, rid, payload))


def pack_frame(msg_type: int, rid: int, payload: dict[str, Any]) -> bytes:
    body = _packb((msg_type, rid, payload))
    return HEADER.pack(len(body)) + body


def frame_from_raw_payload(msg_type: int, rid: int, payload: bytes) -> bytes:
    """Build a frame around an already-encoded payload map (one encode per fan-out)."""
    body = b"\x93" + _packb(msg_type) + _packb(rid) + payload
    return HEADER.pack(len(body)) + body


def peek_header(body: bytes | bytearray) -> tuple[int, int] | None:
    """`(type, rid)` read from the start of a body without decoding the payload, or None.

    Succeeds only when the body starts like a valid one: a 3-element array (0x93) whose first
    two elements are msgpack integers in range (type 1..65535, rid 0..2**32-1). The
    payload after them is not looked at, so a frame can be refused by its type cheaply.
    """
    n = len(body)
    if n < 3 or body[0] != 0x93:
        return None
    pos = 1
    out: list[int] = []
    for _ in range(2):
        if pos >= n:
            return None
        b = body[pos]
        if b <= 0x7F:  # positive fixint
            value, pos = b, pos + 1
        elif b in _INT_SIZES:
            size = _INT_SIZES[b]
            if pos + 1 + size > n:
                return None
            value = int.from_bytes(body[pos + 1 : pos + 1 + size], "big", signed=b >= 0xD0)
            pos += 1 + size
        else:
            return None
        out.append(value)
    msg_type, rid = out
    if not 0 < msg_type <= 0xFFFF or not 0 <= rid <= MAX_UINT32:
        return None
    return msg_type, rid


# msgpack uint 8/16/32/64 and int 8/16/32/64
_INT_SIZES = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}


def unpack_body(
    body: bytes | bytearray, limits: Limits = DEFAULT_LIMITS
) -> tuple[int, int, dict[str, Any]]:
    """Decode and shape-check a body. Any failure is a ProtocolError, never another exception."""
    try:
        obj = msgpack.unpackb(
            body,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=limits.max_frame_size,
            max_bin_len=limits.max_frame_size,
            max_array_len=limits.max_array_len,
            max_map_len=limits.max_map_len,
            max_ext_len=0,
            ext_hook=_refuse_ext,
        )
    except Exception as exc:  # msgpack raises ValueError, FormatError, StackError, ...
        raise ProtocolError(ErrorCode.MALFORMED_FRAME, "body is not valid msgpack") from exc
    # strict_map_key lets bin keys through (as bytes) and msgpack has no option to refuse
    # them. A bin starts with byte 0xc4, 0xc5 or 0xc6: a body holding none of them has no
    # bin anywhere, and only such rare bodies pay for the walk (SPEC.md 1.3, 2.3).
    # (An int operand makes `in` a plain memchr: 3x25 ns on a SEND, where a bytes operand
    # costs ten times more and the walk as much as the decoding itself.)
    if (0xC4 in body or 0xC5 in body or 0xC6 in body) and _has_bin_key(obj):
        raise ProtocolError(ErrorCode.MALFORMED_FRAME, "map keys must be str")
    if not isinstance(obj, list) or len(obj) != 3:
        raise ProtocolError(ErrorCode.MALFORMED_FRAME, "body must be an array of 3 elements")
    msg_type, rid, payload = obj
    if type(rid) is not int or not 0 <= rid <= MAX_UINT32:
        raise ProtocolError(ErrorCode.MALFORMED_FRAME, "rid must be an integer 0..2**32-1")
    if type(msg_type) is not int or not 0 < msg_type <= 0xFFFF:
        raise ProtocolError(ErrorCode.MALFORMED_FRAME, "type must be an integer 1..65535", rid)
    if not isinstance(payload, dict):
        raise ProtocolError(ErrorCode.MALFORMED_FRAME, "payload must be a map", rid)
    return msg_type, rid, payload


def _has_bin_key(obj: Any) -> bool:
    """Whether a map anywhere in the decoded body has a key that is not a str.

    Not recursive: a body may nest up to msgpack's own depth limit, deeper than Python's
    recursion limit.
    """
    todo = [obj]
    extend = todo.extend
    for o in todo:  # a breadth-first walk: the loop also visits what `extend` appends
        t = type(o)
        if t is dict:
            for k in o:
                if type(k) is not str:
                    return True
            extend(o.values())
        elif t is list:
            extend(o)
    return False


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError("extension types are not allowed")
