"""Media (SPEC.md 27): uploads, downloads, the media of a SEND, and the sweeps that expire
uploads and collect unreferenced blobs.

Request -> rules -> store and blob store -> answer, like every handler module; the rules
are server/media/uploads.py (uploads, budgets, reads) and chat/rules/media.py (who may read
a blob, what a media message stores), the metadata is the store's (MediaStore), the bytes
are MediaIO's, in a thread pool of their own: no hashing, disk write, fsync, read or image
decoding runs on the event loop or in the database writer. The writer sees one small
commit per UPLOAD_BEGIN and per UPLOAD_FINISH and nothing per chunk: the ranges an upload
holds live in the blob store's journal (and in memory here while the server runs).

**Fairness.** A connection has at most `inflight` UPLOAD_CHUNK and DOWNLOAD requests in
progress; at the bound it reads nothing more (`Peer.hold`) until one is answered, which
bounds the media memory and work one connection can queue and how long a chat frame
behind them waits.

**Durability.** UPLOAD_DONE is sent after the blob's file and directory are fsynced
(blobs.py) and its metadata committed. A restart loses no acknowledged blob; an upload
resumes from the ranges its journal recorded.

**Races with collection.** Finishing an upload of some content and collecting that
content (rows, then file) hold the same per-hash lock; a blob a SEND was just checked
against is pinned for a while so that its commit (which clears its collection clock)
lands before any collection could take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from liaotian.protocol import ErrorCode, RequestError, Send
from liaotian.protocol.media import (
    BlobData,
    Download,
    UploadBegin,
    UploadCancel,
    UploadChunk,
    UploadDone,
    UploadFinish,
    UploadStatus,
)
from liaotian.protocol.social import Ok

from ..chat.model import Blob
from ..chat.ops import Refused
from ..chat.policy import Policy
from ..chat.rules.media import may_read, plan_media, public_info
from ..media.aio import MediaIO
from ..media.errors import (
    BlobError,
    CorruptPartial,
    MediaError,
    Refusal,
    StorageFull,
    UnknownPartial,
)
from ..media.limits import MediaLimits
from ..media.ranges import RangeSet
from ..media.readahead import ReadAhead
from ..media.uploads import (
    AlreadyStored,
    BeginRequest,
    ByteBudget,
    ChunkPlan,
    FinishPlan,
    ResumeUpload,
    StartUpload,
    Upload,
    UploaderState,
    UploadPhase,
    UploadRecord,
    check_read,
    plan_begin,
)
from ..net.peer import Peer
from ..net.router import Router
from ..store.contract import MediaStore, UploadRow
from .budgets import MediaBudgets
from .throttle import WriteBudget

log = logging.getLogger("liaotian.media")

# MediaError (the media rules' names) -> the wire code (SPEC.md 12)
CODES: dict[MediaError, ErrorCode] = {
    MediaError.INVALID_REQUEST: ErrorCode.INVALID_FIELD,
    MediaError.BLOB_TOO_LARGE: ErrorCode.BLOB_TOO_LARGE,
    MediaError.TOO_MANY_UPLOADS: ErrorCode.LIMIT_REACHED,
    MediaError.QUOTA_EXCEEDED: ErrorCode.RATE_LIMITED,
    MediaError.INSUFFICIENT_STORAGE: ErrorCode.INSUFFICIENT_STORAGE,
    MediaError.BAD_CHUNK_SIZE: ErrorCode.BAD_CHUNK_SIZE,
    MediaError.UNKNOWN_UPLOAD: ErrorCode.UNKNOWN_UPLOAD,
    MediaError.UPLOAD_NOT_RECEIVING: ErrorCode.UPLOAD_NOT_RECEIVING,
    MediaError.CHUNK_OUT_OF_RANGE: ErrorCode.CHUNK_OUT_OF_RANGE,
    MediaError.CHUNK_MISALIGNED: ErrorCode.CHUNK_MISALIGNED,
    MediaError.CHUNK_SIZE_MISMATCH: ErrorCode.CHUNK_SIZE_MISMATCH,
    MediaError.TOO_MANY_BYTES: ErrorCode.TOO_MANY_BYTES,
    MediaError.UPLOAD_INCOMPLETE: ErrorCode.UPLOAD_INCOMPLETE,
    MediaError.HASH_MISMATCH: ErrorCode.HASH_MISMATCH,
    MediaError.UNKNOWN_BLOB: ErrorCode.UNKNOWN_BLOB,
    MediaError.BAD_RANGE: ErrorCode.BAD_RANGE,
    MediaError.NOT_AN_IMAGE: ErrorCode.NOT_AN_IMAGE,
    MediaError.IMAGE_TOO_LARGE: ErrorCode.IMAGE_TOO_LARGE,
    MediaError.NOT_AUDIO: ErrorCode.NOT_AUDIO,
    MediaError.AUDIO_TOO_LONG: ErrorCode.AUDIO_TOO_LONG,
    MediaError.BAD_CLIP: ErrorCode.BAD_CLIP,
}
DONE_REMEMBERED = 4096  # completed uploads whose FINISH is answered again while running
ACCESS_TTL = 10.0  # seconds a granted download access is trusted without a read
PIN_SECONDS = 600.0  # a blob checked for a SEND is not collected for this long
SWEEP_BATCH = 500  # uploads or blobs handled per sweep pass and kind


def refusal(r: Refusal) -> RequestError:
    """The ERROR for a media rule's refusal (never counts towards max_protocol_errors)."""
    return RequestError(
        CODES[r.code], r.message, retry_after=r.retry_after, data=dict(r.data) or None
    )


def refused(r: Refused) -> RequestError:
    return RequestError(r.code, r.message, retry_after=r.retry_after, data=r.data)


def unknown_upload() -> RequestError:
    return refusal(Refusal(MediaError.UNKNOWN_UPLOAD))


def now_ms() -> int:
    return int(time.time() * 1000)


def flat(ranges: Any) -> tuple[int, ...]:
    return tuple(x for start, end in ranges for x in (start, end))


class Store(MediaStore, Protocol):
    """What the media handlers use of the store: its media metadata."""


class KeyedLocks:
    """An asyncio lock per key, gone with its last user."""

    def __init__(self) -> None:
        self._locks: dict[Any, list[Any]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Any) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]

    def busy(self, key: Any) -> bool:
        return key in self._locks


class MediaHandlers:
    """UPLOAD_*, DOWNLOAD, the media of SEND (`prepare_send`) and the sweeps (`run`)."""

    def __init__(
        self,
        store: Store,
        io: MediaIO,
        limits: MediaLimits,
        policy: Policy,
        writes: WriteBudget,
        clock: Callable[[], float],
        *,
        frame_size: int,
        inflight: int = 8,
        sweep_interval: float = 600.0,
    ) -> None:
        self.store = store
        self.io = io
        self.limits = limits
        self.policy = policy
        self.writes = writes
        self.clock = clock  # monotonic seconds (the loop's): write budget, caches
        self.frame_size = frame_size
        self.inflight = inflight
        self.sweep_interval = sweep_interval
        self._uploads: dict[int, Upload] = {}  # attached uploads (this process)
        self._attaching: dict[int, asyncio.Future[Upload]] = {}
        self._done: OrderedDict[int, tuple[int, UploadDone]] = OrderedDict()
        self.budgets = MediaBudgets(store, limits)  # the users' byte buckets, stored
        self._granted: dict[tuple[int, bytes], tuple[float, int]] = {}  # -> (until, size)
        self._pins: dict[bytes, float] = {}  # blob -> until (monotonic)
        self._running: dict[int, int] = {}  # connection id -> media requests in progress
        self._hash_locks = KeyedLocks()
        self._ahead = ReadAhead(io.read_many)  # a download's next ranges, one hop for 4

    def route(self, r: Router) -> None:
        r.route(UploadBegin, self.begin)
        r.route(UploadChunk, self.chunk)
        r.route(UploadFinish, self.finish)
        r.route(UploadCancel, self.cancel)
        r.route(Download, self.download)

    # ------------------------------------------------------------------ per connection

    def _enter(self, conn: Peer) -> None:
        n = self._running.get(conn.id, 0) + 1
        self._running[conn.id] = n
        if n == self.inflight:
            conn.hold()  # read nothing more from it until one is answered

    def _leave(self, conn: Peer) -> None:
        n = self._running.get(conn.id, 0) - 1
        if n > 0:
            self._running[conn.id] = n
        else:
            self._running.pop(conn.id, None)
        if n == self.inflight - 1:
            conn.release()

    def _write_request(self, conn: Peer) -> None:
        self.writes.charge(conn.user_id, self.clock())

    # ------------------------------------------------------------------ uploads

    async def begin(self, conn: Peer, msg: UploadBegin) -> None:
        self._write_request(conn)
        uid = conn.user_id
        state = await self.store.uploader(uid, msg.sha256, msg.size)
        free = await self.io.free_bytes()
        now = now_ms()
        budgets = await self.budgets.get(uid, now)
        plan = plan_begin(
            BeginRequest(msg.size, msg.sha256, msg.media_type, msg.name, msg.chunk_size),
            UploaderState(
                state.stored is not None,
                _record(state.upload) if state.upload is not None else None,
                state.active,
                budgets.upload,
            ),
            limits=self.limits,
            frame_size=self.frame_size,
            now_ms=now,
            free_disk=free,
        )
        if isinstance(plan, Refusal):
            raise refusal(plan)
        if isinstance(plan, AlreadyStored):
            assert state.stored is not None
            conn.send(_done(msg.rid, state.stored))
            return
        if isinstance(plan, ResumeUpload):
            assert state.upload is not None
            row = state.upload
            up = await self._attached(row)
            if up.phase is UploadPhase.RECEIVING:
                up.chunk_written(0, 0, now)  # a resume keeps it from expiring
                await self.store.touch_upload(row.id, now)
        else:
            assert isinstance(plan, StartUpload)
            budgets.upload = plan.budget  # charged before anything awaits: no lost update
            self.budgets.charged(uid)
            row = await self.store.create_upload(
                uid, msg.sha256, msg.size, msg.media_type, msg.name, plan.chunk_size, now
            )
            if row.created == now and row.id not in self._uploads and row.id not in self._attaching:
                up = await self._start(row)
            else:  # a BEGIN of the same content racing this one created it
                up = await self._attached(row)
        if up.phase is UploadPhase.COMPLETE:  # it completed just before a restart
            conn.send(self._answer_done(msg.rid, row.id))
            return
        st = up.status(self.limits)
        conn.send(
            UploadStatus(
                rid=msg.rid,
                upload=row.id,
                size=st.size,
                chunk_size=st.chunk_size,
                held=flat(st.held),
                expires=st.expires_ms,
            )
        )

    async def _start(self, row: UploadRow) -> Upload:
        """A new upload's partial files (durable before the client hears of it)."""
        try:
            await self.io.begin(
                str(row.id),
                size=row.size,
                sha256=row.sha256,
                chunk_size=row.chunk_size,
                created_ms=row.created,
            )
        except BaseException as exc:
            await self.store.delete_upload(row.id)
            if isinstance(exc, StorageFull):
                raise refusal(Refusal(MediaError.INSUFFICIENT_STORAGE)) from None
            raise
        up = self._uploads[row.id] = Upload(_record(row))
        return up

    async def _attached(self, row: UploadRow) -> Upload:
        """The upload's rules and partial, attached once per process (a restart reopens
        the partial from its journal)."""
        up = self._uploads.get(row.id)
        if up is not None:
            return up
        pending = self._attaching.get(row.id)
        if pending is None:
            pending = self._attaching[row.id] = asyncio.ensure_future(self._attach(row))
            pending.add_done_callback(lambda _f: self._attaching.pop(row.id, None))
        return await asyncio.shield(pending)

    async def _attach(self, row: UploadRow) -> Upload:
        name = str(row.id)
        held = RangeSet()
        finished = False
        try:
            rec = await self.io.recover(name)
        except (UnknownPartial, CorruptPartial) as exc:
            # the begin committed its row but died before its files were durable
            log.info(
                "upload %d: no usable partial (%s): starting it over", row.id, type(exc).__name__
            )
            await self.io.abort(name)
            await self.io.begin(
                name,
                size=row.size,
                sha256=row.sha256,
                chunk_size=row.chunk_size,
                created_ms=row.created,
            )
        else:
            if rec.partial is not None:
                held = rec.partial.held.copy()
            else:
                finished = True
        up = Upload(_record(row), held)
        if finished:  # it completed just before a crash: commit what the crash cut short
            up.phase = UploadPhase.FINISHING
            up.verified(True)
            async with self._hash_locks.hold(row.sha256):
                await self._complete(row, up)
            return up
        self._uploads[row.id] = up
        return up

    def _answer_done(self, rid: int, upload_id: int) -> UploadDone:
        done = self._done.get(upload_id)
        if done is None:
            raise unknown_upload()
        d = done[1]
        return UploadDone(rid=rid, blob=d.blob, size=d.size, media_type=d.media_type, info=d.info)

    async def _upload_of(self, uid: int, upload_id: int) -> Upload:
        up = self._uploads.get(upload_id)
        if up is None:
            row = await self.store.upload(upload_id)
            if row is None or row.user_id != uid:
                raise unknown_upload()
            up = await self._attached(row)
        if up.record.owner != str(uid):
            raise unknown_upload()
        return up

    def chunk(self, conn: Peer, msg: UploadChunk) -> Awaitable[None]:
        self._enter(conn)
        return self._chunk(conn, msg)

    async def _chunk(self, conn: Peer, msg: UploadChunk) -> None:
        try:
            up = await self._upload_of(conn.user_id, msg.upload)
            n = len(msg.data)
            plan = up.check_chunk(msg.offset, n)
            if isinstance(plan, Refusal):
                raise refusal(plan)
            if plan is ChunkPlan.WRITE:
                try:
                    await self.io.write(str(msg.upload), msg.offset, msg.data)
                except StorageFull:
                    raise refusal(Refusal(MediaError.INSUFFICIENT_STORAGE)) from None
                except UnknownPartial:  # cancelled or expired meanwhile
                    raise unknown_upload() from None
                except BlobError:
                    if not up.held.contains(msg.offset, msg.offset + n):
                        raise
                    # the same chunk twice in flight: the first one wrote it
                else:
                    up.chunk_written(msg.offset, n, now_ms())
            conn.send(Ok(rid=msg.rid))
        finally:
            self._leave(conn)

    async def finish(self, conn: Peer, msg: UploadFinish) -> None:
        self._write_request(conn)
        uid = conn.user_id
        done = self._done.get(msg.upload)
        if done is not None and done[0] == uid:  # a retried FINISH (its answer was lost)
            conn.send(self._answer_done(msg.rid, msg.upload))
            return
        up = await self._upload_of(uid, msg.upload)
        plan = up.check_finish()
        if isinstance(plan, Refusal):
            raise refusal(plan)
        if plan is FinishPlan.VERIFY:
            row = _row(up)
            async with self._hash_locks.hold(row.sha256):
                try:
                    fin = await self.io.finish(str(row.id))
                except BaseException:
                    up.verify_interrupted()
                    raise
                bad = up.verified(fin.ok)
                if bad is not None:
                    self._uploads.pop(row.id, None)
                    await self.store.delete_upload(row.id)
                    raise refusal(bad)
                await self._complete(row, up)
        conn.send(self._answer_done(msg.rid, msg.upload))

    async def _complete(self, row: UploadRow, up: Upload) -> None:
        """The bytes are stored (fsynced): read what they are, store the thumbnail, commit
        the metadata, remember the answer. Called with the hash's lock held (or at
        attach, before anyone can collect a blob of an upload with a row)."""
        now = now_ms()
        found = await self.io.inspect(row.sha256, row.media_type)
        info = dict(found.info)
        blobs: list[Blob] = []
        thumb = found.thumbnail
        if thumb is not None:
            tsha = hashlib.sha256(thumb.data).digest()
            async with self._hash_locks.hold(tsha):
                await self.io.put(thumb.data, now)
                info["thumb"] = {
                    "blob": tsha,
                    "w": thumb.width,
                    "h": thumb.height,
                    "type": thumb.media_type,
                }
                blobs.append(
                    Blob(
                        tsha,
                        len(thumb.data),
                        thumb.media_type,
                        {
                            "w": thumb.width,
                            "h": thumb.height,
                            "format": thumb.media_type.split("/")[1].upper(),
                        },
                        now,
                    )
                )
                main = Blob(row.sha256, row.size, found.media_type, info, now)
                await self.store.complete_upload(row.id, row.user_id, [main, *blobs], now)
        else:
            main = Blob(row.sha256, row.size, found.media_type, info, now)
            await self.store.complete_upload(row.id, row.user_id, [main], now)
        stored = await self.store.blob(row.sha256) or main  # the first upload's, if earlier
        self._uploads.pop(row.id, None)
        self._done[row.id] = (row.user_id, _done(0, stored))
        while len(self._done) > DONE_REMEMBERED:
            self._done.popitem(last=False)
        up.phase = UploadPhase.COMPLETE

    async def cancel(self, conn: Peer, msg: UploadCancel) -> None:
        self._write_request(conn)
        up = await self._upload_of(conn.user_id, msg.upload)
        if up.phase is not UploadPhase.RECEIVING:
            raise refusal(Refusal(MediaError.UPLOAD_NOT_RECEIVING))
        await self._drop(msg.upload)
        conn.send(Ok(rid=msg.rid))

    async def _drop(self, upload_id: int) -> None:
        self._uploads.pop(upload_id, None)
        await self.io.abort(str(upload_id))
        await self.store.delete_upload(upload_id)

    # ------------------------------------------------------------------ downloads

    def download(self, conn: Peer, msg: Download) -> Awaitable[None]:
        self._enter(conn)
        return self._download(conn, msg)

    async def _download(self, conn: Peer, msg: Download) -> None:
        try:
            uid = conn.user_id
            size = await self._readable(uid, msg.blob)
            span = check_read(msg.offset, msg.length, size, self.limits, self.frame_size)
            if isinstance(span, Refusal):
                raise refusal(span)
            offset, n = span
            if n:
                budgets = await self.budgets.get(uid, now_ms())
                taken = budgets.download.take(n, now_ms())
                if not isinstance(taken, ByteBudget):
                    raise refusal(
                        Refusal(
                            MediaError.QUOTA_EXCEEDED,
                            retry_after=taken,
                            data={
                                "limit": "download_bytes_per_day",
                                "max": budgets.download.capacity,
                            },
                        )
                    )
                budgets.download = taken
                self.budgets.charged(uid)
            try:
                data = await self._ahead.read(conn.id, msg.blob, offset, n, size) if n else b""
            except FileNotFoundError:  # collected meanwhile
                raise refusal(Refusal(MediaError.UNKNOWN_BLOB)) from None
            conn.send(BlobData(rid=msg.rid, blob=msg.blob, offset=offset, size=size, data=data))
        finally:
            self._leave(conn)

    async def _readable(self, uid: int, sha256: bytes) -> int:
        """The blob's size if `uid` may read it (chat/rules/media.py), else UNKNOWN_BLOB.
        A grant is trusted for ACCESS_TTL seconds, so a download in ranges reads the
        access once, not per range."""
        key = (uid, sha256)
        now = self.clock()
        granted = self._granted.get(key)
        if granted is not None and granted[0] > now:
            return granted[1]
        access = await self.store.blob_access(uid, sha256)
        if not may_read(access) or access.blob is None:
            raise refusal(Refusal(MediaError.UNKNOWN_BLOB))
        if len(self._granted) > 100_000:
            self._granted = {k: v for k, v in self._granted.items() if v[0] > now}
        self._granted[key] = (now + ACCESS_TTL, access.blob.size)
        return access.blob.size

    # ------------------------------------------------------------------ SEND with media

    async def prepare_send(self, conn: Peer, msg: Send) -> tuple[dict[str, Any], tuple[bytes, ...]]:
        """The media map a SEND stores and the blobs it references, or the refusal."""
        media = msg.media
        assert media is not None
        uid = conn.user_id
        blob = await self.store.blob_access(uid, media.blob)
        cover = None
        if media.kind == "track" and media.cover is not None:
            cover = await self.store.blob_access(uid, media.cover)
        try:
            plan = plan_media(media, blob, cover, self.policy)
        except Refused as exc:
            raise refused(exc) from None
        until = self.clock() + PIN_SECONDS
        for sha in plan.refs:
            self._pins[sha] = until
        return plan.media, plan.refs

    # ------------------------------------------------------------------ sweeps

    async def run(self) -> None:
        """Expire uploads and collect blobs every `sweep_interval` seconds; store charged
        byte budgets every budgets.py BUDGET_SAVE seconds."""
        saver = asyncio.ensure_future(self.budgets.run())
        try:
            while True:
                await asyncio.sleep(self.sweep_interval)
                try:
                    await self.sweep()
                except Exception:
                    log.exception("media sweep failed")
        finally:
            saver.cancel()

    async def sweep(self, wall_ms: int | None = None) -> tuple[int, int]:
        """One pass: (uploads expired, blobs collected)."""
        now = now_ms() if wall_ms is None else wall_ms
        return await self.expire_uploads(now), await self.collect(now)

    async def expire_uploads(self, now: int) -> int:
        ttl_ms = int(self.limits.upload_ttl * 1000)
        expired = 0
        for row in await self.store.expired_uploads(now - ttl_ms, SWEEP_BATCH):
            up = self._uploads.get(row.id)
            last = up.record.touched_ms if up is not None else row.touched
            if up is None:
                mtime = await self.io.partial_mtime(str(row.id))
                if mtime is not None:
                    last = max(last, int(mtime * 1000))
            if up is not None and up.phase is not UploadPhase.RECEIVING:
                continue
            if last + ttl_ms > now:  # written since: the row is told so
                await self.store.touch_upload(row.id, last)
                continue
            await self._drop(row.id)
            expired += 1
        # partial files with no row (a begin that died before its commit)
        for name in await self.io.partial_ids():
            if not name.isdigit() or int(name) in self._uploads:
                continue
            mtime = await self.io.partial_mtime(name)
            if (
                mtime is not None
                and mtime * 1000 + ttl_ms < now
                and await self.store.upload(int(name)) is None
            ):
                await self.io.abort(name)
        return expired

    async def collect(self, now: int) -> int:
        """Collect blobs unreferenced for the grace period: metadata, then the file."""
        before = now - int(self.limits.unreferenced_grace * 1000)
        mono = self.clock()
        self._pins = {k: v for k, v in self._pins.items() if v > mono}
        collected = 0
        for sha in await self.store.collectable_blobs(before, SWEEP_BATCH):
            if sha in self._pins:
                continue
            async with self._hash_locks.hold(sha):
                if await self.store.collect_blobs([sha], before):
                    await self.io.remove(sha)
                    collected += 1
        # files with no metadata (a crash between a collection's commit and the unlink,
        # or between a finish's rename and its commit), once older than the grace
        files = [b for b in await self.io.blobs() if b.mtime * 1000 < before]
        for i in range(0, len(files), SWEEP_BATCH):
            part = files[i : i + SWEEP_BATCH]
            known = await self.store.known_blobs([b.sha256 for b in part])
            for b in part:
                if (
                    b.sha256 in known
                    or self._hash_locks.busy(b.sha256)
                    or any(u.record.sha256 == b.sha256 for u in self._uploads.values())
                ):
                    continue
                async with self._hash_locks.hold(b.sha256):
                    if not await self.store.known_blobs([b.sha256]):
                        await self.io.remove(b.sha256)
        return collected


def _record(row: UploadRow) -> UploadRecord:
    return UploadRecord(
        str(row.id),
        str(row.user_id),
        row.size,
        row.sha256,
        row.media_type,
        row.name,
        row.chunk_size,
        row.created,
        row.touched,
    )


def _row(up: Upload) -> UploadRow:
    r = up.record
    return UploadRow(
        int(r.upload_id),
        int(r.owner),
        r.sha256,
        r.size,
        r.media_type,
        r.file_name,
        r.chunk_size,
        r.created_ms,
        r.touched_ms,
    )


def _done(rid: int, blob: Blob) -> UploadDone:
    return UploadDone(
        rid=rid,
        blob=blob.sha256,
        size=blob.size,
        media_type=blob.media_type,
        info=public_info(blob.info),
    )
