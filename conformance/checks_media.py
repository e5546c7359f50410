"""Media: SPEC section 27 (uploads, downloads, who may read a blob, media messages).

Blobs are built here from bytes and hashed with hashlib; hashes and chunks travel as
msgpack bin (wire.pack writes bytes as bin).
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import wire
from .registry import Context, Session, check, expect, expect_error, expect_type

SHA_HELLO = hashlib.sha256(b"hello world").digest()


def _begin(
    data: bytes, *, chunk_size: int = 16_384, media_type: str = "text/plain", name: str = "a.txt"
) -> dict[str, Any]:
    return {
        "size": len(data),
        "sha256": hashlib.sha256(data).digest(),
        "type": media_type,
        "name": name,
        "chunk_size": chunk_size,
    }


@check(section="27.1", title="media requests before authentication are 2001")
async def media_needs_session(ctx: Context) -> None:
    conn = await ctx.anon()
    for msg_type, payload in (
        (wire.UPLOAD_BEGIN, _begin(b"x")),
        (wire.DOWNLOAD, {"blob": SHA_HELLO, "offset": 0, "length": 1}),
    ):
        expect_error(
            await conn.request(msg_type, payload),
            wire.E_NOT_AUTHENTICATED,
            f"{wire.NAMES[msg_type]} in CONNECTED",
        )


@check(section="27.1", title="a hash sent as str, or not 32 bytes, is 1003")
async def hash_is_bin(ctx: Context) -> None:
    s = await ctx.user()
    for bad in (SHA_HELLO.hex(), SHA_HELLO[:31], SHA_HELLO + b"\0", "x" * 32):
        f = await s.req(wire.UPLOAD_BEGIN, {**_begin(b"hello world"), "sha256": bad})
        expect_error(f, wire.E_INVALID_FIELD, f"UPLOAD_BEGIN sha256={bad!r:.20}")
        f = await s.req(wire.DOWNLOAD, {"blob": bad, "offset": 0, "length": 1})
        expect_error(f, wire.E_INVALID_FIELD, f"DOWNLOAD blob={bad!r:.20}")


@check(section="27.8.3", title="UPLOAD_CHUNK data sent as str is 1003")
async def chunk_is_bin(ctx: Context) -> None:
    s = await ctx.user()
    f = await s.req(wire.UPLOAD_CHUNK, {"upload": 1, "offset": 0, "data": "hello"})
    expect_error(f, wire.E_INVALID_FIELD, "UPLOAD_CHUNK with str data")


@check(
    section="27.5",
    title="SEND media with an unknown kind, a short blob or a clip of three numbers is 1003",
)
async def send_media_shape(ctx: Context) -> None:
    s = await ctx.user()
    peer = await ctx.register()
    for media in (
        {"kind": "video", "blob": SHA_HELLO},
        {"kind": "file", "blob": SHA_HELLO[:8]},
        {"kind": "track", "blob": SHA_HELLO, "clip": [0, 1000, 2000]},
        {"blob": SHA_HELLO},
        "file",
    ):
        f = await s.req(wire.SEND, {"to": peer, "cmid": ctx.cmid(), "text": "", "media": media})
        expect_error(f, wire.E_INVALID_FIELD, f"SEND media={media!r:.60}")


async def upload(s: Session, data: bytes, **begin: Any) -> wire.Frame:
    """Upload `data` in chunks of the answer's chunk size; the UPLOAD_DONE."""
    f = await s.req(wire.UPLOAD_BEGIN, _begin(data, **begin))
    if f.type == wire.UPLOAD_DONE:
        return f
    expect_type(f, wire.UPLOAD_STATUS, "UPLOAD_BEGIN")
    upload_id, cs = f.payload["upload"], f.payload["chunk_size"]
    for offset in range(0, len(data), cs):
        c = await s.req(
            wire.UPLOAD_CHUNK,
            {"upload": upload_id, "offset": offset, "data": data[offset : offset + cs]},
        )
        expect_type(c, wire.OK, f"UPLOAD_CHUNK at {offset}")
    return expect_type(
        await s.req(wire.UPLOAD_FINISH, {"upload": upload_id}), wire.UPLOAD_DONE, "UPLOAD_FINISH"
    )


async def download_all(s: Session, blob: bytes, length: int = 4096) -> bytes:
    out = b""
    while True:
        f = expect_type(
            await s.req(wire.DOWNLOAD, {"blob": blob, "offset": len(out), "length": length}),
            wire.BLOB_DATA,
            "DOWNLOAD",
        )
        data = f.payload.get("data")
        expect(isinstance(data, bytes), f"BLOB_DATA.data is not bin: {f}")
        if not data:
            expect(f.payload.get("size") == len(out), f"size {f.payload.get('size')}")
            return out
        out += data


def _data(n: int) -> bytes:
    return (Context.cmid().encode() * (n // 8 + 1))[:n]


@check(
    section="27.2",
    title="an upload in chunks is answered UPLOAD_DONE {blob = sha256}; the "
    "same user's BEGIN of it again is answered UPLOAD_DONE at once",
)
async def upload_and_dedup(ctx: Context) -> None:
    s = await ctx.user()
    data = _data(40_000)
    done = await upload(s, data)
    p = done.payload
    expect(
        p.get("blob") == hashlib.sha256(data).digest() and p.get("size") == len(data),
        f"UPLOAD_DONE {done}",
    )
    expect(p.get("type") == "text/plain" and p.get("info") == {}, f"UPLOAD_DONE {done}")
    again = await s.req(wire.UPLOAD_BEGIN, _begin(data))
    expect_type(again, wire.UPLOAD_DONE, "UPLOAD_BEGIN of stored content")
    expect(await download_all(s, p["blob"]) == data, "the downloaded bytes differ")


@check(
    section="27.2", title="another user's BEGIN of stored content sends every byte (held is empty)"
)
async def no_dedup_oracle(ctx: Context) -> None:
    a, b = await ctx.user(), await ctx.user()
    data = _data(20_000)
    await upload(a, data)
    f = expect_type(
        await b.req(wire.UPLOAD_BEGIN, _begin(data)),
        wire.UPLOAD_STATUS,
        "UPLOAD_BEGIN by another user",
    )
    expect(f.payload.get("held") == [], f"held {f.payload.get('held')}")


@check(
    section="27.2",
    title="bytes that do not hash to sha256: FINISH is 3109 and the upload is gone (3101)",
)
async def hash_mismatch(ctx: Context) -> None:
    s = await ctx.user()
    data = _data(1_000)
    f = expect_type(await s.req(wire.UPLOAD_BEGIN, _begin(data)), wire.UPLOAD_STATUS, "BEGIN")
    u = f.payload["upload"]
    expect_type(
        await s.req(wire.UPLOAD_CHUNK, {"upload": u, "offset": 0, "data": b"x" * len(data)}),
        wire.OK,
        "CHUNK",
    )
    expect_error(
        await s.req(wire.UPLOAD_FINISH, {"upload": u}),
        wire.E_HASH_MISMATCH,
        "FINISH of wrong bytes",
    )
    expect_error(
        await s.req(wire.UPLOAD_FINISH, {"upload": u}), wire.E_UNKNOWN_UPLOAD, "FINISH again"
    )


@check(
    section="27.2",
    title="chunks out of range, misaligned, of the wrong size or past the "
    "end are 3104, 3105, 3106, 3107; FINISH before every byte is 3108",
)
async def chunk_refusals(ctx: Context) -> None:
    s = await ctx.user()
    data = _data(40_000)
    f = expect_type(await s.req(wire.UPLOAD_BEGIN, _begin(data)), wire.UPLOAD_STATUS, "BEGIN")
    u, cs = f.payload["upload"], f.payload["chunk_size"]
    for offset, n, code in (
        (40_000, 1, wire.E_CHUNK_OUT_OF_RANGE),
        (7, 1, wire.E_CHUNK_MISALIGNED),
        (0, cs - 1, wire.E_CHUNK_SIZE_MISMATCH),
        (2 * cs, cs, wire.E_TOO_MANY_BYTES),
    ):
        expect_error(
            await s.req(wire.UPLOAD_CHUNK, {"upload": u, "offset": offset, "data": b"x" * n}),
            code,
            f"UPLOAD_CHUNK at {offset} of {n} bytes",
        )
    f = expect_error(
        await s.req(wire.UPLOAD_FINISH, {"upload": u}),
        wire.E_UPLOAD_INCOMPLETE,
        "FINISH with nothing sent",
    )
    expect(f.payload.get("data", {}).get("missing") == [[0, 40_000]], f"data: {f}")


@check(
    section="27.4",
    title="a blob is 3111 to a stranger and readable by the recipient of a message referencing it",
)
async def access_by_message(ctx: Context) -> None:
    a, b, stranger = await ctx.user(), await ctx.user(), await ctx.user()
    data = _data(3_000)
    blob = (await upload(a, data)).payload["blob"]
    for s in (b, stranger):
        expect_error(
            await s.req(wire.DOWNLOAD, {"blob": blob, "offset": 0, "length": 10}),
            wire.E_UNKNOWN_BLOB,
            "DOWNLOAD before any message",
        )
    f = await a.req(
        wire.SEND,
        {
            "to": b.user,
            "cmid": ctx.cmid(),
            "text": "file",
            "media": {"kind": "file", "blob": blob, "name": "a.txt"},
        },
    )
    expect_type(f, wire.SENT, "SEND with media")
    push = await b.conn.next(lambda x: x.type == wire.UPDATES and x.rid == 0, "the push")
    media = push.payload["updates"][-1][2].get("media")
    expect(
        media
        == {"kind": "file", "blob": blob, "size": len(data), "type": "text/plain", "name": "a.txt"},
        f"media map {media!r:.200}",
    )
    expect(await download_all(b, blob, 1_000) == data, "the recipient's bytes differ")
    expect_error(
        await stranger.req(wire.DOWNLOAD, {"blob": blob, "offset": 0, "length": 10}),
        wire.E_UNKNOWN_BLOB,
        "DOWNLOAD by a stranger",
    )


@check(
    section="27.3",
    title="DOWNLOAD past the end or with length 0 is 3112; at the end it answers empty data",
)
async def download_ranges(ctx: Context) -> None:
    s = await ctx.user()
    data = _data(100)
    blob = (await upload(s, data)).payload["blob"]
    for offset, length in ((101, 1), (0, 0)):
        expect_error(
            await s.req(wire.DOWNLOAD, {"blob": blob, "offset": offset, "length": length}),
            wire.E_BAD_RANGE,
            f"DOWNLOAD offset {offset} length {length}",
        )
    f = expect_type(
        await s.req(wire.DOWNLOAD, {"blob": blob, "offset": 100, "length": 5}),
        wire.BLOB_DATA,
        "DOWNLOAD at the end",
    )
    expect(f.payload.get("data") == b"" and f.payload.get("size") == 100, f"{f}")
