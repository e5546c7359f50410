"""The chat's state as plain data: groups and their members, each user's relations and
privacy settings, the media blobs messages reference, and the codes they are stored with.

Nothing here decides anything (the rules in rules/ do) or knows where the data lives (the
store loads and keeps it). A store's planning batch hands out copies of these objects to
change (copy-on-write: the committed ones are never changed in place).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLE_MEMBER, ROLE_ADMIN, ROLE_OWNER = 0, 1, 2
ROLE_NAMES = {ROLE_MEMBER: "member", ROLE_ADMIN: "admin", ROLE_OWNER: "owner"}
ROLE_BY_NAME = {v: k for k, v in ROLE_NAMES.items()}

# Relations, one stored row each (user, other, kind); see Social.add_relation.
REL_CONTACT, REL_REQUESTED, REL_BLOCKED = 1, 2, 3
# A request to someone who blocked the requester: listed as the requester's outgoing
# request (so they cannot tell), never shown to its target.
REL_REQUEST_DROPPED = 4
VIS_EVERYONE, VIS_CONTACTS, VIS_NOBODY = 0, 1, 2
VISIBILITY_NAMES = {VIS_EVERYONE: "everyone", VIS_CONTACTS: "contacts", VIS_NOBODY: "nobody"}
VISIBILITY_BY_NAME = {v: k for k, v in VISIBILITY_NAMES.items()}

KIND_DIRECT, KIND_GROUP = 1, 2  # conversation kinds
EVENT_CMID = "#event:"  # prefix of the internal client message id of a group event


@dataclass(slots=True)
class Member:
    role: int
    joined_pos: int  # the first timeline position the member sees
    joined: int  # ms


@dataclass(slots=True)
class GroupState:
    conv: int
    name: str
    topic: str
    owner: int
    created: int
    members: dict[int, Member] = field(default_factory=dict)

    def copy(self) -> GroupState:
        return GroupState(
            self.conv,
            self.name,
            self.topic,
            self.owner,
            self.created,
            {u: Member(m.role, m.joined_pos, m.joined) for u, m in self.members.items()},
        )


@dataclass(slots=True)
class Social:
    """One user's relations and privacy settings."""

    contacts: set[int] = field(default_factory=set)
    outgoing: set[int] = field(default_factory=set)  # requests this user sent
    incoming: set[int] = field(default_factory=set)  # requests sent to this user
    blocked: set[int] = field(default_factory=set)  # users this user blocked
    presence: int = VIS_CONTACTS
    profile: int = VIS_EVERYONE
    messages: int = VIS_EVERYONE  # VIS_EVERYONE or VIS_CONTACTS
    groups: int = VIS_CONTACTS  # who may add this user to a group
    groups_owned: int = 0  # groups whose owner this user is
    groups_joined: int = 0  # groups this user is a member of (owned ones included)
    receipts: int = VIS_CONTACTS  # who sees this user's read and delivered positions
    coins: int = VIS_CONTACTS  # who may send this user coins (rules/wallet.py)
    nearby: int = VIS_EVERYONE  # who finds this user's shared position (rules/nearby.py)

    def copy(self) -> Social:
        return Social(
            set(self.contacts),
            set(self.outgoing),
            set(self.incoming),
            set(self.blocked),
            self.presence,
            self.profile,
            self.messages,
            self.groups,
            self.groups_owned,
            self.groups_joined,
            receipts=self.receipts,
            coins=self.coins,
            nearby=self.nearby,
        )

    def add_relation(self, other: int, kind: int) -> None:
        """File one relation of this user (user = this user) into its set."""
        if kind == REL_CONTACT:
            self.contacts.add(other)
        elif kind in (REL_REQUESTED, REL_REQUEST_DROPPED):
            self.outgoing.add(other)
        elif kind == REL_BLOCKED:
            self.blocked.add(other)

    def remove_relation(self, other: int, kind: int) -> None:
        """The inverse of add_relation."""
        if kind == REL_CONTACT:
            self.contacts.discard(other)
        elif kind in (REL_REQUESTED, REL_REQUEST_DROPPED):
            self.outgoing.discard(other)
        elif kind == REL_BLOCKED:
            self.blocked.discard(other)


# ---------------------------------------------------------------------------- media


@dataclass(frozen=True, slots=True)
class Blob:
    """A stored blob's metadata (the bytes are in the media store, server/media/blobs.py).

    `info` is what the server read from the bytes when the upload finished (probe.py):
    images {w, h, format, animated, thumb: {blob, w, h, type}}, audio {duration_ms, codec,
    sample_rate, channels, title?, artist?}; keys starting with "_" are the server's own
    (why an image could not be inspected) and never shown to a peer.
    """

    sha256: bytes
    size: int
    media_type: str
    info: dict[str, Any]
    created: int  # ms


@dataclass(frozen=True, slots=True)
class BlobAccess:
    """What the access rule (rules/media.py) needs about one user and one blob, read in one
    go: the blob (None: not stored), whether the user uploaded it, and per conversation of
    the user that references it: (conv, newest position referencing it, the first position
    the user sees there: 1 in a direct conversation, the join point in a group)."""

    blob: Blob | None
    owner: bool = False
    seen: tuple[tuple[int, int, int], ...] = ()


# ---------------------------------------------------------------------------- channels
# A channel is a conversation with one log of posts that its members read (fan-out on
# read): its state is small and loaded alone, a member is one row looked up by key, and
# nothing here holds the list of members (see rules/channels.py).

KIND_CHANNEL = 3  # conversation kind


@dataclass(frozen=True, slots=True)
class ChannelState:
    """A channel's own row. Frozen: a batch replaces it (dataclasses.replace) to change."""

    conv: int
    name: str
    about: str
    rules: str  # shown to whoever joins
    owner: int
    created: int  # ms
    open: bool  # anyone may join; otherwise only with the invitation token
    members_post: bool  # members may post (admins always may)
    slow_mode: int  # seconds between two posts or comments of a member; 0: off
    invite: str  # the invitation token ("" : none)
    members: int  # how many members it has
    last_pos: int  # the position of its newest post (0: none yet)
    pins: tuple[int, ...] = ()  # positions of pinned posts, newest pin last
    last_ts: int = 0  # ms of its newest post (the chat list's order)


@dataclass(frozen=True, slots=True)
class ChannelMember:
    """One member's row: role, read position and when they last posted (slow mode)."""

    role: int
    read_pos: int
    joined: int  # ms
    last_post: int = 0  # ms of their newest post or comment


@dataclass(frozen=True, slots=True)
class PostState:
    """What the rules consult of a post: its author, whether it is deleted, its counts."""

    id: int
    author: int
    ts: int
    deleted: bool = False
    likes: int = 0
    comments: int = 0  # comments made under it (deleted ones included: numbers stay)


@dataclass(frozen=True, slots=True)
class CommentState:
    """What the rules consult of a comment (the n-th under its post)."""

    id: int
    author: int
    deleted: bool = False


@dataclass(slots=True)
class BotView:
    """What the send rule knows of bots (rules/bots.py): every bot's id and name, and the
    groups whose admins let bots see every message. Kept by the bot handlers."""

    names: dict[int, str] = field(default_factory=dict)
    open_groups: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class PendingCallback:
    """A press waiting for the bot's answer (SPEC.md 26.3): kept durably with the CALLBACK
    entry that tells the bot, dropped with the answer or when it expires."""

    id: int
    bot: int
    presser: int
    conv: int
    pos: int
    created: int  # ms since the epoch (the batch's time)
    entry: bytes = b""  # the CALLBACK entry's data map (encoded), as the bot's log has it
    seq: int = 0  # the CALLBACK entry's seq in the bot's log: the order of the presses
