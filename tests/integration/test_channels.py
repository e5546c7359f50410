"""Channels against a real server on port 0: a closed channel, joins by invitation,
posts as one row with a coalesced CHANNEL_NEWS to online members, comments, likes,
pages, search, slow mode, bans and the chat list."""

from __future__ import annotations

from typing import Any

from liaotian.protocol import ErrorCode, Updates
from liaotian.protocol.channels import (
    ChannelBan,
    ChannelComment,
    ChannelCreate,
    ChannelFetch,
    ChannelHits,
    ChannelInfo,
    ChannelJoin,
    ChannelLike,
    ChannelLikes,
    ChannelNews,
    ChannelPage,
    ChannelPost,
    ChannelPosted,
    ChannelRead,
    ChannelSearch,
    ChannelUpdate,
)
from liaotian.protocol.social import ConversationList, ListConversations
from socialclient import SocialClient, social_server


async def news(c: SocialClient, upto: int) -> list[int]:
    """The positions of the CHANNEL_NEWS pushes until one says `upto` (log entries
    pushed in between are skipped)."""
    seen: list[int] = []
    while not seen or seen[-1] < upto:
        push: Any = await c.next_push(5.0)
        if isinstance(push, Updates):
            continue
        assert isinstance(push, ChannelNews), push
        seen.append(push.pos)
    return seen


async def test_a_forum_end_to_end(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob, carol, dave = await net.users("alice", "bob", "carol", "dave")
        info = await alice.get(
            ChannelCreate, ChannelInfo, name="xiaomi", rules="be kind", open=False
        )
        c = info.channel
        assert info.role == "owner" and info.invite and info.members == 1
        joined = await bob.get(ChannelJoin, ChannelInfo, channel=c, invite=info.invite)
        assert joined.rules == "be kind" and joined.role == "member" and joined.invite is None
        await carol.get(ChannelJoin, ChannelInfo, channel=c, invite=info.invite)
        await dave.fail(ChannelJoin, ErrorCode.INVALID_INVITE, channel=c, invite="guess")
        await dave.fail(ChannelFetch, ErrorCode.NOT_MEMBER, channel=c)

        first = await alice.get(
            ChannelPost, ChannelPosted, channel=c, cmid="p1", text="Welcome to the forum"
        )
        second = await alice.get(
            ChannelPost, ChannelPosted, channel=c, cmid="p2", text="Rules are pinned"
        )
        assert (first.pos, second.pos) == (1, 2) and first.n == 0
        again = await alice.get(ChannelPost, ChannelPosted, channel=c, cmid="p1", text="x")
        assert again.duplicate and again.id == first.id
        for member in (bob, carol):  # told, coalesced: at most one notice per post
            told = await news(member, 2)
            assert told[-1] == 2 and len(told) <= 2
        await bob.fail(ChannelPost, ErrorCode.FORBIDDEN, channel=c, cmid="b", text="me too")

        comment = await bob.get(ChannelComment, ChannelPosted, channel=c, post=1, text="hi all")
        assert (comment.pos, comment.n) == (1, 1)
        likes = await carol.get(ChannelLike, ChannelLikes, channel=c, post=1)
        assert likes.likes == 1
        page = await bob.get(ChannelFetch, ChannelPage, channel=c, after=0)
        assert [(p.pos, p.text, p.comments) for p in page.posts] == [
            (1, "Welcome to the forum", 1),
            (2, "Rules are pinned", 0),
        ]
        assert not page.more and not page.posts[0].liked
        mine = await carol.get(ChannelFetch, ChannelPage, channel=c, limit=1)
        assert [p.pos for p in mine.posts] == [2] and mine.more
        thread = await carol.get(ChannelFetch, ChannelPage, channel=c, post=1)
        assert [(x.author, x.text) for x in thread.comments] == [("bob", "hi all")]
        hits = await carol.get(ChannelSearch, ChannelHits, channel=c, query="FORUM")
        assert [(h.post, h.n) for h in hits.hits] == [(1, 0)]

        listed = await bob.get(ListConversations, ConversationList, channels=True)
        (entry,) = [x for x in listed.conversations if x.kind == "channel"]
        assert (entry.channel, entry.name, entry.unread, entry.read) == (c, "xiaomi", 2, 0)
        await bob.ok(ChannelRead, channel=c, pos=2)
        listed = await bob.get(ListConversations, ConversationList, channels=True)
        assert [x.unread for x in listed.conversations if x.kind == "channel"] == [0]
        plain = await bob.get(ListConversations, ConversationList)
        assert all(x.kind != "channel" for x in plain.conversations)

        await alice.get(ChannelUpdate, ChannelInfo, channel=c, members_post=True, slow_mode=60)
        await carol.get(ChannelPost, ChannelPosted, channel=c, cmid="b1", text="now I can")
        slow = await carol.fail(
            ChannelPost, ErrorCode.SLOW_MODE, channel=c, cmid="b2", text="and again"
        )
        assert slow.retry_after is not None and 0 < slow.retry_after <= 60
        await bob.fail(ChannelPost, ErrorCode.SLOW_MODE, channel=c, cmid="b3", text="x")
        await alice.ok(ChannelBan, channel=c, user="carol")
        await carol.fail(ChannelFetch, ErrorCode.BANNED, channel=c)
