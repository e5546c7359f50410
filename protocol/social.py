"""The social layer's messages: groups, read receipts, the chat list, typing, presence,
contacts, blocking, profiles and privacy (SPEC.md sections 17-23).

Declared like the core messages (codec.py): each field's annotation and `wire(...)` give
its wire checks, a field with a default is optional on the wire, and a None value is left
out when encoding. SPEC.md's field tables are compared with these declarations
(tests/conformance/test_vectors.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Message, MessageType
from .codec import Record, message, record, wire
from .records import ChatMessage

__all__ = [
    "CONTACT_EVENTS",
    "MESSAGE_POLICY",
    "ROLES",
    "SOCIAL_CLASSES",
    "SOCIAL_CLIENT_TYPES",
    "SOCIAL_SERVER_TYPES",
    "VISIBILITY",
    "Block",
    "ContactAccept",
    "ContactCancel",
    "ContactDecline",
    "ContactList",
    "ContactRemove",
    "ContactRequest",
    "ConversationList",
    "ConversationSummary",
    "GetGroup",
    "GetPresence",
    "GetPrivacy",
    "GetProfile",
    "GetReceipts",
    "GroupAdd",
    "GroupCreate",
    "GroupInfo",
    "GroupLeave",
    "GroupList",
    "GroupMember",
    "GroupRemove",
    "GroupSetRole",
    "GroupSummary",
    "GroupTransfer",
    "GroupUpdate",
    "ListContacts",
    "ListConversations",
    "ListGroups",
    "Marker",
    "Ok",
    "Presence",
    "PresenceEntry",
    "PresenceList",
    "Privacy",
    "Profile",
    "Read",
    "Receipts",
    "SetPrivacy",
    "SetProfile",
    "Typing",
    "TypingNotice",
    "Unblock",
    "UserRequest",
]

M = MessageType
USER_MAX = 256  # the decoder cap of a username field
ROLES = ("owner", "admin", "member")
VISIBILITY = ("everyone", "contacts", "nobody")
MESSAGE_POLICY = ("everyone", "contacts")
CONTACT_EVENTS = ("request", "accepted", "declined", "cancelled", "removed", "changed")


# --------------------------------------------------------------------------- answers


@message(M.OK)
class Ok(Message):
    """Success for a request with nothing else to say; `pos` is the timeline position of
    the group event the request created, when it created one."""

    pos: int | None = None


# --------------------------------------------------------------------------- groups


@record()
class GroupMember(Record):
    user: str = wire(max=USER_MAX)
    role: str = wire(choices=ROLES)
    joined: int  # ms since epoch


@record()
class GroupSummary(Record):
    group: int
    name: str = wire(max=64)
    topic: str = wire(max=256)
    role: str = wire(choices=ROLES)
    members: int


@message(M.GROUP_CREATE)
class GroupCreate(Message):
    name: str = wire(max=64, min=1)
    members: tuple[str, ...] = wire(max=256, max_items=10_000)
    topic: str = wire(default="", max=256)


@message(M.GROUP_INFO)
class GroupInfo(Message):
    group: int
    name: str = wire(max=64)
    topic: str = wire(max=256)
    owner: str = wire(max=USER_MAX)
    created: int
    pos: int  # the newest position in the group's timeline
    members: tuple[GroupMember, ...]


@message(M.GET_GROUP)
class GetGroup(Message):
    group: int


@message(M.GROUP_ADD)
class GroupAdd(Message):
    group: int
    users: tuple[str, ...] = wire(max=256, min_items=1, max_items=10_000)


@message(M.GROUP_REMOVE)
class GroupRemove(Message):
    group: int
    user: str = wire(max=USER_MAX)


@message(M.GROUP_LEAVE)
class GroupLeave(Message):
    group: int


@message(M.GROUP_UPDATE)
class GroupUpdate(Message):
    """Rename and/or set the topic; at least one of the two."""

    group: int
    name: str | None = wire(default=None, max=64, min=1)
    topic: str | None = wire(default=None, max=256)


@message(M.GROUP_SET_ROLE)
class GroupSetRole(Message):
    group: int
    user: str = wire(max=USER_MAX)
    role: str = wire(choices=("admin", "member"))


@message(M.GROUP_TRANSFER)
class GroupTransfer(Message):
    group: int
    user: str = wire(max=USER_MAX)


@message(M.LIST_GROUPS)
class ListGroups(Message):
    """In ascending group id; continue with `after` = the last group id of a page."""

    limit: int | None = wire(default=None, lo=1, hi=500)
    after: int | None = None


@message(M.GROUP_LIST)
class GroupList(Message):
    groups: tuple[GroupSummary, ...]
    more: bool = False  # further groups follow the last one of this page


# --------------------------------------------------------------------------- receipts


@record()
class Marker(Record):
    user: str = wire(max=USER_MAX)
    pos: int


@message(M.READ)
class Read(Message):
    """Everything in conversation `conv` up to `pos` has been read by this user."""

    conv: int
    pos: int


@message(M.GET_RECEIPTS)
class GetReceipts(Message):
    conv: int


@message(M.RECEIPTS)
class Receipts(Message):
    """Each other participant's read-up-to and delivered-up-to position."""

    conv: int
    read: tuple[Marker, ...]
    delivered: tuple[Marker, ...]


# --------------------------------------------------------------------------- chat list


@record()
class ConversationSummary(Record):
    conv: int
    kind: str = wire(choices=("direct", "group", "channel"))  # "channel": if asked for
    name: str = wire(max=256)  # the peer's username, or the group's or channel's name
    ts: int  # time of the last message (or of creation)
    unread: int
    read: int  # this user's read-up-to position
    last: ChatMessage | None = None
    peer: str | None = wire(default=None, max=USER_MAX)
    group: int | None = None
    channel: int | None = None


@message(M.LIST_CONVERSATIONS)
class ListConversations(Message):
    """Newest first; continue with before_ts/before_conv from the last entry."""

    limit: int | None = wire(default=None, lo=1, hi=100)
    before_ts: int | None = None
    before_conv: int | None = None
    channels: bool | None = None  # true: list the user's channels too (kind "channel")


@message(M.CONVERSATION_LIST)
class ConversationList(Message):
    conversations: tuple[ConversationSummary, ...]
    more: bool = False


# --------------------------------------------------------------------------- typing


@message(M.TYPING)
class Typing(Message):
    """One-way (rid 0): typing in the direct chat with `to`, or in `group`."""

    typing: bool
    to: str | None = wire(default=None, max=USER_MAX)
    group: int | None = None


@message(M.TYPING_NOTICE)
class TypingNotice(Message):
    """Push: `user` is (or stopped) typing; forget it after `ttl` seconds unless renewed."""

    user: str = wire(max=USER_MAX)
    typing: bool
    ttl: float
    group: int | None = None


# --------------------------------------------------------------------------- presence


@record()
class PresenceEntry(Record):
    user: str = wire(max=USER_MAX)
    online: bool
    last_seen: int  # ms since epoch; 0 if never seen


@message(M.PRESENCE)
class Presence(Message):
    """Push to contacts: a user came online or went offline (coalesced)."""

    user: str = wire(max=USER_MAX)
    online: bool
    last_seen: int


@message(M.GET_PRESENCE)
class GetPresence(Message):
    users: tuple[str, ...] = wire(max=256, min_items=1, max_items=100)


@message(M.PRESENCE_LIST)
class PresenceList(Message):
    """Only the users whose privacy settings let the asker see them."""

    presence: tuple[PresenceEntry, ...]


# --------------------------------------------------------------------------- contacts


@dataclass(frozen=True, slots=True)
class UserRequest(Message):
    """The shape of every request that names one user and nothing else."""

    user: str = wire(max=USER_MAX)


def _user_request(msg_type: MessageType, doc: str) -> type[UserRequest]:
    @message(msg_type)
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


@message(M.LIST_CONTACTS)
class ListContacts(Message):
    pass


@message(M.CONTACT_LIST)
class ContactList(Message):
    contacts: tuple[str, ...] = wire(max=256)
    incoming: tuple[str, ...] = wire(max=256)  # requests waiting for this user's answer
    outgoing: tuple[str, ...] = wire(max=256)  # this user's requests not yet answered
    blocked: tuple[str, ...] = wire(max=256)


# --------------------------------------------------------------------------- profiles


@message(M.SET_PROFILE)
class SetProfile(Message):
    display_name: str | None = wire(default=None, max=64)
    status: str | None = wire(default=None, max=256)


@message(M.PROFILE)
class Profile(Message):
    user: str = wire(max=USER_MAX)
    display_name: str = wire(max=64)
    status: str = wire(max=256)
    bot: bool | None = None  # true for a bot account (SPEC.md 26); absent otherwise


@message(M.SET_PRIVACY)
class SetPrivacy(Message):
    # who sees online state and last seen; display name and status; may message this user;
    # may add this user to groups; sees read and delivered positions
    presence: str | None = wire(default=None, choices=VISIBILITY)
    profile: str | None = wire(default=None, choices=VISIBILITY)
    messages: str | None = wire(default=None, choices=MESSAGE_POLICY)
    groups: str | None = wire(default=None, choices=VISIBILITY)
    receipts: str | None = wire(default=None, choices=VISIBILITY)
    coins: str | None = wire(default=None, choices=VISIBILITY)  # may send this user coins
    nearby: str | None = wire(default=None, choices=VISIBILITY)  # finds this user nearby


@message(M.GET_PRIVACY)
class GetPrivacy(Message):
    pass


@message(M.PRIVACY)
class Privacy(Message):
    presence: str = wire(choices=VISIBILITY)
    profile: str = wire(choices=VISIBILITY)
    messages: str = wire(choices=MESSAGE_POLICY)
    groups: str | None = wire(default=None, choices=VISIBILITY)  # always sent by this server
    receipts: str | None = wire(default=None, choices=VISIBILITY)  # always sent by this server
    coins: str | None = wire(default=None, choices=VISIBILITY)  # always sent by this server
    nearby: str | None = wire(default=None, choices=VISIBILITY)  # always sent by this server


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
