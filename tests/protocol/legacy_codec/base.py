"""The building blocks of every message: type numbers, field checks and the Message base.

Kept apart from the message classes so that each family of messages (messages.py for the
session and 1:1 core, social.py for groups, receipts, presence and contacts) can live in a
module of its own without import cycles.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, TypeVar

import msgpack
from liaotian.protocol.codes import ErrorCode
from liaotian.protocol.errors import ProtocolError
from liaotian.protocol.frames import HEADER
from liaotian.protocol.limits import Limits

_packb: Callable[[Any], bytes] = msgpack.packb  # msgpack ships no type hints
MAX_INT64 = (1 << 63) - 1

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{2,31}")
DEVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
MIN_PASSWORD_LEN = 8
MAX_PASSWORD_LEN = 1024


class MessageType(IntEnum):
    HELLO = 1
    WELCOME = 2
    PING = 3
    PONG = 4
    CLOSE = 5
    ERROR = 6
    REGISTER = 10
    REGISTERED = 11
    LOGIN = 12
    AUTH = 13
    AUTHENTICATED = 14
    LOGOUT = 15
    LOGGED_OUT = 16
    LIST_DEVICES = 17
    DEVICE_LIST = 18
    REVOKE_DEVICE = 19
    DEVICE_REVOKED = 20
    SEND = 30
    SENT = 31
    SYNC = 32
    UPDATES = 33
    ACK = 34
    HISTORY = 35
    HISTORY_PAGE = 36
    # social layer (social.py)
    OK = 7
    GROUP_CREATE = 40
    GROUP_INFO = 41
    GET_GROUP = 42
    GROUP_ADD = 43
    GROUP_REMOVE = 44
    GROUP_LEAVE = 45
    GROUP_UPDATE = 46
    GROUP_SET_ROLE = 47
    GROUP_TRANSFER = 48
    LIST_GROUPS = 49
    GROUP_LIST = 50
    READ = 55
    GET_RECEIPTS = 56
    RECEIPTS = 57
    LIST_CONVERSATIONS = 58
    CONVERSATION_LIST = 59
    TYPING = 60
    TYPING_NOTICE = 61
    PRESENCE = 62
    GET_PRESENCE = 63
    PRESENCE_LIST = 64
    CONTACT_REQUEST = 70
    CONTACT_ACCEPT = 71
    CONTACT_DECLINE = 72
    CONTACT_CANCEL = 73
    CONTACT_REMOVE = 74
    LIST_CONTACTS = 75
    CONTACT_LIST = 76
    BLOCK = 77
    UNBLOCK = 78
    SET_PROFILE = 80
    GET_PROFILE = 81
    PROFILE = 82
    SET_PRIVACY = 83
    GET_PRIVACY = 84
    PRIVACY = 85


class UpdateKind(IntEnum):
    MESSAGE = 1  # a message map (a group event is a message map with an "event" map)
    READ = 2  # {conv, user, pos}: a read-up-to marker moved
    CONTACT = 3  # {event, user}: a contact request or contact-list change


# --------------------------------------------------------------------------- field checks


def _bad(name: str, why: str, rid: int) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_FIELD, f"field {name!r} {why}", rid)


def _req(p: dict[str, Any], name: str, rid: int) -> Any:
    try:
        return p[name]
    except KeyError:
        raise _bad(name, "is required", rid) from None


def _str(
    p: dict[str, Any],
    name: str,
    rid: int,
    max_len: int,
    *,
    required: bool = True,
    default: str = "",
) -> str:
    v = _req(p, name, rid) if required else p.get(name, default)
    if type(v) is not str:
        raise _bad(name, "must be a string", rid)
    if len(v) > max_len:
        raise _bad(name, f"is longer than {max_len}", rid)
    return v


def _int(
    p: dict[str, Any],
    name: str,
    rid: int,
    *,
    required: bool = True,
    default: int | None = None,
    lo: int = 0,
    hi: int = MAX_INT64,
) -> Any:
    if not required and name not in p:
        return default
    v = _req(p, name, rid)
    if type(v) is not int:
        raise _bad(name, "must be an integer", rid)
    if not lo <= v <= hi:
        raise _bad(name, f"must be in {lo}..{hi}", rid)
    return v


def _num(p: dict[str, Any], name: str, rid: int, *, required: bool = True) -> float | None:
    if not required and name not in p:
        return None
    v = _req(p, name, rid)
    if type(v) not in (int, float) or not 0 <= v < math.inf:  # also refuses NaN
        raise _bad(name, "must be a finite non-negative number", rid)
    return float(v)


def _bool(p: dict[str, Any], name: str, rid: int, default: bool = False) -> bool:
    v = p.get(name, default)
    if type(v) is not bool:
        raise _bad(name, "must be a boolean", rid)
    return v


_ABSENT: Any = object()


def _map(p: dict[str, Any], name: str, rid: int, *, required: bool = False) -> dict[str, Any]:
    v = _req(p, name, rid) if required else p.get(name, _ABSENT)
    if v is _ABSENT:
        return {}
    if type(v) is not dict or not all(type(k) is str for k in v):
        raise _bad(name, "must be a map with string keys", rid)
    return v


def _list(p: dict[str, Any], name: str, rid: int) -> list[Any]:
    v = _req(p, name, rid)
    if not isinstance(v, list):
        raise _bad(name, "must be an array", rid)
    return v


# --------------------------------------------------------------------------- base


M = TypeVar("M", bound="Message")


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every wire message. TYPE is its number; FROM says which side may send it."""

    TYPE: ClassVar[MessageType]
    FROM_CLIENT: ClassVar[bool]
    rid: int

    @classmethod
    def from_payload(cls: type[M], rid: int, p: dict[str, Any], limits: Limits) -> M:
        raise NotImplementedError

    def to_payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def encode(self) -> bytes:
        """The complete frame: length prefix and body."""
        body = _packb((int(self.TYPE), self.rid, self.to_payload()))
        return HEADER.pack(len(body)) + body


def _empty(cls: type[M]) -> type[M]:
    """For messages whose payload is an empty map."""

    def from_payload(c: type[M], rid: int, p: dict[str, Any], limits: Limits) -> M:
        return c(rid=rid)

    def to_payload(self: Message) -> dict[str, Any]:
        return {}

    cls.from_payload = classmethod(from_payload)  # type: ignore[assignment,method-assign]
    cls.to_payload = to_payload  # type: ignore[method-assign]
    return cls


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")
