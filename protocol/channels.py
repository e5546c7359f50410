"""Channels: forums of up to 100,000 members reading one log of posts (SPEC.md section 24).

Declared like the social layer (codec.py). Every request is answered by one frame with
its rid: CHANNEL_INFO, CHANNEL_POSTED, CHANNEL_LIKES, CHANNEL_PAGE, CHANNEL_HITS, OK or
ERROR. CHANNEL_NEWS is a push (rid 0): the channel has posts up to `pos`; a member who
wants them sends CHANNEL_FETCH.
"""

from __future__ import annotations

from .base import Message, MessageType
from .codec import Limit, Record, message, record, wire

__all__ = [
    "CHANNEL_CLASSES",
    "ChannelBan",
    "ChannelComment",
    "ChannelCommentEntry",
    "ChannelCreate",
    "ChannelDelete",
    "ChannelFetch",
    "ChannelFind",
    "ChannelFound",
    "ChannelFoundEntry",
    "ChannelHit",
    "ChannelHits",
    "ChannelInfo",
    "ChannelJoin",
    "ChannelLeave",
    "ChannelLike",
    "ChannelLikes",
    "ChannelMemberEntry",
    "ChannelMemberList",
    "ChannelMembers",
    "ChannelNews",
    "ChannelPage",
    "ChannelPin",
    "ChannelPost",
    "ChannelPostEntry",
    "ChannelPosted",
    "ChannelRead",
    "ChannelSearch",
    "ChannelSetRole",
    "ChannelTransfer",
    "ChannelUpdate",
    "GetChannel",
]

M = MessageType
USER_MAX = 256  # the decoder cap of a username field
NAME_MAX = 64
ABOUT_MAX = 1024
RULES_MAX = 4096
SLOW_MODE_MAX = 86_400
PAGE_MAX = 200
MEMBERS_PAGE_MAX = 1000
ROLES = ("owner", "admin", "member")


# --------------------------------------------------------------------------- the channel


@message(M.CHANNEL_CREATE)
class ChannelCreate(Message):
    name: str = wire(max=NAME_MAX, min=1)
    about: str = wire(default="", max=ABOUT_MAX)
    rules: str = wire(default="", max=RULES_MAX)
    open: bool = True  # anyone may join; false: only with the invitation
    members_post: bool = False  # members post too (admins always do)
    slow_mode: int = wire(default=0, lo=0, hi=SLOW_MODE_MAX)  # seconds; 0: off


@message(M.CHANNEL_INFO)
class ChannelInfo(Message):
    """The channel as the asking member sees it; `invite` only for its admins."""

    channel: int
    name: str = wire(max=NAME_MAX)
    about: str = wire(max=ABOUT_MAX)
    rules: str = wire(max=RULES_MAX)
    owner: str = wire(max=USER_MAX)
    created: int
    open: bool
    members_post: bool
    slow_mode: int
    members: int
    pos: int  # the newest post's position
    pins: tuple[int, ...]
    role: str = wire(choices=ROLES)
    read: int  # the asking member's read position
    invite: str | None = wire(default=None, max=256)


@message(M.GET_CHANNEL)
class GetChannel(Message):
    channel: int


@message(M.CHANNEL_JOIN)
class ChannelJoin(Message):
    channel: int
    invite: str = wire(default="", max=256)


@message(M.CHANNEL_LEAVE)
class ChannelLeave(Message):
    channel: int


@message(M.CHANNEL_UPDATE)
class ChannelUpdate(Message):
    """Admins: change what is given; `new_invite` replaces the invitation (voiding the
    old links), `no_invite` removes it."""

    channel: int
    name: str | None = wire(default=None, max=NAME_MAX, min=1)
    about: str | None = wire(default=None, max=ABOUT_MAX)
    rules: str | None = wire(default=None, max=RULES_MAX)
    open: bool | None = None
    members_post: bool | None = None
    slow_mode: int | None = wire(default=None, lo=0, hi=SLOW_MODE_MAX)
    new_invite: bool = False
    no_invite: bool = False


@message(M.CHANNEL_SET_ROLE)
class ChannelSetRole(Message):
    channel: int
    user: str = wire(max=USER_MAX)
    role: str = wire(choices=("admin", "member"))


@message(M.CHANNEL_BAN)
class ChannelBan(Message):
    channel: int
    user: str = wire(max=USER_MAX)
    ban: bool = True  # false: unban


@message(M.CHANNEL_TRANSFER)
class ChannelTransfer(Message):
    """The owner hands the channel to another member and becomes an admin."""

    channel: int
    user: str = wire(max=USER_MAX)


@message(M.CHANNEL_MEMBERS)
class ChannelMembers(Message):
    """Admins: one page of the members, in the server's order; continue with `after` =
    the answer's `next`."""

    channel: int
    after: int | None = None
    limit: int | None = wire(default=None, lo=1, hi=MEMBERS_PAGE_MAX)


@record()
class ChannelMemberEntry(Record):
    user: str = wire(max=USER_MAX)
    role: str = wire(choices=ROLES)


@message(M.CHANNEL_MEMBER_LIST)
class ChannelMemberList(Message):
    channel: int
    members: tuple[ChannelMemberEntry, ...]
    next: int | None = None  # the `after` of the next page; absent: this was the last


@message(M.CHANNEL_FIND)
class ChannelFind(Message):
    """The open channels of this name (case ignored for ASCII letters): how a user who is
    not a member yet finds a channel by its name."""

    name: str = wire(max=NAME_MAX, min=1)


@record()
class ChannelFoundEntry(Record):
    channel: int
    name: str = wire(max=NAME_MAX)
    about: str = wire(max=ABOUT_MAX)
    members: int


@message(M.CHANNEL_FOUND)
class ChannelFound(Message):
    channels: tuple[ChannelFoundEntry, ...]


# --------------------------------------------------------------------------- posts


@message(M.CHANNEL_POST)
class ChannelPost(Message):
    channel: int
    cmid: str = wire(max=Limit("max_cmid_len"), min=1)
    text: str = wire(max=Limit("max_text_len"), min=1)


@message(M.CHANNEL_POSTED)
class ChannelPosted(Message):
    """The answer to CHANNEL_POST (n = 0) and CHANNEL_COMMENT, once durable."""

    channel: int
    pos: int  # the post's position
    n: int  # the comment's number under it; 0 for the post
    id: int
    ts: int
    duplicate: bool = False


@message(M.CHANNEL_COMMENT)
class ChannelComment(Message):
    channel: int
    post: int
    text: str = wire(max=Limit("max_text_len"), min=1)


@message(M.CHANNEL_LIKE)
class ChannelLike(Message):
    channel: int
    post: int
    like: bool = True  # false: take the like back


@message(M.CHANNEL_LIKES)
class ChannelLikes(Message):
    channel: int
    post: int
    likes: int


@message(M.CHANNEL_PIN)
class ChannelPin(Message):
    channel: int
    post: int
    pin: bool = True


@message(M.CHANNEL_DELETE)
class ChannelDelete(Message):
    """Delete a post (n = 0) or the n-th comment under it."""

    channel: int
    post: int
    n: int = 0


@message(M.CHANNEL_READ)
class ChannelRead(Message):
    channel: int
    pos: int


# --------------------------------------------------------------------------- reading


@record()
class ChannelPostEntry(Record):
    pos: int
    id: int
    author: str = wire(max=USER_MAX)
    ts: int
    text: str = wire(max=None)
    likes: int
    comments: int
    deleted: bool = False
    liked: bool = False  # by the asking member


@record()
class ChannelCommentEntry(Record):
    n: int
    id: int
    author: str = wire(max=USER_MAX)
    ts: int
    text: str = wire(max=None)
    deleted: bool = False


@message(M.CHANNEL_FETCH)
class ChannelFetch(Message):
    """Posts after `after` (oldest first), else before `before` (or the newest); with
    `post`, that post's comments after `after`."""

    channel: int
    after: int | None = None
    before: int | None = None
    post: int | None = None
    limit: int | None = wire(default=None, lo=1, hi=PAGE_MAX)


@message(M.CHANNEL_PAGE)
class ChannelPage(Message):
    channel: int
    posts: tuple[ChannelPostEntry, ...] = ()
    comments: tuple[ChannelCommentEntry, ...] = ()
    post: int | None = None
    more: bool = False


@message(M.CHANNEL_SEARCH)
class ChannelSearch(Message):
    """Posts and comments having every word of `query`, newest first."""

    channel: int
    query: str = wire(max=256, min=1)
    limit: int | None = wire(default=None, lo=1, hi=PAGE_MAX)
    before_id: int | None = None


@record()
class ChannelHit(Record):
    post: int
    n: int  # 0: the post itself
    id: int
    author: str = wire(max=USER_MAX)
    ts: int
    text: str = wire(max=None)


@message(M.CHANNEL_HITS)
class ChannelHits(Message):
    channel: int
    hits: tuple[ChannelHit, ...]


@message(M.CHANNEL_NEWS)
class ChannelNews(Message):
    """Push (rid 0): the channel has posts up to `pos` (coalesced: not one per post)."""

    channel: int
    pos: int


CHANNEL_CLASSES: tuple[type[Message], ...] = (
    ChannelCreate,
    ChannelInfo,
    GetChannel,
    ChannelJoin,
    ChannelLeave,
    ChannelUpdate,
    ChannelSetRole,
    ChannelBan,
    ChannelPost,
    ChannelPosted,
    ChannelComment,
    ChannelLike,
    ChannelLikes,
    ChannelPin,
    ChannelDelete,
    ChannelRead,
    ChannelFetch,
    ChannelPage,
    ChannelSearch,
    ChannelHits,
    ChannelNews,
    ChannelTransfer,
    ChannelMembers,
    ChannelMemberList,
    ChannelFind,
    ChannelFound,
)
