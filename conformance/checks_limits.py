"""Timers (SPEC section 11) and limits (sections 3.3 and 14) that need tiny limits or short
timers: these run only against the small-limits server (`--small-limits-server`), started
with the flags in README (for the reference server: `--auth-timeout 1 --idle-timeout 2
--heartbeat-interval 0.5 --max-inflight-requests 2`)."""

from __future__ import annotations

import asyncio

from . import wire
from .registry import Context, Fail, Skip, check, expect, expect_closed, expect_type

SHORT = 5.0  # seconds: the longest timer a small-limits check waits for


async def _short(ctx: Context, key: str) -> float:
    value = float(await ctx.limit(key))
    if value > SHORT:
        raise Skip(f"the small-limits server has {key} {value} (needs <= {SHORT})")
    return value


@check(
    section="11",
    small=True,
    title="a connection not authenticated within auth_timeout gets CLOSE 4000",
)
async def auth_timeout(ctx: Context) -> None:
    small = ctx.small()
    limit = await _short(small, "auth_timeout")
    loop = asyncio.get_running_loop()
    start = loop.time()  # before the TCP connect: the deadline counts from the accept
    conn = await small.anon()
    conn.timeout = limit + 3.0
    await expect_closed(conn, wire.C_AUTH_TIMEOUT, "unauthenticated connection")
    elapsed = loop.time() - start
    expect(elapsed >= limit * 0.9, f"closed after {elapsed:.2f} s, before auth_timeout {limit}")


@check(
    section="11",
    small=True,
    title="the auth deadline counts from the connection start, "
    "whatever the state (PINGs do not extend it)",
)
async def auth_timeout_pings(ctx: Context) -> None:
    small = ctx.small()
    limit = await _short(small, "auth_timeout")
    conn = await small.anon()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit + 3.0
    while loop.time() < deadline:
        rid = conn.rid()
        await conn.send(wire.PING, rid, {})
        try:
            f = await conn.next(
                lambda f, r=rid: f.rid == r or f.type == wire.CLOSE,  # type: ignore[misc]
                "PONG or CLOSE",
                timeout=limit + 3.0,
            )
        except wire.Ended:
            raise Fail("connection ended without CLOSE 4000") from None
        if f.type == wire.CLOSE:
            expect(f.code == wire.C_AUTH_TIMEOUT, f"expected CLOSE 4000, got {f}")
            return
        await asyncio.sleep(limit / 4)
    raise Fail("no CLOSE 4000 while PINGing past auth_timeout")


@check(
    section="11",
    small=True,
    title="an authenticated connection that receives nothing for idle_timeout gets CLOSE 4001",
)
async def idle_timeout(ctx: Context) -> None:
    small = ctx.small()
    limit = await _short(small, "idle_timeout")
    s = await small.user(sync=False)
    s.conn.timeout = limit + 3.0
    await expect_closed(s.conn, wire.C_IDLE_TIMEOUT, "idle connection")


@check(
    section="11",
    small=True,
    title="PINGs within the heartbeat keep a connection open past idle_timeout",
)
async def heartbeat_keeps_open(ctx: Context) -> None:
    small = ctx.small()
    limit = await _short(small, "idle_timeout")
    s = await small.user(sync=False)
    loop = asyncio.get_running_loop()
    end = loop.time() + limit * 1.5
    while loop.time() < end:
        expect_type(await s.req(wire.PING, {}), wire.PONG, "heartbeat PING")
        await asyncio.sleep(limit / 4)


@check(
    section="3.3",
    small=True,
    title="a request beyond max_inflight_requests gets ERROR 4001 with its rid and no retry_after",
)
async def inflight_limit(ctx: Context) -> None:
    small = ctx.small()
    n = int(await small.limit("max_inflight_requests"))
    if n > 16:
        raise Skip(f"the small-limits server has max_inflight_requests {n} (needs <= 16)")
    s = await small.user()
    peer = await small.register()
    rids = list(range(500, 500 + 4 * n + 8))
    await s.conn.send_raw(
        b"".join(
            wire.build(wire.SEND, r, {"to": peer, "cmid": small.cmid(), "text": "x"}) for r in rids
        )
    )
    answers = [await s.conn.answer(r) for r in rids]
    refused = [f for f in answers if f.type == wire.ERROR]
    expect(refused != [], f"{len(rids)} pipelined SENDs, none refused (limit {n})")
    for f in refused:
        expect(
            f.code == wire.E_RATE_LIMITED and "retry_after" not in f.payload,
            f"expected ERROR 4001 without retry_after, got {f}",
        )
    expect(sum(f.type == wire.SENT for f in answers) >= n, "fewer SENT than the limit")


@check(
    section="14.1",
    small=True,
    title="the limits in WELCOME are the ones enforced: "
    "max_frame_size + 1 gets CLOSE 1009, max_text_len + 1 gets 3002",
)
async def small_limits_enforced(ctx: Context) -> None:
    small = ctx.small()
    size = int(await small.limit("max_frame_size"))
    text = int(await small.limit("max_text_len"))
    if size > 65536:
        raise Skip(f"the small-limits server has max_frame_size {size} (needs <= 65536)")
    s = await small.user()
    peer = await small.register()
    f = await s.req(wire.SEND, {"to": peer, "cmid": small.cmid(), "text": "t" * (text + 1)})
    expect(f.type == wire.ERROR and f.code == wire.E_TOO_LARGE, f"text {text + 1}: {f}")
    body = wire.pack([wire.PING, 1, {"pad": "p" * size}])
    await s.conn.send_raw(wire.frame_bytes(body))
    await expect_closed(s.conn, wire.C_FRAME_TOO_LARGE, f"a {len(body)}-byte frame")
