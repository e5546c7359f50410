"""`client.media` against a real server: uploads and downloads that resume by themselves
after the server restarts under them, media messages of each kind, and how they print."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from liaotian.client import (
    Backoff,
    Client,
    ErrorCode,
    MediaRef,
    MessageReceived,
    RequestError,
    register,
)
from liaotian.client.media import describe
from liaotian.protocol import ChatMessage
from liaotian.protocol.media import UploadDone
from liaotian.server.testing import RunningServer, run_server
from mediaclient import content, png, wav

WAIT = 15.0
PASSWORD = "correct horse battery"


def client(srv: RunningServer, user: str) -> Client:
    return Client(
        srv.host,
        srv.port,
        username=user,
        password=PASSWORD,
        backoff=Backoff(base=0.02, cap=0.2),
        request_timeout=WAIT,
    )


async def users(srv: RunningServer, *names: str) -> None:
    for name in names:
        await register(srv.host, srv.port, name, PASSWORD)


async def next_media(c: Client) -> ChatMessage:
    async with asyncio.timeout(WAIT):
        async for ev in c:
            if isinstance(ev, MessageReceived) and ev.message.media is not None:
                return ev.message
    raise AssertionError("the client ended")


async def test_upload_send_receive_download(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        await users(srv, "alice", "bob")
        src = tmp_path / "notes.pdf"
        data = content(1_300_000, seed=1)
        src.write_bytes(data)
        seen: list[tuple[int, int]] = []
        async with client(srv, "alice") as alice, client(srv, "bob") as bob:
            done = await alice.media.upload(src, progress=lambda d, t: seen.append((d, t)))
            assert done.blob == hashlib.sha256(data).digest() and done.size == len(data)
            assert done.media_type == "application/pdf"
            assert seen[0] == (0, len(data)) and seen[-1] == (len(data), len(data))
            assert [d for d, _ in seen] == sorted(d for d, _ in seen)
            again = await alice.media.upload(io.BytesIO(data))  # stored before: no bytes
            assert again.blob == done.blob
            await alice.media.send("bob", MediaRef.file(done, "notes.pdf"), "the notes")
            msg = await next_media(bob)
            assert msg.text == "the notes"
            assert describe(msg.media) == "[file notes.pdf, 1.2 MiB]"
            out = tmp_path / "got.pdf"
            assert await bob.media.download(msg, out) == len(data)
            assert out.read_bytes() == data and not Path(str(out) + ".part").exists()
            buf = io.BytesIO()
            await bob.media.download(msg.media or {}, buf, window=1)
            assert buf.getvalue() == data
            with pytest.raises(RequestError) as info:
                await alice.media.download(bytes(32), io.BytesIO())
            assert info.value.code == ErrorCode.UNKNOWN_BLOB


async def test_each_kind(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        await users(srv, "alice", "bob")
        photo, tone, art = tmp_path / "beach.png", tmp_path / "tone.wav", tmp_path / "a.png"
        photo.write_bytes(png(1200, 800))
        tone.write_bytes(wav(12.0, rate=4000))
        art.write_bytes(png(300, 300, seed=2))
        async with client(srv, "alice") as alice, client(srv, "bob") as bob:
            await alice.media.send_image("bob", photo, text="look")
            msg = await next_media(bob)
            assert describe(msg.media) == "[image 1200x800 beach.png]"
            assert msg.media is not None
            thumb = io.BytesIO()
            await bob.media.download(msg.media["thumb"]["blob"], thumb)
            assert thumb.getvalue()[:3] == b"\xff\xd8\xff"
            await alice.media.send_voice("bob", tone)
            assert describe((await next_media(bob)).media) == "[voice 0:12]"
            await alice.media.send_track(
                "bob", tone, title="Tone", artist="Alice", clip=(2_000, 7_000), cover=art
            )
            track = await next_media(bob)
            assert describe(track.media) == "[track Tone - Alice (0:02-0:07 of 0:12)]"
            assert track.media is not None and track.media["cover"]["w"] == 300
            with pytest.raises(RequestError) as info:
                await alice.media.send_track("bob", tone, clip=(11_000, 13_000))
            assert info.value.code == ErrorCode.BAD_CLIP


async def test_an_upload_resumes_after_the_server_restarts(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        await users(srv, "alice")
        data = content(4 * 524_288 + 1000, seed=2)
        restarted = False
        seen: list[int] = []

        async def progress(done: int, total: int) -> None:
            nonlocal restarted
            seen.append(done)
            if done >= 2 * 524_288 and not restarted:
                restarted = True
                await srv.restart()  # graceful: the partial's chunks are synced

        async with client(srv, "alice") as alice:
            done = await alice.media.upload(io.BytesIO(data), progress=progress, window=1)
            assert done.blob == hashlib.sha256(data).digest()
            assert restarted
            # after the restart BEGIN reported what the server held: no step back to 0
            assert seen.count(0) == 1 and min(seen[seen.index(max(seen[:4])) :]) > 0
            out = io.BytesIO()
            await alice.media.download(done, out)
            assert out.getvalue() == data


async def test_a_download_resumes_after_the_server_restarts(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        await users(srv, "alice")
        data = content(6 * 524_288, seed=3)
        async with client(srv, "alice") as alice:
            done: UploadDone = await alice.media.upload(io.BytesIO(data))
            restarted = False

            async def progress(have: int, total: int) -> Any:
                nonlocal restarted
                if have >= 2 * 524_288 and not restarted:
                    restarted = True
                    await srv.restart()

            out = tmp_path / "copy.bin"
            assert await alice.media.download(done, out, progress=progress) == len(data)
            assert restarted and out.read_bytes() == data
            # a .part left by an earlier run is resumed, not started over
            part = tmp_path / "again.bin.part"
            part.write_bytes(data[:1000])
            got: list[int] = []
            await alice.media.download(
                done, tmp_path / "again.bin", progress=lambda h, t: got.append(h)
            )
            assert (tmp_path / "again.bin").read_bytes() == data and got[0] > 1000
