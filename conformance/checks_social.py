"""The social layer: SPEC sections 16-23 (groups, receipts, chat list, typing, presence,
contacts and blocking, profiles and privacy)."""

from __future__ import annotations

from typing import Any

from . import wire
from .registry import (
    Context,
    Session,
    check,
    error_rid0,
    expect,
    expect_error,
    expect_type,
    send,
)


async def befriend(a: Session, b: Session) -> None:
    """Make a and b contacts (22.1), so that privacy settings about strangers do not apply."""
    expect_type(await a.req(wire.CONTACT_REQUEST, {"user": b.user}), wire.OK, "CONTACT_REQUEST")
    expect_type(await b.req(wire.CONTACT_ACCEPT, {"user": a.user}), wire.OK, "CONTACT_ACCEPT")


async def _group(ctx: Context, n_members: int = 1) -> tuple[Session, list[Session], int]:
    owner = await ctx.user()
    members = [await ctx.user() for _ in range(n_members)]
    for m in members:
        await befriend(owner, m)
    f = await owner.req(wire.GROUP_CREATE, {"name": "Trip", "members": [m.user for m in members]})
    expect_type(f, wire.GROUP_INFO, "GROUP_CREATE")
    return owner, members, int(f.payload["group"])


@check(
    section="17.2",
    title="GROUP_CREATE answers GROUP_INFO: creator owner, members, pos 1 (created event)",
)
async def group_create(ctx: Context) -> None:
    owner = await ctx.user()
    member = await ctx.user()
    await befriend(owner, member)
    m = member.user
    f = expect_type(
        await owner.req(wire.GROUP_CREATE, {"name": "Trip", "members": [m, m], "topic": "t"}),
        wire.GROUP_INFO,
        "GROUP_CREATE",
    )
    p = f.payload
    expect(
        p.get("owner") == owner.user and p.get("name") == "Trip" and p.get("pos") == 1,
        f"GROUP_INFO {f}",
    )
    roles = [(x.get("user"), x.get("role")) for x in p.get("members", [])]
    expect(roles == [(owner.user, "owner"), (m, "member")], f"members {roles}")


@check(section="17.2", title="GROUP_CREATE naming an unknown user is 3001 and creates nothing")
async def group_create_unknown(ctx: Context) -> None:
    owner = await ctx.user()
    f = await owner.req(wire.GROUP_CREATE, {"name": "G", "members": [ctx.name("nx")]})
    expect_error(f, wire.E_UNKNOWN_USER, "GROUP_CREATE with an unknown member")
    f = expect_type(await owner.req(wire.LIST_GROUPS, {}), wire.GROUP_LIST, "LIST_GROUPS")
    expect(f.payload.get("groups") == [], f"a group was created: {f}")


@check(
    section="17.1",
    title="a request about a group from a non-member, or about a group that "
    "does not exist, is 3005",
)
async def group_not_member(ctx: Context) -> None:
    _, _, gid = await _group(ctx)
    stranger = await ctx.user()
    expect_error(
        await stranger.req(wire.GET_GROUP, {"group": gid}),
        wire.E_NOT_MEMBER,
        "GET_GROUP by a stranger",
    )
    expect_error(
        await stranger.req(wire.SEND, {"group": gid, "cmid": "c", "text": "x"}),
        wire.E_NOT_MEMBER,
        "SEND to a group by a stranger",
    )
    expect_error(
        await stranger.req(wire.GET_GROUP, {"group": 2**62}),
        wire.E_NOT_MEMBER,
        "GET_GROUP of a group that does not exist",
    )


@check(section="17.1", title="a plain member may not add members (3007 FORBIDDEN)")
async def member_cannot_add(ctx: Context) -> None:
    _, members, gid = await _group(ctx)
    other = await ctx.register()
    expect_error(
        await members[0].req(wire.GROUP_ADD, {"group": gid, "users": [other]}),
        wire.E_FORBIDDEN,
        "GROUP_ADD by a member",
    )


@check(
    section="17.3",
    title="a group message is SENT with conv = group and pushed to the other "
    "members with group, not to",
)
async def group_send(ctx: Context) -> None:
    owner, members, gid = await _group(ctx)
    sent = expect_type(
        await owner.req(wire.SEND, {"group": gid, "cmid": ctx.cmid(), "text": "all"}),
        wire.SENT,
        "SEND group",
    )
    expect(sent.payload.get("conv") == gid, f"SENT.conv {sent.payload.get('conv')} != {gid}")
    m = members[0]
    f = await m.conn.next(
        lambda f: (
            f.type == wire.UPDATES
            and f.rid == 0
            and any(u[2].get("text") == "all" for u in f.payload["updates"])
        ),
        "the group message push",
    )
    msg = next(u[2] for u in f.payload["updates"] if u[2].get("text") == "all")
    expect(
        msg.get("group") == gid and "to" not in msg and msg.get("conv") == gid,
        f"group message map {msg}",
    )


@check(
    section="17.2",
    title="GROUP_UPDATE with neither name nor topic is 1003; with a name it is OK with pos",
)
async def group_update(ctx: Context) -> None:
    owner, _, gid = await _group(ctx)
    expect_error(
        await owner.req(wire.GROUP_UPDATE, {"group": gid}),
        wire.E_INVALID_FIELD,
        "GROUP_UPDATE with neither",
    )
    f = expect_type(
        await owner.req(wire.GROUP_UPDATE, {"group": gid, "name": "New"}),
        wire.OK,
        "GROUP_UPDATE name",
    )
    expect(f.payload.get("pos") == 2, f"OK.pos {f}")


@check(
    section="17.2",
    title="GROUP_SET_ROLE to owner is 1003; the owner cannot leave while members remain (3008)",
)
async def group_role_leave(ctx: Context) -> None:
    owner, members, gid = await _group(ctx)
    m = members[0].user
    expect_error(
        await owner.req(wire.GROUP_SET_ROLE, {"group": gid, "user": m, "role": "owner"}),
        wire.E_INVALID_FIELD,
        "GROUP_SET_ROLE role owner",
    )
    expect_error(
        await owner.req(wire.GROUP_LEAVE, {"group": gid}),
        wire.E_CONFLICT,
        "owner GROUP_LEAVE with members",
    )
    expect_type(
        await members[0].req(wire.GROUP_LEAVE, {"group": gid}), wire.OK, "member GROUP_LEAVE"
    )
    expect_error(
        await members[0].req(wire.GET_GROUP, {"group": gid}),
        wire.E_NOT_MEMBER,
        "GET_GROUP after leaving",
    )


@check(
    section="18.1",
    title="READ beyond the last pos is 1003; READ moves the marker and "
    "the other participant gets a kind 2 update",
)
async def read_marker(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.user()
    await befriend(a, b)
    sent = await send(a, b.user)
    conv = sent.payload["conv"]
    await b.conn.barrier()
    expect_error(
        await b.req(wire.READ, {"conv": conv, "pos": 2}), wire.E_INVALID_FIELD, "READ pos 2 of 1"
    )
    expect_type(await b.req(wire.READ, {"conv": conv, "pos": 1}), wire.OK, "READ pos 1")
    f = await a.conn.next(
        lambda f: (
            f.type == wire.UPDATES and f.rid == 0 and any(u[1] == 2 for u in f.payload["updates"])
        ),
        "READ update",
    )
    data = next(u[2] for u in f.payload["updates"] if u[1] == 2)
    expect(data == {"conv": conv, "user": b.user, "pos": 1}, f"kind 2 data {data}")


@check(
    section="18.3",
    title="GET_RECEIPTS answers RECEIPTS with a marker per other participant; "
    "3005 for non-participants",
)
async def receipts(ctx: Context) -> None:
    a = await ctx.user()
    peer = await ctx.user()
    await befriend(a, peer)
    b = peer.user
    conv = (await send(a, b)).payload["conv"]
    f = expect_type(await a.req(wire.GET_RECEIPTS, {"conv": conv}), wire.RECEIPTS, "GET_RECEIPTS")
    expect(f.payload.get("conv") == conv, f"RECEIPTS.conv: {f}")
    for key in ("read", "delivered"):
        marks = f.payload.get(key)
        expect(isinstance(marks, list) and [m.get("user") for m in marks] == [b], f"{key}: {f}")
    c = await ctx.user()
    expect_error(
        await c.req(wire.GET_RECEIPTS, {"conv": conv}),
        wire.E_NOT_MEMBER,
        "GET_RECEIPTS by a stranger",
    )


@check(
    section="19.1",
    title="LIST_CONVERSATIONS lists a direct conversation with peer; limit above 100 is 1003",
)
async def conversations(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.register()
    sent = await send(a, b, "last one")
    f = expect_type(
        await a.req(wire.LIST_CONVERSATIONS, {}), wire.CONVERSATION_LIST, "LIST_CONVERSATIONS"
    )
    convs = f.payload.get("conversations", [])
    expect(len(convs) == 1, f"conversations {convs}")
    c = convs[0]
    expect(
        c.get("conv") == sent.payload["conv"]
        and c.get("kind") == "direct"
        and c.get("peer") == b
        and c.get("name") == b
        and c.get("unread") == 0,
        f"{c}",
    )
    expect(c.get("last", {}).get("text") == "last one", f"last {c.get('last')}")
    expect_error(
        await a.req(wire.LIST_CONVERSATIONS, {"limit": 101}),
        wire.E_INVALID_FIELD,
        "LIST_CONVERSATIONS limit 101",
    )


@check(
    section="20.2",
    title="TYPING is delivered to the peer as TYPING_NOTICE {user, typing, "
    "ttl} rid 0, never answered",
)
async def typing_notice(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.user()
    await a.conn.send(wire.TYPING, 0, {"to": b.user, "typing": True})
    f = await b.conn.next(lambda f: f.type == wire.TYPING_NOTICE, "TYPING_NOTICE")
    p = f.payload
    expect(
        f.rid == 0
        and p.get("user") == a.user
        and p.get("typing") is True
        and type(p.get("ttl")) in (int, float)
        and "group" not in p,
        f"{f}",
    )
    frames = await a.conn.barrier()
    expect(not frames, f"the typing connection got {[str(x) for x in frames]}")


@check(
    section="20.3",
    title="TYPING errors are ERROR rid 0: neither to nor group (1003), unknown to (3001)",
)
async def typing_errors(ctx: Context) -> None:
    a = await ctx.user()
    await a.conn.send(wire.TYPING, 0, {"typing": True})
    await error_rid0(a.conn, wire.E_INVALID_FIELD, "TYPING without to or group")
    await a.conn.send(wire.TYPING, 0, {"to": ctx.name("nx"), "typing": False})
    await error_rid0(a.conn, wire.E_UNKNOWN_USER, "TYPING to an unknown user")


@check(
    section="21.3",
    title="GET_PRESENCE shows one's own presence and leaves out unknown users and strangers",
)
async def presence(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.user()
    f = expect_type(
        await a.req(wire.GET_PRESENCE, {"users": [a.user, ctx.name("nx"), b.user, a.user]}),
        wire.PRESENCE_LIST,
        "GET_PRESENCE",
    )
    entries = f.payload.get("presence", [])
    expect([e.get("user") for e in entries] == [a.user], f"presence {entries}")
    expect(
        entries[0].get("online") is True and type(entries[0].get("last_seen")) is int,
        f"own presence {entries[0]}",
    )
    expect_error(
        await a.req(wire.GET_PRESENCE, {"users": []}),
        wire.E_INVALID_FIELD,
        "GET_PRESENCE with no users",
    )


async def _contact_event(s: Session, event: str, user: str) -> None:
    def match(f: wire.Frame) -> bool:
        return (
            f.type == wire.UPDATES
            and f.rid == 0
            and any(
                u[1] == 3 and u[2] == {"event": event, "user": user} for u in f.payload["updates"]
            )
        )

    await s.conn.next(match, f"contact update {event} from {user}")


@check(
    section="22.1",
    title="CONTACT_REQUEST and CONTACT_ACCEPT: OK, kind 3 updates, both in each other's contacts",
)
async def contacts(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.user()
    expect_type(await a.req(wire.CONTACT_REQUEST, {"user": b.user}), wire.OK, "CONTACT_REQUEST")
    await _contact_event(b, "request", a.user)
    await _contact_event(a, "changed", b.user)
    expect_type(await b.req(wire.CONTACT_ACCEPT, {"user": a.user}), wire.OK, "CONTACT_ACCEPT")
    await _contact_event(a, "accepted", b.user)
    f = expect_type(await a.req(wire.LIST_CONTACTS, {}), wire.CONTACT_LIST, "LIST_CONTACTS")
    want: dict[str, Any] = {"contacts": [b.user], "incoming": [], "outgoing": [], "blocked": []}
    expect({k: f.payload.get(k) for k in want} == want, f"{f}")


@check(section="22.1", title="contact requests naming oneself are 3008, an unknown user 3001")
async def contact_errors(ctx: Context) -> None:
    a = await ctx.user()
    for t in (wire.CONTACT_REQUEST, wire.BLOCK, wire.UNBLOCK):
        expect_error(await a.req(t, {"user": a.user}), wire.E_CONFLICT, f"{wire.NAMES[t]} self")
        expect_error(
            await a.req(t, {"user": ctx.name("nx")}),
            wire.E_UNKNOWN_USER,
            f"{wire.NAMES[t]} unknown",
        )
    expect_error(
        await a.req(wire.CONTACT_ACCEPT, {"user": (await ctx.register())}),
        wire.E_CONFLICT,
        "CONTACT_ACCEPT without a request",
    )


@check(section="22.3", title="while A blocks B, B's direct SEND and GET_PROFILE of A are 3004")
async def blocking(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.user()
    expect_type(await a.req(wire.BLOCK, {"user": b.user}), wire.OK, "BLOCK")
    expect_type(await a.req(wire.BLOCK, {"user": b.user}), wire.OK, "BLOCK again (idempotent)")
    expect_error(
        await b.req(wire.SEND, {"to": a.user, "cmid": "c", "text": "x"}),
        wire.E_NOT_ALLOWED,
        "SEND to a blocker",
    )
    expect_error(
        await b.req(wire.GET_PROFILE, {"user": a.user}),
        wire.E_NOT_ALLOWED,
        "GET_PROFILE of a blocker",
    )
    expect_type(await a.req(wire.UNBLOCK, {"user": b.user}), wire.OK, "UNBLOCK")
    await send(b, a.user)


@check(
    section="23.1", title="SET_PROFILE sets only the fields it carries; GET_PROFILE answers PROFILE"
)
async def profile(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.user()
    f = expect_type(await b.req(wire.GET_PROFILE, {"user": a.user}), wire.PROFILE, "GET_PROFILE")
    expect(f.payload == {"user": a.user, "display_name": "", "status": ""}, f"{f}")
    expect_type(await a.req(wire.SET_PROFILE, {"display_name": "Ann"}), wire.OK, "SET_PROFILE")
    expect_type(await a.req(wire.SET_PROFILE, {"status": "away"}), wire.OK, "SET_PROFILE")
    f = await b.req(wire.GET_PROFILE, {"user": a.user})
    expect(f.payload.get("display_name") == "Ann" and f.payload.get("status") == "away", f"{f}")
    expect_error(
        await a.req(wire.GET_PROFILE, {"user": ctx.name("nx")}),
        wire.E_UNKNOWN_USER,
        "GET_PROFILE unknown",
    )


@check(
    section="23.2",
    title="privacy defaults (contacts, everyone, everyone); messages: "
    "contacts refuses strangers' SEND with 3004",
)
async def privacy(ctx: Context) -> None:
    a = await ctx.user()
    f = expect_type(await a.req(wire.GET_PRIVACY, {}), wire.PRIVACY, "GET_PRIVACY")
    want = {"presence": "contacts", "profile": "everyone", "messages": "everyone"}
    expect({k: f.payload.get(k) for k in want} == want, f"defaults {f}")
    expect_type(await a.req(wire.SET_PRIVACY, {"messages": "contacts"}), wire.OK, "SET_PRIVACY")
    b = await ctx.user()
    expect_error(
        await b.req(wire.SEND, {"to": a.user, "cmid": "c", "text": "x"}),
        wire.E_NOT_ALLOWED,
        "SEND from a stranger",
    )
    expect_error(
        await a.req(wire.SET_PRIVACY, {"messages": "nobody"}),
        wire.E_INVALID_FIELD,
        "SET_PRIVACY messages nobody",
    )


@check(
    section="17.2",
    title="GROUP_ADD of a member twice is 3008; an added user gets the "
    "added event and sees the timeline from it",
)
async def group_add(ctx: Context) -> None:
    owner, members, gid = await _group(ctx)
    await owner.req(wire.SEND, {"group": gid, "cmid": ctx.cmid(), "text": "before"})
    late = await ctx.user()
    await befriend(owner, late)
    expect_error(
        await owner.req(wire.GROUP_ADD, {"group": gid, "users": [members[0].user]}),
        wire.E_CONFLICT,
        "GROUP_ADD of a member",
    )
    f = expect_type(
        await owner.req(wire.GROUP_ADD, {"group": gid, "users": [late.user]}), wire.OK, "GROUP_ADD"
    )
    pos = f.payload.get("pos")
    expect(pos == 3, f"OK.pos {f} (created 1, message 2, added 3)")
    h = expect_type(await late.req(wire.HISTORY, {"group": gid}), wire.HISTORY_PAGE, "HISTORY")
    msgs = h.payload.get("messages", [])
    expect([m.get("pos") for m in msgs] == [3], f"the new member sees {msgs}")
    ev = msgs[0].get("event", {})
    expect(
        ev.get("type") == "added"
        and ev.get("users") == [late.user]
        and msgs[0].get("text") == ""
        and msgs[0].get("cmid") == "",
        f"event {msgs[0]}",
    )


@check(
    section="17.1",
    title="an admin may not remove another admin (3007); GROUP_TRANSFER "
    "makes the old owner an admin",
)
async def group_roles(ctx: Context) -> None:
    owner, members, gid = await _group(ctx, 2)
    a, b = members
    for m in (a, b):
        expect_type(
            await owner.req(wire.GROUP_SET_ROLE, {"group": gid, "user": m.user, "role": "admin"}),
            wire.OK,
            "SET_ROLE",
        )
    expect_error(
        await a.req(wire.GROUP_REMOVE, {"group": gid, "user": b.user}),
        wire.E_FORBIDDEN,
        "admin removes admin",
    )
    expect_error(
        await a.req(wire.GROUP_REMOVE, {"group": gid, "user": a.user}),
        wire.E_CONFLICT,
        "removing oneself",
    )
    expect_type(
        await owner.req(wire.GROUP_TRANSFER, {"group": gid, "user": a.user}),
        wire.OK,
        "GROUP_TRANSFER",
    )
    f = expect_type(await a.req(wire.GET_GROUP, {"group": gid}), wire.GROUP_INFO, "GET_GROUP")
    roles = {m.get("user"): m.get("role") for m in f.payload.get("members", [])}
    expect(
        f.payload.get("owner") == a.user and roles.get(owner.user) == "admin",
        f"after transfer: {f}",
    )


@check(
    section="18.1",
    title="the read marker only moves forward: a lower READ is OK and appends nothing",
)
async def read_forward_only(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.register()
    await send(a, b)
    conv = (await send(a, b)).payload["conv"]
    expect_type(await a.req(wire.READ, {"conv": conv, "pos": 2}), wire.OK, "READ 2")
    await a.conn.next(lambda f: f.type == wire.UPDATES and f.rid == 0, "the READ update")
    expect_type(await a.req(wire.READ, {"conv": conv, "pos": 1}), wire.OK, "READ 1")
    got = [
        u
        for f in await a.conn.barrier()
        if f.type == wire.UPDATES
        for u in f.payload.get("updates", [])
    ]
    expect(got == [], f"a backwards READ appended {got}")


@check(
    section="22.1",
    title="CONTACT_CANCEL without a request is OK; CONTACT_REMOVE of a non-contact is 3008",
)
async def contact_cancel_remove(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.register()
    expect_type(await a.req(wire.CONTACT_CANCEL, {"user": b}), wire.OK, "CONTACT_CANCEL")
    expect_error(
        await a.req(wire.CONTACT_REMOVE, {"user": b}),
        wire.E_CONFLICT,
        "CONTACT_REMOVE of a non-contact",
    )


@check(section="20.2", title="a TYPING to oneself is dropped silently (no error, no notice)")
async def typing_self(ctx: Context) -> None:
    a = await ctx.user()
    await a.conn.send(wire.TYPING, 0, {"to": a.user, "typing": True})
    frames = await a.conn.barrier()
    expect(not frames, f"TYPING to oneself gave {[str(f) for f in frames]}")


@check(
    section="21.3", title="presence 'everyone' is visible to a stranger the user has not blocked"
)
async def presence_everyone(ctx: Context) -> None:
    a = await ctx.user()
    expect_type(await a.req(wire.SET_PRIVACY, {"presence": "everyone"}), wire.OK, "SET_PRIVACY")
    b = await ctx.user()
    f = await b.req(wire.GET_PRESENCE, {"users": [a.user]})
    entries = f.payload.get("presence", [])
    expect(
        [e.get("user") for e in entries] == [a.user] and entries[0].get("online") is True, f"{f}"
    )
    expect_type(await a.req(wire.BLOCK, {"user": b.user}), wire.OK, "BLOCK")
    f = await b.req(wire.GET_PRESENCE, {"users": [a.user]})
    expect(f.payload.get("presence") == [], f"a blocked user sees {f}")
