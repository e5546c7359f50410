"""The store contract for channels (store/contract.py), on SQLite and in memory: every
named write of chat.plan.ChannelPlan kept, every channel read answering the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from liaotian.protocol import ErrorCode, UpdateKind
from liaotian.server.chat.model import ROLE_ADMIN, ROLE_MEMBER, ROLE_OWNER
from liaotian.server.chat.ops import (
    BanMember,
    Comment,
    CreateChannel,
    DeleteComment,
    DeletePost,
    JoinChannel,
    LeaveChannel,
    Like,
    Pin,
    Post,
    ReadChannel,
    SetChannelRole,
    TransferChannel,
    UpdateChannel,
)
from liaotian.server.store import Store
from liaotian.server.store.sqlite import SQLiteStore
from test_contract import Driver, d, store

__all__ = ["d", "store"]  # the fixtures, shared with the main contract suite


async def ok(d: Driver, op: Any) -> Any:
    await d.one(op)
    assert op.error is None, (op.error, op.error_message)
    return op


async def make(d: Driver, **kw: Any) -> int:
    op = await ok(
        d, CreateChannel(actor=d.ids["alice"], name="forum", about="about", rules="be kind", **kw)
    )
    return int(op.state.conv)


def post(d: Driver, who: str, c: int, text: str, cmid: str) -> Post:
    return Post(actor=d.ids[who], channel=c, text=text, cmid=cmid)


async def test_a_channel_and_its_members(d: Driver) -> None:
    alice, bob, carol = await d.users("alice", "bob", "carol")
    c = await make(d, open=False, invite="tok", slow_mode=5)
    ch = await d.store.channel(c)
    assert ch is not None and (
        ch.name,
        ch.about,
        ch.rules,
        ch.owner,
        ch.open,
        ch.invite,
        ch.slow_mode,
        ch.members,
    ) == ("forum", "about", "be kind", alice, False, "tok", 5, 1)
    assert await d.store.conversation(c) == (3, None, None)
    bad, good = await d.run(
        JoinChannel(actor=bob, channel=c, invite="x"),
        JoinChannel(actor=bob, channel=c, invite="tok"),
    )
    assert bad.error == ErrorCode.INVALID_INVITE and good.error is None
    await ok(d, JoinChannel(actor=carol, channel=c, invite="tok"))
    await ok(d, SetChannelRole(actor=alice, channel=c, user="bob", role="admin"))
    assert [(u, r) for _u, u, r in await d.store.channel_members(c, 0, 10)] == [
        ("alice", ROLE_OWNER),
        ("bob", ROLE_ADMIN),
        ("carol", ROLE_MEMBER),
    ]
    assert [n for _u, n, _r in await d.store.channel_members(c, bob, 1)] == ["carol"]
    m = await d.store.channel_member(c, bob)
    assert m is not None and m.role == ROLE_ADMIN
    await ok(d, LeaveChannel(actor=carol, channel=c))
    assert await d.store.channel_member(c, carol) is None
    ch = await d.store.channel(c)
    assert ch is not None and ch.members == 2
    await ok(d, UpdateChannel(actor=bob, channel=c, name="renamed", open=True, invite=""))
    ch = await d.store.channel(c)
    assert ch is not None and (ch.name, ch.open, ch.invite, ch.rules) == (
        "renamed",
        True,
        "",
        "be kind",
    )
    assert [r[1] for r in await d.store.channels_of(bob)] == ["renamed"]


async def test_posts_pages_and_retries(d: Driver) -> None:
    _alice, bob = await d.users("alice", "bob")
    c = await make(d)
    await ok(d, JoinChannel(actor=bob, channel=c))
    ops = await d.run(*[post(d, "alice", c, f"post {i}", f"m{i}") for i in range(1, 8)])
    assert [o.pos for o in ops] == list(range(1, 8))
    again = await ok(d, post(d, "alice", c, "post 3", "m3"))  # committed: from the store
    assert again.duplicate and (again.pos, again.id, again.ts) == (3, ops[2].id, ops[2].ts)
    newest = await d.store.channel_posts(c, limit=3)
    assert [p.pos for p in newest] == [5, 6, 7] and newest[0].author == "alice"
    assert [p.pos for p in await d.store.channel_posts(c, before=5, limit=3)] == [2, 3, 4]
    assert [p.text for p in await d.store.channel_posts(c, after=5, limit=10)] == [
        "post 6",
        "post 7",
    ]
    assert await d.store.channel_posts(c, after=7) == []
    ch = await d.store.channel(c)
    assert ch is not None and ch.last_pos == 7 and ch.last_ts == ops[-1].ts
    rows = await d.store.channels_of(bob)
    assert rows == [(c, "forum", ROLE_MEMBER, 2, 7, 0, ops[-1].ts)]
    await ok(d, ReadChannel(actor=bob, channel=c, read_pos=6))
    assert (await d.store.channels_of(bob))[0][5] == 6


async def test_comments_likes_pins_and_deletes(d: Driver) -> None:
    alice, bob, carol = await d.users("alice", "bob", "carol")
    c = await make(d, members_post=True)
    await d.run(JoinChannel(actor=bob, channel=c), JoinChannel(actor=carol, channel=c))
    await d.run(post(d, "bob", c, "first", "a"), post(d, "bob", c, "second", "b"))
    c1, c2 = await d.run(
        Comment(actor=carol, channel=c, post=1, text="reply one"),
        Comment(actor=alice, channel=c, post=1, text="reply two"),
    )
    assert (c1.n, c2.n) == (1, 2) and c2.id == c1.id + 1
    likes = await d.run(
        Like(actor=carol, channel=c, post=1),
        Like(actor=bob, channel=c, post=1),
        Like(actor=carol, channel=c, post=1),
    )
    assert [x.likes for x in likes] == [1, 2, 2]
    assert (await ok(d, Like(actor=carol, channel=c, post=1, like=False))).likes == 1
    assert await d.store.channel_liked(c, bob, [1, 2]) == {1}
    assert await d.store.channel_liked(c, carol, [1, 2]) == set()
    assert (await ok(d, Pin(actor=alice, channel=c, post=2))).pins == (2,)
    (p1, p2) = await d.store.channel_posts(c)
    assert (p1.likes, p1.comments, p2.likes) == (1, 2, 0)
    await ok(d, DeleteComment(actor=alice, channel=c, post=1, n=1))
    assert [(x.n, x.text, x.deleted) for x in await d.store.channel_comments(c, 1, 0, 10)] == [
        (1, "", True),
        (2, "reply two", False),
    ]
    assert [x.n for x in await d.store.channel_comments(c, 1, 1, 10)] == [2]
    await ok(d, DeletePost(actor=bob, channel=c, post=2))
    ch = await d.store.channel(c)
    assert ch is not None and ch.pins == ()
    p2 = (await d.store.channel_posts(c))[1]
    assert p2.deleted and p2.text == ""
    gone = await d.one(Comment(actor=carol, channel=c, post=2, text="late"))
    assert gone.error == ErrorCode.NOT_FOUND


async def test_bans(d: Driver) -> None:
    alice, bob = await d.users("alice", "bob")
    c = await make(d)
    await ok(d, JoinChannel(actor=bob, channel=c))
    await ok(d, BanMember(actor=alice, channel=c, user="bob"))
    assert await d.store.channel_banned(c, bob)
    assert await d.store.channel_member(c, bob) is None
    assert (await d.one(JoinChannel(actor=bob, channel=c))).error == ErrorCode.BANNED
    await ok(d, BanMember(actor=alice, channel=c, user="bob", ban=False))
    assert not await d.store.channel_banned(c, bob)
    await ok(d, JoinChannel(actor=bob, channel=c))
    assert [e["event"] for _s, k, e in await d.log("bob") if k == UpdateKind.CHANNEL] == [
        "joined",
        "banned",
        "joined",
    ]


async def test_search(d: Driver) -> None:
    alice, bob = await d.users("alice", "bob")
    c = await make(d, members_post=True)
    other = await make(d)
    await ok(d, JoinChannel(actor=bob, channel=c))
    await d.run(
        post(d, "alice", c, "Xiaomi forum opens today", "a"),
        post(d, "bob", c, "Forum rules, café hours", "b"),
        post(d, "alice", other, "xiaomi forum elsewhere", "c"),
    )
    await ok(d, Comment(actor=bob, channel=c, post=1, text="XIAOMI, forum fans!"))
    hits = await d.store.channel_search(c, "forum xiaomi", 10)
    assert [(h.post, h.n, h.author) for h in hits] == [(1, 1, "bob"), (1, 0, "alice")]
    assert hits[1].text == "Xiaomi forum opens today"
    assert [h.post for h in await d.store.channel_search(c, "CAFE", 10)] == [2]
    assert [h.id for h in await d.store.channel_search(c, "forum", 10, before_id=hits[0].id)] == [
        hits[1].id + 1,
        hits[1].id,
    ]  # not the other channel's (id 3)
    assert await d.store.channel_search(c, 'forum" OR "x', 10) == []  # no syntax passes
    assert await d.store.channel_search(c, "???", 10) == []
    await ok(d, DeletePost(actor=alice, channel=c, post=1))
    assert [(h.post, h.n) for h in await d.store.channel_search(c, "xiaomi", 10)] == [(1, 1)]


async def test_a_refused_channel_write_leaves_the_rest_of_its_batch(d: Driver) -> None:
    _alice, bob = await d.users("alice", "bob")
    c = await make(d, members_post=True, slow_mode=60)
    await ok(d, JoinChannel(actor=bob, channel=c))
    a, b, x = await d.run(
        post(d, "bob", c, "one", "1"),
        post(d, "bob", c, "two", "2"),
        post(d, "alice", c, "three", "3"),
    )
    assert (a.error, b.error, x.error) == (None, ErrorCode.SLOW_MODE, None)
    assert b.error_retry_after is not None and 0 < b.error_retry_after <= 60
    assert [p.text for p in await d.store.channel_posts(c)] == ["one", "three"]
    assert x.id == a.id + 1


async def test_channels_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "restart.db")
    s: Store = SQLiteStore(path)
    await s.open()
    d = Driver(s)
    alice, bob = await d.users("alice", "bob")
    c = await make(d, members_post=True)
    await ok(d, JoinChannel(actor=bob, channel=c))
    first = await ok(d, post(d, "bob", c, "kept", "k"))
    await ok(d, Like(actor=alice, channel=c, post=1))
    await s.close()
    s = SQLiteStore(path)
    await s.open()
    try:
        d2 = Driver(s)
        d2.ids = d.ids
        again = await ok(d2, post(d2, "bob", c, "kept", "k"))
        assert again.duplicate and again.id == first.id
        nxt = await ok(d2, post(d2, "alice", c, "new", "n"))
        assert (nxt.pos, nxt.id) == (2, first.id + 1)
        assert (await ok(d2, Like(actor=alice, channel=c, post=1))).likes == 1
        assert (await ok(d2, Like(actor=bob, channel=c, post=1))).likes == 2
        assert (await d2.one(JoinChannel(actor=bob, channel=c))).error == ErrorCode.CONFLICT
        ch = await s.channel(c)
        assert ch is not None and ch.members == 2 and ch.last_pos == 2
    finally:
        await s.close()


@pytest.mark.parametrize("n", [200])
async def test_many_members_join_in_few_batches(d: Driver, n: int) -> None:
    names = [f"u{i}" for i in range(n)]
    await d.users("alice", *names)
    c = await make(d)
    await d.run(*[JoinChannel(actor=d.ids[u], channel=c) for u in names])
    ch = await d.store.channel(c)
    assert ch is not None and ch.members == n + 1
    assert len(await d.store.channel_members(c, 0, 1000)) == n + 1


async def test_open_channels_by_name_and_ownership_transfer(d: Driver) -> None:
    alice, bob = await d.users("alice", "bob")
    first = await make(d)
    await make(d, open=False, invite="tok")  # a closed "forum": never found by name
    other = await ok(d, CreateChannel(actor=bob, name="FORUM", about="", rules=""))
    await ok(d, JoinChannel(actor=alice, channel=other.state.conv, invite=""))
    found = await d.store.channels_named("Forum", 10)
    assert [ch.conv for ch in found] == [other.state.conv, first]  # the most members first
    assert await d.store.channels_named("nothing", 10) == []
    await ok(d, JoinChannel(actor=bob, channel=first, invite=""))
    await ok(d, TransferChannel(actor=alice, channel=first, user="bob"))
    ch = await d.store.channel(first)
    assert ch is not None and ch.owner == bob
    roles = {n: r for _u, n, r in await d.store.channel_members(first, 0, 10)}
    assert roles == {"alice": ROLE_ADMIN, "bob": ROLE_OWNER}
    refused = (await d.run(TransferChannel(actor=alice, channel=first, user="bob")))[0]
    assert refused.error == ErrorCode.FORBIDDEN
