"""Media over a raw test client (rawclient.RawClient): uploads and downloads frame by frame,
and small media made on the spot (a PNG drawn with Pillow, a WAV tone), never committed."""

from __future__ import annotations

import hashlib
import io
import math
import struct
import wave
from typing import Any

from liaotian.protocol import Message, Ok, Send, SendMedia, Sent
from liaotian.protocol.media import (
    BlobData,
    Download,
    UploadBegin,
    UploadChunk,
    UploadDone,
    UploadFinish,
    UploadStatus,
)
from PIL import Image
from rawclient import RawClient

CHUNK = 16_384


def content(n: int, seed: int = 1) -> bytes:
    """`n` deterministic pseudo-random bytes."""
    out = bytearray()
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def png(width: int, height: int, seed: int = 0) -> bytes:
    im = Image.new("RGB", (width, height), ((seed * 40) % 256, 120, 200))
    for x in range(0, width, 7):
        im.putpixel((x, (x * 3 + seed) % height), (255, 255, 0))
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def wav(seconds: float, rate: int = 8000) -> bytes:
    """A 16-bit mono PCM WAV of a 440 Hz tone."""
    frames = int(seconds * rate)
    samples = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(frames)
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return out.getvalue()


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def begin_msg(
    c: RawClient,
    data: bytes,
    media_type: str = "application/octet-stream",
    name: str = "file.bin",
    chunk_size: int = CHUNK,
) -> UploadBegin:
    return UploadBegin(
        rid=c.rid(),
        size=len(data),
        sha256=sha(data),
        media_type=media_type,
        chunk_size=chunk_size,
        name=name,
    )


async def begin(c: RawClient, data: bytes, **kw: Any) -> UploadStatus | UploadDone:
    ans = await c.request(begin_msg(c, data, **kw))
    assert isinstance(ans, UploadStatus | UploadDone), ans
    return ans


async def chunk(c: RawClient, upload: int, offset: int, data: bytes) -> Message:
    return await c.request(UploadChunk(rid=c.rid(), upload=upload, offset=offset, data=data))


async def send_chunks(
    c: RawClient, status: UploadStatus, data: bytes, skip: set[int] = frozenset()
) -> None:  # type: ignore[assignment]
    """Every chunk not held (pipelined), each answered OK."""
    held = list(zip(status.held[::2], status.held[1::2], strict=True))
    msgs = []
    for offset in range(0, len(data), status.chunk_size):
        if offset in skip or any(s <= offset < e for s, e in held):
            continue
        msgs.append(
            UploadChunk(
                rid=c.rid(),
                upload=status.upload,
                offset=offset,
                data=data[offset : offset + status.chunk_size],
            )
        )
    await c.write(*msgs)
    for m in msgs:
        ans = await c.answer(m.rid)
        assert isinstance(ans, Ok), (m.offset, ans)


async def upload(c: RawClient, data: bytes, **kw: Any) -> UploadDone:
    """BEGIN, the chunks, FINISH: the UPLOAD_DONE."""
    first = await begin(c, data, **kw)
    if isinstance(first, UploadDone):
        return first
    await send_chunks(c, first, data)
    done = await c.request(UploadFinish(rid=c.rid(), upload=first.upload))
    assert isinstance(done, UploadDone), done
    return done


async def download(c: RawClient, blob: bytes, length: int = 524_288) -> bytes:
    out = b""
    while True:
        ans = await c.request(Download(rid=c.rid(), blob=blob, offset=len(out), length=length))
        assert isinstance(ans, BlobData), ans
        if not ans.data:
            assert len(out) == ans.size
            return out
        out += ans.data


async def send_media(
    c: RawClient, to: str, media: SendMedia, text: str = "", group: int | None = None
) -> Message:
    msg = Send(
        rid=c.rid(),
        to="" if group is not None else to,
        group=group,
        cmid=f"m{c.rid()}",
        text=text,
        media=media,
    )
    return await c.request(msg)


async def sent_media(
    c: RawClient, to: str, media: SendMedia, text: str = "", group: int | None = None
) -> Sent:
    ans = await send_media(c, to, media, text, group)
    assert isinstance(ans, Sent), ans
    return ans
