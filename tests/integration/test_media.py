"""Media against a real server (SPEC.md 27): uploads with resume and deduplication, ranged
downloads, who may read a blob, media messages of each kind, every refusal, budgets, the
sweeps, and chat still flowing beside media."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from liaotian.protocol import ChatMessage, Error, ErrorCode, Ok, Ping, Pong, SendMedia, Updates
from liaotian.protocol.media import (
    BlobData,
    Download,
    UploadCancel,
    UploadChunk,
    UploadDone,
    UploadFinish,
    UploadStatus,
)
from liaotian.server.media.limits import MediaLimits
from liaotian.server.testing import RunningServer, run_server
from mediaclient import (
    CHUNK,
    begin,
    begin_msg,
    chunk,
    content,
    download,
    png,
    send_chunks,
    send_media,
    sent_media,
    sha,
    upload,
    wav,
)

E = ErrorCode


def media_dir(srv: RunningServer) -> Path:
    return Path(srv.config.db_path + ".media")


def blob_files(srv: RunningServer) -> list[str]:
    return sorted(f for _d, _s, files in os.walk(media_dir(srv) / "blobs") for f in files)


async def pushed_message(c: Any) -> ChatMessage:
    u = await c.next_updates()
    assert isinstance(u, Updates)
    msg = u.updates[-1].message
    assert msg is not None
    return msg


async def test_welcome_advertises_the_media_limits(server: RunningServer, clients: Any) -> None:
    c = await clients.connect(server)
    w = await c.hello()
    assert w.limits["media"] == MediaLimits().advertised(1024 * 1024)
    assert w.limits["max_frame_size"] == 1024 * 1024


async def test_upload_in_chunks_then_the_same_uploader_sends_nothing_again(
    server: RunningServer, clients: Any
) -> None:
    alice = await clients.user(server, "alice")
    data = content(40_000)
    first = await begin(alice, data, media_type="application/pdf", name="notes.pdf")
    assert isinstance(first, UploadStatus)
    assert (first.size, first.chunk_size, first.held) == (40_000, CHUNK, ())
    await send_chunks(alice, first, data)
    done = await alice.request(UploadFinish(rid=alice.rid(), upload=first.upload))
    assert isinstance(done, UploadDone)
    assert (done.blob, done.size, done.media_type, done.info) == (
        sha(data),
        40_000,
        "application/pdf",
        {},
    )
    assert blob_files(server) == [sha(data).hex()]
    assert os.listdir(media_dir(server) / "partial") == []
    # the same uploader: answered at once; a FINISH retried: answered again
    again = await begin(alice, data)
    assert isinstance(again, UploadDone) and again.blob == done.blob
    retried = await alice.request(UploadFinish(rid=alice.rid(), upload=first.upload))
    assert isinstance(retried, UploadDone) and retried.blob == done.blob
    assert await download(alice, done.blob, length=9_000) == data


async def test_no_cross_user_dedup_oracle(server: RunningServer, clients: Any) -> None:
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob")
    data = content(20_000, seed=2)
    await upload(alice, data)
    status = await begin(bob, data)
    assert isinstance(status, UploadStatus) and status.held == ()  # every byte, again
    await bob.expect_error(
        Download(rid=bob.rid(), blob=sha(data), offset=0, length=10), E.UNKNOWN_BLOB
    )  # knowing the hash grants nothing
    await send_chunks(bob, status, data)
    done = await bob.request(UploadFinish(rid=bob.rid(), upload=status.upload))
    assert isinstance(done, UploadDone) and done.blob == sha(data)
    assert blob_files(server) == [sha(data).hex()]  # stored once
    assert await download(bob, sha(data)) == data


async def test_a_blob_is_readable_by_the_readers_of_a_message(
    server: RunningServer, clients: Any
) -> None:
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob")
    carol = await clients.user(server, "carol")
    data = content(5_000, seed=3)
    done = await upload(alice, data, media_type="text/plain", name="a.txt")
    probe = Download(rid=bob.rid(), blob=done.blob, offset=0, length=100)
    missing = await bob.expect_error(probe, E.UNKNOWN_BLOB)
    nowhere = await bob.expect_error(
        Download(rid=bob.rid(), blob=bytes(32), offset=0, length=100), E.UNKNOWN_BLOB
    )
    assert missing.message == nowhere.message  # not told apart
    sent = await sent_media(
        alice, "bob", SendMedia(kind="file", blob=done.blob, name="a.txt"), text="the notes"
    )
    msg = await pushed_message(bob)
    assert msg.id == sent.id and msg.text == "the notes"
    assert msg.media == {
        "kind": "file",
        "blob": done.blob,
        "size": 5_000,
        "type": "text/plain",
        "name": "a.txt",
    }
    assert await download(bob, done.blob, length=4096) == data
    await carol.expect_error(
        Download(rid=carol.rid(), blob=done.blob, offset=0, length=1), E.UNKNOWN_BLOB
    )
    ans = await send_media(carol, "bob", SendMedia(kind="file", blob=done.blob))
    assert isinstance(ans, Error) and ans.code == E.UNKNOWN_BLOB
    # bob may forward what he can read
    await sent_media(bob, "carol", SendMedia(kind="file", blob=done.blob))
    assert await download(carol, done.blob) == data
    page = await bob.history("alice")
    assert page.messages[-1].media is not None and page.messages[-1].media["blob"] == done.blob


async def test_ranged_downloads_and_their_bounds(server: RunningServer, clients: Any) -> None:
    alice = await clients.user(server, "alice")
    data = content(1_000, seed=4)
    done = await upload(alice, data)
    part = await alice.request(Download(rid=alice.rid(), blob=done.blob, offset=990, length=100))
    assert isinstance(part, BlobData) and (part.offset, part.size, part.data) == (
        990,
        1_000,
        data[990:],
    )
    end = await alice.request(Download(rid=alice.rid(), blob=done.blob, offset=1_000, length=1))
    assert isinstance(end, BlobData) and end.data == b""
    for offset, length in ((1_001, 1), (0, 0), (0, 524_289)):
        await alice.expect_error(
            Download(rid=alice.rid(), blob=done.blob, offset=offset, length=length), E.BAD_RANGE
        )


async def test_image_voice_and_track_messages(server: RunningServer, clients: Any) -> None:
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob")
    image = png(900, 600)
    img = await upload(alice, image, media_type="image/jpeg", name="beach.png")
    assert img.media_type == "image/png"  # detected, not declared
    assert (img.info["w"], img.info["h"], img.info["format"]) == (900, 600, "PNG")
    thumb = img.info["thumb"]
    assert (thumb["w"], thumb["h"], thumb["type"]) == (320, 213, "image/jpeg")
    assert len(await download(alice, thumb["blob"])) > 100  # the uploader's own thumbnail
    await sent_media(
        alice, "bob", SendMedia(kind="image", blob=img.blob, name="beach.png"), text="the beach"
    )
    msg = await pushed_message(bob)
    assert msg.media == {
        "kind": "image",
        "blob": img.blob,
        "size": len(image),
        "type": "image/png",
        "w": 900,
        "h": 600,
        "thumb": thumb,
        "name": "beach.png",
    }
    assert (await download(bob, thumb["blob"]))[:3] == b"\xff\xd8\xff"  # a JPEG
    # a voice note: the server's duration
    tone = wav(1.5)
    voice = await upload(alice, tone, media_type="audio/wav", name="v.wav")
    assert voice.info["duration_ms"] == 1500 and voice.info["codec"] == "pcm"
    await sent_media(alice, "bob", SendMedia(kind="voice", blob=voice.blob))
    msg = await pushed_message(bob)
    assert msg.media is not None
    assert (msg.media["kind"], msg.media["duration_ms"], msg.media["codec"]) == (
        "voice",
        1500,
        "pcm",
    )
    # a track cut from longer audio, with a cover
    song = wav(3.0, rate=4000)
    track = await upload(alice, song, media_type="application/octet-stream")
    assert track.media_type == "audio/wav"  # sniffed
    await sent_media(
        alice,
        "bob",
        SendMedia(
            kind="track",
            blob=track.blob,
            title="Tone",
            artist="Alice",
            clip=(1_000, 2_500),
            cover=img.blob,
        ),
    )
    msg = await pushed_message(bob)
    assert msg.media is not None
    assert {k: msg.media[k] for k in ("kind", "title", "artist", "duration_ms", "clip")} == {
        "kind": "track",
        "title": "Tone",
        "artist": "Alice",
        "duration_ms": 3000,
        "clip": [1_000, 2_500],
    }
    assert msg.media["cover"] == {
        "blob": img.blob,
        "w": 900,
        "h": 600,
        "type": "image/png",
        "thumb": thumb,
    }
    # refusals by kind
    text = await upload(alice, b"just text", media_type="text/plain")
    for media, code in (
        (SendMedia(kind="image", blob=text.blob), E.NOT_AN_IMAGE),
        (SendMedia(kind="voice", blob=text.blob), E.NOT_AUDIO),
        (SendMedia(kind="track", blob=track.blob, clip=(2_000, 3_001)), E.BAD_CLIP),
        (SendMedia(kind="track", blob=track.blob, cover=text.blob), E.NOT_AN_IMAGE),
        (SendMedia(kind="file", blob=text.blob, name="a\x1bb"), E.INVALID_FIELD),
    ):
        ans = await send_media(alice, "bob", media)
        assert isinstance(ans, Error) and ans.code == code, (media, ans)
    await bob.assert_no_push()


async def test_every_upload_refusal(server: RunningServer, clients: Any) -> None:
    alice = await clients.user(server, "alice")
    bob = await clients.user(server, "bob")
    data = content(40_000, seed=5)
    st = await begin(alice, data)
    assert isinstance(st, UploadStatus)
    u = st.upload
    for offset, part, code in (
        (40_000, b"x", E.CHUNK_OUT_OF_RANGE),
        (100, b"x" * 100, E.CHUNK_MISALIGNED),
        (0, b"x" * 100, E.CHUNK_SIZE_MISMATCH),
        (32_768, b"x" * CHUNK, E.TOO_MANY_BYTES),
    ):
        ans = await chunk(alice, u, offset, part)
        assert isinstance(ans, Error) and ans.code == code, (offset, ans)
    ans = await chunk(bob, u, 0, data[:CHUNK])  # not bob's upload
    assert isinstance(ans, Error) and ans.code == E.UNKNOWN_UPLOAD
    assert isinstance(await chunk(alice, u, 0, data[:CHUNK]), Ok)
    assert isinstance(await chunk(alice, u, 0, data[:CHUNK]), Ok)  # held already: acked
    inc = await alice.expect_error(UploadFinish(rid=alice.rid(), upload=u), E.UPLOAD_INCOMPLETE)
    assert inc.data == {"missing": [[CHUNK, 40_000]], "more": False}
    # wrong bytes: the hash decides at finish, nothing is stored, the upload is gone
    assert isinstance(await chunk(alice, u, CHUNK, b"y" * CHUNK), Ok)
    assert isinstance(await chunk(alice, u, 2 * CHUNK, data[2 * CHUNK :]), Ok)
    await alice.expect_error(UploadFinish(rid=alice.rid(), upload=u), E.HASH_MISMATCH)
    await alice.expect_error(UploadFinish(rid=alice.rid(), upload=u), E.UNKNOWN_UPLOAD)
    assert blob_files(server) == []
    again = await begin(alice, data)
    assert isinstance(again, UploadStatus) and again.held == ()
    # begin's own refusals
    for kw, code in (
        ({"chunk_size": 1000}, E.BAD_CHUNK_SIZE),
        ({"chunk_size": 1 << 20}, E.BAD_CHUNK_SIZE),
        ({"media_type": "Image/JPEG"}, E.INVALID_FIELD),
        ({"name": "../etc/passwd"}, E.INVALID_FIELD),
    ):
        await alice.expect_error(begin_msg(alice, content(10, seed=9), **kw), code)
    big = begin_msg(alice, b"")
    big = type(big)(
        rid=alice.rid(),
        size=100 * 1024 * 1024 + 1,
        sha256=bytes(32),
        media_type="a/b",
        chunk_size=1 << 19,
    )
    err = await alice.expect_error(big, E.BLOB_TOO_LARGE)
    assert err.data == {"limit": "max_blob_size", "max": 100 * 1024 * 1024}
    # cancel: the bytes go, the id is unknown
    assert isinstance(await alice.request(UploadCancel(rid=alice.rid(), upload=again.upload)), Ok)
    ans = await chunk(alice, again.upload, 0, data[:CHUNK])
    assert isinstance(ans, Error) and ans.code == E.UNKNOWN_UPLOAD
    await alice.expect_error(UploadCancel(rid=alice.rid(), upload=again.upload), E.UNKNOWN_UPLOAD)
    assert os.listdir(media_dir(server) / "partial") == []


async def test_unfinished_uploads_are_bounded(server: RunningServer, clients: Any) -> None:
    alice = await clients.user(server, "alice")
    for seed in range(4):
        assert isinstance(await begin(alice, content(100, seed=seed)), UploadStatus)
    err = await alice.expect_error(begin_msg(alice, content(100, seed=9)), E.LIMIT_REACHED)
    assert err.data == {"limit": "max_uploads", "max": 4}
    # resuming one of them is no new upload
    assert isinstance(await begin(alice, content(100, seed=0)), UploadStatus)


async def test_the_daily_upload_budget(tmp_path: Path, clients: Any) -> None:
    async with run_server(
        tmp_path, media_max_blob_size=60_000, media_upload_bytes_per_day=100_000
    ) as srv:
        alice = await clients.user(srv, "alice")
        await upload(alice, content(60_000, seed=1))
        err = await alice.expect_error(begin_msg(alice, content(60_000, seed=2)), E.RATE_LIMITED)
        assert err.retry_after is not None and err.retry_after > 0
        assert err.data == {"limit": "upload_bytes_per_day", "max": 100_000}
        # content stored before costs nothing
        assert isinstance(await begin(alice, content(60_000, seed=1)), UploadDone)


async def test_uploads_resume_after_a_reconnect_and_a_restart(tmp_path: Path, clients: Any) -> None:
    data = content(100_000, seed=6)
    async with run_server(tmp_path) as srv:
        alice = await clients.user(srv, "alice")
        st = await begin(alice, data)
        assert isinstance(st, UploadStatus)
        await send_chunks(alice, st, data, skip={3 * CHUNK, 4 * CHUNK, 5 * CHUNK, 6 * CHUNK})
        token = alice.token
        assert token is not None
        await alice.close()
        again = await clients.resume(srv, token)
        st2 = await begin(again, data)
        assert isinstance(st2, UploadStatus) and st2.upload == st.upload
        assert st2.held == (0, 3 * CHUNK)
        await send_chunks(again, st2, data, skip={5 * CHUNK, 6 * CHUNK})
        await srv.restart()  # graceful: partials are synced
        third = await clients.resume(srv, token)
        st3 = await begin(third, data)
        assert isinstance(st3, UploadStatus) and st3.upload == st.upload
        assert st3.held == (0, 5 * CHUNK)
        await send_chunks(third, st3, data)
        done = await third.request(UploadFinish(rid=third.rid(), upload=st.upload))
        assert isinstance(done, UploadDone) and done.blob == sha(data)
        assert await download(third, done.blob) == data


async def test_sweeps_expire_uploads_and_collect_unreferenced_blobs(
    tmp_path: Path, clients: Any
) -> None:
    async with run_server(tmp_path, media_upload_ttl=60.0, media_unreferenced_grace=120.0) as srv:
        assert srv.server is not None
        media = srv.server.media
        alice = await clients.user(srv, "alice")
        bob = await clients.user(srv, "bob")
        kept = await upload(alice, content(3_000, seed=1))
        lone = await upload(alice, content(3_000, seed=2))
        await sent_media(alice, "bob", SendMedia(kind="file", blob=kept.blob))
        st = await begin(alice, content(40_000, seed=3))
        assert isinstance(st, UploadStatus)
        assert await media.sweep() == (0, 0)  # nothing is old enough yet
        later = st.expires + 1
        assert await media.sweep(wall_ms=later) == (1, 0)
        ans = await chunk(alice, st.upload, 0, content(40_000, seed=3)[:CHUNK])
        assert isinstance(ans, Error) and ans.code == E.UNKNOWN_UPLOAD
        media._pins.clear()  # the SEND's pin: its commit is long done
        assert await media.sweep(wall_ms=later + 200_000) == (0, 1)
        assert blob_files(srv) == [kept.blob.hex()]
        await alice.expect_error(
            Download(rid=alice.rid(), blob=lone.blob, offset=0, length=1), E.UNKNOWN_BLOB
        )
        assert await download(bob, kept.blob) == content(3_000, seed=1)
        again = await begin(alice, content(3_000, seed=2))  # collected: a new upload
        assert isinstance(again, UploadStatus)


@pytest.mark.parametrize("inflight", [1, 8])
async def test_chat_flows_between_pipelined_chunks(
    tmp_path: Path, clients: Any, inflight: int
) -> None:
    """More chunks in flight than the connection's bound, a PING and a SEND among them:
    everything is answered, the chunks in order of their offsets per upload."""
    async with run_server(tmp_path, media_inflight=inflight) as srv:
        alice = await clients.user(srv, "alice")
        await clients.register(srv, "bob")
        data = content(30 * CHUNK, seed=7)
        st = await begin(alice, data)
        assert isinstance(st, UploadStatus)
        chunks = [
            UploadChunk(rid=alice.rid(), upload=st.upload, offset=o, data=data[o : o + CHUNK])
            for o in range(0, len(data), CHUNK)
        ]
        ping = Ping(rid=alice.rid())
        note = alice.send_msg("bob", "sent between chunks")
        await alice.write(*chunks[:15], ping, note, *chunks[15:])
        assert isinstance(await alice.answer(ping.rid), Pong)
        for m in chunks:
            assert isinstance(await alice.answer(m.rid), Ok)
        sent = await alice.answer(note.rid)
        assert not isinstance(sent, Error), sent
        done = await alice.request(UploadFinish(rid=alice.rid(), upload=st.upload))
        assert isinstance(done, UploadDone)


async def test_the_daily_byte_budgets_survive_a_restart(tmp_path: Path, clients: Any) -> None:
    """A restart does not hand out a fresh day's bytes: what was left of the upload and
    download budgets is stored and read back (server/handlers/budgets.py)."""
    mib = 1 << 20
    async with run_server(
        tmp_path,
        media_max_blob_size=600_000,
        media_upload_bytes_per_day=1_000_000,
        media_download_bytes_per_day=mib,
    ) as srv:
        alice = await clients.user(srv, "alice")
        data = content(600_000, seed=1)
        done = await upload(alice, data)
        assert await download(alice, done.blob) == data  # 600,000 of the day's 1 MiB
        token = alice.token
        assert token is not None
        await srv.restart()
        again = await clients.resume(srv, token)
        err = await again.expect_error(begin_msg(again, content(600_000, seed=2)), E.RATE_LIMITED)
        assert err.data == {"limit": "upload_bytes_per_day", "max": 1_000_000}
        ok = await again.request(
            Download(rid=again.rid(), blob=done.blob, offset=0, length=400_000)
        )
        assert isinstance(ok, BlobData)  # 400,000 of the 448,576 left
        err = await again.expect_error(
            Download(rid=again.rid(), blob=done.blob, offset=400_000, length=100_000),
            E.RATE_LIMITED,
        )
        assert err.data == {"limit": "download_bytes_per_day", "max": mib}
