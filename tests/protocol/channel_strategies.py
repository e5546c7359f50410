"""Hypothesis strategies for the channel messages (protocol/channels.py), merged into
test_codec_properties.STRATEGIES."""

from __future__ import annotations

from hypothesis import strategies as st
from liaotian.protocol import MessageType
from liaotian.protocol.base import Message
from liaotian.protocol.channels import (
    ChannelBan,
    ChannelComment,
    ChannelCommentEntry,
    ChannelCreate,
    ChannelDelete,
    ChannelFetch,
    ChannelFind,
    ChannelFound,
    ChannelFoundEntry,
    ChannelHit,
    ChannelHits,
    ChannelInfo,
    ChannelJoin,
    ChannelLeave,
    ChannelLike,
    ChannelLikes,
    ChannelMemberEntry,
    ChannelMemberList,
    ChannelMembers,
    ChannelNews,
    ChannelPage,
    ChannelPin,
    ChannelPost,
    ChannelPosted,
    ChannelPostEntry,
    ChannelRead,
    ChannelSearch,
    ChannelSetRole,
    ChannelTransfer,
    ChannelUpdate,
    GetChannel,
)

T = MessageType
rids = st.integers(0, 2**32 - 1)
u63 = st.integers(0, 2**63 - 1)
txt = st.text(max_size=24)
nonempty = st.text(min_size=1, max_size=24)
users = st.text(max_size=24)
flags = st.booleans()
slow = st.integers(0, 86_400)
limits = st.none() | st.integers(1, 200)
opt = st.none()


def tup(elements: st.SearchStrategy[object]) -> st.SearchStrategy[tuple[object, ...]]:
    return st.lists(elements, max_size=3).map(tuple)


post_entries = st.builds(
    ChannelPostEntry,
    pos=u63,
    id=u63,
    author=users,
    ts=u63,
    text=txt,
    likes=u63,
    comments=u63,
    deleted=flags,
    liked=flags,
)
comment_entries = st.builds(
    ChannelCommentEntry, n=u63, id=u63, author=users, ts=u63, text=txt, deleted=flags
)
hits = st.builds(ChannelHit, post=u63, n=u63, id=u63, author=users, ts=u63, text=txt)

CHANNEL_STRATEGIES: dict[int, st.SearchStrategy[Message]] = {
    T.CHANNEL_CREATE: st.builds(
        ChannelCreate,
        rid=rids,
        name=nonempty,
        about=txt,
        rules=txt,
        open=flags,
        members_post=flags,
        slow_mode=slow,
    ),
    T.CHANNEL_INFO: st.builds(
        ChannelInfo,
        rid=rids,
        channel=u63,
        name=txt,
        about=txt,
        rules=txt,
        owner=users,
        created=u63,
        open=flags,
        members_post=flags,
        slow_mode=u63,
        members=u63,
        pos=u63,
        pins=tup(u63),
        role=st.sampled_from(["owner", "admin", "member"]),
        read=u63,
        invite=opt | txt,
    ),
    T.GET_CHANNEL: st.builds(GetChannel, rid=rids, channel=u63),
    T.CHANNEL_JOIN: st.builds(ChannelJoin, rid=rids, channel=u63, invite=txt),
    T.CHANNEL_LEAVE: st.builds(ChannelLeave, rid=rids, channel=u63),
    T.CHANNEL_UPDATE: st.builds(
        ChannelUpdate,
        rid=rids,
        channel=u63,
        name=opt | nonempty,
        about=opt | txt,
        rules=opt | txt,
        open=opt | flags,
        members_post=opt | flags,
        slow_mode=opt | slow,
        new_invite=flags,
        no_invite=flags,
    ),
    T.CHANNEL_SET_ROLE: st.builds(
        ChannelSetRole, rid=rids, channel=u63, user=users, role=st.sampled_from(["admin", "member"])
    ),
    T.CHANNEL_BAN: st.builds(ChannelBan, rid=rids, channel=u63, user=users, ban=flags),
    T.CHANNEL_POST: st.builds(
        ChannelPost, rid=rids, channel=u63, cmid=st.text(min_size=1, max_size=64), text=nonempty
    ),
    T.CHANNEL_POSTED: st.builds(
        ChannelPosted, rid=rids, channel=u63, pos=u63, n=u63, id=u63, ts=u63, duplicate=flags
    ),
    T.CHANNEL_COMMENT: st.builds(ChannelComment, rid=rids, channel=u63, post=u63, text=nonempty),
    T.CHANNEL_LIKE: st.builds(ChannelLike, rid=rids, channel=u63, post=u63, like=flags),
    T.CHANNEL_LIKES: st.builds(ChannelLikes, rid=rids, channel=u63, post=u63, likes=u63),
    T.CHANNEL_PIN: st.builds(ChannelPin, rid=rids, channel=u63, post=u63, pin=flags),
    T.CHANNEL_DELETE: st.builds(ChannelDelete, rid=rids, channel=u63, post=u63, n=u63),
    T.CHANNEL_READ: st.builds(ChannelRead, rid=rids, channel=u63, pos=u63),
    T.CHANNEL_FETCH: st.builds(
        ChannelFetch,
        rid=rids,
        channel=u63,
        after=opt | u63,
        before=opt | u63,
        post=opt | u63,
        limit=limits,
    ),
    T.CHANNEL_PAGE: st.builds(
        ChannelPage,
        rid=rids,
        channel=u63,
        posts=tup(post_entries),
        comments=tup(comment_entries),
        post=opt | u63,
        more=flags,
    ),
    T.CHANNEL_SEARCH: st.builds(
        ChannelSearch, rid=rids, channel=u63, query=nonempty, limit=limits, before_id=opt | u63
    ),
    T.CHANNEL_HITS: st.builds(ChannelHits, rid=rids, channel=u63, hits=tup(hits)),
    T.CHANNEL_NEWS: st.builds(ChannelNews, rid=rids, channel=u63, pos=u63),
    T.CHANNEL_FIND: st.builds(ChannelFind, rid=rids, name=nonempty),
    T.CHANNEL_FOUND: st.builds(
        ChannelFound,
        rid=rids,
        channels=tup(st.builds(ChannelFoundEntry, channel=u63, name=txt, about=txt, members=u63)),
    ),
    T.CHANNEL_TRANSFER: st.builds(ChannelTransfer, rid=rids, channel=u63, user=users),
    T.CHANNEL_MEMBERS: st.builds(
        ChannelMembers,
        rid=rids,
        channel=u63,
        after=opt | u63,
        limit=st.none() | st.integers(1, 1000),
    ),
    T.CHANNEL_MEMBER_LIST: st.builds(
        ChannelMemberList,
        rid=rids,
        channel=u63,
        members=tup(
            st.builds(
                ChannelMemberEntry, user=users, role=st.sampled_from(["owner", "admin", "member"])
            )
        ),
        next=opt | u63,
    ),
}
