"""The core messages: session, accounts and 1:1 messaging (SPEC.md sections 5-12).

One frozen, slotted dataclass per message type; its fields declare the wire form and
codec.message compiles the decoder and encoder (see codec.py). Every message carries `rid`,
the request id of its frame: a client request uses a fresh rid >= 1, the answer repeats it,
and server pushes and ACK use 0.

Also here: the fan-out encoders that build UPDATES and HISTORY_PAGE frames from messages
encoded once for every reader (encode_updates_frame, encode_history_frame).
"""

from __future__ import annotations

from typing import Any

from .base import (  # names this module always exported stay importable from here
    CLIENT_TYPES,
    DEVICE_RE,  # noqa: F401
    MAX_PASSWORD_LEN,  # noqa: F401
    MIN_PASSWORD_LEN,  # noqa: F401
    ONE_WAY_CLIENT_TYPES,
    SERVER_TYPES,
    USERNAME_RE,  # noqa: F401
    Message,
    MessageType,
    UpdateKind,  # noqa: F401
    validate_device,
    validate_username,
)
from .codec import Limit, NotBoth, OneOf, Record, bad, message, packb, record, wire
from .frames import frame_from_raw_payload
from .records import ChatMessage, SendMedia, Update, encode_message_map, encode_update

__all__ = [
    "CLIENT_TYPES",
    "CORE_CLASSES",
    "ONE_WAY_CLIENT_TYPES",
    "SERVER_TYPES",
    "Ack",
    "Auth",
    "Authenticated",
    "ChatMessage",
    "Close",
    "DeviceInfo",
    "DeviceList",
    "DeviceRevoked",
    "Error",
    "Hello",
    "History",
    "HistoryPage",
    "ListDevices",
    "LoggedOut",
    "Login",
    "Logout",
    "Ping",
    "Pong",
    "Register",
    "Registered",
    "RevokeDevice",
    "Send",
    "SendMedia",
    "Sent",
    "Sync",
    "Update",
    "Updates",
    "Welcome",
    "encode_history_frame",
    "encode_message_map",
    "encode_update",
    "encode_updates_frame",
    "validate_device",
    "validate_username",
]

M = MessageType
NO_CAP = None  # an array bounded only by the decoder's max_array_len

# --------------------------------------------------------------------------- session


@message(M.HELLO)
class Hello(Message):
    versions: tuple[int, ...] = wire(
        lo=1, hi=0xFFFF, min_items=1, max_items=16, error="must be 1..16 integers in 1..65535"
    )
    client: str = wire(default="", max=128)


@message(M.WELCOME)
class Welcome(Message):
    version: int = wire(hi=0xFFFF)
    server: str = wire(max=128)
    time: int  # server clock, milliseconds since the Unix epoch
    heartbeat: float  # seconds
    limits: dict[str, Any] = wire(default_factory=dict)


@message(M.PING)
class Ping(Message):
    pass


@message(M.PONG)
class Pong(Message):
    time: int


@message(M.CLOSE)
class Close(Message):
    """Either side's last frame. `code` is a CloseCode number."""

    code: int = wire(hi=0xFFFF)
    reason: str = wire(default="", max=256)


@message(M.ERROR)
class Error(Message):
    """The answer to a request that failed. `code` is an ErrorCode number."""

    code: int = wire(hi=0xFFFF)
    message: str = wire(default="", max=1024)
    retry_after: float | None = None  # seconds, for THROTTLED and RATE_LIMITED
    data: dict[str, Any] = wire(default_factory=dict, omit="empty")


# --------------------------------------------------------------------------- accounts


@message(M.REGISTER)
class Register(Message):
    username: str
    password: str = wire(max=4096)
    invite: str | None = wire(default=None, max=32)  # an invitation code (SPEC 25.6)


@message(M.REGISTERED)
class Registered(Message):
    user: str


@message(M.LOGIN)
class Login(Message):
    username: str
    password: str = wire(max=4096)
    device: str


@message(M.AUTH)
class Auth(Message):
    token: str


@message(M.AUTHENTICATED)
class Authenticated(Message):
    """Answer to LOGIN (with a new token) or AUTH (without one)."""

    user: str
    device: str
    head: int  # the newest sequence number in the user's update log
    acked: int  # the position this device last acknowledged
    token: str | None = wire(default=None, max=None, nil=True)


@message(M.LOGOUT)
class Logout(Message):
    pass


@message(M.LOGGED_OUT)
class LoggedOut(Message):
    pass


@message(M.LIST_DEVICES)
class ListDevices(Message):
    pass


@record(not_map=("devices", "must hold maps"))
class DeviceInfo(Record):
    device: str
    created: int  # ms since epoch
    last_seen: int  # ms since epoch
    online: bool = wire(absent=False)
    acked: int


@message(M.DEVICE_LIST)
class DeviceList(Message):
    devices: tuple[DeviceInfo, ...] = wire(max_items=NO_CAP)


@message(M.REVOKE_DEVICE)
class RevokeDevice(Message):
    device: str


@message(M.DEVICE_REVOKED)
class DeviceRevoked(Message):
    device: str


# --------------------------------------------------------------------------- messaging


def _client_cmid(cmid: str, rid: int) -> None:
    if not cmid:
        raise bad("cmid", "must not be empty", rid)
    if cmid[0] == "#":
        raise bad("cmid", "must not start with '#' (reserved for the server)", rid)


@message(
    M.SEND,
    wire_order=("to", "group", "cmid", "text", "meta", "media"),
    rules=(OneOf("to", "group"),),
)
class Send(Message):
    to: str = wire(absent="", unless="group")  # a username; "" when sending to a group
    cmid: str = wire(max=Limit("max_cmid_len"), check=_client_cmid)
    text: str = wire(max=Limit("max_frame_size"))
    meta: dict[str, Any] = wire(default_factory=dict, omit="empty")
    group: int | None = None  # the group to send to, instead of `to`
    media: SendMedia | None = None  # a media message: the blob and what the sender adds


@message(M.SENT)
class Sent(Message):
    """The acknowledgement of SEND: sent only after the message is durable."""

    id: int
    conv: int
    pos: int = wire(lo=1)
    ts: int
    seq: int = wire(lo=1)  # the message's sequence number in the sender's own update log
    cmid: str
    duplicate: bool = False  # true when this answers a retry of an already-stored cmid


@message(M.SYNC)
class Sync(Message):
    since: int
    limit: int | None = wire(default=None, lo=1, hi=Limit("max_sync_page"))


@message(M.UPDATES)
class Updates(Message):
    """A page of a user's update log (answer to SYNC), or a live push (rid 0)."""

    updates: tuple[Update, ...] = wire(max_items=NO_CAP)
    head: int  # the newest seq in the user's log when this was sent
    more: bool = False  # SYNC answers only: further pages follow, ask again
    resync: bool = wire(default=False, omit="empty")  # the cursor was older than the log


@message(M.ACK)
class Ack(Message):
    """A device's position: it has handled every update up to `seq`. Sent with rid 0."""

    seq: int


@message(
    M.HISTORY,
    wire_order=("with_user", "group", "before", "after", "limit"),
    rules=(NotBoth("before", "after"), OneOf("with", "group")),
)
class History(Message):
    """Page a conversation (the direct one `with` a user, or a `group`) by position:
    `before` pages backwards, `after` forwards; with neither, the newest page."""

    with_user: str = wire("with", absent="", unless="group")  # "" for a group
    before: int | None = None
    after: int | None = None
    limit: int | None = wire(default=None, lo=1, hi=Limit("max_history_page"))
    group: int | None = None


@message(M.HISTORY_PAGE)
class HistoryPage(Message):
    messages: tuple[ChatMessage, ...] = wire(max_items=NO_CAP)  # in ascending position
    more: bool = False  # further messages exist in the paging direction


# --------------------------------------------------------------------------- fan-out encoders


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


_K_UPDATES = packb("updates")
_K_HEAD = packb("head")
_K_MORE = packb("more")
_K_RESYNC = packb("resync")
_K_MESSAGES = packb("messages")


def encode_updates_frame(
    rid: int, updates: list[bytes], head: int, *, more: bool = False, resync: bool = False
) -> bytes:
    """An UPDATES frame from pre-encoded updates (see encode_update); same bytes as
    Updates(...).encode() would produce for the same content."""
    parts = [
        b"\x84" if resync else b"\x83",
        _K_UPDATES,
        _array_header(len(updates)),
        *updates,
        _K_HEAD,
        packb(head),
        _K_MORE,
        b"\xc3" if more else b"\xc2",
    ]
    if resync:
        parts += [_K_RESYNC, b"\xc3"]
    return frame_from_raw_payload(M.UPDATES, rid, b"".join(parts))


def encode_history_frame(rid: int, messages: list[bytes], more: bool) -> bytes:
    """A HISTORY_PAGE frame from stored, pre-encoded messages."""
    payload = b"".join(
        (
            b"\x82",
            _K_MESSAGES,
            _array_header(len(messages)),
            *messages,
            _K_MORE,
            b"\xc3" if more else b"\xc2",
        )
    )
    return frame_from_raw_payload(M.HISTORY_PAGE, rid, payload)


CORE_CLASSES: tuple[type[Message], ...] = (
    Hello,
    Welcome,
    Ping,
    Pong,
    Close,
    Error,
    Register,
    Registered,
    Login,
    Auth,
    Authenticated,
    Logout,
    LoggedOut,
    ListDevices,
    DeviceList,
    RevokeDevice,
    DeviceRevoked,
    Send,
    Sent,
    Sync,
    Updates,
    Ack,
    History,
    HistoryPage,
)
