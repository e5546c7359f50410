"""Frames over raw bytes, built and parsed here from msgpack alone (never liaotian.protocol),
so a defect of the shared codec cannot hide itself in the checks.

A frame is a 4-byte big-endian body length followed by the msgpack body `[type, rid, payload]`
(SPEC section 2). `Conn` is a raw asyncio connection: it sends bytes or frames, reads frames
with a timeout, matches answers by rid and keeps every other frame (pushes) for later.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import msgpack

_packb = cast(Callable[..., bytes], msgpack.packb)  # msgpack ships no type hints

# Message types (SPEC section 6).
HELLO, WELCOME, PING, PONG, CLOSE, ERROR, OK = 1, 2, 3, 4, 5, 6, 7
REGISTER, REGISTERED, LOGIN, AUTH, AUTHENTICATED = 10, 11, 12, 13, 14
LOGOUT, LOGGED_OUT, LIST_DEVICES, DEVICE_LIST = 15, 16, 17, 18
REVOKE_DEVICE, DEVICE_REVOKED = 19, 20
SEND, SENT, SYNC, UPDATES, ACK, HISTORY, HISTORY_PAGE = 30, 31, 32, 33, 34, 35, 36
GROUP_CREATE, GROUP_INFO, GET_GROUP, GROUP_ADD, GROUP_REMOVE, GROUP_LEAVE = 40, 41, 42, 43, 44, 45
GROUP_UPDATE, GROUP_SET_ROLE, GROUP_TRANSFER, LIST_GROUPS, GROUP_LIST = 46, 47, 48, 49, 50
READ, GET_RECEIPTS, RECEIPTS, LIST_CONVERSATIONS, CONVERSATION_LIST = 55, 56, 57, 58, 59
TYPING, TYPING_NOTICE, PRESENCE, GET_PRESENCE, PRESENCE_LIST = 60, 61, 62, 63, 64
CONTACT_REQUEST, CONTACT_ACCEPT, CONTACT_DECLINE, CONTACT_CANCEL = 70, 71, 72, 73
CONTACT_REMOVE, LIST_CONTACTS, CONTACT_LIST, BLOCK, UNBLOCK = 74, 75, 76, 77, 78
SET_PROFILE, GET_PROFILE, PROFILE, SET_PRIVACY, GET_PRIVACY, PRIVACY = 80, 81, 82, 83, 84, 85
GET_WALLET, WALLET, LIST_TRANSFERS, TRANSFER_LIST, PAY, PAID = 150, 151, 152, 153, 154, 155
RED_PACKET_SEND, RED_PACKET_SENT, RED_PACKET_CLAIM, RED_PACKET_CLAIMED = 156, 157, 158, 159
GET_RED_PACKET, RED_PACKET, CHECK_IN, CHECKED_IN = 160, 161, 162, 163
LIST_TASKS, TASK_LIST = 164, 165
LIST_ITEMS, ITEM_LIST, ITEM_GIFT, ITEM_REDEEM, ITEM_DONE = 166, 167, 168, 169, 170
BOT_CREATE, BOT_INFO, LIST_BOTS, BOT_LIST, BOT_TOKEN, BOT_DELETE = 180, 181, 182, 183, 184, 185
SET_COMMANDS, GET_COMMANDS, COMMAND_LIST, PRESS, PRESSED = 186, 187, 188, 189, 190
ANSWER_CALLBACK, BOT_EDIT, GROUP_BOTS, PENDING_CALLBACKS, CALLBACK_LIST = 191, 192, 193, 194, 195
UPLOAD_BEGIN, UPLOAD_STATUS, UPLOAD_CHUNK, UPLOAD_FINISH = 90, 91, 92, 93
UPLOAD_DONE, UPLOAD_CANCEL, DOWNLOAD, BLOB_DATA = 94, 95, 96, 97
CHANNEL_CREATE, CHANNEL_INFO, GET_CHANNEL, CHANNEL_JOIN, CHANNEL_LEAVE = 110, 111, 112, 113, 114
CHANNEL_UPDATE, CHANNEL_SET_ROLE, CHANNEL_BAN, CHANNEL_POST, CHANNEL_POSTED = (
    115,
    116,
    117,
    118,
    119,
)
CHANNEL_COMMENT, CHANNEL_LIKE, CHANNEL_LIKES, CHANNEL_PIN, CHANNEL_DELETE = 120, 121, 122, 123, 124
CHANNEL_READ, CHANNEL_FETCH, CHANNEL_PAGE, CHANNEL_SEARCH, CHANNEL_HITS = 125, 126, 127, 128, 129
CHANNEL_NEWS, CHANNEL_TRANSFER, CHANNEL_MEMBERS, CHANNEL_MEMBER_LIST = 130, 131, 132, 133
CHANNEL_FIND, CHANNEL_FOUND = 134, 135

NAMES: dict[int, str] = {
    v: k for k, v in globals().items() if k.isupper() and isinstance(v, int) and k != "NAMES"
}

# Error codes (SPEC section 12) and close codes (section 13) the checks name.
E_MALFORMED, E_UNKNOWN_TYPE, E_INVALID_FIELD, E_BAD_STATE = 1001, 1002, 1003, 1004
E_UNSUPPORTED_VERSION, E_DUPLICATE_RID = 1005, 1007
E_NOT_AUTHENTICATED, E_BAD_CREDENTIALS, E_USERNAME_TAKEN = 2001, 2002, 2003
E_INVALID_USERNAME, E_WEAK_PASSWORD, E_INVALID_TOKEN, E_THROTTLED = 2004, 2005, 2006, 2007
E_ALREADY_AUTHENTICATED, E_INVALID_DEVICE, E_UNKNOWN_DEVICE = 2008, 2009, 2010
E_UNKNOWN_USER, E_TOO_LARGE, E_INVALID_CURSOR, E_NOT_ALLOWED = 3001, 3002, 3003, 3004
E_NOT_MEMBER, E_FORBIDDEN, E_CONFLICT, E_RATE_LIMITED = 3005, 3007, 3008, 4001
E_INSUFFICIENT_FUNDS, E_IDEMPOTENCY_MISMATCH, E_PACKET_EMPTY = 3201, 3202, 3203
E_TASK_DONE = 3206
U_WALLET = 4  # the update kind of wallet changes (SPEC 8.1)
E_LIMIT_REACHED = 3009
E_GROUP_FULL, E_BANNED, E_INVALID_INVITE, E_NOT_FOUND, E_SLOW_MODE = 3006, 3050, 3051, 3052, 3053
U_CHANNEL = 10  # the update kind of channel membership changes (SPEC 8.1, 24.1)
E_UNKNOWN_BOT, E_BOTS_ONLY, E_UNKNOWN_CALLBACK, E_NO_SUCH_BUTTON = 3501, 3502, 3503, 3504
U_CALLBACK, U_CALLBACK_ANSWER, U_MESSAGE_EDITED = 23, 24, 25  # the bots' kinds (SPEC 26.3)
E_UNKNOWN_UPLOAD, E_BLOB_TOO_LARGE, E_BAD_CHUNK_SIZE, E_CHUNK_OUT_OF_RANGE = 3101, 3102, 3103, 3104
E_CHUNK_MISALIGNED, E_CHUNK_SIZE_MISMATCH, E_TOO_MANY_BYTES = 3105, 3106, 3107
E_UPLOAD_INCOMPLETE, E_HASH_MISMATCH, E_UNKNOWN_BLOB, E_BAD_RANGE = 3108, 3109, 3111, 3112
E_NOT_AN_IMAGE, E_NOT_AUDIO = 3113, 3115
C_NORMAL, C_PROTOCOL_ERROR, C_FRAME_TOO_LARGE = 1000, 1002, 1009
C_AUTH_TIMEOUT, C_IDLE_TIMEOUT, C_LOGGED_OUT, C_UNSUPPORTED_VERSION = 4000, 4001, 4002, 4004

MAX_READ = 64 * 1024 * 1024  # the runner's own cap on a server frame


def pack(obj: Any) -> bytes:
    """msgpack of a value, str as str and bytes as bin, shortest encodings."""
    return _packb(obj, use_bin_type=True)


def frame_bytes(body: bytes) -> bytes:
    """Length prefix + body."""
    return struct.pack(">I", len(body)) + body


def build(msg_type: int, rid: int, payload: Any) -> bytes:
    """A complete frame for `[type, rid, payload]`."""
    return frame_bytes(pack([msg_type, rid, payload]))


@dataclass
class Frame:
    """One frame from the server, decoded."""

    type: int
    rid: int
    payload: dict[str, Any]
    raw: bytes = b""

    @property
    def name(self) -> str:
        return NAMES.get(self.type, str(self.type))

    @property
    def code(self) -> int | None:
        """The code of an ERROR or CLOSE, else None."""
        if self.type in (ERROR, CLOSE):
            code = self.payload.get("code")
            return code if isinstance(code, int) else None
        return None

    def __str__(self) -> str:
        text = repr(self.payload)
        if len(text) > 160:
            text = text[:157] + "..."
        return f"{self.name} rid={self.rid} {text}"


class Violation(Exception):
    """The server sent bytes that are not a valid frame (SPEC section 2)."""


class Ended(Exception):
    """The connection ended (EOF or reset) while a frame was awaited."""


def parse_body(body: bytes) -> Frame:
    """Decode a server frame body strictly: one msgpack value, [int, int, map with str keys]."""
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True, ext_hook=_no_ext)
    except Exception as exc:
        raise Violation(f"server frame body is not valid msgpack: {exc!r}") from exc
    if not (isinstance(obj, list) and len(obj) == 3):
        raise Violation(f"server frame body is not a 3-element array: {obj!r:.80}")
    msg_type, rid, payload = obj
    if type(msg_type) is not int or not 1 <= msg_type <= 65535:
        raise Violation(f"server frame type {msg_type!r} out of range")
    if type(rid) is not int or not 0 <= rid <= 2**32 - 1:
        raise Violation(f"server frame rid {rid!r} out of range")
    if not isinstance(payload, dict) or not all(isinstance(k, str) for k in payload):
        raise Violation(f"server frame payload is not a map with str keys: {payload!r:.80}")
    return Frame(msg_type, rid, cast(dict[str, Any], payload), body)


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"ext type {code} in a server frame")


@dataclass
class Target:
    """Where a server listens, and how to reach it."""

    host: str
    port: int
    ssl: ssl.SSLContext | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class Conn:
    """A raw connection to a server. Every wait is bounded by `timeout` seconds."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    timeout: float
    stash: list[Frame] = field(default_factory=list)
    next_rid: int = 1
    ended: bool = False

    @classmethod
    async def open(cls, target: Target, timeout: float) -> Conn:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port, ssl=target.ssl, limit=MAX_READ),
            timeout,
        )
        return cls(reader, writer, timeout)

    def rid(self) -> int:
        rid = self.next_rid
        self.next_rid = rid + 1 if rid < 2**32 - 1 else 1
        return rid

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def send(self, msg_type: int, rid: int, payload: Any) -> None:
        await self.send_raw(build(msg_type, rid, payload))

    async def read_frame(self, timeout: float | None = None) -> Frame:
        """The next frame off the socket (not the stash). Raises Ended, TimeoutError."""
        wait = self.timeout if timeout is None else timeout
        try:
            head = await asyncio.wait_for(self.reader.readexactly(4), wait)
            (size,) = struct.unpack(">I", head)
            if size > MAX_READ:
                raise Violation(f"server frame of {size} bytes")
            body = await asyncio.wait_for(self.reader.readexactly(size), wait)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.ended = True
            raise Ended("connection ended") from exc
        return parse_body(body)

    async def next(
        self, pred: Callable[[Frame], bool], what: str, timeout: float | None = None
    ) -> Frame:
        """The first frame (stashed or new) for which pred is true; others are stashed."""
        for i, f in enumerate(self.stash):
            if pred(f):
                del self.stash[i]
                return f
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - loop.time()
            try:
                f = await self.read_frame(max(left, 0.001))
            except TimeoutError:
                raise TimeoutError(
                    f"timed out waiting for {what}; got meanwhile: "
                    f"{[str(x) for x in self.stash][-3:]}"
                ) from None
            except Ended:
                raise Ended(
                    f"connection ended while waiting for {what}; got meanwhile: "
                    f"{[str(x) for x in self.stash][-3:]}"
                ) from None
            if pred(f):
                return f
            self.stash.append(f)

    async def answer(self, rid: int, timeout: float | None = None) -> Frame:
        return await self.next(lambda f: f.rid == rid, f"the answer to rid {rid}", timeout)

    async def request(self, msg_type: int, payload: Any, rid: int | None = None) -> Frame:
        """Send a request with a fresh rid (or the one given) and return its answer."""
        rid = self.rid() if rid is None else rid
        await self.send(msg_type, rid, payload)
        return await self.answer(rid)

    async def barrier(self) -> list[Frame]:
        """PING and wait for its PONG; return (and unstash) every frame that came before."""
        rid = self.rid()
        await self.send(PING, rid, {})
        pong = await self.answer(rid)
        if pong.type != PONG:
            raise Violation(f"PING answered with {pong}")
        got, self.stash = self.stash, []
        return got

    async def close_frame(self, timeout: float | None = None) -> Frame:
        """Wait for the server's CLOSE (frames before it are stashed)."""
        return await self.next(lambda f: f.type == CLOSE, "CLOSE", timeout)

    async def wait_eof(self, timeout: float | None = None) -> bool:
        """True when the server ends the connection within the timeout (bytes are dropped)."""
        wait = self.timeout if timeout is None else timeout
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), wait)
                if not data:
                    self.ended = True
                    return True
        except TimeoutError:
            return False
        except ConnectionError:
            self.ended = True
            return True

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


# people and merchants nearby (SPEC 29), the shop (SPEC 30)
NEARBY_SHARE, NEARBY_SHARED, NEARBY_STOP, NEARBY_QUERY, NEARBY_LIST = 200, 201, 202, 203, 204
NEARBY_HELLO, MERCHANT_SET, GET_MERCHANT, MERCHANT = 205, 206, 207, 208
PRODUCT_ADD, PRODUCT_INFO, PRODUCT_STOCK, LIST_PRODUCTS, PRODUCT_LIST = 210, 211, 212, 213, 214
GET_PRODUCT, PRODUCT_CARD, ORDER_PLACE, ORDER_INFO, ORDER_STEP = 215, 216, 217, 218, 219
LIST_ORDERS, ORDER_LIST = 220, 221
NAMES.update(
    {
        v: k
        for k, v in list(globals().items())
        if k.isupper() and isinstance(v, int) and 200 <= v < 240
    }
)
E_IMPLAUSIBLE_MOVE, E_NOT_MERCHANT, E_NOT_NEARBY = 3301, 3302, 3303
E_UNKNOWN_PRODUCT, E_OUT_OF_STOCK, E_UNKNOWN_ORDER = 3310, 3311, 3312
