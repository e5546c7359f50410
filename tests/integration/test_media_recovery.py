"""Media after interrupted work: what a crash can leave on disk (an upload row without its
partial files, a blob renamed into place whose metadata never committed, files nobody
knows) is repaired on the next start or swept (SPEC.md 27.7)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from liaotian.protocol import ErrorCode
from liaotian.protocol.media import Download, UploadDone, UploadFinish, UploadStatus
from liaotian.server.media.blobs import BlobStore
from liaotian.server.testing import run_server
from mediaclient import CHUNK, begin, content, download, send_chunks, sha


def _old(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


async def test_an_upload_whose_partial_files_were_lost_starts_over(
    tmp_path: Path, clients: Any
) -> None:
    data = content(50_000, seed=1)
    async with run_server(tmp_path) as srv:
        alice = await clients.user(srv, "alice")
        st = await begin(alice, data)
        assert isinstance(st, UploadStatus)
        await send_chunks(alice, st, data, skip={3 * CHUNK})
        token = alice.token
        await srv.stop()
        # a crash between the BEGIN's commit and its files (simulated: the files go)
        shutil.rmtree(Path(srv.config.db_path + ".media") / "partial")
        os.mkdir(Path(srv.config.db_path + ".media") / "partial", 0o700)
        await srv.start()
        c = await clients.resume(srv, token)
        again = await begin(c, data)
        assert isinstance(again, UploadStatus) and again.upload == st.upload
        assert again.held == ()
        await send_chunks(c, again, data)
        done = await c.request(UploadFinish(rid=c.rid(), upload=st.upload))
        assert isinstance(done, UploadDone) and done.blob == sha(data)


async def test_a_blob_stored_just_before_a_crash_is_committed_at_the_next_start(
    tmp_path: Path, clients: Any
) -> None:
    data = content(40_000, seed=2)
    async with run_server(tmp_path) as srv:
        alice = await clients.user(srv, "alice")
        st = await begin(alice, data, media_type="text/plain")
        assert isinstance(st, UploadStatus)
        await send_chunks(alice, st, data)
        token = alice.token
        await srv.stop()
        # the finish's rename into place happened, its commit did not (journal still there)
        store = BlobStore(srv.config.db_path + ".media")
        part = Path(store.partial_dir) / f"{st.upload}.part"
        dest = Path(store.blob_path(sha(data)))
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(part, dest)
        await srv.start()
        c = await clients.resume(srv, token)
        done = await begin(c, data, media_type="text/plain")
        assert isinstance(done, UploadDone)
        assert (done.blob, done.size, done.media_type) == (sha(data), len(data), "text/plain")
        assert await download(c, done.blob) == data
        assert os.listdir(store.partial_dir) == []


async def test_files_nobody_knows_are_swept(tmp_path: Path, clients: Any) -> None:
    async with run_server(tmp_path, media_upload_ttl=60.0, media_unreferenced_grace=60.0) as srv:
        assert srv.server is not None
        alice = await clients.user(srv, "alice")
        store = BlobStore(srv.config.db_path + ".media")
        # a blob file without metadata, and partial files without an upload row
        stray = content(1_000, seed=3)
        path = Path(store.blob_path(sha(stray)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(stray)
        for ext in ("part", "jnl"):
            (Path(store.partial_dir) / f"999.{ext}").write_bytes(b"x")
        assert await srv.server.media.sweep() == (0, 0)
        assert path.exists()  # younger than the grace period
        _old(path, 3600)
        for ext in ("part", "jnl"):
            _old(Path(store.partial_dir) / f"999.{ext}", 3600)
        await srv.server.media.sweep()
        assert not path.exists()
        assert os.listdir(store.partial_dir) == []
        await alice.expect_error(
            Download(rid=alice.rid(), blob=sha(stray), offset=0, length=1), ErrorCode.UNKNOWN_BLOB
        )
