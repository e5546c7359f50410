"""Messaging, sync and history: SPEC sections 7.18-7.24, 8 and 10."""

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
    sync_all,
)
from .wire import Frame


def _pushes(frames: list[Frame]) -> list[list[Any]]:
    """The update entries of the UPDATES pushes (rid 0) among frames, in order."""
    out: list[list[Any]] = []
    for f in frames:
        if f.type == wire.UPDATES and f.rid == 0:
            expect(f.payload.get("more", False) is False, f"a push with more=true: {f}")
            out.extend(f.payload.get("updates", []))
    return out


async def _push(s: Session, what: str) -> Frame:
    return await s.conn.next(lambda f: f.type == wire.UPDATES and f.rid == 0, what)


@check(section="7.19", title="SEND answers SENT {id, conv, pos, ts, seq, cmid, duplicate=false}")
async def send_sent(ctx: Context) -> None:
    s = await ctx.user()
    peer = await ctx.register()
    cmid = ctx.cmid()
    f = expect_type(
        await s.req(wire.SEND, {"to": peer, "cmid": cmid, "text": "hello"}), wire.SENT, "SEND"
    )
    p = f.payload
    for key in ("id", "conv", "ts"):
        expect(type(p.get(key)) is int and p[key] >= 0, f"SENT.{key}: {f}")
    expect(p.get("pos") == 1, f"first message of a conversation has pos {p.get('pos')}")
    expect(type(p.get("seq")) is int and p["seq"] >= 1, f"SENT.seq: {f}")
    expect(p.get("cmid") == cmid, f"SENT.cmid: {f}")
    expect(p.get("duplicate", False) is False, f"SENT.duplicate: {f}")


@check(
    section="10.3",
    title="a SEND retried with the same cmid returns the original SENT "
    "with duplicate=true and stores nothing new",
)
async def cmid_idempotent(ctx: Context) -> None:
    s = await ctx.user()
    peer = await ctx.user()
    cmid = ctx.cmid()
    a = expect_type(
        await s.req(wire.SEND, {"to": peer.user, "cmid": cmid, "text": "one"}), wire.SENT, "SEND"
    )
    b = expect_type(
        await s.req(wire.SEND, {"to": peer.user, "cmid": cmid, "text": "two"}),
        wire.SENT,
        "SEND again",
    )
    for key in ("id", "conv", "pos", "ts", "seq", "cmid"):
        expect(a.payload.get(key) == b.payload.get(key), f"{key}: {a} vs {b}")
    expect(b.payload.get("duplicate") is True, f"retry not marked duplicate: {b}")
    got = await sync_all(peer)
    texts = [u[2].get("text") for u in got if u[1] == 1]
    expect(texts.count("one") <= 1 and "two" not in texts, f"recipient got {texts}")


@check(
    section="10.3",
    title="cmid idempotency is per account: another device's SEND with the "
    "same cmid is a duplicate",
)
async def cmid_per_account(ctx: Context) -> None:
    s = await ctx.user(device="a")
    s2 = await ctx.login(s.user, "b")
    peer = await ctx.register()
    cmid = ctx.cmid()
    a = await s.req(wire.SEND, {"to": peer, "cmid": cmid, "text": "x"})
    b = await s2.req(wire.SEND, {"to": peer, "cmid": cmid, "text": "x"})
    expect(
        a.type == b.type == wire.SENT
        and a.payload["id"] == b.payload["id"]
        and b.payload.get("duplicate") is True,
        f"{a} vs {b}",
    )


@check(section="7.18", title="SEND cmid empty, over max_cmid_len, or starting with # is 1003")
async def bad_cmid(ctx: Context) -> None:
    s = await ctx.user()
    peer = await ctx.register()
    n = await ctx.limit("max_cmid_len")
    for cmid in ("", "c" * (n + 1), "#x"):
        f = await s.req(wire.SEND, {"to": peer, "cmid": cmid, "text": "x"})
        expect_error(f, wire.E_INVALID_FIELD, f"cmid {cmid[:10]!r} ({len(cmid)} chars)")
    expect_type(
        await s.req(wire.SEND, {"to": peer, "cmid": "é" * n, "text": "x"}),
        wire.SENT,
        f"cmid of {n} characters",
    )


@check(section="7.18", title="SEND with both or neither of to and group is 1003")
async def to_or_group(ctx: Context) -> None:
    s = await ctx.user()
    peer = await ctx.register()
    expect_error(
        await s.req(wire.SEND, {"to": peer, "group": 1, "cmid": "c1", "text": "x"}),
        wire.E_INVALID_FIELD,
        "SEND with to and group",
    )
    expect_error(
        await s.req(wire.SEND, {"cmid": "c2", "text": "x"}),
        wire.E_INVALID_FIELD,
        "SEND with neither",
    )
    expect_error(
        await s.req(wire.SEND, {"to": peer, "cmid": "c3"}),
        wire.E_INVALID_FIELD,
        "SEND without text",
    )


@check(section="7.18", title="SEND to an unknown user is 3001")
async def send_unknown_user(ctx: Context) -> None:
    s = await ctx.user()
    expect_error(
        await s.req(wire.SEND, {"to": ctx.name("nx"), "cmid": "c", "text": "x"}),
        wire.E_UNKNOWN_USER,
        "SEND to a user that does not exist",
    )


@check(section="7.18", title="text is limited to max_text_len UTF-8 bytes (more is 3002)")
async def text_too_large(ctx: Context) -> None:
    s = await ctx.user()
    peer = await ctx.register()
    n = await ctx.limit("max_text_len")
    ok = "é" * (n // 2) + "x" * (n % 2)
    expect_type(
        await s.req(wire.SEND, {"to": peer, "cmid": ctx.cmid(), "text": ok}),
        wire.SENT,
        f"text of exactly {n} bytes",
    )
    f = await s.req(wire.SEND, {"to": peer, "cmid": ctx.cmid(), "text": ok + "é"})
    expect_error(f, wire.E_TOO_LARGE, f"text of {n + 2} bytes")


@check(
    section="7.18",
    title="meta above max_meta_size msgpack bytes is 3002; meta is delivered with the message",
)
async def meta(ctx: Context) -> None:
    s = await ctx.user()
    peer = await ctx.user()
    n = await ctx.limit("max_meta_size")
    f = await s.req(
        wire.SEND, {"to": peer.user, "cmid": ctx.cmid(), "text": "x", "meta": {"big": "m" * n}}
    )
    expect_error(f, wire.E_TOO_LARGE, "meta above max_meta_size")
    m = {"k": [1, "two", {"three": 3.5}], "b": True}
    await send(s, peer.user, "with meta", meta=m)
    u = (await _push(peer, "the push of a message with meta")).payload["updates"][0]
    expect(u[2].get("meta") == m, f"meta delivered as {u[2].get('meta')!r}")


@check(section="10.1", title="a message to oneself is allowed and adds one entry to the log")
async def send_to_self(ctx: Context) -> None:
    s = await ctx.user()
    f = await send(s, s.user, "note to self")
    got = await sync_all(s)
    expect([u[0] for u in got] == [f.payload["seq"]], f"own log after a self message: {got}")


@check(section="10.1", title="both directions of a pair share one conv; pos counts 1, 2, 3")
async def conv_and_pos(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.user()
    f1 = await send(a, b.user)
    f2 = await send(b, a.user)
    f3 = await send(a, b.user)
    expect(
        f1.payload["conv"] == f2.payload["conv"] == f3.payload["conv"],
        f"convs {f1.payload['conv']}, {f2.payload['conv']}, {f3.payload['conv']}",
    )
    expect([f.payload["pos"] for f in (f1, f2, f3)] == [1, 2, 3], "pos is not 1, 2, 3")


@check(
    section="8.2",
    title="a direct message map has id, conv, pos, from, to, ts, cmid, text and no group",
)
async def message_map(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.register()
    sent = await send(a, b, "map")
    bs = await ctx.login(b, sync=False)
    f = expect_type(await bs.req(wire.SYNC, {"since": 0}), wire.UPDATES, "SYNC")
    u = f.payload["updates"]
    expect(len(u) == 1 and u[0][1] == 1, f"updates: {f}")
    m = u[0][2]
    want = {
        "id": sent.payload["id"],
        "conv": sent.payload["conv"],
        "pos": 1,
        "from": a.user,
        "to": b,
        "ts": sent.payload["ts"],
        "cmid": sent.payload["cmid"],
        "text": "map",
    }
    expect({k: m.get(k) for k in want} == want, f"message map {m}, expected {want}")
    expect("group" not in m and "meta" not in m, f"unexpected group/empty meta: {m}")


@check(section="10.4", title="SYNC returns ascending entries after since, head and more=false")
async def sync_basic(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.register()
    for i in range(3):
        await send(a, b, f"m{i}")
    bs = await ctx.login(b, sync=False)
    f = expect_type(await bs.req(wire.SYNC, {"since": 0}), wire.UPDATES, "SYNC since 0")
    seqs = [u[0] for u in f.payload["updates"]]
    expect(seqs == sorted(seqs) and len(seqs) == 3, f"seqs {seqs}")
    expect(f.payload.get("head") == seqs[-1], f"head {f.payload.get('head')}")
    expect(f.payload.get("more", False) is False, f"more: {f}")
    f = await bs.req(wire.SYNC, {"since": seqs[0]})
    expect([u[0] for u in f.payload["updates"]] == seqs[1:], f"SYNC since {seqs[0]}: {f}")


@check(section="10.4", title="SYNC pages of limit entries with more=true until the last page")
async def sync_paging(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.register()
    for i in range(5):
        await send(a, b, f"m{i}")
    bs = await ctx.login(b, sync=False)
    f = await bs.req(wire.SYNC, {"since": 0, "limit": 2})
    expect(len(f.payload["updates"]) == 2 and f.payload.get("more") is True, f"page 1: {f}")
    got = await sync_all(bs, 0, limit=2)
    seqs = [u[0] for u in got]
    expect(len(seqs) == 5 and seqs == sorted(set(seqs)), f"paged seqs {seqs}")


@check(section="7.20", title="SYNC limit outside 1..max_sync_page is 1003")
async def sync_limit(ctx: Context) -> None:
    s = await ctx.user(sync=False)
    n = await ctx.limit("max_sync_page")
    for limit in (0, n + 1):
        expect_error(
            await s.req(wire.SYNC, {"since": 0, "limit": limit}),
            wire.E_INVALID_FIELD,
            f"SYNC limit {limit}",
        )
    expect_type(await s.req(wire.SYNC, {"since": 0, "limit": n}), wire.UPDATES, f"SYNC limit {n}")


@check(section="10.4", title="SYNC since above head is 3003 INVALID_CURSOR")
async def sync_ahead(ctx: Context) -> None:
    s = await ctx.user(sync=False)
    expect_error(await s.req(wire.SYNC, {"since": 5}), wire.E_INVALID_CURSOR, "SYNC since 5")


@check(section="10.4", title="before its first SYNC completes the connection gets no pushes")
async def not_live_before_sync(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.user(sync=False)
    await send(a, b.user)
    frames = await b.conn.barrier()
    expect(not frames, f"pushed before SYNC: {[str(f) for f in frames]}")


@check(
    section="10.5",
    title="a live recipient gets the message pushed as UPDATES rid 0 continuing the synced log",
)
async def live_push(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.user()
    sent = await send(a, b.user, "pushed")
    f = await _push(b, "the push to the recipient")
    u = f.payload["updates"]
    expect(len(u) == 1 and u[0][0] == 1 and u[0][2].get("id") == sent.payload["id"], f"push {f}")
    expect(f.payload.get("head") == 1 and f.payload.get("more", False) is False, f"push {f}")


@check(
    section="10.5",
    title="the sender's other live devices get the push; the sending connection gets none",
)
async def sender_devices(ctx: Context) -> None:
    a = await ctx.user(device="one")
    a2 = await ctx.login(a.user, "two")
    b = await ctx.register()
    sent = await send(a, b)
    f = await _push(a2, "the push to the sender's other device")
    expect(f.payload["updates"][0][0] == sent.payload["seq"], f"push {f} vs {sent}")
    rest = _pushes(await a.conn.barrier())
    expect(not rest, f"the sending connection got a push: {rest}")


@check(section="10.5", title="pushes arrive in seq order with no gap and no duplicate")
async def push_order(ctx: Context) -> None:
    a = await ctx.user()
    b = await ctx.user()
    await b.conn.send_raw(
        b"".join(
            wire.build(wire.SEND, 100 + i, {"to": b.user, "cmid": ctx.cmid(), "text": str(i)})
            for i in range(3)
        )
    )  # b writes to itself meanwhile: entries interleave
    for i in range(10):
        await send(a, b.user, str(i))
    own = [
        expect_type(await b.conn.answer(100 + i), wire.SENT, "self SEND").payload["seq"]
        for i in range(3)
    ]
    seqs: list[int] = []
    while len(seqs) < 10:
        seqs += [u[0] for u in (await _push(b, "pushes")).payload["updates"]]
    seqs += [u[0] for u in _pushes(await b.conn.barrier())]
    expect(seqs == sorted(set(seqs)), f"pushed seqs out of order or repeated: {seqs}")
    expect(len(seqs) == 10, f"{len(seqs)} pushes for 10 messages")
    expect(
        sorted(seqs + own) == list(range(1, 14)),
        f"pushes {seqs} + own SENT {own} are not seqs 1..13 without gap",
    )


@check(section="10.6", title="ACK above head gets ERROR 3003 with rid 0")
async def ack_ahead(ctx: Context) -> None:
    s = await ctx.user()
    await s.conn.send(wire.ACK, 0, {"seq": 99})
    await error_rid0(s.conn, wire.E_INVALID_CURSOR, "ACK seq 99 on an empty log")


async def _history_setup(ctx: Context, n: int) -> tuple[Session, str]:
    a = await ctx.user()
    b = await ctx.register()
    for i in range(n):
        await send(a, b, f"h{i + 1}")
    return a, b


def _pos(f: Frame) -> list[int]:
    return [m.get("pos") for m in f.payload.get("messages", [])]


@check(
    section="10.7",
    title="HISTORY without anchor: the newest limit messages ascending, more when older exist",
)
async def history_newest(ctx: Context) -> None:
    a, b = await _history_setup(ctx, 5)
    f = expect_type(
        await a.req(wire.HISTORY, {"with": b, "limit": 2}), wire.HISTORY_PAGE, "HISTORY"
    )
    expect(_pos(f) == [4, 5] and f.payload.get("more") is True, f"page {f}")
    f = await a.req(wire.HISTORY, {"with": b})
    expect(_pos(f) == [1, 2, 3, 4, 5] and f.payload.get("more", False) is False, f"page {f}")


@check(section="10.7", title="HISTORY before/after page backwards and forwards by pos")
async def history_paging(ctx: Context) -> None:
    a, b = await _history_setup(ctx, 5)
    f = await a.req(wire.HISTORY, {"with": b, "before": 4, "limit": 2})
    expect(_pos(f) == [2, 3] and f.payload.get("more") is True, f"before 4: {f}")
    f = await a.req(wire.HISTORY, {"with": b, "before": 2, "limit": 2})
    expect(_pos(f) == [1] and f.payload.get("more", False) is False, f"before 2: {f}")
    f = await a.req(wire.HISTORY, {"with": b, "after": 1, "limit": 3})
    expect(_pos(f) == [2, 3, 4] and f.payload.get("more") is True, f"after 1: {f}")
    f = await a.req(wire.HISTORY, {"with": b, "after": 4})
    expect(_pos(f) == [5] and f.payload.get("more", False) is False, f"after 4: {f}")


@check(
    section="10.7",
    title="HISTORY errors: before with after, limit out of range (1003); unknown with (3001)",
)
async def history_errors(ctx: Context) -> None:
    a, b = await _history_setup(ctx, 1)
    n = await ctx.limit("max_history_page")
    expect_error(
        await a.req(wire.HISTORY, {"with": b, "before": 3, "after": 1}),
        wire.E_INVALID_FIELD,
        "before and after",
    )
    for limit in (0, n + 1):
        expect_error(
            await a.req(wire.HISTORY, {"with": b, "limit": limit}),
            wire.E_INVALID_FIELD,
            f"limit {limit}",
        )
    expect_error(
        await a.req(wire.HISTORY, {"with": b, "group": 1}), wire.E_INVALID_FIELD, "with and group"
    )
    expect_error(
        await a.req(wire.HISTORY, {"with": ctx.name("nx")}),
        wire.E_UNKNOWN_USER,
        "with an unknown user",
    )


@check(section="7.23", title="HISTORY of the conversation with oneself uses the own username")
async def history_self(ctx: Context) -> None:
    s = await ctx.user()
    await send(s, s.user, "me")
    f = expect_type(await s.req(wire.HISTORY, {"with": s.user}), wire.HISTORY_PAGE, "HISTORY")
    msgs = f.payload.get("messages", [])
    expect(
        [(m.get("from"), m.get("to"), m.get("text")) for m in msgs] == [(s.user, s.user, "me")],
        f"{f}",
    )
