"""Media micro-benchmarks, run by hand (never by the tests): the ceilings for the media bench
keys of issue 12, measured on this machine before the frames exist.

    python bench/media_micro.py                  # 64 MiB, 5 runs, in the system temp dir
    python bench/media_micro.py --size-mib 16 --runs 3 --dir /var/tmp --json out.json

Each figure is the median of `--runs` runs (min and max beside it), in MiB/s of blob bytes:

* `ceiling_sha256_write_fsync`: SHA-256 + pwrite of every chunk, one fsync at the end: what
  any durable upload must do at least; the ceiling of `media_upload_mib_per_s`.
* `sha256_only`, `write_only` (page cache, no fsync), `fsync_ms`: its parts.
* `blobstore_upload` (sync every 32 MiB, the default), `blobstore_upload_sync8` (every
  8 MiB) and `blobstore_upload_sync_end` (one sync at the end): BlobStore.create_partial +
  Partial.write per chunk + finish (hash, fsync, rename, directory fsyncs): the store's
  path, synchronous.
* `mediaio_upload`: the same through MediaIO, one chunk awaited at a time as a connection
  would (thread-pool hops included).
* `blobstore_upload_stored`: a second uploader sends content already stored (full bytes,
  then the verified partial is dropped): the no-oracle path.
* `read_warm`, `read_cold`, `mediaio_read_warm`: ranged reads of `--chunk-kib` from a
  stored blob (cold: its pages evicted with posix_fadvise first); the ceiling of
  `media_download_mib_per_s` before framing and the socket.
* `probe_jpeg_12mp_ms`: inspection and thumbnail of a 4000x3000 JPEG.

The machine may be shared: compare figures of one run with each other, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from liaotian.server.media.aio import MediaIO
from liaotian.server.media.blobs import BlobStore
from liaotian.server.media.limits import MIB, MediaLimits, chunk_ceiling
from liaotian.server.media.probe import ImageInfo, probe_image


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ceiling(directory: str, data: bytes, chunk: int) -> float:
    path = os.path.join(directory, "ceiling")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    view = memoryview(data)

    def run() -> None:
        h = hashlib.sha256()
        for off in range(0, len(data), chunk):
            piece = view[off : off + chunk]
            h.update(piece)
            os.pwrite(fd, piece, off)
        os.fsync(fd)
        h.digest()

    try:
        return _timed(run)
    finally:
        os.close(fd)
        os.unlink(path)


def sha_only(data: bytes, chunk: int) -> float:
    view = memoryview(data)

    def run() -> None:
        h = hashlib.sha256()
        for off in range(0, len(data), chunk):
            h.update(view[off : off + chunk])
        h.digest()

    return _timed(run)


def write_only(directory: str, data: bytes, chunk: int) -> tuple[float, float]:
    """(seconds to pwrite into the page cache, seconds of the fsync after it)."""
    path = os.path.join(directory, "write")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    view = memoryview(data)
    try:
        t0 = time.perf_counter()
        for off in range(0, len(data), chunk):
            os.pwrite(fd, view[off : off + chunk], off)
        t1 = time.perf_counter()
        os.fsync(fd)
        return t1 - t0, time.perf_counter() - t1
    finally:
        os.close(fd)
        os.unlink(path)


def store_upload(store: BlobStore, data: bytes, digest: bytes, chunk: int, name: str) -> float:
    view = memoryview(data)

    def run() -> None:
        p = store.create_partial(
            name, size=len(data), sha256=digest, chunk_size=chunk, created_ms=0
        )
        for off in range(0, len(data), chunk):
            p.write(off, view[off : off + chunk])
        assert p.finish().ok

    return _timed(run)


def mediaio_upload(media: MediaIO, data: bytes, digest: bytes, chunk: int, name: str) -> float:
    async def run() -> float:
        t0 = time.perf_counter()
        await media.begin(name, size=len(data), sha256=digest, chunk_size=chunk, created_ms=0)
        for off in range(0, len(data), chunk):
            await media.write(name, off, data[off : off + chunk])
        assert (await media.finish(name)).ok
        return time.perf_counter() - t0

    return asyncio.run(run())


def evict(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_all(store: BlobStore, digest: bytes, size: int, chunk: int) -> float:
    def run() -> None:
        with store.open_blob(digest) as reader:
            for off in range(0, size, chunk):
                reader.read(off, chunk)

    return _timed(run)


def mediaio_read(media: MediaIO, digest: bytes, size: int, chunk: int) -> float:
    async def run() -> float:
        t0 = time.perf_counter()
        for off in range(0, size, chunk):
            await media.read(digest, off, chunk)
        return time.perf_counter() - t0

    return asyncio.run(run())


def probe_jpeg() -> float:
    from PIL import Image

    im = Image.effect_mandelbrot((4000, 3000), (-2.0, -1.5, 1.0, 1.5), 100).convert("RGB")
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    data = out.getvalue()

    def run() -> None:
        assert isinstance(probe_image(data, MediaLimits()), ImageInfo)

    return _timed(run)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--chunk-kib",
        type=int,
        default=chunk_ceiling(1 * MIB) // 1024,
        help="chunk size (default: the largest that fits a 1 MiB frame)",
    )
    ap.add_argument("--dir", default=None, help="a directory on the disk to measure")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    size, chunk = args.size_mib * MIB, args.chunk_kib * 1024
    data = os.urandom(size)
    digest = hashlib.sha256(data).digest()
    mib = size / MIB
    results: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        results.setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory(prefix="liaotian-media-bench-", dir=args.dir) as tmp:
        store = BlobStore(os.path.join(tmp, "media"))
        store.open()
        lazy = BlobStore(os.path.join(tmp, "media"), sync_every=1 << 40)
        eager = BlobStore(os.path.join(tmp, "media"), sync_every=8 * MIB)
        for run in range(args.runs):
            add("ceiling_sha256_write_fsync", mib / ceiling(tmp, data, chunk))
            add("sha256_only", mib / sha_only(data, chunk))
            w, f = write_only(tmp, data, chunk)
            add("write_only", mib / w)
            add("fsync_ms", f * 1000)
            add("blobstore_upload", mib / store_upload(store, data, digest, chunk, f"a{run}"))
            add(
                "blobstore_upload_stored", mib / store_upload(store, data, digest, chunk, f"b{run}")
            )
            store.remove_blob(digest)
            add("blobstore_upload_sync8", mib / store_upload(eager, data, digest, chunk, f"e{run}"))
            store.remove_blob(digest)
            add(
                "blobstore_upload_sync_end",
                mib / store_upload(lazy, data, digest, chunk, f"c{run}"),
            )
            store.remove_blob(digest)
            media = MediaIO(store)
            add("mediaio_upload", mib / mediaio_upload(media, data, digest, chunk, f"d{run}"))
            add("read_warm", mib / read_all(store, digest, size, chunk))
            add("mediaio_read_warm", mib / mediaio_read(media, digest, size, chunk))
            evict(store.blob_path(digest))
            add("read_cold", mib / read_all(store, digest, size, chunk))
            asyncio.run(media.close())
            store.remove_blob(digest)
            add("probe_jpeg_12mp_ms", probe_jpeg() * 1000)

    summary = {
        k: {"median": statistics.median(v), "min": min(v), "max": max(v)}
        for k, v in results.items()
    }
    ceiling_median = summary["ceiling_sha256_write_fsync"]["median"]
    print(
        f"media micro-benchmarks: {args.size_mib} MiB, chunks of {args.chunk_kib} KiB, "
        f"{args.runs} runs, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    for key, s in summary.items():
        unit = "ms" if key.endswith("_ms") else "MiB/s"
        ratio = ""
        if unit == "MiB/s" and "upload" in key:
            ratio = f"  ({s['median'] / ceiling_median:.0%} of the ceiling)"
        print(f"  {key:30} {s['median']:9.1f} {unit:5}  [{s['min']:.1f} .. {s['max']:.1f}]{ratio}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "size_mib": args.size_mib,
                    "chunk_kib": args.chunk_kib,
                    "runs": args.runs,
                    "results": summary,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
