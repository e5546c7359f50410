"""Channel rules (chat/rules/channels.py), planned by the in-memory store's batches with a
clock the test moves: no database, no socket, no event loop turns (commits on demand)."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from liaotian.protocol import ErrorCode, UpdateKind
from liaotian.server.chat import rules
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
    UpdateChannel,
)
from liaotian.server.chat.plan import Needs
from liaotian.server.chat.policy import Policy
from liaotian.server.chat.rules.channels import unread
from liaotian.server.store.memory import MemoryStore


class Forum:
    """A memory store committed by hand, with a clock in ms the test sets."""

    def __init__(self, store: MemoryStore) -> None:
        self.s = store
        self.now = 1_000_000
        store.clock = lambda: self.now
        self.ids: dict[str, int] = {}
        self.answered: list[Any] = []
        store.on_committed = self.answered.extend

    async def users(self, *names: str) -> list[int]:
        for n in names:
            self.ids[n] = await self.s.create_user(n, "h")
        return [self.ids[n] for n in names]

    def run(self, *ops: Any) -> Any:
        """Plan the ops as one batch; the last, answered."""
        for op in ops:
            self.s.submit(op)
        self.s.commit()
        return ops[-1]

    def ok(self, op: Any) -> Any:
        self.run(op)
        assert op.error is None, (op.error, op.error_message)
        return op

    def channel(self, owner: str = "alice", **kw: Any) -> int:
        op = self.ok(CreateChannel(actor=self.ids[owner], name="forum", rules="be kind", **kw))
        assert op.state is not None
        return int(op.state.conv)

    def join(self, channel: int, *names: str, invite: str = "") -> None:
        for n in names:
            self.ok(JoinChannel(actor=self.ids[n], channel=channel, invite=invite))

    def post(self, who: str, channel: int, text: str = "hi", cmid: str | None = None) -> Post:
        self._n = getattr(self, "_n", 0) + 1
        op = Post(actor=self.ids[who], channel=channel, text=text, cmid=cmid or f"p{self._n}")
        return self.run(op)  # type: ignore[no-any-return]

    def log(self, name: str, kind: int) -> list[dict[str, Any]]:
        return [msgpack.unpackb(e[3]) for e in self.s.logs[self.ids[name]] if e[1] == kind]


@pytest.fixture
async def f() -> Forum:
    s = MemoryStore(auto_commit=False)
    await s.open()
    forum = Forum(s)
    await forum.users("alice", "bob", "carol", "dave")
    return forum


# ---------------------------------------------------------------------------- membership


async def test_create_makes_the_owner_a_member_and_logs_it(f: Forum) -> None:
    c = f.channel()
    ch = await f.s.channel(c)
    assert ch is not None and ch.owner == f.ids["alice"] and ch.members == 1
    m = await f.s.channel_member(c, f.ids["alice"])
    assert m is not None and m.role == ROLE_OWNER
    assert f.log("alice", UpdateKind.CHANNEL) == [
        {"event": "created", "channel": c, "name": "forum"}
    ]
    assert (await f.s.conversation(c)) == (3, None, None)


async def test_join_shows_the_rules_and_starts_with_nothing_unread(f: Forum) -> None:
    c = f.channel()
    f.post("alice", c)
    f.post("alice", c)
    op = f.ok(JoinChannel(actor=f.ids["bob"], channel=c))
    assert op.state.rules == "be kind" and op.state.members == 2
    m = await f.s.channel_member(c, f.ids["bob"])
    assert m is not None and m.role == ROLE_MEMBER and m.read_pos == 2
    assert f.run(JoinChannel(actor=f.ids["bob"], channel=c)).error == ErrorCode.CONFLICT
    assert f.log("bob", UpdateKind.CHANNEL)[-1]["event"] == "joined"


async def test_a_closed_channel_takes_only_the_current_invitation(f: Forum) -> None:
    c = f.channel(open=False, invite="secret1")
    assert f.run(JoinChannel(actor=f.ids["bob"], channel=c)).error == ErrorCode.INVALID_INVITE
    assert (
        f.run(JoinChannel(actor=f.ids["bob"], channel=c, invite="nope")).error
        == ErrorCode.INVALID_INVITE
    )
    f.join(c, "bob", invite="secret1")
    f.ok(UpdateChannel(actor=f.ids["alice"], channel=c, invite="secret2"))  # the old link dies
    assert (
        f.run(JoinChannel(actor=f.ids["carol"], channel=c, invite="secret1")).error
        == ErrorCode.INVALID_INVITE
    )
    f.join(c, "carol", invite="secret2")
    f.ok(UpdateChannel(actor=f.ids["alice"], channel=c, invite=""))  # no link at all
    assert (
        f.run(JoinChannel(actor=f.ids["dave"], channel=c, invite="")).error
        == ErrorCode.INVALID_INVITE
    )


async def test_unknown_channels_and_non_members(f: Forum) -> None:
    assert f.run(JoinChannel(actor=f.ids["bob"], channel=999)).error == ErrorCode.NOT_MEMBER
    c = f.channel()
    assert f.post("bob", c).error == ErrorCode.NOT_MEMBER
    assert f.run(LeaveChannel(actor=f.ids["bob"], channel=c)).error == ErrorCode.NOT_MEMBER


async def test_the_member_bound_is_the_policys(f: Forum) -> None:
    c = f.channel()
    small = Policy(max_channel_members=2)
    f.ok(JoinChannel(actor=f.ids["bob"], channel=c, policy=small))
    op = f.run(JoinChannel(actor=f.ids["carol"], channel=c, policy=small))
    assert op.error == ErrorCode.GROUP_FULL
    f.ok(LeaveChannel(actor=f.ids["bob"], channel=c))
    f.ok(JoinChannel(actor=f.ids["carol"], channel=c, policy=small))
    assert Policy().max_channel_members == 100_000


async def test_leave_counts_down_and_the_owner_stays_while_others_do(f: Forum) -> None:
    c = f.channel()
    f.join(c, "bob")
    assert f.run(LeaveChannel(actor=f.ids["alice"], channel=c)).error == ErrorCode.CONFLICT
    f.ok(LeaveChannel(actor=f.ids["bob"], channel=c))
    ch = await f.s.channel(c)
    assert ch is not None and ch.members == 1
    assert await f.s.channel_member(c, f.ids["bob"]) is None
    assert await f.s.channels_of(f.ids["bob"]) == []
    assert f.log("bob", UpdateKind.CHANNEL)[-1]["event"] == "left"


async def test_roles_only_the_owner_appoints_admins(f: Forum) -> None:
    c = f.channel()
    f.join(c, "bob", "carol")
    op = f.run(SetChannelRole(actor=f.ids["bob"], channel=c, user="carol", role="admin"))
    assert op.error == ErrorCode.FORBIDDEN
    f.ok(SetChannelRole(actor=f.ids["alice"], channel=c, user="bob", role="admin"))
    m = await f.s.channel_member(c, f.ids["bob"])
    assert m is not None and m.role == ROLE_ADMIN
    assert (
        f.run(SetChannelRole(actor=f.ids["alice"], channel=c, user="dave", role="admin")).error
        == ErrorCode.CONFLICT
    )
    assert (
        f.run(SetChannelRole(actor=f.ids["alice"], channel=c, user="bob", role="owner")).error
        == ErrorCode.INVALID_FIELD
    )


# ---------------------------------------------------------------------------- posts


async def test_a_post_is_one_row_whatever_the_member_count(f: Forum) -> None:
    c = f.channel()
    f.join(c, "bob", "carol", "dave")
    heads = {u: await f.s.head(u) for u in f.ids.values()}
    op = f.post("alice", c, "news")
    assert op.error is None and op.pos == 1 and op.pushes == []
    assert {u: await f.s.head(u) for u in f.ids.values()} == heads  # no log row for anyone
    assert [p.text for p in await f.s.channel_posts(c)] == ["news"]


async def test_a_post_consults_only_the_authors_rows() -> None:
    op = Post(actor=7, channel=3, text="x", cmid="m")
    n = Needs()
    rules.needs(op, n, None)
    assert n.channels == {3} and n.members == {(3, 7)} and not n.users and not n.groups


async def test_only_admins_post_unless_the_channel_lets_members(f: Forum) -> None:
    c = f.channel()
    f.join(c, "bob")
    assert f.post("bob", c).error == ErrorCode.FORBIDDEN
    f.ok(UpdateChannel(actor=f.ids["alice"], channel=c, members_post=True))
    assert f.post("bob", c).error is None
    assert (
        f.run(UpdateChannel(actor=f.ids["bob"], channel=c, name="x")).error == ErrorCode.FORBIDDEN
    )


async def test_a_retried_post_is_answered_with_the_first(f: Forum) -> None:
    c = f.channel()
    first = f.post("alice", c, "once", cmid="same")
    again = f.post("alice", c, "once", cmid="same")
    assert again.error is None and again.duplicate and again.pos == first.pos
    assert again.id == first.id
    # twice in one batch too
    a, b = (Post(actor=f.ids["alice"], channel=c, text="t", cmid="pair") for _ in range(2))
    f.run(a, b)
    assert not a.duplicate and b.duplicate and a.pos == b.pos == 2
    ch = await f.s.channel(c)
    assert ch is not None and ch.last_pos == 2


async def test_slow_mode_spaces_a_members_posts_and_comments(f: Forum) -> None:
    c = f.channel(members_post=True, slow_mode=30)
    f.join(c, "bob")
    assert f.post("bob", c).error is None
    f.now += 10_000
    op = f.post("bob", c)
    assert op.error == ErrorCode.SLOW_MODE and op.error_retry_after == 20.0
    assert (
        f.run(Comment(actor=f.ids["bob"], channel=c, post=1, text="c")).error == ErrorCode.SLOW_MODE
    )
    assert f.post("alice", c).error is None and f.post("alice", c).error is None  # admins
    f.now += 20_000
    assert f.post("bob", c).error is None
    assert (
        f.run(UpdateChannel(actor=f.ids["alice"], channel=c, slow_mode=-1)).error
        == ErrorCode.INVALID_FIELD
    )


async def test_unread_comes_from_positions(f: Forum) -> None:
    c = f.channel(members_post=True)
    f.join(c, "bob")
    for _ in range(3):
        f.post("alice", c)
    m = await f.s.channel_member(c, f.ids["bob"])
    ch = await f.s.channel(c)
    assert m is not None and ch is not None and unread(m.read_pos, ch.last_pos) == 3
    f.ok(ReadChannel(actor=f.ids["bob"], channel=c, read_pos=2))
    assert f.log("bob", UpdateKind.READ)[-1] == {"conv": c, "user": "bob", "pos": 2}
    f.ok(ReadChannel(actor=f.ids["bob"], channel=c, read_pos=1))  # never backwards
    rows = await f.s.channels_of(f.ids["bob"])
    assert [(r[4], r[5]) for r in rows] == [(3, 2)]
    assert (
        f.run(ReadChannel(actor=f.ids["bob"], channel=c, read_pos=9)).error
        == ErrorCode.INVALID_FIELD
    )
    # one's own post is read when everything before it was; not otherwise
    f.post("bob", c)
    m = await f.s.channel_member(c, f.ids["bob"])
    assert m is not None and m.read_pos == 2
    f.ok(ReadChannel(actor=f.ids["bob"], channel=c, read_pos=4))
    f.post("bob", c)
    m = await f.s.channel_member(c, f.ids["bob"])
    assert m is not None and m.read_pos == 5


async def test_comments_are_numbered_under_their_post(f: Forum) -> None:
    c = f.channel()
    f.join(c, "bob", "carol")
    f.post("alice", c, "topic")
    ops = [
        f.ok(Comment(actor=f.ids[n], channel=c, post=1, text=f"by {n}")) for n in ("bob", "carol")
    ]
    assert [(o.pos, o.n) for o in ops] == [(1, 1), (1, 2)]
    assert [(x.n, x.author, x.text) for x in await f.s.channel_comments(c, 1, 0, 10)] == [
        (1, "bob", "by bob"),
        (2, "carol", "by carol"),
    ]
    assert (
        f.run(Comment(actor=f.ids["bob"], channel=c, post=7, text="x")).error == ErrorCode.NOT_FOUND
    )
    posts = await f.s.channel_posts(c)
    assert posts[0].comments == 2


async def test_one_like_per_member_and_post(f: Forum) -> None:
    c = f.channel()
    f.join(c, "bob", "carol")
    f.post("alice", c)
    assert f.ok(Like(actor=f.ids["bob"], channel=c, post=1)).likes == 1
    assert f.ok(Like(actor=f.ids["bob"], channel=c, post=1)).likes == 1
    assert f.ok(Like(actor=f.ids["carol"], channel=c, post=1)).likes == 2
    assert f.ok(Like(actor=f.ids["bob"], channel=c, post=1, like=False)).likes == 1
    assert f.ok(Like(actor=f.ids["bob"], channel=c, post=1, like=False)).likes == 1
    assert await f.s.channel_liked(c, f.ids["carol"], [1, 2]) == {1}
    assert await f.s.channel_liked(c, f.ids["bob"], [1]) == set()


async def test_pins_are_for_admins_and_bounded(f: Forum) -> None:
    c = f.channel()
    f.join(c, "bob")
    for _ in range(3):
        f.post("alice", c)
    assert f.run(Pin(actor=f.ids["bob"], channel=c, post=1)).error == ErrorCode.FORBIDDEN
    few = Policy(max_channel_pins=2)
    assert f.ok(Pin(actor=f.ids["alice"], channel=c, post=1, policy=few)).pins == (1,)
    assert f.ok(Pin(actor=f.ids["alice"], channel=c, post=3, policy=few)).pins == (1, 3)
    op = f.run(Pin(actor=f.ids["alice"], channel=c, post=2, policy=few))
    assert op.error == ErrorCode.LIMIT_REACHED and op.error_data == {
        "limit": "max_channel_pins",
        "max": 2,
    }
    assert f.ok(Pin(actor=f.ids["alice"], channel=c, post=1, pin=False)).pins == (3,)
    f.ok(DeletePost(actor=f.ids["alice"], channel=c, post=3))  # a deleted post unpins
    ch = await f.s.channel(c)
    assert ch is not None and ch.pins == ()


# ---------------------------------------------------------------------------- moderation


async def test_deleting_posts_and_comments(f: Forum) -> None:
    c = f.channel(members_post=True)
    f.join(c, "bob", "carol")
    f.post("bob", c, "mine")
    f.ok(Comment(actor=f.ids["carol"], channel=c, post=1, text="hers"))
    assert f.run(DeletePost(actor=f.ids["carol"], channel=c, post=1)).error == ErrorCode.FORBIDDEN
    assert (
        f.run(DeleteComment(actor=f.ids["bob"], channel=c, post=1, n=1)).error
        == ErrorCode.FORBIDDEN
    )
    f.ok(DeleteComment(actor=f.ids["carol"], channel=c, post=1, n=1))
    assert (
        f.run(DeleteComment(actor=f.ids["carol"], channel=c, post=1, n=1)).error
        == ErrorCode.NOT_FOUND
    )
    f.ok(DeletePost(actor=f.ids["alice"], channel=c, post=1))  # an admin deletes any
    (p,) = await f.s.channel_posts(c)
    assert p.deleted and p.text == "" and p.comments == 1
    (cm,) = await f.s.channel_comments(c, 1, 0, 10)
    assert cm.deleted and cm.text == ""
    assert await f.s.channel_search(c, "mine", 10) == []
    assert f.run(Like(actor=f.ids["carol"], channel=c, post=1)).error == ErrorCode.NOT_FOUND


async def test_a_ban_removes_the_member_and_keeps_them_out(f: Forum) -> None:
    c = f.channel()
    f.join(c, "bob", "carol")
    f.ok(SetChannelRole(actor=f.ids["alice"], channel=c, user="bob", role="admin"))
    f.ok(BanMember(actor=f.ids["bob"], channel=c, user="carol"))
    ch = await f.s.channel(c)
    assert ch is not None and ch.members == 2
    assert await f.s.channel_banned(c, f.ids["carol"])
    assert f.log("carol", UpdateKind.CHANNEL)[-1]["event"] == "banned"
    assert f.run(JoinChannel(actor=f.ids["carol"], channel=c)).error == ErrorCode.BANNED
    assert f.post("carol", c).error == ErrorCode.BANNED
    assert f.run(BanMember(actor=f.ids["bob"], channel=c, user="carol")).error == ErrorCode.CONFLICT
    # a non-member can be banned ahead; admins do not ban admins or the owner
    f.ok(BanMember(actor=f.ids["bob"], channel=c, user="dave"))
    assert (
        f.run(BanMember(actor=f.ids["bob"], channel=c, user="alice")).error == ErrorCode.FORBIDDEN
    )
    assert (
        f.run(BanMember(actor=f.ids["bob"], channel=c, user="nobody")).error
        == ErrorCode.UNKNOWN_USER
    )
    f.ok(BanMember(actor=f.ids["alice"], channel=c, user="carol", ban=False))
    assert (
        f.run(BanMember(actor=f.ids["alice"], channel=c, user="carol", ban=False)).error
        == ErrorCode.CONFLICT
    )
    f.join(c, "carol")
    f.ok(BanMember(actor=f.ids["alice"], channel=c, user="bob"))  # the owner bans admins


async def test_a_refused_operation_leaves_nothing_behind(f: Forum) -> None:
    c = f.channel(members_post=True, slow_mode=60)
    f.join(c, "bob")
    ok = Post(actor=f.ids["bob"], channel=c, text="first", cmid="a")
    slow = Post(actor=f.ids["bob"], channel=c, text="second", cmid="b")
    f.run(ok, slow)  # one batch: the second is refused by the first's time
    assert ok.error is None and slow.error == ErrorCode.SLOW_MODE
    ch = await f.s.channel(c)
    assert ch is not None and ch.last_pos == 1
    assert [p.text for p in await f.s.channel_posts(c)] == ["first"]
    nxt = f.post("alice", c, "third")
    assert nxt.pos == 2 and nxt.id == ok.id + 1  # no number was lost


async def test_search_finds_every_word_in_posts_and_comments(f: Forum) -> None:
    c = f.channel()
    other = f.channel("bob")
    f.join(c, "bob")
    f.post("alice", c, "Xiaomi Forum opens")
    f.post("alice", c, "the forum rules")
    f.ok(Comment(actor=f.ids["bob"], channel=c, post=1, text="Forum café, XIAOMI fans"))
    f.post("bob", other, "xiaomi forum elsewhere")
    hits = await f.s.channel_search(c, "xiaomi  FORUM!", 10)
    assert [(h.post, h.n, h.author) for h in hits] == [(1, 1, "bob"), (1, 0, "alice")]
    assert [h.post for h in await f.s.channel_search(c, "cafe", 10)] == [1]
    assert len(await f.s.channel_search(c, "forum", 2)) == 2
    page2 = await f.s.channel_search(c, "forum", 10, before_id=hits[0].id)
    assert [(h.post, h.n) for h in page2] == [(2, 0), (1, 0)]
    assert await f.s.channel_search(c, "  ", 10) == []


async def test_batches_see_the_channel_changes_before_them(f: Forum) -> None:
    c = f.channel()
    join = JoinChannel(actor=f.ids["bob"], channel=c)
    like = Like(actor=f.ids["bob"], channel=c, post=1)
    post = Post(actor=f.ids["alice"], channel=c, text="t", cmid="x")
    leave = LeaveChannel(actor=f.ids["bob"], channel=c)
    late = Like(actor=f.ids["bob"], channel=c, post=1, like=False)
    f.run(join, post, like, leave, late)
    assert [o.error for o in (join, post, like, leave)] == [None] * 4
    assert late.error == ErrorCode.NOT_MEMBER and like.likes == 1
