"""Encoding and framing: SPEC sections 1.3-1.8 and 2."""

from __future__ import annotations

import struct

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
from .wire import frame_bytes, pack


async def _malformed(
    ctx: Context, body: bytes, what: str, rid: int = 0, auth: bool = False
) -> None:
    """Body gets ERROR 1001 (with `rid`) and the connection goes on with the next frame.
    Bodies above a few KiB are sent after authentication (auth=True), where the full
    max_frame_size applies."""
    conn = (await ctx.user(sync=False)).conn if auth else await ctx.anon()
    await conn.send_raw(frame_bytes(body))
    if rid == 0:
        # the bodies use PING rid 5: a PONG rid 5 means the server accepted the frame
        f = await conn.next(
            lambda f: (f.type == wire.ERROR and f.rid == 0) or (f.type == wire.PONG and f.rid == 5),
            "ERROR 1001 rid 0",
        )
        expect_error(f, wire.E_MALFORMED, what, 0)
        await conn.barrier()
    else:
        f = await conn.answer(rid)
        expect_error(f, wire.E_MALFORMED, what, rid)
        await conn.barrier()


@check(section="2.1", title="the worked example PING frame 00000004 93 03 08 80 gets PONG rid 8")
async def worked_example_ping(ctx: Context) -> None:
    conn = await ctx.anon()
    await conn.send_raw(bytes.fromhex("000000049303088" + "0"))
    f = expect_type(await conn.answer(8), wire.PONG, "PING rid 8")
    expect(type(f.payload.get("time")) is int, f"PONG.time is not an integer: {f}")


@check(
    section="2.4",
    title="a length prefix above max_frame_size gets CLOSE 1009 without the body being read",
)
async def oversize_prefix(ctx: Context) -> None:
    size = await ctx.limit("max_frame_size")
    conn = await ctx.anon()
    await conn.send_raw(struct.pack(">I", size + 1))
    await expect_closed(conn, wire.C_FRAME_TOO_LARGE, "prefix max_frame_size+1")


@check(
    section="2.4",
    title="frames complete before an oversized prefix are answered before the CLOSE 1009",
)
async def oversize_after_ping(ctx: Context) -> None:
    size = await ctx.limit("max_frame_size")
    conn = await ctx.anon()
    await conn.send_raw(wire.build(wire.PING, 77, {}) + struct.pack(">I", size + 1))
    f = await conn.read_frame()
    expect(f.type == wire.PONG and f.rid == 77, f"expected PONG rid 77 first, got {f}")
    await expect_closed(conn, wire.C_FRAME_TOO_LARGE, "PING then oversize prefix")


@check(section="2.1", title="a frame of exactly max_frame_size body bytes is allowed")
async def exact_max_frame(ctx: Context) -> None:
    size = await ctx.limit("max_frame_size")
    s = await ctx.user(sync=False)
    rid = s.conn.rid()
    # PING with an unknown key (ignored, 1.8) padded so the body is exactly `size` bytes
    pad = "x"
    for _ in range(3):
        body = pack([wire.PING, rid, {"pad": pad}])
        pad = "x" * (len(pad) + size - len(body))
    body = pack([wire.PING, rid, {"pad": pad}])
    expect(len(body) == size, f"could not build a {size}-byte body ({len(body)})")
    await s.conn.send_raw(frame_bytes(body))
    expect_type(await s.conn.answer(rid), wire.PONG, "PING of max_frame_size bytes")


@check(
    section="2.4",
    title="a body that is not msgpack gets ERROR 1001 rid 0 and the connection continues",
)
async def not_msgpack(ctx: Context) -> None:
    await _malformed(ctx, b"\xc1", "body 0xc1")


@check(section="2.2", title="bytes after the body's msgpack value make it malformed (1001)")
async def trailing_bytes(ctx: Context) -> None:
    await _malformed(ctx, pack([wire.PING, 5, {}]) + b"\x00", "body with a trailing byte")


@check(section="2.4", title="a body that is not an array of exactly 3 elements gets 1001 rid 0")
async def not_three(ctx: Context) -> None:
    await _malformed(ctx, pack([wire.PING, 5]), "2-element body")
    await _malformed(ctx, pack([wire.PING, 5, {}, 1]), "4-element body")
    await _malformed(ctx, pack({"type": 3}), "map body")


@check(section="2.4", title="a rid that is not an integer in 0..2^32-1 gets 1001 with rid 0")
async def bad_rid(ctx: Context) -> None:
    await _malformed(ctx, pack([wire.PING, 2**32, {}]), "rid 2^32")
    await _malformed(ctx, pack([wire.PING, -1, {}]), "rid -1")
    await _malformed(ctx, pack([wire.PING, "5", {}]), "rid as str")


@check(section="2.4", title="a type outside 1..65535 gets 1001 with the frame's rid")
async def bad_type(ctx: Context) -> None:
    await _malformed(ctx, pack([0, 41, {}]), "type 0", rid=41)
    await _malformed(ctx, pack([65536, 42, {}]), "type 65536", rid=42)


@check(section="2.4", title="a payload that is not a map gets 1001 with the frame's rid")
async def payload_not_map(ctx: Context) -> None:
    await _malformed(ctx, pack([wire.PING, 43, []]), "payload []", rid=43)


@check(section="1.3", title="invalid UTF-8 in a str makes the frame malformed (1001)")
async def invalid_utf8(ctx: Context) -> None:
    # [PING, 5, {"k": <str "\xff\xfe">}]
    body = b"\x93\x03\x05\x81\xa1k\xa2\xff\xfe"
    await _malformed(ctx, body, "str with invalid UTF-8")


@check(
    section="1.3",
    title="an ext value (including the timestamp ext) makes the frame malformed (1001)",
)
async def ext_value(ctx: Context) -> None:
    body = b"\x93\x03\x05\x81\xa1k\xd6\xff\x00\x00\x00\x01"  # timestamp 32
    await _malformed(ctx, body, "timestamp ext value")
    body = b"\x93\x03\x05\x81\xa1k\xd4\x07\x00"  # fixext 1, type 7
    await _malformed(ctx, body, "ext type 7")


@check(
    section="2.3",
    title="a map key that is not a str (integer key) makes the frame malformed (1001)",
)
async def int_map_key(ctx: Context) -> None:
    await _malformed(ctx, b"\x93\x03\x05\x81\x01\x02", "integer map key")


@check(section="1.3", title="a map key of msgpack type bin makes the frame malformed (1001)")
async def bin_map_key(ctx: Context) -> None:
    await _malformed(ctx, b"\x93\x03\x05\x81\xc4\x01k\x01", "bin map key at top level")
    await _malformed(ctx, b"\x93\x03\x05\x81\xa1m\x81\xc4\x01k\x01", "nested bin map key")


@check(section="2.3", title="an array above max_array_len (10000) elements is malformed (1001)")
async def array_too_long(ctx: Context) -> None:
    await _malformed(ctx, pack([wire.PING, 5, {"a": [0] * 10_001}]), "array of 10001", auth=True)


@check(section="2.3", title="a map above max_map_len (1000) pairs is malformed (1001)")
async def map_too_long(ctx: Context) -> None:
    await _malformed(
        ctx, pack([wire.PING, 5, {f"k{i}": 0 for i in range(1001)}]), "map of 1001 pairs", auth=True
    )


@check(section="1.3", title="a bin where a str is expected is a wrong type (1003)")
async def bin_for_str(ctx: Context) -> None:
    conn = await ctx.anon()
    f = await conn.request(wire.REGISTER, {"username": b"binname", "password": "password1"})
    expect_error(f, wire.E_INVALID_FIELD, "REGISTER with username as bin")


@check(section="1.3", title="receivers accept non-shortest msgpack encodings")
async def long_encodings(ctx: Context) -> None:
    conn = await ctx.anon()
    # [uint32 PING, uint32 rid 9, map16 {str8 "pad": str8 "x"}]
    body = b"\x93\xce\x00\x00\x00\x03\xce\x00\x00\x00\x09\xde\x00\x01\xd9\x03pad\xd9\x01x"
    await conn.send_raw(frame_bytes(body))
    expect_type(await conn.answer(9), wire.PONG, "PING with uint32/map16/str8 encodings")


@check(section="1.8", title="a receiver ignores map keys it does not know")
async def unknown_keys(ctx: Context) -> None:
    conn = await ctx.connect()
    f = await conn.request(wire.HELLO, {"versions": [1], "client": "x", "x-future": {"a": 1}})
    expect_type(f, wire.WELCOME, "HELLO with an unknown key")
    expect_type(
        await conn.request(wire.PING, {"x-future": [1, 2]}), wire.PONG, "PING with an unknown key"
    )


@check(section="1.6", title="nil sent for an optional field is an invalid field (1003)")
async def nil_optional(ctx: Context) -> None:
    conn = await ctx.connect()
    f = await conn.request(wire.HELLO, {"versions": [1], "client": None})
    expect_error(f, wire.E_INVALID_FIELD, "HELLO with client: nil")


@check(
    section="1.4",
    title="a negative integer, a boolean or a float where an integer is "
    "expected is an invalid field (1003)",
)
async def bad_integers(ctx: Context) -> None:
    s = await ctx.user(sync=False)
    for since in (-1, True, 1.0, 2**63):
        f = await s.req(wire.SYNC, {"since": since})
        expect_error(f, wire.E_INVALID_FIELD, f"SYNC since={since!r}")


@check(
    section="1.3",
    title="an integer is not a boolean: TYPING typing=1 is an invalid field (1003, rid 0)",
)
async def int_not_bool(ctx: Context) -> None:
    s = await ctx.user()
    other = await ctx.register()
    await s.conn.send(wire.TYPING, 0, {"to": other, "typing": 1})
    await error_rid0(s.conn, wire.E_INVALID_FIELD, "TYPING typing=1")


@check(
    section="2.4",
    title="more than max_protocol_errors (10) frame errors: the 11th is answered, then CLOSE 1002",
)
async def protocol_error_budget(ctx: Context) -> None:
    conn = await ctx.anon()
    await conn.send_raw(frame_bytes(b"\xc1") * 11)
    errors = 0
    while True:
        f = await conn.read_frame()
        if f.type == wire.CLOSE:
            expect(f.code == wire.C_PROTOCOL_ERROR, f"expected CLOSE 1002, got {f}")
            break
        expect_error(f, wire.E_MALFORMED, f"malformed frame {errors + 1}", 0)
        errors += 1
    expect(errors == 11, f"expected 11 ERRORs before CLOSE 1002, got {errors}")
    expect(await conn.wait_eof(), "connection still open after CLOSE 1002")


@check(
    section="2.4",
    title="refusals that say 'not now' (2001) do not count towards max_protocol_errors",
)
async def refusals_do_not_count(ctx: Context) -> None:
    conn = await ctx.anon()
    for _ in range(12):
        f = await conn.request(wire.LIST_DEVICES, {})
        expect_error(f, wire.E_NOT_AUTHENTICATED, "LIST_DEVICES in CONNECTED")
    expect_type(await conn.request(wire.PING, {}), wire.PONG, "PING after 12 refusals")
