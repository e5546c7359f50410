"""The blob store and the inspection off the event loop: a thin asyncio layer.

Every call runs the synchronous function of blobs.py or probe.py in a small thread pool of
its own (not the loop's default executor, which password hashing uses): hashing, disk
writes, fsyncs and image decoding never block the event loop, and at most `workers` of them
run at once, so media cannot take every core from chat. hashlib, os.pwrite/pread and
Pillow's decoders release the GIL for their work, so the threads really run beside the loop.

Chunks of one upload are written one at a time, in arrival order (a lock per upload);
different uploads proceed in parallel up to the pool's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from .blobs import BlobInfo, BlobStore, Finished, Recovered
from .errors import BlobError, Refusal
from .inspection import Inspection, inspect
from .limits import MediaLimits
from .probe import (
    AudioInfo,
    ImageInfo,
    TrackInfo,
    probe_audio,
    probe_image,
    probe_track,
    probe_voice,
)

__all__ = ["MediaIO"]

P = ParamSpec("P")
T = TypeVar("T")


class MediaIO:
    """Async access to one `BlobStore` and to the inspection of its blobs."""

    def __init__(
        self, store: BlobStore, limits: MediaLimits | None = None, *, workers: int = 2
    ) -> None:
        self.store = store
        self.limits = limits or MediaLimits()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="liaotian-media")
        self._locks: dict[str, list[Any]] = {}  # upload id -> [lock, users]

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    @contextlib.asynccontextmanager
    async def _serial(self, upload_id: str) -> AsyncIterator[None]:
        """One call at a time per upload; the lock goes away with its last user."""
        entry = self._locks.get(upload_id)
        if entry is None:
            entry = self._locks[upload_id] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[upload_id]

    async def open(self) -> None:
        await self._run(self.store.open)

    async def close(self) -> None:
        """Sync and close the partials still open (they stay resumable), stop the pool."""
        for upload_id in self.store.open_partial_ids():
            async with self._serial(upload_id):
                await self._run(self.store.close_partial, upload_id)
        self._pool.shutdown(wait=True)

    # -- uploads

    async def begin(
        self, upload_id: str, *, size: int, sha256: bytes, chunk_size: int, created_ms: int
    ) -> None:
        async with self._serial(upload_id):
            await self._run(
                self.store.create_partial,
                upload_id,
                size=size,
                sha256=sha256,
                chunk_size=chunk_size,
                created_ms=created_ms,
            )

    async def recover(self, upload_id: str) -> Recovered:
        """The partial of an upload (reopened after a restart), or its finished blob."""
        async with self._serial(upload_id):
            return await self._run(self.store.open_partial, upload_id)

    async def write(self, upload_id: str, offset: int, data: bytes) -> None:
        """Write one chunk (one hop to the pool: find the partial, write, maybe sync)."""
        async with self._serial(upload_id):
            await self._run(self._write, upload_id, offset, data)

    def _write(self, upload_id: str, offset: int, data: bytes) -> None:
        partial = self.store.open_partial(upload_id).partial
        if partial is None:
            raise BlobError(f"upload {upload_id} is already complete")
        partial.write(offset, data)

    async def finish(self, upload_id: str) -> Finished:
        """Verify and store (or find that a crash came right after it was stored)."""
        async with self._serial(upload_id):
            return await self._run(self._finish, upload_id)

    def _finish(self, upload_id: str) -> Finished:
        recovered = self.store.open_partial(upload_id)
        if recovered.partial is None:
            assert recovered.finished is not None
            return recovered.finished
        return recovered.partial.finish()

    async def abort(self, upload_id: str) -> None:
        async with self._serial(upload_id):
            await self._run(self.store.abort_partial, upload_id)

    async def expire(self, now: float, max_idle: float) -> list[str]:
        return await self._run(self.store.expire_partials, now, max_idle)

    async def partial_ids(self) -> list[str]:
        return await self._run(self.store.partial_ids)

    async def partial_mtime(self, upload_id: str) -> float | None:
        return await self._run(self.store.partial_mtime, upload_id)

    async def has_room(self, size: int) -> bool:
        return await self._run(self.store.has_room, size)

    async def free_bytes(self) -> int:
        return await self._run(self.store.free_bytes)

    # -- blobs

    async def read(self, sha256: bytes, offset: int, length: int) -> bytes:
        return await self._run(self.store.read, sha256, offset, length)

    async def read_many(self, sha256: bytes, offset: int, length: int, count: int) -> list[bytes]:
        """`count` consecutive ranges in one hop (readahead.py)."""
        return await self._run(self.store.read_many, sha256, offset, length, count)

    async def remove(self, sha256: bytes) -> bool:
        return await self._run(self.store.remove_blob, sha256)

    async def put(self, data: bytes, created_ms: int) -> Finished:
        """Store small bytes the server made (a thumbnail) as a blob of their own."""
        return await self._run(self.store.put, data, "t" + secrets.token_hex(12), created_ms)

    async def blobs(self) -> list[BlobInfo]:
        """Every complete blob on disk (the sweep of files without metadata)."""
        return await self._run(lambda: list(self.store.iter_blobs()))

    async def inspect(self, sha256: bytes, declared: str) -> Inspection:
        """What a stored blob is (inspection.py): its type, info and a thumbnail."""
        return await self._run(inspect, self.store.blob_path(sha256), declared, self.limits)

    # -- inspection

    async def probe_image(self, sha256: bytes) -> ImageInfo | Refusal:
        return await self._run(probe_image, self.store.blob_path(sha256), self.limits)

    async def probe_audio(self, sha256: bytes) -> AudioInfo | Refusal:
        return await self._run(probe_audio, self.store.blob_path(sha256), self.limits)

    async def probe_voice(self, sha256: bytes) -> AudioInfo | Refusal:
        return await self._run(probe_voice, self.store.blob_path(sha256), self.limits)

    async def probe_track(
        self,
        sha256: bytes,
        *,
        title: str | None = None,
        artist: str | None = None,
        clip: tuple[int, int] | None = None,
        cover: bytes | None = None,
    ) -> TrackInfo | Refusal:
        cover_path = None if cover is None else self.store.blob_path(cover)
        return await self._run(
            probe_track,
            self.store.blob_path(sha256),
            self.limits,
            title=title,
            artist=artist,
            clip=clip,
            cover=cover_path,
        )
