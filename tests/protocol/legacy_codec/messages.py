"""One frozen dataclass per message type, and its mapping to and from the msgpack payload.

Every message carries `rid`, the request id of its frame: a client request uses a fresh
rid >= 1, the answer repeats it, and server pushes and ACK use 0. `from_payload` validates
the shape of a decoded payload and raises ProtocolError(INVALID_FIELD) on any mismatch;
unknown payload keys are ignored so later minor versions can add optional fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
from liaotian.protocol.codes import ErrorCode
from liaotian.protocol.errors import ProtocolError
from liaotian.protocol.frames import frame_from_raw_payload
from liaotian.protocol.limits import DEFAULT_LIMITS, Limits

from .base import (  # the names messages.py always exported stay importable from here
    DEVICE_RE,
    MAX_INT64,
    MAX_PASSWORD_LEN,  # noqa: F401
    MIN_PASSWORD_LEN,  # noqa: F401
    USERNAME_RE,
    Message,
    MessageType,
    UpdateKind,
    _array_header,
    _bad,
    _bool,
    _empty,
    _int,
    _list,
    _map,
    _num,
    _str,
)

_packb: Callable[[Any], bytes] = msgpack.packb  # msgpack ships no type hints

# --------------------------------------------------------------------------- session


@dataclass(frozen=True, slots=True)
class Hello(Message):
    TYPE = MessageType.HELLO
    FROM_CLIENT = True
    versions: tuple[int, ...]
    client: str = ""

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Hello:
        versions = _list(p, "versions", rid)
        if (
            not versions
            or len(versions) > 16
            or any(type(v) is not int or not 0 < v <= 0xFFFF for v in versions)
        ):
            raise _bad("versions", "must be 1..16 integers in 1..65535", rid)
        return cls(
            rid=rid, versions=tuple(versions), client=_str(p, "client", rid, 128, required=False)
        )

    def to_payload(self) -> dict[str, Any]:
        return {"versions": list(self.versions), "client": self.client}


@dataclass(frozen=True, slots=True)
class Welcome(Message):
    TYPE = MessageType.WELCOME
    FROM_CLIENT = False
    version: int
    server: str
    time: int  # server clock, milliseconds since the Unix epoch
    heartbeat: float  # seconds
    limits: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Welcome:
        return cls(
            rid=rid,
            version=_int(p, "version", rid, hi=0xFFFF),
            server=_str(p, "server", rid, 128),
            time=_int(p, "time", rid),
            heartbeat=_num(p, "heartbeat", rid) or 0.0,
            limits=_map(p, "limits", rid),
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "server": self.server,
            "time": self.time,
            "heartbeat": self.heartbeat,
            "limits": self.limits,
        }


@_empty
@dataclass(frozen=True, slots=True)
class Ping(Message):
    TYPE = MessageType.PING
    FROM_CLIENT = True


@dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE = MessageType.PONG
    FROM_CLIENT = False
    time: int

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Pong:
        return cls(rid=rid, time=_int(p, "time", rid))

    def to_payload(self) -> dict[str, Any]:
        return {"time": self.time}


@dataclass(frozen=True, slots=True)
class Close(Message):
    """Either side's last frame. `code` is a CloseCode number."""

    TYPE = MessageType.CLOSE
    FROM_CLIENT = True  # also sent by the server; see BOTH_SIDES
    code: int
    reason: str = ""

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Close:
        return cls(
            rid=rid,
            code=_int(p, "code", rid, hi=0xFFFF),
            reason=_str(p, "reason", rid, 256, required=False),
        )

    def to_payload(self) -> dict[str, Any]:
        return {"code": self.code, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Error(Message):
    """The answer to a request that failed. `code` is an ErrorCode number."""

    TYPE = MessageType.ERROR
    FROM_CLIENT = False
    code: int
    message: str = ""
    retry_after: float | None = None  # seconds, for THROTTLED and RATE_LIMITED
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Error:
        return cls(
            rid=rid,
            code=_int(p, "code", rid, hi=0xFFFF),
            message=_str(p, "message", rid, 1024, required=False),
            retry_after=_num(p, "retry_after", rid, required=False),
            data=_map(p, "data", rid),
        )

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.data:
            out["data"] = self.data
        return out


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True, slots=True)
class Register(Message):
    TYPE = MessageType.REGISTER
    FROM_CLIENT = True
    username: str
    password: str

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Register:
        return cls(
            rid=rid, username=_str(p, "username", rid, 256), password=_str(p, "password", rid, 4096)
        )

    def to_payload(self) -> dict[str, Any]:
        return {"username": self.username, "password": self.password}


@dataclass(frozen=True, slots=True)
class Registered(Message):
    TYPE = MessageType.REGISTERED
    FROM_CLIENT = False
    user: str

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Registered:
        return cls(rid=rid, user=_str(p, "user", rid, 256))

    def to_payload(self) -> dict[str, Any]:
        return {"user": self.user}


@dataclass(frozen=True, slots=True)
class Login(Message):
    TYPE = MessageType.LOGIN
    FROM_CLIENT = True
    username: str
    password: str
    device: str

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Login:
        return cls(
            rid=rid,
            username=_str(p, "username", rid, 256),
            password=_str(p, "password", rid, 4096),
            device=_str(p, "device", rid, 256),
        )

    def to_payload(self) -> dict[str, Any]:
        return {"username": self.username, "password": self.password, "device": self.device}


@dataclass(frozen=True, slots=True)
class Auth(Message):
    TYPE = MessageType.AUTH
    FROM_CLIENT = True
    token: str

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Auth:
        return cls(rid=rid, token=_str(p, "token", rid, 256))

    def to_payload(self) -> dict[str, Any]:
        return {"token": self.token}


@dataclass(frozen=True, slots=True)
class Authenticated(Message):
    """Answer to LOGIN (with a new token) or AUTH (without one)."""

    TYPE = MessageType.AUTHENTICATED
    FROM_CLIENT = False
    user: str
    device: str
    head: int  # the newest sequence number in the user's update log
    acked: int  # the position this device last acknowledged
    token: str | None = None

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Authenticated:
        token = p.get("token")
        if token is not None and type(token) is not str:
            raise _bad("token", "must be a string", rid)
        return cls(
            rid=rid,
            user=_str(p, "user", rid, 256),
            device=_str(p, "device", rid, 256),
            head=_int(p, "head", rid),
            acked=_int(p, "acked", rid),
            token=token,
        )

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "user": self.user,
            "device": self.device,
            "head": self.head,
            "acked": self.acked,
        }
        if self.token is not None:
            out["token"] = self.token
        return out


@_empty
@dataclass(frozen=True, slots=True)
class Logout(Message):
    TYPE = MessageType.LOGOUT
    FROM_CLIENT = True


@_empty
@dataclass(frozen=True, slots=True)
class LoggedOut(Message):
    TYPE = MessageType.LOGGED_OUT
    FROM_CLIENT = False


@_empty
@dataclass(frozen=True, slots=True)
class ListDevices(Message):
    TYPE = MessageType.LIST_DEVICES
    FROM_CLIENT = True


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    device: str
    created: int  # ms since epoch
    last_seen: int  # ms since epoch
    online: bool
    acked: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "created": self.created,
            "last_seen": self.last_seen,
            "online": self.online,
            "acked": self.acked,
        }

    @classmethod
    def from_wire(cls, v: Any, rid: int) -> DeviceInfo:
        if not isinstance(v, dict):
            raise _bad("devices", "must hold maps", rid)
        return cls(
            device=_str(v, "device", rid, 256),
            created=_int(v, "created", rid),
            last_seen=_int(v, "last_seen", rid),
            online=_bool(v, "online", rid),
            acked=_int(v, "acked", rid),
        )


@dataclass(frozen=True, slots=True)
class DeviceList(Message):
    TYPE = MessageType.DEVICE_LIST
    FROM_CLIENT = False
    devices: tuple[DeviceInfo, ...]

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> DeviceList:
        return cls(
            rid=rid, devices=tuple(DeviceInfo.from_wire(d, rid) for d in _list(p, "devices", rid))
        )

    def to_payload(self) -> dict[str, Any]:
        return {"devices": [d.to_wire() for d in self.devices]}


@dataclass(frozen=True, slots=True)
class RevokeDevice(Message):
    TYPE = MessageType.REVOKE_DEVICE
    FROM_CLIENT = True
    device: str

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> RevokeDevice:
        return cls(rid=rid, device=_str(p, "device", rid, 256))

    def to_payload(self) -> dict[str, Any]:
        return {"device": self.device}


@dataclass(frozen=True, slots=True)
class DeviceRevoked(Message):
    TYPE = MessageType.DEVICE_REVOKED
    FROM_CLIENT = False
    device: str

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> DeviceRevoked:
        return cls(rid=rid, device=_str(p, "device", rid, 256))

    def to_payload(self) -> dict[str, Any]:
        return {"device": self.device}


# --------------------------------------------------------------------------- messaging


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A stored message as every reader sees it (in UPDATES and HISTORY_PAGE)."""

    id: int  # server-assigned, unique
    conv: int  # conversation id
    pos: int  # position in the conversation: 1, 2, 3, ...
    sender: str  # wire key "from"
    to: str  # recipient username (direct conversations; "" in a group)
    ts: int  # server time of commit, ms since epoch
    cmid: str  # the sender's client message id
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    group: int | None = None  # the group (group conversations; then conv == group)
    event: dict[str, Any] | None = None  # group timeline events (SPEC.md 17.4)

    def to_wire(self) -> dict[str, Any]:
        return _message_dict(
            self.id,
            self.conv,
            self.pos,
            self.sender,
            self.to,
            self.ts,
            self.cmid,
            self.text,
            self.meta,
            self.group,
            self.event,
        )

    def encode(self) -> bytes:
        """The msgpack map, encoded once and reused for every reader."""
        return _packb(self.to_wire())

    @classmethod
    def from_wire(cls, v: Any, rid: int) -> ChatMessage:
        if not isinstance(v, dict):
            raise _bad("message", "must be a map", rid)
        group = _int(v, "group", rid, required=False)
        event = _map(v, "event", rid) if "event" in v else None
        return cls(
            id=_int(v, "id", rid),
            conv=_int(v, "conv", rid),
            pos=_int(v, "pos", rid, lo=1),
            sender=_str(v, "from", rid, 256),
            to=_str(v, "to", rid, 256, required=group is None),
            ts=_int(v, "ts", rid),
            cmid=_str(v, "cmid", rid, 256),
            text=_str(v, "text", rid, 1 << 30),
            meta=_map(v, "meta", rid),
            group=group,
            event=event,
        )


def _message_dict(
    id: int,
    conv: int,
    pos: int,
    sender: str,
    to: str,
    ts: int,
    cmid: str,
    text: str,
    meta: dict[str, Any] | None,
    group: int | None,
    event: dict[str, Any] | None,
) -> dict[str, Any]:
    d: dict[str, Any] = {"id": id, "conv": conv, "pos": pos, "from": sender}
    if group is None:
        d["to"] = to
    else:
        d["group"] = group
    d["ts"] = ts
    d["cmid"] = cmid
    d["text"] = text
    if meta:
        d["meta"] = meta
    if event is not None:
        d["event"] = event
    return d


def encode_message_map(
    id: int,
    conv: int,
    pos: int,
    sender: str,
    to: str,
    ts: int,
    cmid: str,
    text: str,
    meta: dict[str, Any] | None,
    group: int | None = None,
    event: dict[str, Any] | None = None,
) -> bytes:
    """The canonical encoding of a message map (the same bytes as ChatMessage.encode())."""
    return _packb(_message_dict(id, conv, pos, sender, to, ts, cmid, text, meta, group, event))


@dataclass(frozen=True, slots=True)
class Update:
    """One entry of a user's update log: [seq, kind, data] on the wire."""

    seq: int
    kind: int
    message: ChatMessage | None = None
    data: dict[str, Any] = field(default_factory=dict)  # raw data of kinds this side lacks

    def to_wire(self) -> list[Any]:
        if self.message is not None:
            return [self.seq, self.kind, self.message.to_wire()]
        return [self.seq, self.kind, self.data]

    @classmethod
    def from_wire(cls, v: Any, rid: int) -> Update:
        if not isinstance(v, list) or len(v) != 3:
            raise _bad("updates", "must hold [seq, kind, data] arrays", rid)
        seq, kind, data = v
        if type(seq) is not int or not 0 < seq <= MAX_INT64:
            raise _bad("updates", "seq must be a positive integer", rid)
        if type(kind) is not int or not isinstance(data, dict):
            raise _bad("updates", "kind must be an integer and data a map", rid)
        if kind == UpdateKind.MESSAGE:
            return cls(seq=seq, kind=kind, message=ChatMessage.from_wire(data, rid))
        return cls(seq=seq, kind=kind, data=data)


def encode_update(seq: int, kind: int, data: bytes) -> bytes:
    """An update from an already-encoded data map: the per-reader cost of a fan-out."""
    return b"\x93" + _packb(seq) + _packb(kind) + data


@dataclass(frozen=True, slots=True)
class Send(Message):
    TYPE = MessageType.SEND
    FROM_CLIENT = True
    to: str  # a username; "" when sending to a group
    cmid: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    group: int | None = None  # the group to send to, instead of `to`

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Send:
        cmid = _str(p, "cmid", rid, limits.max_cmid_len)
        if not cmid:
            raise _bad("cmid", "must not be empty", rid)
        if cmid[0] == "#":
            raise _bad("cmid", "must not start with '#' (reserved for the server)", rid)
        group = _int(p, "group", rid, required=False)
        if (group is None) == ("to" not in p):
            raise _bad("to", "or 'group' is required, not both", rid)
        return cls(
            rid=rid,
            to=_str(p, "to", rid, 256, required=False),
            cmid=cmid,
            text=_str(p, "text", rid, limits.max_frame_size),
            meta=_map(p, "meta", rid),
            group=group,
        )

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"to": self.to} if self.group is None else {"group": self.group}
        out["cmid"] = self.cmid
        out["text"] = self.text
        if self.meta:
            out["meta"] = self.meta
        return out


@dataclass(frozen=True, slots=True)
class Sent(Message):
    """The acknowledgement of SEND: sent only after the message is durable."""

    TYPE = MessageType.SENT
    FROM_CLIENT = False
    id: int
    conv: int
    pos: int
    ts: int
    seq: int  # the message's sequence number in the sender's own update log
    cmid: str
    duplicate: bool = False  # true when this answers a retry of an already-stored cmid

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Sent:
        return cls(
            rid=rid,
            id=_int(p, "id", rid),
            conv=_int(p, "conv", rid),
            pos=_int(p, "pos", rid, lo=1),
            ts=_int(p, "ts", rid),
            seq=_int(p, "seq", rid, lo=1),
            cmid=_str(p, "cmid", rid, 256),
            duplicate=_bool(p, "duplicate", rid),
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conv": self.conv,
            "pos": self.pos,
            "ts": self.ts,
            "seq": self.seq,
            "cmid": self.cmid,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True, slots=True)
class Sync(Message):
    TYPE = MessageType.SYNC
    FROM_CLIENT = True
    since: int
    limit: int | None = None

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Sync:
        return cls(
            rid=rid,
            since=_int(p, "since", rid),
            limit=_int(p, "limit", rid, required=False, lo=1, hi=limits.max_sync_page),
        )

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"since": self.since}
        if self.limit is not None:
            out["limit"] = self.limit
        return out


@dataclass(frozen=True, slots=True)
class Updates(Message):
    """A page of a user's update log (answer to SYNC), or a live push (rid 0)."""

    TYPE = MessageType.UPDATES
    FROM_CLIENT = False
    updates: tuple[Update, ...]
    head: int  # the newest seq in the user's log when this was sent
    more: bool = False  # SYNC answers only: further pages follow, ask again
    resync: bool = False  # the cursor was older than the retained log: nothing was sent

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Updates:
        return cls(
            rid=rid,
            updates=tuple(Update.from_wire(u, rid) for u in _list(p, "updates", rid)),
            head=_int(p, "head", rid),
            more=_bool(p, "more", rid),
            resync=_bool(p, "resync", rid),
        )

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "updates": [u.to_wire() for u in self.updates],
            "head": self.head,
            "more": self.more,
        }
        if self.resync:
            out["resync"] = True
        return out


_K_UPDATES = _packb("updates")
_K_HEAD = _packb("head")
_K_MORE = _packb("more")
_K_RESYNC = _packb("resync")


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
        _packb(head),
        _K_MORE,
        b"\xc3" if more else b"\xc2",
    ]
    if resync:
        parts += [_K_RESYNC, b"\xc3"]
    return frame_from_raw_payload(MessageType.UPDATES, rid, b"".join(parts))


@dataclass(frozen=True, slots=True)
class Ack(Message):
    """A device's position: it has handled every update up to `seq`. Sent with rid 0."""

    TYPE = MessageType.ACK
    FROM_CLIENT = True
    seq: int

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> Ack:
        return cls(rid=rid, seq=_int(p, "seq", rid))

    def to_payload(self) -> dict[str, Any]:
        return {"seq": self.seq}


@dataclass(frozen=True, slots=True)
class History(Message):
    """Page a conversation (the direct one `with` a user, or a `group`) by position:
    `before` pages backwards, `after` forwards; with neither, the newest page."""

    TYPE = MessageType.HISTORY
    FROM_CLIENT = True
    with_user: str  # wire key "with"; "" for a group
    before: int | None = None
    after: int | None = None
    limit: int | None = None
    group: int | None = None

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> History:
        before = _int(p, "before", rid, required=False)
        after = _int(p, "after", rid, required=False)
        if before is not None and after is not None:
            raise _bad("before", "cannot be combined with 'after'", rid)
        group = _int(p, "group", rid, required=False)
        if (group is None) == ("with" not in p):
            raise _bad("with", "or 'group' is required, not both", rid)
        return cls(
            rid=rid,
            with_user=_str(p, "with", rid, 256, required=False),
            before=before,
            after=after,
            limit=_int(p, "limit", rid, required=False, lo=1, hi=limits.max_history_page),
            group=group,
        )

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = (
            {"with": self.with_user} if self.group is None else {"group": self.group}
        )
        for k in ("before", "after", "limit"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out


@dataclass(frozen=True, slots=True)
class HistoryPage(Message):
    TYPE = MessageType.HISTORY_PAGE
    FROM_CLIENT = False
    messages: tuple[ChatMessage, ...]  # always in ascending position
    more: bool = False  # further messages exist in the paging direction

    @classmethod
    def from_payload(cls, rid: int, p: dict[str, Any], limits: Limits) -> HistoryPage:
        return cls(
            rid=rid,
            messages=tuple(ChatMessage.from_wire(m, rid) for m in _list(p, "messages", rid)),
            more=_bool(p, "more", rid),
        )

    def to_payload(self) -> dict[str, Any]:
        return {"messages": [m.to_wire() for m in self.messages], "more": self.more}


_K_MESSAGES = _packb("messages")


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
    return frame_from_raw_payload(MessageType.HISTORY_PAGE, rid, payload)


# --------------------------------------------------------------------------- registry

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
from .social import SOCIAL_CLASSES  # noqa: E402  (social.py builds on the classes above)

MESSAGE_CLASSES: dict[int, type[Message]] = {
    int(c.TYPE): c for c in (*CORE_CLASSES, *SOCIAL_CLASSES)
}
# CLOSE is the one type both sides send.
CLIENT_TYPES = frozenset(t for t, c in MESSAGE_CLASSES.items() if c.FROM_CLIENT)
SERVER_TYPES = frozenset(t for t, c in MESSAGE_CLASSES.items() if not c.FROM_CLIENT) | {
    int(MessageType.CLOSE)
}
# Requests answered by exactly one frame with the same rid; the rest are one-way.
ONE_WAY_CLIENT_TYPES = frozenset(
    {int(MessageType.ACK), int(MessageType.CLOSE), int(MessageType.TYPING)}
)


def decode_message(
    msg_type: int, rid: int, payload: dict[str, Any], limits: Limits = DEFAULT_LIMITS
) -> Message:
    cls = MESSAGE_CLASSES.get(msg_type)
    if cls is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {msg_type}", rid)
    return cls.from_payload(rid, payload, limits)


def validate_username(name: str) -> bool:
    return USERNAME_RE.fullmatch(name) is not None


def validate_device(device: str) -> bool:
    return DEVICE_RE.fullmatch(device) is not None
