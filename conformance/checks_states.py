"""Requests and rids (SPEC section 3) and connection states (section 4)."""

from __future__ import annotations

from . import wire
from .registry import (
    Context,
    check,
    error_rid0,
    expect,
    expect_closed,
    expect_error,
    expect_type,
)

# Every session-only client message (section 4.3), as (type, payload); payloads may be
# empty: the state check comes before the field check (4.5).
SESSION_TYPES = (
    wire.LOGOUT,
    wire.LIST_DEVICES,
    wire.REVOKE_DEVICE,
    wire.SEND,
    wire.SYNC,
    wire.HISTORY,
    wire.GROUP_CREATE,
    wire.GET_GROUP,
    wire.GROUP_ADD,
    wire.GROUP_REMOVE,
    wire.GROUP_LEAVE,
    wire.GROUP_UPDATE,
    wire.GROUP_SET_ROLE,
    wire.GROUP_TRANSFER,
    wire.LIST_GROUPS,
    wire.READ,
    wire.GET_RECEIPTS,
    wire.LIST_CONVERSATIONS,
    wire.GET_PRESENCE,
    wire.CONTACT_REQUEST,
    wire.CONTACT_ACCEPT,
    wire.CONTACT_DECLINE,
    wire.CONTACT_CANCEL,
    wire.CONTACT_REMOVE,
    wire.LIST_CONTACTS,
    wire.BLOCK,
    wire.UNBLOCK,
    wire.SET_PROFILE,
    wire.GET_PROFILE,
    wire.SET_PRIVACY,
    wire.GET_PRIVACY,
)
ACCOUNT_TYPES = (wire.REGISTER, wire.LOGIN, wire.AUTH)


@check(section="3.1", title="a request with rid 0 is refused with ERROR 1003 rid 0")
async def rid_zero(ctx: Context) -> None:
    conn = await ctx.anon()
    await conn.send(wire.PING, 0, {})
    await error_rid0(conn, wire.E_INVALID_FIELD, "PING with rid 0")


@check(section="3.1", title="the answer carries the request's rid, up to 2^32-1")
async def rid_max(ctx: Context) -> None:
    conn = await ctx.anon()
    rid = 2**32 - 1
    expect_type(await conn.request(wire.PING, {}, rid=rid), wire.PONG, f"PING rid {rid}")


@check(section="3.1", title="once answered, a rid may be used again")
async def rid_reuse(ctx: Context) -> None:
    conn = await ctx.anon()
    for _ in range(3):
        expect_type(await conn.request(wire.PING, {}, rid=5), wire.PONG, "PING rid 5 again")


@check(section="3.1", title="pipelined requests are each answered exactly once, matched by rid")
async def pipelined(ctx: Context) -> None:
    conn = await ctx.anon()
    rids = list(range(100, 120))
    await conn.send_raw(b"".join(wire.build(wire.PING, r, {}) for r in rids))
    seen = [(await conn.read_frame()) for _ in rids]
    expect(
        sorted(f.rid for f in seen) == rids and all(f.type == wire.PONG for f in seen),
        f"expected one PONG per rid, got {[str(f) for f in seen]}",
    )
    expect(not await conn.barrier(), "extra frames after the 20 PONGs")


@check(
    section="3.3",
    title="a rid equal to an outstanding request's is refused with 1007; "
    "the original is still answered",
)
async def duplicate_rid(ctx: Context) -> None:
    s = await ctx.user()
    peer = await ctx.register()
    send = {"to": peer, "cmid": ctx.cmid(), "text": "one"}
    send2 = {"to": peer, "cmid": ctx.cmid(), "text": "two"}
    await s.conn.send_raw(wire.build(wire.SEND, 7, send) + wire.build(wire.SEND, 7, send2))
    a = await s.conn.answer(7)
    b = await s.conn.answer(7)
    kinds = sorted([(a.type, a.code), (b.type, b.code)], key=str)
    expect(
        kinds == sorted([(wire.SENT, None), (wire.ERROR, wire.E_DUPLICATE_RID)], key=str),
        f"expected SENT and ERROR 1007 for rid 7, got {a} and {b}",
    )


@check(section="3.2", title="ACK is one-way: the server never answers it with a frame")
async def ack_one_way(ctx: Context) -> None:
    s = await ctx.user()
    await s.conn.send(wire.ACK, 0, {"seq": 0})
    frames = await s.conn.barrier()
    expect(not frames, f"ACK was answered: {[str(f) for f in frames]}")


@check(
    section="4.3",
    title="before HELLO, every frame but HELLO and CLOSE gets 1004 BAD_STATE with its rid",
)
async def before_hello(ctx: Context) -> None:
    conn = await ctx.connect()
    for i, t in enumerate(
        (
            wire.PING,
            wire.REGISTER,
            wire.LOGIN,
            wire.AUTH,
            wire.SEND,
            wire.SYNC,
            wire.GROUP_CREATE,
            wire.GET_PRIVACY,
        ),
        start=1,
    ):
        f = await conn.request(t, {}, rid=i)
        expect_error(f, wire.E_BAD_STATE, f"{wire.NAMES[t]} before HELLO", i)
    expect_type(
        await conn.request(wire.HELLO, {"versions": [1]}),
        wire.WELCOME,
        "HELLO after refused frames",
    )


@check(section="4.3", title="a second HELLO gets 1004 BAD_STATE (CONNECTED and AUTHENTICATED)")
async def second_hello(ctx: Context) -> None:
    conn = await ctx.anon()
    expect_error(
        await conn.request(wire.HELLO, {"versions": [1]}), wire.E_BAD_STATE, "HELLO in CONNECTED"
    )
    s = await ctx.user(sync=False)
    expect_error(
        await s.req(wire.HELLO, {"versions": [1]}), wire.E_BAD_STATE, "HELLO in AUTHENTICATED"
    )


@check(section="4.3", title="in CONNECTED every session request gets 2001 NOT_AUTHENTICATED")
async def session_needs_auth(ctx: Context) -> None:
    conn = await ctx.anon()
    bad = []
    for t in SESSION_TYPES:
        f = await conn.request(t, {})
        if f.type != wire.ERROR or f.code != wire.E_NOT_AUTHENTICATED:
            bad.append(f"{wire.NAMES[t]} -> {f}")
    expect(not bad, "expected 2001: " + "; ".join(bad))


@check(section="4.3", title="in CONNECTED the one-way ACK and TYPING get 2001 (rid 0)")
async def oneway_needs_auth(ctx: Context) -> None:
    conn = await ctx.anon()
    await conn.send(wire.ACK, 0, {"seq": 0})
    await error_rid0(conn, wire.E_NOT_AUTHENTICATED, "ACK in CONNECTED")
    await conn.send(wire.TYPING, 0, {"to": "nobody", "typing": True})
    await error_rid0(conn, wire.E_NOT_AUTHENTICATED, "TYPING in CONNECTED")


@check(section="4.3", title="in AUTHENTICATED REGISTER, LOGIN and AUTH get 2008")
async def already_authenticated(ctx: Context) -> None:
    s = await ctx.user(sync=False)
    for t in ACCOUNT_TYPES:
        expect_error(await s.req(t, {}), wire.E_ALREADY_AUTHENTICATED, wire.NAMES[t])


@check(
    section="4.5",
    title="an undefined type, or a server-only type, gets 1002 UNKNOWN_TYPE before any state check",
)
async def unknown_type(ctx: Context) -> None:
    conn = await ctx.connect()
    expect_error(await conn.request(999, {}), wire.E_UNKNOWN_TYPE, "type 999 before HELLO")
    expect_error(await conn.request(wire.WELCOME, {}), wire.E_UNKNOWN_TYPE, "WELCOME from a client")
    conn = await ctx.anon()
    for t in (8, 65535, wire.SENT, wire.PONG):
        expect_error(await conn.request(t, {}), wire.E_UNKNOWN_TYPE, f"type {t}")


@check(
    section="4.5",
    title="the state is checked before the payload (SEND {} in CONNECTED is 2001, not 1003)",
)
async def state_before_fields(ctx: Context) -> None:
    conn = await ctx.anon()
    expect_error(
        await conn.request(wire.SEND, {"to": 5}),
        wire.E_NOT_AUTHENTICATED,
        "SEND with a bad field in CONNECTED",
    )


@check(
    section="4.5",
    title="payload fields are checked before the rid (a bad field on an "
    "outstanding rid is 1003, not 1007)",
)
async def fields_before_rid(ctx: Context) -> None:
    s = await ctx.user()
    peer = await ctx.register()
    good = wire.build(wire.SEND, 9, {"to": peer, "cmid": ctx.cmid(), "text": "x"})
    bad = wire.build(wire.SYNC, 9, {"since": "zero"})
    await s.conn.send_raw(good + bad)
    a = await s.conn.answer(9)
    b = await s.conn.answer(9)
    codes = {(a.type, a.code), (b.type, b.code)}
    expect(
        codes == {(wire.SENT, None), (wire.ERROR, wire.E_INVALID_FIELD)},
        f"expected SENT and ERROR 1003 for rid 9, got {a} and {b}",
    )


@check(section="4.2", title="REGISTERED does not log in: a session request after it gets 2001")
async def registered_not_logged_in(ctx: Context) -> None:
    conn = await ctx.anon()
    await ctx.register(conn)
    expect_error(
        await conn.request(wire.SYNC, {"since": 0}),
        wire.E_NOT_AUTHENTICATED,
        "SYNC after REGISTERED",
    )


@check(section="4.2", title="ERROR does not change the state")
async def error_keeps_state(ctx: Context) -> None:
    s = await ctx.user(sync=False)
    expect_error(await s.req(wire.SYNC, {"since": -5}), wire.E_INVALID_FIELD, "SYNC since -5")
    expect_type(await s.req(wire.SYNC, {"since": 0}), wire.UPDATES, "SYNC after an ERROR")


@check(
    section="4.2",
    title="pipelined frames are processed in order (HELLO, REGISTER, LOGIN in one write)",
    level="SHOULD",
)
async def pipelined_states(ctx: Context) -> None:
    conn = await ctx.connect()
    name = ctx.name()
    data = (
        wire.build(wire.HELLO, 1, {"versions": [1]})
        + wire.build(wire.REGISTER, 2, {"username": name, "password": "password-x"})
        + wire.build(wire.LOGIN, 3, {"username": name, "password": "password-x", "device": "d1"})
    )
    await conn.send_raw(data)
    expect_type(await conn.answer(1), wire.WELCOME, "pipelined HELLO")
    expect_type(await conn.answer(2), wire.REGISTERED, "pipelined REGISTER")
    expect_type(await conn.answer(3), wire.AUTHENTICATED, "pipelined LOGIN")


@check(
    section="4.6",
    title="after the client's CLOSE the server sends nothing (no CLOSE in "
    "reply) and closes; later frames are ignored",
)
async def client_close(ctx: Context) -> None:
    conn = await ctx.anon()
    await conn.send_raw(
        wire.build(wire.CLOSE, 0, {"code": 1000, "reason": "bye"}) + wire.build(wire.PING, 3, {})
    )
    data = b""
    try:
        while True:
            chunk = await conn.reader.read(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionError:
        pass
    expect(data == b"", f"server sent {len(data)} bytes after the client's CLOSE")


@check(section="7.5", title="a CLOSE without code does not close: it is answered with 1003")
async def close_without_code(ctx: Context) -> None:
    conn = await ctx.anon()
    await conn.send(wire.CLOSE, 0, {"reason": "no code"})
    await error_rid0(conn, wire.E_INVALID_FIELD, "CLOSE without code")


@check(section="9.5", title="LOGOUT: LOGGED_OUT (state CONNECTED), then CLOSE 4002")
async def logout_closes(ctx: Context) -> None:
    s = await ctx.user()
    expect_type(await s.req(wire.LOGOUT, {}), wire.LOGGED_OUT, "LOGOUT")
    await expect_closed(s.conn, wire.C_LOGGED_OUT, "after LOGGED_OUT")
