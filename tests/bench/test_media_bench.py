"""bench/media.py's figures on a small blob against a test server (the full sizes run only
with `python -m bench`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from liaotian.server.testing import run_server

from bench.media import MediaLoad, transfers


async def test_media_figures_on_a_small_blob(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        t = await transfers(srv.host, srv.port, size_mib=2, runs=1)
    for key in ("media_upload_mib_per_s", "media_download_mib_per_s", "media_dedup_upload_ms"):
        assert t[key] > 0, key
    d = t["details"]
    assert d["size_mib"] == 2 and d["chunk_size"] == 512 * 1024
    assert d["ceiling_sha256_write_fsync_mib_per_s"] > 0 and d["upload_ratio_to_ceiling"] > 0
    assert d["ceiling_sha256_write_mib_per_s"] > 0 and d["download_ratio_to_ceiling"] > 0
    assert len(d["dedup_upload_with_hash_ms"]) == 1


async def test_the_background_media_load_starts_and_stops(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        load = MediaLoad(srv.host, srv.port, clients=2, size_mib=1)
        # start() blocks until both clients upload: in a thread, the server runs here
        await asyncio.to_thread(load.start, 60)
        try:
            assert load.proc is not None and load.proc.poll() is None
        finally:
            stats = await asyncio.to_thread(load.stop)
        assert load.proc is None
        # what it did while it ran, read from its last line (SIGTERM ends it cleanly)
        assert stats["died"] is False and stats["clients"] == 2 and stats["errors"] == 0
        # stopped at once: it may not have finished an upload, nor a millisecond passed
        assert stats["uploads"] >= 0 and stats["seconds"] >= 0 and stats["mib_per_s"] >= 0
