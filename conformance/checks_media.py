"""Media: SPEC section 24 (uploads, downloads, who may read a blob, media messages).

Blobs are built here from bytes and hashed with hashlib; hashes and chunks travel as
msgpack bin (wire.pack writes bytes as bin).
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import wire
from .registry import Context, Session, check, expect_error, expect_type

SHA_HELLO = hashlib.sha256(b"hello world").digest()


def _begin(data: bytes, *, chunk_size: int = 16_384, media_type: str = "text/plain",
           name: str = "a.txt") -> dict[str, Any]:
    return {"size": len(data), "sha256": hashlib.sha256(data).digest(), "type": media_type,
            "name": name, "chunk_size": chunk_size}


@check(section="24.1", title="media requests before authentication are 2001")
async def media_needs_session(ctx: Context) -> None:
    conn = await ctx.anon()
    for msg_type, payload in ((wire.UPLOAD_BEGIN, _begin(b"x")),
                              (wire.DOWNLOAD, {"blob": SHA_HELLO, "offset": 0, "length": 1})):
        expect_error(await conn.request(msg_type, payload), wire.E_NOT_AUTHENTICATED,
                     f"{wire.NAMES[msg_type]} in CONNECTED")


@check(section="24.1", title="a hash sent as str, or not 32 bytes, is 1003")
async def hash_is_bin(ctx: Context) -> None:
    s = await ctx.user()
    for bad in (SHA_HELLO.hex(), SHA_HELLO[:31], SHA_HELLO + b"\0", "x" * 32):
        f = await s.req(wire.UPLOAD_BEGIN, {**_begin(b"hello world"), "sha256": bad})
        expect_error(f, wire.E_INVALID_FIELD, f"UPLOAD_BEGIN sha256={bad!r:.20}")
        f = await s.req(wire.DOWNLOAD, {"blob": bad, "offset": 0, "length": 1})
        expect_error(f, wire.E_INVALID_FIELD, f"DOWNLOAD blob={bad!r:.20}")


@check(section="24.8.3", title="UPLOAD_CHUNK data sent as str is 1003")
async def chunk_is_bin(ctx: Context) -> None:
    s = await ctx.user()
    f = await s.req(wire.UPLOAD_CHUNK, {"upload": 1, "offset": 0, "data": "hello"})
    expect_error(f, wire.E_INVALID_FIELD, "UPLOAD_CHUNK with str data")


@check(section="24.5", title="SEND media with an unknown kind, a short blob or a clip of three "
       "numbers is 1003")
async def send_media_shape(ctx: Context) -> None:
    s = await ctx.user()
    peer = await ctx.register()
    for media in ({"kind": "video", "blob": SHA_HELLO}, {"kind": "file", "blob": SHA_HELLO[:8]},
                  {"kind": "track", "blob": SHA_HELLO, "clip": [0, 1000, 2000]},
                  {"blob": SHA_HELLO}, "file"):
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
        c = await s.req(wire.UPLOAD_CHUNK, {"upload": upload_id, "offset": offset,
                                            "data": data[offset:offset + cs]})
        expect_type(c, wire.OK, f"UPLOAD_CHUNK at {offset}")
    return expect_type(await s.req(wire.UPLOAD_FINISH, {"upload": upload_id}), wire.UPLOAD_DONE,
                       "UPLOAD_FINISH")
