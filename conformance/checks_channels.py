"""Channels: SPEC section 24 (membership and invitations, posts, comments, likes, moderation,
news, pages, search, the chat list, ownership and the member list).

Every check creates its own channel and users; positions are checked relative to what the
check itself posted."""

from __future__ import annotations

from typing import Any

from . import wire
from .registry import Context, Session, check, expect, expect_error, expect_type


async def _create(s: Session, name: str = "forum", **settings: Any) -> dict[str, Any]:
    f = await s.req(wire.CHANNEL_CREATE, {"name": name, **settings})
    return expect_type(f, wire.CHANNEL_INFO, "CHANNEL_CREATE").payload


async def _join(s: Session, channel: int, invite: str = "") -> dict[str, Any]:
    f = await s.req(wire.CHANNEL_JOIN, {"channel": channel, "invite": invite})
    return expect_type(f, wire.CHANNEL_INFO, "CHANNEL_JOIN").payload


async def _post(s: Session, channel: int, text: str, cmid: str | None = None) -> dict[str, Any]:
    f = await s.req(
        wire.CHANNEL_POST, {"channel": channel, "cmid": cmid or Context.cmid(), "text": text}
    )
    return expect_type(f, wire.CHANNEL_POSTED, "CHANNEL_POST").payload


async def _ok(s: Session, msg_type: int, payload: dict[str, Any], what: str) -> None:
    expect_type(await s.req(msg_type, payload), wire.OK, what)


@check(section="24.1", title="CHANNEL_CREATE answers CHANNEL_INFO: owner, one member, no posts")
async def channel_create(ctx: Context) -> None:
    a = await ctx.user()
    info = await _create(a, "news", about="about it", rules="be kind", open=False)
    expect(
        info.get("owner") == a.user
        and info.get("role") == "owner"
        and info.get("members") == 1
        and info.get("pos") == 0
        and info.get("read") == 0
        and info.get("rules") == "be kind"
        and info.get("open") is False
        and isinstance(info.get("invite"), str)
        and type(info.get("channel")) is int,
        f"CHANNEL_INFO {info}",
    )
    again = expect_type(
        await a.req(wire.GET_CHANNEL, {"channel": info["channel"]}), wire.CHANNEL_INFO, "GET"
    ).payload
    expect(again.get("name") == "news" and again.get("owner") == a.user, f"GET_CHANNEL {again}")


@check(
    section="24.1",
    title="a closed channel takes only its invitation (3051), voided by new_invite; "
    "a member joins once (3008); the invitation is shown to admins only",
)
async def channel_invitation(ctx: Context) -> None:
    a, b, c = await ctx.user(), await ctx.user(), await ctx.user()
    info = await _create(a, open=False, rules="no spam")
    ch, invite = info["channel"], info["invite"]
    expect_error(
        await b.req(wire.CHANNEL_JOIN, {"channel": ch}), wire.E_INVALID_INVITE, "no invite"
    )
    joined = await _join(b, ch, invite)
    expect(
        joined.get("rules") == "no spam"
        and joined.get("members") == 2
        and joined.get("role") == "member"
        and joined.get("invite") is None,
        f"CHANNEL_INFO on joining {joined}",
    )
    expect_error(
        await b.req(wire.CHANNEL_JOIN, {"channel": ch, "invite": invite}),
        wire.E_CONFLICT,
        "joining twice",
    )
    upd = expect_type(
        await a.req(wire.CHANNEL_UPDATE, {"channel": ch, "new_invite": True}),
        wire.CHANNEL_INFO,
        "CHANNEL_UPDATE new_invite",
    ).payload
    expect(upd.get("invite") not in (None, invite), f"the invitation stayed: {upd}")
    expect_error(
        await c.req(wire.CHANNEL_JOIN, {"channel": ch, "invite": invite}),
        wire.E_INVALID_INVITE,
        "joining with a voided invitation",
    )
    await _join(c, ch, upd["invite"])


@check(
    section="24.1",
    title="requests about a channel one is not a member of answer 3005",
)
async def channel_not_member(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    ch = (await _create(a))["channel"]
    for msg_type, payload in (
        (wire.GET_CHANNEL, {"channel": ch}),
        (wire.CHANNEL_FETCH, {"channel": ch}),
        (wire.CHANNEL_POST, {"channel": ch, "cmid": Context.cmid(), "text": "hi"}),
        (wire.CHANNEL_LEAVE, {"channel": ch}),
    ):
        expect_error(await b.req(msg_type, payload), wire.E_NOT_MEMBER, wire.NAMES[msg_type])


@check(
    section="24.2",
    title="CHANNEL_POST: admins post (members only with members_post, else 3007); "
    "positions count up; a retry with the same cmid answers duplicate",
)
async def channel_post(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    ch = (await _create(a))["channel"]
    await _join(b, ch)
    expect_error(
        await b.req(wire.CHANNEL_POST, {"channel": ch, "cmid": Context.cmid(), "text": "x"}),
        wire.E_FORBIDDEN,
        "a member's post where members do not post",
    )
    cmid = Context.cmid()
    first = await _post(a, ch, "one", cmid)
    second = await _post(a, ch, "two")
    expect(first.get("pos") == 1 and second.get("pos") == 2, f"{first} {second}")
    expect(first.get("n") == 0 and first.get("duplicate") is False, f"{first}")
    again = await _post(a, ch, "one", cmid)
    expect(
        again.get("duplicate") is True
        and again.get("pos") == 1
        and again.get("id") == first.get("id"),
        f"the retry answered {again}",
    )


@check(
    section="24.2",
    title="comments are numbered under their post; one like per member (CHANNEL_LIKES "
    "counts); a deleted post takes no comment (3052)",
)
async def channel_comments_likes(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    ch = (await _create(a))["channel"]
    await _join(b, ch)
    pos = (await _post(a, ch, "post"))["pos"]
    for n in (1, 2):
        f = await b.req(wire.CHANNEL_COMMENT, {"channel": ch, "post": pos, "text": f"c{n}"})
        got = expect_type(f, wire.CHANNEL_POSTED, "CHANNEL_COMMENT").payload
        expect(got.get("n") == n and got.get("pos") == pos, f"comment {n}: {got}")
    counts = []
    for like in (True, True, False, False):
        f = await b.req(wire.CHANNEL_LIKE, {"channel": ch, "post": pos, "like": like})
        counts.append(expect_type(f, wire.CHANNEL_LIKES, "CHANNEL_LIKE").payload.get("likes"))
    expect(counts == [1, 1, 0, 0], f"like counts {counts}")
    page = expect_type(
        await b.req(wire.CHANNEL_FETCH, {"channel": ch, "post": pos}),
        wire.CHANNEL_PAGE,
        "CHANNEL_FETCH comments",
    ).payload
    expect([c.get("text") for c in page.get("comments", [])] == ["c1", "c2"], f"{page}")
    await _ok(a, wire.CHANNEL_DELETE, {"channel": ch, "post": pos}, "CHANNEL_DELETE")
    expect_error(
        await b.req(wire.CHANNEL_COMMENT, {"channel": ch, "post": pos, "text": "late"}),
        wire.E_NOT_FOUND,
        "a comment under a deleted post",
    )


@check(
    section="24.4",
    title="an online member is sent CHANNEL_NEWS (rid 0) with the channel's newest position",
)
async def channel_news(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    ch = (await _create(a))["channel"]
    await _join(b, ch)
    await _post(a, ch, "one")
    last = (await _post(a, ch, "two"))["pos"]
    while True:
        f = await b.conn.next(lambda f: f.type == wire.CHANNEL_NEWS and f.rid == 0, "CHANNEL_NEWS")
        expect(f.payload.get("channel") == ch, f"news of another channel: {f}")
        if f.payload.get("pos") == last:
            return
        expect(f.payload.get("pos", 0) < last, f"news beyond the newest post: {f}")


@check(
    section="24.4",
    title="CHANNEL_FETCH pages posts after/before a position with `more`; CHANNEL_READ "
    "moves forward only, beyond the newest post is 1003; the chat list counts unread",
)
async def channel_pages_and_read(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    ch = (await _create(a))["channel"]
    await _join(b, ch)
    for i in range(1, 6):
        await _post(a, ch, f"post {i}")

    async def fetch(**q: Any) -> dict[str, Any]:
        f = await b.req(wire.CHANNEL_FETCH, {"channel": ch, **q})
        return expect_type(f, wire.CHANNEL_PAGE, "CHANNEL_FETCH").payload

    first = await fetch(after=0, limit=2)
    expect([p["pos"] for p in first["posts"]] == [1, 2] and first["more"] is True, f"{first}")
    tail = await fetch(after=3, limit=2)
    expect([p["pos"] for p in tail["posts"]] == [4, 5] and tail["more"] is False, f"{tail}")
    newest = await fetch(limit=2)
    expect([p["pos"] for p in newest["posts"]] == [4, 5] and newest["more"] is True, f"{newest}")
    older = await fetch(before=4, limit=2)
    expect([p["pos"] for p in older["posts"]] == [2, 3], f"{older}")
    chats = expect_type(
        await b.req(wire.LIST_CONVERSATIONS, {"channels": True}),
        wire.CONVERSATION_LIST,
        "LIST_CONVERSATIONS channels",
    ).payload
    entry = [c for c in chats.get("conversations", []) if c.get("kind") == "channel"]
    expect(
        len(entry) == 1 and entry[0].get("channel") == ch and entry[0].get("unread") == 5,
        f"the chat list {chats}",
    )
    await _ok(b, wire.CHANNEL_READ, {"channel": ch, "pos": 4}, "CHANNEL_READ")
    await _ok(b, wire.CHANNEL_READ, {"channel": ch, "pos": 2}, "CHANNEL_READ backwards")
    info = expect_type(
        await b.req(wire.GET_CHANNEL, {"channel": ch}), wire.CHANNEL_INFO, "GET_CHANNEL"
    ).payload
    expect(info.get("read") == 4, f"the read position went back or did not move: {info}")
    expect_error(
        await b.req(wire.CHANNEL_READ, {"channel": ch, "pos": 6}),
        wire.E_INVALID_FIELD,
        "CHANNEL_READ beyond the newest post",
    )


@check(
    section="24.4",
    title="CHANNEL_SEARCH finds posts (n 0) and comments having every word, newest first, "
    "and no deleted text",
)
async def channel_search(ctx: Context) -> None:
    a = await ctx.user()
    ch = (await _create(a))["channel"]
    p1 = (await _post(a, ch, "Red apples are sweet"))["pos"]
    p2 = (await _post(a, ch, "green apples"))["pos"]
    await _post(a, ch, "sweet red cherries")
    f = await a.req(wire.CHANNEL_COMMENT, {"channel": ch, "post": p1, "text": "apples, RED ones"})
    expect_type(f, wire.CHANNEL_POSTED, "CHANNEL_COMMENT")

    async def hits(query: str) -> list[tuple[int, int]]:
        f = await a.req(wire.CHANNEL_SEARCH, {"channel": ch, "query": query})
        got = expect_type(f, wire.CHANNEL_HITS, "CHANNEL_SEARCH").payload.get("hits", [])
        return [(h.get("post"), h.get("n")) for h in got]

    found = await hits("red apples")
    expect(found == [(p1, 1), (p1, 0)], f"'red apples' found {found}")
    await _ok(a, wire.CHANNEL_DELETE, {"channel": ch, "post": p2}, "CHANNEL_DELETE")
    found = await hits("green")
    expect(found == [], f"a deleted post was found: {found}")


@check(
    section="24.3",
    title="CHANNEL_BAN removes a member and keeps them out (3050) until unbanned; "
    "banning twice is 3008; members cannot ban (3007)",
)
async def channel_ban(ctx: Context) -> None:
    a, b, c = await ctx.user(), await ctx.user(), await ctx.user()
    ch = (await _create(a))["channel"]
    await _join(b, ch)
    await _join(c, ch)
    expect_error(
        await c.req(wire.CHANNEL_BAN, {"channel": ch, "user": b.user}),
        wire.E_FORBIDDEN,
        "a member's ban",
    )
    await _ok(a, wire.CHANNEL_BAN, {"channel": ch, "user": b.user}, "CHANNEL_BAN")
    expect_error(
        await a.req(wire.CHANNEL_BAN, {"channel": ch, "user": b.user}),
        wire.E_CONFLICT,
        "banning twice",
    )
    expect_error(await b.req(wire.GET_CHANNEL, {"channel": ch}), wire.E_BANNED, "banned GET")
    expect_error(await b.req(wire.CHANNEL_JOIN, {"channel": ch}), wire.E_BANNED, "banned JOIN")
    await _ok(a, wire.CHANNEL_BAN, {"channel": ch, "user": b.user, "ban": False}, "unban")
    await _join(b, ch)


@check(
    section="24.3",
    title="slow mode: a member's second post within slow_mode seconds is 3053 with "
    "retry_after; admins are not slowed",
)
async def channel_slow_mode(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    ch = (await _create(a, members_post=True, slow_mode=600))["channel"]
    await _join(b, ch)
    await _post(b, ch, "first")
    f = await b.req(wire.CHANNEL_POST, {"channel": ch, "cmid": Context.cmid(), "text": "2nd"})
    expect_error(f, wire.E_SLOW_MODE, "a second post in slow mode")
    wait = f.payload.get("retry_after")
    expect(isinstance(wait, int | float) and 0 < wait <= 600, f"retry_after {wait}")
    await _post(a, ch, "admin one")
    await _post(a, ch, "admin two")


@check(
    section="24.1",
    title="CHANNEL_TRANSFER hands the channel to a member (owner only, 3007); the old "
    "owner becomes an admin and may leave",
)
async def channel_transfer(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    ch = (await _create(a))["channel"]
    await _join(b, ch)
    expect_error(
        await a.req(wire.CHANNEL_LEAVE, {"channel": ch}), wire.E_CONFLICT, "the owner leaving"
    )
    expect_error(
        await b.req(wire.CHANNEL_TRANSFER, {"channel": ch, "user": b.user}),
        wire.E_FORBIDDEN,
        "a member's CHANNEL_TRANSFER",
    )
    await _ok(a, wire.CHANNEL_TRANSFER, {"channel": ch, "user": b.user}, "CHANNEL_TRANSFER")
    info = expect_type(
        await a.req(wire.GET_CHANNEL, {"channel": ch}), wire.CHANNEL_INFO, "GET_CHANNEL"
    ).payload
    expect(info.get("owner") == b.user and info.get("role") == "admin", f"{info}")
    await _ok(a, wire.CHANNEL_LEAVE, {"channel": ch}, "the old owner leaving")


@check(
    section="24.1",
    title="CHANNEL_MEMBERS pages the members with roles for admins (next until the last "
    "page); members are refused (3007)",
)
async def channel_members(ctx: Context) -> None:
    a, b, c = await ctx.user(), await ctx.user(), await ctx.user()
    ch = (await _create(a))["channel"]
    await _join(b, ch)
    await _join(c, ch)
    expect_error(
        await b.req(wire.CHANNEL_MEMBERS, {"channel": ch}), wire.E_FORBIDDEN, "a member's list"
    )
    seen: dict[str, str] = {}
    after: int | None = None
    for _page in range(4):
        q: dict[str, Any] = {"channel": ch, "limit": 2}
        if after is not None:
            q["after"] = after
        page = expect_type(
            await a.req(wire.CHANNEL_MEMBERS, q), wire.CHANNEL_MEMBER_LIST, "CHANNEL_MEMBERS"
        ).payload
        members = page.get("members", [])
        expect(len(members) <= 2, f"a page beyond its limit: {page}")
        seen.update({m["user"]: m["role"] for m in members})
        after = page.get("next")
        if after is None:
            break
    expect(
        seen == {a.user: "owner", b.user: "member", c.user: "member"} and after is None,
        f"the members {seen}",
    )


@check(
    section="24.1",
    title="CHANNEL_FIND lists the open channels of a name (ASCII case ignored) with their "
    "ids, and never a closed one",
)
async def channel_find(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    name = "Find-" + Context.cmid()
    open_ch = (await _create(a, name, about="public"))["channel"]
    await _create(a, name, open=False)
    f = await b.req(wire.CHANNEL_FIND, {"name": name.lower()})
    found = expect_type(f, wire.CHANNEL_FOUND, "CHANNEL_FIND").payload.get("channels", [])
    expect(
        [(c.get("channel"), c.get("name"), c.get("members")) for c in found]
        == [(open_ch, name, 1)],
        f"CHANNEL_FOUND {found}",
    )
    await _join(b, open_ch)
