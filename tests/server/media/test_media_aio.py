"""MediaIO: the blob store and the inspection run in the media thread pool, never on the
event loop; chunks of one upload are written one at a time; uploads resume across a new
MediaIO (a restarted server)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from pathlib import Path

import pytest
from liaotian.server.media.aio import MediaIO
from liaotian.server.media.blobs import BlobStore, Partial
from liaotian.server.media.errors import MediaError, Refusal, UnknownPartial
from liaotian.server.media.probe import AudioInfo, ImageInfo, TrackInfo
from liaotian.server.media.ranges import RangeSet
from mediafixtures import content, opus, wav
from PIL import Image

CHUNK = 16 * 1024


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


async def upload(media: MediaIO, upload_id: str, data: bytes) -> None:
    await media.begin(upload_id, size=len(data), sha256=sha(data), chunk_size=CHUNK, created_ms=1)
    await asyncio.gather(
        *(media.write(upload_id, o, data[o : o + CHUNK]) for o in range(0, len(data), CHUNK))
    )


async def test_upload_finish_read_and_remove(tmp_path: Path) -> None:
    media = MediaIO(BlobStore(tmp_path / "media"))
    await media.open()
    try:
        blobs = [content(5 * CHUNK + i, seed=i) for i in range(4)]
        # four uploads at once, each with its chunks all in flight together
        await asyncio.gather(*(upload(media, f"u{i}", b) for i, b in enumerate(blobs)))
        done = await asyncio.gather(*(media.finish(f"u{i}") for i in range(4)))
        assert all(d.ok and d.created for d in done)
        for b in blobs:
            assert await media.read(sha(b), CHUNK, 100) == b[CHUNK : CHUNK + 100]
        assert await media.remove(sha(blobs[0]))
        with pytest.raises(FileNotFoundError):
            await media.read(sha(blobs[0]), 0, 1)
        assert media._locks == {}  # no lock outlives its last user
        assert await media.free_bytes() > 0 and await media.has_room(1)
    finally:
        await media.close()


async def test_disk_work_runs_in_the_media_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real_write = Partial.write

    def spy(self: Partial, offset: int, data: bytes) -> None:
        threads.append(threading.current_thread().name)
        real_write(self, offset, data)

    monkeypatch.setattr(Partial, "write", spy)
    media = MediaIO(BlobStore(tmp_path / "media"), workers=2)
    await media.open()
    try:
        await upload(media, "u", content(8 * CHUNK))
        assert len(threads) == 8
        assert all(name.startswith("liaotian-media") for name in threads), threads
        assert threading.current_thread().name not in threads
    finally:
        await media.close()


async def test_close_keeps_uploads_resumable_and_a_new_instance_resumes(tmp_path: Path) -> None:
    data = content(4 * CHUNK)
    media = MediaIO(BlobStore(tmp_path / "media", sync_every=1 << 30))
    await media.open()
    await media.begin("u", size=len(data), sha256=sha(data), chunk_size=CHUNK, created_ms=1)
    await media.write("u", 0, data[:CHUNK])
    await media.write("u", 2 * CHUNK, data[2 * CHUNK : 3 * CHUNK])
    await media.close()  # syncs the unsynced chunks
    again = MediaIO(BlobStore(tmp_path / "media"))
    await again.open()
    try:
        found = await again.recover("u")
        assert found.partial is not None
        assert found.partial.held == RangeSet([(0, CHUNK), (2 * CHUNK, 3 * CHUNK)])
        await again.write("u", CHUNK, data[CHUNK : 2 * CHUNK])
        await again.write("u", 3 * CHUNK, data[3 * CHUNK :])
        assert (await again.finish("u")).ok
        # a finish retried after the answer was lost: the journal is gone, so it is unknown
        # here; the metadata (upload complete) answers it in the server
        with pytest.raises(UnknownPartial):
            await again.finish("u")
    finally:
        await again.close()


async def test_abort_and_expire(tmp_path: Path) -> None:
    media = MediaIO(BlobStore(tmp_path / "media"))
    await media.open()
    try:
        await media.begin("a", size=10, sha256=sha(b"x"), chunk_size=CHUNK, created_ms=1)
        await media.abort("a")
        with pytest.raises(UnknownPartial):
            await media.recover("a")
        assert await media.expire(0.0, 1.0) == []
    finally:
        await media.close()


async def test_probes_read_stored_blobs(tmp_path: Path) -> None:
    media = MediaIO(BlobStore(tmp_path / "media"))
    await media.open()
    try:
        out = io.BytesIO()
        Image.new("RGB", (640, 480), (10, 200, 30)).save(out, "PNG")
        picture, voice, song = out.getvalue(), opus(3.0), wav(4.0)
        for i, data in enumerate((picture, voice, song)):
            await upload(media, f"p{i}", data)
            assert (await media.finish(f"p{i}")).ok
        img = await media.probe_image(sha(picture))
        assert isinstance(img, ImageInfo) and (img.width, img.height) == (640, 480)
        note = await media.probe_voice(sha(voice))
        assert isinstance(note, AudioInfo) and note.duration_ms == 3000
        audio = await media.probe_audio(sha(song))
        assert isinstance(audio, AudioInfo) and audio.codec == "pcm"
        track = await media.probe_track(
            sha(song), title="Cut", clip=(500, 3500), cover=sha(picture)
        )
        assert isinstance(track, TrackInfo) and track.cover is not None
        assert (track.title, track.duration_ms, track.clip) == ("Cut", 4000, (500, 3500))
        bad = await media.probe_track(sha(picture))
        assert isinstance(bad, Refusal) and bad.code is MediaError.NOT_AUDIO
    finally:
        await media.close()
