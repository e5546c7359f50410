"""The handshake (SPEC section 5, messages 7.1-7.4) and the client-side test vectors
(section 28) sent byte for byte."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from . import wire
from .registry import (
    Context,
    Fail,
    check,
    expect,
    expect_closed,
    expect_error,
    expect_type,
    number,
)

LIMIT_KEYS = {
    "max_frame_size",
    "max_text_len",
    "max_meta_size",
    "max_cmid_len",
    "max_sync_page",
    "max_history_page",
    "idle_timeout",
    "auth_timeout",
    "max_inflight_requests",
}


@check(section="5", title="HELLO gets WELCOME with the same rid, version 1 and the fields of 7.2")
async def welcome_fields(ctx: Context) -> None:
    conn = await ctx.connect()
    f = expect_type(
        await conn.request(wire.HELLO, {"versions": [1], "client": "c/1"}, rid=3),
        wire.WELCOME,
        "HELLO",
    )
    p = f.payload
    expect(f.rid == 3, f"WELCOME rid {f.rid}, expected 3")
    expect(p.get("version") == 1 and type(p.get("version")) is int, f"version: {f}")
    server = p.get("server")
    expect(isinstance(server, str) and len(server) <= 128, f"server: {f}")
    expect(type(p.get("time")) is int and p["time"] > 0, f"time: {f}")
    expect(number(p.get("heartbeat")), f"heartbeat: {f}")


@check(
    section="5",
    title="WELCOME.limits has exactly the nine keys of version 1, with "
    "numeric values (and media's map when the server has media, 27.6, and the rates' map)",
)
async def welcome_limits(ctx: Context) -> None:
    limits = dict(await ctx.limits())
    media = limits.pop("media", None)
    rates = limits.pop("rates", None)
    expect(set(limits) == LIMIT_KEYS, f"limits keys {sorted(limits)}")
    for k, v in limits.items():
        expect(type(v) in (int, float) and v > 0, f"limits.{k} = {v!r}")
    expect(media is None or isinstance(media, dict), f"limits.media = {media!r}")
    expect(rates is None or isinstance(rates, dict), f"limits.rates = {rates!r}")
    for k, v in (rates or {}).items():
        expect(type(v) in (int, float) and v > 0, f"limits.rates.{k} = {v!r}")


@check(
    section="5",
    title="the server picks the highest common version (HELLO [7, 1, 3] gets version 1)",
)
async def highest_common(ctx: Context) -> None:
    conn = await ctx.connect()
    f = expect_type(
        await conn.request(wire.HELLO, {"versions": [7, 1, 3]}), wire.WELCOME, "HELLO [7, 1, 3]"
    )
    expect(f.payload.get("version") == 1, f"chose {f.payload.get('version')}, expected 1")


@check(
    section="5",
    title="no common version: ERROR 1005 with data.versions and the HELLO's rid, then CLOSE 4004",
)
async def no_common_version(ctx: Context) -> None:
    conn = await ctx.connect()
    f = await conn.request(wire.HELLO, {"versions": [2, 9]}, rid=4)
    expect_error(f, wire.E_UNSUPPORTED_VERSION, "HELLO [2, 9]", 4)
    versions = f.payload.get("data", {}).get("versions")
    expect(isinstance(versions, list) and 1 in versions, f"data.versions: {f}")
    await expect_closed(conn, wire.C_UNSUPPORTED_VERSION, "after ERROR 1005")


@check(section="7.1", title="HELLO versions must be 1..16 integers of 1..65535 (else 1003)")
async def bad_versions(ctx: Context) -> None:
    for versions in ([], [0], [65536], list(range(1, 18)), "1", [1.0]):
        conn = await ctx.connect()
        f = await conn.request(wire.HELLO, {"versions": versions})
        expect_error(f, wire.E_INVALID_FIELD, f"HELLO versions={versions!r}")
    conn = await ctx.connect()
    expect_error(await conn.request(wire.HELLO, {}), wire.E_INVALID_FIELD, "HELLO without versions")


@check(section="7.1", title="HELLO client is optional; above 128 characters it is 1003")
async def hello_client(ctx: Context) -> None:
    conn = await ctx.connect()
    expect_type(
        await conn.request(wire.HELLO, {"versions": [1]}), wire.WELCOME, "HELLO without client"
    )
    conn = await ctx.connect()
    expect_type(
        await conn.request(wire.HELLO, {"versions": [1], "client": "é" * 128}),
        wire.WELCOME,
        "HELLO client of 128 characters",
    )
    conn = await ctx.connect()
    expect_error(
        await conn.request(wire.HELLO, {"versions": [1], "client": "c" * 129}),
        wire.E_INVALID_FIELD,
        "HELLO client of 129 characters",
    )


@check(
    section="7.4", title="PING gets PONG {time} with the same rid in CONNECTED and AUTHENTICATED"
)
async def ping_pong(ctx: Context) -> None:
    conn = await ctx.anon()
    f = expect_type(await conn.request(wire.PING, {}), wire.PONG, "PING in CONNECTED")
    expect(type(f.payload.get("time")) is int, f"PONG.time: {f}")
    s = await ctx.user(sync=False)
    expect_type(await s.req(wire.PING, {}), wire.PONG, "PING in AUTHENTICATED")


def _vectors() -> list[dict[str, Any]]:
    text = resources.files("liaotian.conformance").joinpath("protocol_v1.json").read_text()
    data: list[dict[str, Any]] = json.loads(text)
    return [v for v in data if v["direction"] == "client->server"]


DECODE_ERRORS = {wire.E_MALFORMED, wire.E_UNKNOWN_TYPE, wire.E_INVALID_FIELD}
SKIP_VECTORS = {"hello", "hello_unsupported", "register", "login", "auth", "logout"}


@check(
    section="28", title="the server decodes every client->server test vector (sent byte for byte)"
)
async def client_vectors(ctx: Context) -> None:
    vecs = {v["name"]: v for v in _vectors()}
    expect(len(vecs) > 20, f"only {len(vecs)} client vectors found")
    conn = await ctx.connect()
    await conn.send_raw(bytes.fromhex(vecs["hello"]["hex"]))
    expect_type(await conn.answer(vecs["hello"]["rid"]), wire.WELCOME, "vector hello")
    for name in ("auth", "register"):  # CONNECTED: an answer other than a decode error
        v = vecs[name]
        await conn.send_raw(bytes.fromhex(v["hex"]))
        f = await conn.answer(v["rid"])
        if f.type == wire.ERROR and f.code in DECODE_ERRORS:
            raise Fail(f"vector {name}: {f}")
    s = await ctx.user()
    bad: list[str] = []
    for name, v in vecs.items():
        if name in SKIP_VECTORS or name.startswith("close_"):
            continue
        await s.conn.send_raw(bytes.fromhex(v["hex"]))
        frames = await s.conn.barrier() if v["rid"] == 0 else [await s.conn.answer(v["rid"])]
        for f in frames:
            if f.type == wire.ERROR and f.code in DECODE_ERRORS:
                bad.append(f"{name}: {f}")
    v = vecs["logout"]
    await s.conn.send_raw(bytes.fromhex(v["hex"]))
    expect_type(await s.conn.answer(v["rid"]), wire.LOGGED_OUT, "vector logout")
    conn = await ctx.anon()
    await conn.send_raw(bytes.fromhex(vecs["close_normal"]["hex"]))
    expect(await conn.wait_eof(), "vector close_normal: the connection stayed open")
    expect(not bad, "decode errors: " + "; ".join(bad))


@check(
    section="28",
    title="the vectors hello_unsupported -> error_unsupported_version, close_unsupported_version",
)
async def vector_unsupported(ctx: Context) -> None:
    vecs = {v["name"]: v for v in _vectors()}
    conn = await ctx.connect()
    v = vecs["hello_unsupported"]
    await conn.send_raw(bytes.fromhex(v["hex"]))
    expect_error(await conn.answer(v["rid"]), wire.E_UNSUPPORTED_VERSION, "hello_unsupported")
    await expect_closed(conn, wire.C_UNSUPPORTED_VERSION, "hello_unsupported")
