"""The social layer's messages: groups, read receipts, the chat list, typing, presence,
contacts, blocking, profiles and privacy (SPEC.md sections 17-23).

These messages are plain records, so their codecs are derived from the dataclass fields
(`_record`): each field's metadata gives its wire checks, a field with a default is
optional on the wire, and a None value is left out when encoding.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from liaotian.protocol.limits import Limits

from .base import (
    MAX_INT64,
    Message,
    MessageType,
    _bad,
    _bool,
    _int,
    _list,
    _num,
    _str,
)
from .messages import ChatMessage

T = TypeVar("T")
M = TypeVar("M", bound=Message)
USER = {"max": 256}
ROLES = ("owner", "admin", "member")
VISIBILITY = ("everyone", "contacts", "nobody")
MESSAGE_POLICY = ("everyone", "contacts")
CONTACT_EVENTS = ("request", "accepted", "declined", "cancelled", "removed", "changed")


def spec(**checks: Any) -> Any:
    """Field metadata: max (length), lo/hi (integers), choices (strings), min_items."""
    return field(metadata=checks)


def opt(default: Any = None, **checks: Any) -> Any:
    return field(default=default, metadata=checks)


# --------------------------------------------------------------------------- generic codec


class _Entry:
    """A nested record inside a message (a member, a marker, ...)."""

    WIRE: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_wire(cls: type[T], v: Any, rid: int) -> T:
        if not isinstance(v, dict):
            raise _bad(cls.__name__, "must be a map", rid)
        return typing.cast(T, _decode_fields(cls, v, rid, None))

    def to_wire(self) -> dict[str, Any]:
        return _encode_fields(self)


def _codec(cls: type[T]) -> type[T]:
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name == "rid":
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        specs.append(
            (f.name, f.metadata.get("key", f.name), hints[f.name], dict(f.metadata), required)
        )
    cls._specs = specs  # type: ignore[attr-defined]
    return cls


def _record(msg_type: MessageType, *, client: bool) -> Callable[[type[M]], type[M]]:
    def wrap(cls: type[M]) -> type[M]:
        cls.TYPE = msg_type
        cls.FROM_CLIENT = client
        _codec(cls)

        def from_payload(c: type[Message], rid: int, p: dict[str, Any], limits: Limits) -> Message:
            return typing.cast(Message, _decode_fields(c, p, rid, limits))

        cls.from_payload = classmethod(from_payload)  # type: ignore[assignment,method-assign]
        cls.to_payload = _encode_fields  # type: ignore[assignment,method-assign]
        return cls

    return wrap


def _decode_fields(cls: Any, p: dict[str, Any], rid: int, limits: Limits | None) -> Any:
    values: dict[str, Any] = {}
    for name, key, kind, meta, required in cls._specs:
        if key not in p:
            if required:
                raise _bad(key, "is required", rid)
            continue
        values[name] = _decode_value(key, p[key], kind, meta, rid)
    if rid is not None and "rid" in {f.name for f in dataclasses.fields(cls)}:
        values["rid"] = rid
    return cls(**values)


def _decode_value(key: str, v: Any, kind: Any, meta: dict[str, Any], rid: int) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return _decode_value(key, v, inner[0], meta, rid)
    if kind is int:
        return _int({key: v}, key, rid, lo=meta.get("lo", 0), hi=meta.get("hi", MAX_INT64))
    if kind is str:
        s = _str({key: v}, key, rid, meta.get("max", 256))
        if "choices" in meta and s not in meta["choices"]:
            raise _bad(key, f"must be one of {', '.join(meta['choices'])}", rid)
        if meta.get("min", 0) > len(s):
            raise _bad(key, f"must have at least {meta['min']} characters", rid)
        return s
    if kind is bool:
        return _bool({key: v}, key, rid)
    if kind is float:
        return _num({key: v}, key, rid)
    if kind is ChatMessage:
        return ChatMessage.from_wire(v, rid)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        items = _list({key: v}, key, rid)
        max_items = meta.get("max_items", 10_000)
        if len(items) > max_items:
            raise _bad(key, f"has more than {max_items} items", rid)
        if len(items) < meta.get("min_items", 0):
            raise _bad(key, f"needs at least {meta['min_items']} items", rid)
        item_meta = {k: v for k, v in meta.items() if k not in ("max_items", "min_items")}
        return tuple(_decode_value(key, x, item, item_meta, rid) for x in items)
    if isinstance(kind, type) and issubclass(kind, _Entry):
        return kind.from_wire(v, rid)
    raise TypeError(f"no codec for {kind!r}")  # a bug in this module, not the peer's


def _encode_fields(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, key, _kind, _meta, _required in obj._specs:
        v = getattr(obj, name)
        if v is None:
            continue
        out[key] = _encode_value(v)
    return out


def _encode_value(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_encode_value(x) for x in v]
    if isinstance(v, (_Entry, ChatMessage)):
        return v.to_wire()
    return v


# --------------------------------------------------------------------------- answers


@_record(MessageType.OK, client=False)
@dataclass(frozen=True, slots=True)
class Ok(Message):
    """Success for a request with nothing else to say; `pos` is the timeline position of
    the group event the request created, when it created one."""

    pos: int | None = opt()


# --------------------------------------------------------------------------- groups


@_codec
@dataclass(frozen=True, slots=True)
class GroupMember(_Entry):
    user: str = spec(**USER)
    role: str = spec(choices=ROLES)
    joined: int = spec()  # ms since epoch


@_codec
@dataclass(frozen=True, slots=True)
class GroupSummary(_Entry):
    group: int = spec()
    name: str = spec(max=64)
    topic: str = spec(max=256)
    role: str = spec(choices=ROLES)
    members: int = spec()


@_record(MessageType.GROUP_CREATE, client=True)
@dataclass(frozen=True, slots=True)
class GroupCreate(Message):
    name: str = spec(max=64, min=1)
    members: tuple[str, ...] = spec(max=256, max_items=10_000)
    topic: str = opt("", max=256)


@_record(MessageType.GROUP_INFO, client=False)
@dataclass(frozen=True, slots=True)
class GroupInfo(Message):
    group: int = spec()
    name: str = spec(max=64)
    topic: str = spec(max=256)
    owner: str = spec(**USER)
    created: int = spec()
    pos: int = spec()  # the newest position in the group's timeline
    members: tuple[GroupMember, ...] = spec()


@_record(MessageType.GET_GROUP, client=True)
@dataclass(frozen=True, slots=True)
class GetGroup(Message):
    group: int = spec()


@_record(MessageType.GROUP_ADD, client=True)
@dataclass(frozen=True, slots=True)
class GroupAdd(Message):
    group: int = spec()
    users: tuple[str, ...] = spec(max=256, min_items=1, max_items=10_000)


@_record(MessageType.GROUP_REMOVE, client=True)
@dataclass(frozen=True, slots=True)
class GroupRemove(Message):
    group: int = spec()
    user: str = spec(**USER)


@_record(MessageType.GROUP_LEAVE, client=True)
@dataclass(frozen=True, slots=True)
class GroupLeave(Message):
    group: int = spec()


@_record(MessageType.GROUP_UPDATE, client=True)
@dataclass(frozen=True, slots=True)
class GroupUpdate(Message):
    """Rename and/or set the topic; at least one of the two."""

    group: int = spec()
    name: str | None = opt(max=64, min=1)
    topic: str | None = opt(max=256)


@_record(MessageType.GROUP_SET_ROLE, client=True)
@dataclass(frozen=True, slots=True)
class GroupSetRole(Message):
    group: int = spec()
    user: str = spec(**USER)
    role: str = spec(choices=("admin", "member"))


@_record(MessageType.GROUP_TRANSFER, client=True)
@dataclass(frozen=True, slots=True)
class GroupTransfer(Message):
    group: int = spec()
    user: str = spec(**USER)


@_record(MessageType.LIST_GROUPS, client=True)
@dataclass(frozen=True, slots=True)
class ListGroups(Message):
    """In ascending group id; continue with `after` = the last group id of a page."""

    limit: int | None = opt(lo=1, hi=500)
    after: int | None = opt()


@_record(MessageType.GROUP_LIST, client=False)
@dataclass(frozen=True, slots=True)
class GroupList(Message):
    groups: tuple[GroupSummary, ...] = spec()
    more: bool = opt(False)  # further groups follow the last one of this page


# --------------------------------------------------------------------------- receipts


@_codec
@dataclass(frozen=True, slots=True)
class Marker(_Entry):
    user: str = spec(**USER)
    pos: int = spec()


@_record(MessageType.READ, client=True)
@dataclass(frozen=True, slots=True)
class Read(Message):
    """Everything in conversation `conv` up to `pos` has been read by this user."""

    conv: int = spec()
    pos: int = spec()


@_record(MessageType.GET_RECEIPTS, client=True)
@dataclass(frozen=True, slots=True)
class GetReceipts(Message):
    conv: int = spec()


@_record(MessageType.RECEIPTS, client=False)
@dataclass(frozen=True, slots=True)
class Receipts(Message):
    """Each other participant's read-up-to and delivered-up-to position."""

    conv: int = spec()
    read: tuple[Marker, ...] = spec()
    delivered: tuple[Marker, ...] = spec()


# --------------------------------------------------------------------------- chat list


@_codec
@dataclass(frozen=True, slots=True)
class ConversationSummary(_Entry):
    conv: int = spec()
    kind: str = spec(choices=("direct", "group", "channel"))  # "channel": added with channels
    name: str = spec(max=256)  # the peer's username, or the group's name
    ts: int = spec()  # time of the last message (or of creation)
    unread: int = spec()
    read: int = spec()  # this user's read-up-to position
    last: ChatMessage | None = opt()
    peer: str | None = opt(**USER)
    group: int | None = opt()
    channel: int | None = opt()  # added with channels


@_record(MessageType.LIST_CONVERSATIONS, client=True)
@dataclass(frozen=True, slots=True)
class ListConversations(Message):
    """Newest first; continue with before_ts/before_conv from the last entry."""

    limit: int | None = opt(lo=1, hi=100)
    before_ts: int | None = opt()
    before_conv: int | None = opt()
    channels: bool | None = opt()  # added with channels


@_record(MessageType.CONVERSATION_LIST, client=False)
@dataclass(frozen=True, slots=True)
class ConversationList(Message):
    conversations: tuple[ConversationSummary, ...] = spec()
    more: bool = opt(False)


# --------------------------------------------------------------------------- typing


@_record(MessageType.TYPING, client=True)
@dataclass(frozen=True, slots=True)
class Typing(Message):
    """One-way (rid 0): typing in the direct chat with `to`, or in `group`."""

    typing: bool = spec()
    to: str | None = opt(**USER)
    group: int | None = opt()


@_record(MessageType.TYPING_NOTICE, client=False)
@dataclass(frozen=True, slots=True)
class TypingNotice(Message):
    """Push: `user` is (or stopped) typing; forget it after `ttl` seconds unless renewed."""

    user: str = spec(**USER)
    typing: bool = spec()
    ttl: float = spec()
    group: int | None = opt()


# --------------------------------------------------------------------------- presence


@_codec
@dataclass(frozen=True, slots=True)
class PresenceEntry(_Entry):
    user: str = spec(**USER)
    online: bool = spec()
    last_seen: int = spec()  # ms since epoch; 0 if never seen


@_record(MessageType.PRESENCE, client=False)
@dataclass(frozen=True, slots=True)
class Presence(Message):
    """Push to contacts: a user came online or went offline (coalesced)."""

    user: str = spec(**USER)
    online: bool = spec()
    last_seen: int = spec()


@_record(MessageType.GET_PRESENCE, client=True)
@dataclass(frozen=True, slots=True)
class GetPresence(Message):
    users: tuple[str, ...] = spec(max=256, min_items=1, max_items=100)


@_record(MessageType.PRESENCE_LIST, client=False)
@dataclass(frozen=True, slots=True)
class PresenceList(Message):
    """Only the users whose privacy settings let the asker see them."""

    presence: tuple[PresenceEntry, ...] = spec()


# --------------------------------------------------------------------------- contacts


@dataclass(frozen=True, slots=True)
class UserRequest(Message):
    """The shape of every request that names one user and nothing else."""

    user: str = spec(**USER)


def _user_request(msg_type: MessageType, doc: str) -> type[UserRequest]:
    @_record(msg_type, client=True)
    @dataclass(frozen=True, slots=True)
    class Request(UserRequest):
        pass

    Request.__doc__ = doc
    return Request


ContactRequest = _user_request(MessageType.CONTACT_REQUEST, "Ask `user` to become a contact.")
ContactAccept = _user_request(MessageType.CONTACT_ACCEPT, "Accept `user`'s contact request.")
ContactDecline = _user_request(MessageType.CONTACT_DECLINE, "Decline `user`'s request.")
ContactCancel = _user_request(MessageType.CONTACT_CANCEL, "Withdraw a request sent to `user`.")
ContactRemove = _user_request(MessageType.CONTACT_REMOVE, "Stop being contacts with `user`.")
Block = _user_request(MessageType.BLOCK, "Refuse `user`'s messages, requests and presence.")
Unblock = _user_request(MessageType.UNBLOCK, "Lift a block on `user`.")
GetProfile = _user_request(MessageType.GET_PROFILE, "`user`'s profile, if visible.")
for _cls, _name in (
    (ContactRequest, "ContactRequest"),
    (ContactAccept, "ContactAccept"),
    (ContactDecline, "ContactDecline"),
    (ContactCancel, "ContactCancel"),
    (ContactRemove, "ContactRemove"),
    (Block, "Block"),
    (Unblock, "Unblock"),
    (GetProfile, "GetProfile"),
):
    _cls.__name__ = _cls.__qualname__ = _name


@_record(MessageType.LIST_CONTACTS, client=True)
@dataclass(frozen=True, slots=True)
class ListContacts(Message):
    pass


@_record(MessageType.CONTACT_LIST, client=False)
@dataclass(frozen=True, slots=True)
class ContactList(Message):
    contacts: tuple[str, ...] = spec(max=256)
    incoming: tuple[str, ...] = spec(max=256)  # requests waiting for this user's answer
    outgoing: tuple[str, ...] = spec(max=256)  # this user's requests not yet answered
    blocked: tuple[str, ...] = spec(max=256)


# --------------------------------------------------------------------------- profiles


@_record(MessageType.SET_PROFILE, client=True)
@dataclass(frozen=True, slots=True)
class SetProfile(Message):
    display_name: str | None = opt(max=64)
    status: str | None = opt(max=256)


@_record(MessageType.PROFILE, client=False)
@dataclass(frozen=True, slots=True)
class Profile(Message):
    user: str = spec(**USER)
    display_name: str = spec(max=64)
    status: str = spec(max=256)


@_record(MessageType.SET_PRIVACY, client=True)
@dataclass(frozen=True, slots=True)
class SetPrivacy(Message):
    presence: str | None = opt(choices=VISIBILITY)  # who sees online state and last seen
    profile: str | None = opt(choices=VISIBILITY)  # who sees display name and status
    messages: str | None = opt(choices=MESSAGE_POLICY)  # who may message this user
    groups: str | None = opt(choices=VISIBILITY)  # who may add this user to groups
    receipts: str | None = opt(choices=VISIBILITY)  # who sees read and delivered positions


@_record(MessageType.GET_PRIVACY, client=True)
@dataclass(frozen=True, slots=True)
class GetPrivacy(Message):
    pass


@_record(MessageType.PRIVACY, client=False)
@dataclass(frozen=True, slots=True)
class Privacy(Message):
    presence: str = spec(choices=VISIBILITY)
    profile: str = spec(choices=VISIBILITY)
    messages: str = spec(choices=MESSAGE_POLICY)
    groups: str | None = opt(choices=VISIBILITY)  # always sent by this server
    receipts: str | None = opt(choices=VISIBILITY)  # always sent by this server


SOCIAL_CLASSES: tuple[type[Message], ...] = (
    Ok,
    GroupCreate,
    GroupInfo,
    GetGroup,
    GroupAdd,
    GroupRemove,
    GroupLeave,
    GroupUpdate,
    GroupSetRole,
    GroupTransfer,
    ListGroups,
    GroupList,
    Read,
    GetReceipts,
    Receipts,
    ListConversations,
    ConversationList,
    Typing,
    TypingNotice,
    Presence,
    GetPresence,
    PresenceList,
    ContactRequest,
    ContactAccept,
    ContactDecline,
    ContactCancel,
    ContactRemove,
    ListContacts,
    ContactList,
    Block,
    Unblock,
    SetProfile,
    GetProfile,
    Profile,
    SetPrivacy,
    GetPrivacy,
    Privacy,
)
SOCIAL_CLIENT_TYPES = frozenset(int(c.TYPE) for c in SOCIAL_CLASSES if c.FROM_CLIENT)
SOCIAL_SERVER_TYPES = frozenset(int(c.TYPE) for c in SOCIAL_CLASSES if not c.FROM_CLIENT)
