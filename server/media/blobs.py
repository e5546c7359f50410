"""The content-addressed blob store: media bytes on disk beside the database.

Synchronous and self-contained: every function here blocks on the disk, so the server
calls it from a thread (`aio.MediaIO`), never from the event loop; tests call it directly.

Layout under the store's root (directories 0700, files 0600, whatever the umask)::

    blobs/ab/cd/abcd...64 hex    a complete blob, named by the SHA-256 of its bytes
    partial/<upload>.part        an upload's bytes so far, at their offsets (sparse, full size)
    partial/<upload>.jnl         its journal: a header (size, SHA-256, chunk size, created)
                                 and records "bytes [offset, offset+length) are on disk"

**A blob is stored once per SHA-256.** A complete blob exists only under its hash's name
and only with exactly those bytes: the bytes are hashed (as written, and re-read from the
partial file for what was written before a restart or out of order), the file is fsynced,
and only then renamed from `partial/` to `blobs/` (an atomic rename), and both directories
are fsynced before `finish` returns. A partial upload is never visible as complete. When a
blob with that hash is already stored, the verified partial is removed instead: the same
work up to that point (hash, fsync), so the answer's timing does not tell an uploader that
someone else stored the content before (see uploads.py for the rule that keeps the
existence of a hash from leaking at all).

**Resume.** The journal says which ranges of a partial are held. A record is appended only
after the data it names has been fdatasynced, so a record on disk implies its bytes are on
disk; records carry a CRC, and a torn tail is cut off when the journal is reopened. Records
are written every `sync_every` bytes, on `sync()` and on `close()`; bytes written since the
last sync may be lost in a crash and are simply sent again (the client asks the server
which ranges it holds after every reconnect).

**Crash safety.** After a SIGKILL or power loss at any point, `open_partial` finds for an
upload either the complete blob (re-verified: its hash is recomputed) or a resumable
partial holding the ranges its journal names. The invariants that make this so:

* a partial is created (file sized, journal header written, both fsynced, directory
  fsynced) before `create_partial` returns, so an acknowledged upload always has both files;
* a partial file disappears only by the rename into `blobs/`, or by its removal after the
  same content was found stored (both after verification), or by `abort_partial`, which
  removes the journal *first*. So "journal present, partial file gone" means the upload
  completed, and `open_partial` answers with the stored blob after re-hashing it.

Nothing here knows users, conversations or quotas: which uploads and blobs exist in the
server's eyes is metadata in the database; this module keeps bytes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import BlobError, CorruptPartial, StorageFull, UnknownPartial
from .ranges import RangeSet

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "BlobInfo",
    "BlobReader",
    "BlobStore",
    "Finished",
    "Partial",
    "Recovered",
]

DIR_MODE = 0o700
FILE_MODE = 0o600
MIB = 1024 * 1024

_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEX = re.compile(r"[0-9a-f]{64}")
_READ_BLOCK = 1 * MIB  # re-reading a partial to hash it, and verifying a blob

# journal: header, then records; big-endian, each with a CRC-32 of the bytes before it
_MAGIC = b"LTMJ"
_VERSION = 1
_HEADER = struct.Struct(">4sHHQI32sQ")  # magic, version, flags, size, chunk, sha256, created
_HEADER_CRC = struct.Struct(">I")
_HEADER_LEN = _HEADER.size + _HEADER_CRC.size
_RECORD = struct.Struct(">QQ")  # offset, length
_RECORD_LEN = _RECORD.size + _HEADER_CRC.size
_LOCK_STRIPES = 64


@dataclass(frozen=True, slots=True)
class Finished:
    """The end of an upload: `ok` if the bytes hashed to the declared SHA-256.

    `created` says whether this upload put the blob on disk (False: it was already stored
    and the verified partial was dropped). Only the server may look at `created`; the
    peer's answer is the same either way.
    """

    ok: bool
    sha256: bytes
    size: int
    created: bool = False


@dataclass(frozen=True, slots=True)
class BlobInfo:
    sha256: bytes
    size: int
    mtime: float


def _hex(sha256: bytes) -> str:
    if len(sha256) != 32:
        raise ValueError("a SHA-256 is 32 bytes")
    return sha256.hex()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdir_private(path: str) -> bool:
    """Create one directory 0700 (fsyncing its parent); False if it already existed."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return False
    os.chmod(path, DIR_MODE)  # the umask may have taken bits away; never added any
    _fsync_dir(os.path.dirname(path))
    return True


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.pwrite(fd, view, offset)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("no space left on the media disk") from None
            raise
        view = view[n:]
        offset += n


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("no space left on the media disk") from None
            raise
        view = view[n:]


def _hash_fd(fd: int, hasher: hashlib._Hash, start: int, end: int) -> None:
    buf = bytearray(min(_READ_BLOCK, max(end - start, 1)))
    view = memoryview(buf)
    at = start
    while at < end:
        want = min(len(buf), end - at)
        n = os.preadv(fd, [view[:want]], at)
        if n <= 0:
            raise BlobError("file shorter than expected")
        hasher.update(view[:n])
        at += n


class BlobReader:
    """An open complete blob for ranged reads (downloads). Close it when done."""

    def __init__(self, fd: int, sha256: bytes, size: int) -> None:
        self._fd = fd
        self.sha256 = sha256
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes from `offset` (fewer only at the end of the blob)."""
        if offset < 0 or length < 0 or offset > self.size:
            raise ValueError(f"range [{offset}, +{length}) outside a blob of {self.size}")
        length = min(length, self.size - offset)
        first = os.pread(self._fd, length, offset)  # whole, nearly always: no second copy
        if len(first) == length:
            return first
        out = bytearray(length)
        view = memoryview(out)
        view[: len(first)] = first
        got = len(first)
        if not got:
            raise BlobError("blob shorter than its size")
        while got < length:
            n = os.preadv(self._fd, [view[got:]], offset + got)
            if n <= 0:
                raise BlobError("blob shorter than its size")
            got += n
        return bytes(out)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Partial:
    """One upload's bytes on their way to becoming a blob.

    Not thread-safe: one caller at a time per partial (the async layer serializes each
    upload). `held` is every range written; `durable` the ranges the journal records.
    """

    def __init__(
        self,
        store: BlobStore,
        upload_id: str,
        *,
        size: int,
        sha256: bytes,
        chunk_size: int,
        created_ms: int,
        fd: int,
        jfd: int,
        held: RangeSet,
    ) -> None:
        self.store = store
        self.upload_id = upload_id
        self.size = size
        self.sha256 = sha256
        self.chunk_size = chunk_size
        self.created_ms = created_ms
        self._fd = fd
        self._jfd = jfd
        self.held = held
        self.durable = held.copy()
        self._pending: list[tuple[int, int]] = []  # written, not yet in the journal
        self._unsynced = 0
        self._hasher = hashlib.sha256()
        self._hashed = 0  # bytes [0, _hashed) are in _hasher, hashed as they were written
        self.closed = False

    # -- writing

    def write(self, offset: int, data: bytes | memoryview) -> None:
        """Write `data` at `offset`. The range must be inside the size and not yet held."""
        self._check_open()
        end = offset + len(data)
        if offset < 0 or end > self.size:
            raise BlobError(f"write [{offset}, {end}) outside an upload of {self.size}")
        if not data:
            return
        if self.held.overlaps(offset, end):
            raise BlobError(f"write [{offset}, {end}) overlaps bytes already held")
        _pwrite_all(self._fd, data, offset)
        if offset == self._hashed:
            self._hasher.update(data)
            self._hashed = end
        self.held.add(offset, end)
        if self._pending and self._pending[-1][1] == offset:
            self._pending[-1] = (self._pending[-1][0], end)
        else:
            self._pending.append((offset, end))
        self._unsynced += len(data)
        if self._unsynced >= self.store.sync_every:
            self.sync()

    def sync(self) -> None:
        """Make the bytes written so far durable and record them in the journal."""
        self._check_open()
        if not self._pending:
            return
        os.fdatasync(self._fd)  # the data first: a record on disk implies its bytes are
        records = b"".join(_record(start, end - start) for start, end in self._pending)
        _write_all(self._jfd, records)
        os.fdatasync(self._jfd)
        for start, end in self._pending:
            self.durable.add(start, end)
        self._pending.clear()
        self._unsynced = 0

    # -- the end

    def finish(self) -> Finished:
        """Verify the bytes against the declared SHA-256 and, if they match, store the blob.

        On a match the blob is complete, fsynced and renamed into place (or, when the same
        content is already stored, this partial is dropped) before this returns. On a
        mismatch the partial is removed: nothing is stored. Either way the partial is gone.
        """
        self._check_open()
        if not self.held.covers(self.size):
            raise BlobError("finish before every byte is held")
        hasher = self._hasher
        if self._hashed < self.size:
            _hash_fd(self._fd, hasher, self._hashed, self.size)
            self._hashed = self.size
        digest = hasher.digest()
        os.fsync(self._fd)  # in every outcome: the same work whether or not the blob exists
        if digest != self.sha256:
            self.store.abort_partial(self.upload_id)
            return Finished(ok=False, sha256=self.sha256, size=self.size)
        try:
            # still registered as open while it moves, so no expiry sweep can touch it
            created = self.store._install(self.upload_id, self.sha256, self.size)
        finally:
            self._close_fds()
        return Finished(ok=True, sha256=self.sha256, size=self.size, created=created)

    def close(self) -> None:
        """Sync what was written and close the files; the upload stays resumable."""
        if self.closed:
            return
        try:
            self.sync()
        finally:
            self._close_fds()

    def _close_fds(self) -> None:
        self.closed = True
        self.store._forget(self.upload_id, self)
        for fd in (self._fd, self._jfd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fd = self._jfd = -1

    def _check_open(self) -> None:
        if self.closed:
            raise BlobError(f"partial {self.upload_id} is closed")


@dataclass(frozen=True, slots=True)
class Recovered:
    """What `open_partial` found: a resumable partial, or the upload's complete blob."""

    partial: Partial | None
    finished: Finished | None = None


def _record(offset: int, length: int) -> bytes:
    body = _RECORD.pack(offset, length)
    return body + _HEADER_CRC.pack(zlib.crc32(body))


class BlobStore:
    """Blobs and partial uploads under one root directory (see the module text).

    `free_floor`: bytes of free disk that uploads may not eat into (`has_room`).
    `sync_every`: a partial syncs its data and journal after this many written bytes: what
    a crash of the server costs a resuming client at most (it sends those bytes again).
    Each sync is two fdatasyncs (data, then journal); at 8 MiB they took about a fifth of a
    64 MiB upload's time on the development machine, at 32 MiB a few percent
    (bench/media_micro.py).
    """

    def __init__(
        self, root: str | os.PathLike[str], *, free_floor: int = 0, sync_every: int = 32 * MIB
    ) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.blob_dir = os.path.join(self.root, "blobs")
        self.partial_dir = os.path.join(self.root, "partial")
        self.free_floor = free_floor
        self.sync_every = sync_every
        self._open: dict[str, Partial] = {}
        self._open_lock = threading.Lock()
        self._hash_locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    def open(self) -> None:
        """Create the root and its two directories (0700) if they do not exist."""
        parent = os.path.dirname(self.root)
        if not os.path.isdir(parent):
            raise BlobError(f"media directory's parent {parent} does not exist")
        _mkdir_private(self.root)
        for path in (self.blob_dir, self.partial_dir):
            _mkdir_private(path)
        for path in (self.root, self.blob_dir, self.partial_dir):
            if stat.S_IMODE(os.stat(path).st_mode) != DIR_MODE:
                os.chmod(path, DIR_MODE)

    # -- names

    def blob_path(self, sha256: bytes) -> str:
        h = _hex(sha256)
        return os.path.join(self.blob_dir, h[:2], h[2:4], h)

    def _partial_paths(self, upload_id: str) -> tuple[str, str]:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise ValueError(f"bad upload id {upload_id!r}")
        base = os.path.join(self.partial_dir, upload_id)
        return base + ".part", base + ".jnl"

    def _lock_for(self, sha256: bytes) -> threading.Lock:
        return self._hash_locks[sha256[0] % _LOCK_STRIPES]

    # -- disk space

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def has_room(self, size: int) -> bool:
        """Whether `size` more bytes leave at least `free_floor` bytes free."""
        return self.free_bytes() - size >= self.free_floor

    # -- complete blobs

    def blob_size(self, sha256: bytes) -> int | None:
        """The size of a stored blob, or None. For the server's bookkeeping only: never
        the basis of an answer about a hash the asking user has not uploaded."""
        try:
            return os.stat(self.blob_path(sha256)).st_size
        except FileNotFoundError:
            return None

    def open_blob(self, sha256: bytes) -> BlobReader:
        """Open a complete blob for ranged reads; FileNotFoundError if it is not stored."""
        fd = os.open(self.blob_path(sha256), os.O_RDONLY | os.O_CLOEXEC)
        return BlobReader(fd, sha256, os.fstat(fd).st_size)

    def read(self, sha256: bytes, offset: int, length: int) -> bytes:
        with self.open_blob(sha256) as reader:
            return reader.read(offset, length)

    def read_many(self, sha256: bytes, offset: int, length: int, count: int) -> list[bytes]:
        """Up to `count` consecutive ranges of `length` bytes from `offset` (fewer at the
        end of the blob): a download's next ranges in one call (readahead.py)."""
        out: list[bytes] = []
        with self.open_blob(sha256) as reader:
            for k in range(count):
                at = offset + k * length
                if k and at >= reader.size:
                    break
                out.append(reader.read(at, length))
        return out

    def verify_blob(self, sha256: bytes) -> bool:
        """Whether the stored blob's bytes hash to its name (False if it is not stored)."""
        try:
            fd = os.open(self.blob_path(sha256), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            hasher = hashlib.sha256()
            _hash_fd(fd, hasher, 0, os.fstat(fd).st_size)
            return hasher.digest() == sha256
        finally:
            os.close(fd)

    def remove_blob(self, sha256: bytes) -> bool:
        """Remove a stored blob (garbage collection); False if it was not stored.

        The caller decides that nothing references it; readers that have it open keep
        reading the bytes until they close it.
        """
        path = self.blob_path(sha256)
        with self._lock_for(sha256):
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            _fsync_dir(os.path.dirname(path))
            return True

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Every complete blob on disk (for sweeps that compare disk with metadata)."""
        for top in sorted(os.listdir(self.blob_dir)):
            top_path = os.path.join(self.blob_dir, top)
            if not os.path.isdir(top_path):
                continue
            for mid in sorted(os.listdir(top_path)):
                mid_path = os.path.join(top_path, mid)
                if not os.path.isdir(mid_path):
                    continue
                for name in sorted(os.listdir(mid_path)):
                    if not _HEX.fullmatch(name):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        st = os.stat(os.path.join(mid_path, name))
                        yield BlobInfo(bytes.fromhex(name), st.st_size, st.st_mtime)

    def _install(self, upload_id: str, sha256: bytes, size: int) -> bool:
        """Move a verified, fsynced partial into place; True if it created the blob."""
        part, jnl = self._partial_paths(upload_id)
        dest = self.blob_path(sha256)
        top = os.path.dirname(os.path.dirname(dest))
        with self._lock_for(sha256):
            _mkdir_private(top)
            _mkdir_private(os.path.dirname(dest))
            try:
                exists = os.stat(dest).st_size == size
            except FileNotFoundError:
                exists = False
            if exists:
                os.unlink(part)  # the same bytes are stored: keep one copy
            else:
                os.rename(part, dest)  # atomic: the blob appears complete or not at all
            _fsync_dir(os.path.dirname(dest))
            _fsync_dir(self.partial_dir)
        # the journal's last duty was to say "this upload completed" across a crash
        # until now; the caller's metadata says so from here on
        with contextlib.suppress(FileNotFoundError):
            os.unlink(jnl)
        return not exists

    # -- partial uploads

    def create_partial(
        self, upload_id: str, *, size: int, sha256: bytes, chunk_size: int, created_ms: int
    ) -> Partial:
        """Start a partial upload; durable (files and directory fsynced) on return."""
        if size < 0 or chunk_size <= 0:
            raise ValueError("size must be >= 0 and chunk_size > 0")
        _hex(sha256)
        part, jnl = self._partial_paths(upload_id)
        if not self.has_room(size):
            raise StorageFull(f"free disk would fall below {self.free_floor} bytes")
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(part, flags, FILE_MODE)
        jfd = -1
        try:
            os.fchmod(fd, FILE_MODE)
            os.ftruncate(fd, size)  # sparse: full size from the start, blocks as written
            jfd = os.open(jnl, flags | os.O_APPEND, FILE_MODE)
            os.fchmod(jfd, FILE_MODE)
            header = _HEADER.pack(_MAGIC, _VERSION, 0, size, chunk_size, sha256, created_ms)
            _write_all(jfd, header + _HEADER_CRC.pack(zlib.crc32(header)))
            os.fsync(fd)
            os.fsync(jfd)
            _fsync_dir(self.partial_dir)
        except BaseException:
            for f in (fd, jfd):
                if f >= 0:
                    os.close(f)
            self._remove_partial_files(upload_id)
            raise
        partial = Partial(
            self,
            upload_id,
            size=size,
            sha256=sha256,
            chunk_size=chunk_size,
            created_ms=created_ms,
            fd=fd,
            jfd=jfd,
            held=RangeSet(),
        )
        self._remember(upload_id, partial)
        return partial

    def open_partial(self, upload_id: str) -> Recovered:
        """Reopen an upload after a restart (or return the one already open).

        Raises UnknownPartial when there is no journal, CorruptPartial when its header is
        torn (the begin never completed; `abort_partial` clears the leftovers).
        """
        with self._open_lock:
            live = self._open.get(upload_id)
        if live is not None:
            return Recovered(live)
        part, jnl = self._partial_paths(upload_id)
        try:
            jfd = os.open(jnl, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            raise UnknownPartial(upload_id) from None
        try:
            size, chunk_size, sha256, created_ms, held, valid_len = _read_journal(jfd)
        except CorruptPartial:
            os.close(jfd)
            raise
        try:
            fd = os.open(part, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            os.close(jfd)
            return self._recover_finished(upload_id, sha256, size, chunk_size, created_ms)
        try:
            if os.fstat(jfd).st_size != valid_len:
                os.ftruncate(jfd, valid_len)  # cut a torn tail so new records follow valid ones
                os.fsync(jfd)
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
        except BaseException:
            os.close(fd)
            os.close(jfd)
            raise
        partial = Partial(
            self,
            upload_id,
            size=size,
            sha256=sha256,
            chunk_size=chunk_size,
            created_ms=created_ms,
            fd=fd,
            jfd=jfd,
            held=held,
        )
        self._remember(upload_id, partial)
        return Recovered(partial)

    def _recover_finished(
        self, upload_id: str, sha256: bytes, size: int, chunk_size: int, created_ms: int
    ) -> Recovered:
        """Journal without partial file: the upload completed (see the module text)."""
        jnl = self._partial_paths(upload_id)[1]
        with self._lock_for(sha256):
            stored = self.blob_size(sha256) == size and self.verify_blob(sha256)
        if stored:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(jnl)
            return Recovered(None, Finished(ok=True, sha256=sha256, size=size))
        # The blob went away after completing (collected, or removed by hand): the bytes
        # must come again. Start the upload over under the same id.
        self._remove_partial_files(upload_id)
        partial = self.create_partial(
            upload_id, size=size, sha256=sha256, chunk_size=chunk_size, created_ms=created_ms
        )
        return Recovered(partial)

    def abort_partial(self, upload_id: str) -> None:
        """Remove an upload's partial files (expired, refused, or given up)."""
        with self._open_lock:
            live = self._open.pop(upload_id, None)
        if live is not None and not live.closed:
            live._close_fds()
        self._remove_partial_files(upload_id)

    def _remove_partial_files(self, upload_id: str) -> None:
        part, jnl = self._partial_paths(upload_id)
        removed = False
        for path in (jnl, part):  # journal first: a journal never outlives its partial file
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed = True
        if removed:
            _fsync_dir(self.partial_dir)

    def partial_ids(self) -> list[str]:
        """The ids of the uploads that have files under `partial/`."""
        ids: set[str] = set()
        for name in os.listdir(self.partial_dir):
            stem, dot, ext = name.rpartition(".")
            if dot and ext in ("part", "jnl") and _UPLOAD_ID.fullmatch(stem):
                ids.add(stem)
        return sorted(ids)

    def expire_partials(self, now: float, max_idle: float) -> list[str]:
        """Remove uploads not written for `max_idle` seconds (by file times; `now` is the
        wall clock in seconds). Uploads open in this process are left alone.

        For partial files the metadata does not know (a begin that died before its commit);
        uploads that have a row expire by their row, through `abort_partial`.
        """
        expired: list[str] = []
        for upload_id in self.partial_ids():
            with self._open_lock:
                if upload_id in self._open:
                    continue
            last = 0.0
            for path in self._partial_paths(upload_id):
                with contextlib.suppress(FileNotFoundError):
                    last = max(last, os.stat(path).st_mtime)
            if now - last > max_idle:
                self._remove_partial_files(upload_id)
                expired.append(upload_id)
        return expired

    def partial_mtime(self, upload_id: str) -> float | None:
        """When an upload's partial files were last written (None: it has none)."""
        last = None
        for path in self._partial_paths(upload_id):
            with contextlib.suppress(FileNotFoundError):
                mtime = os.stat(path).st_mtime
                last = mtime if last is None else max(last, mtime)
        return last

    def put(self, data: bytes, upload_id: str, created_ms: int) -> Finished:
        """Store small bytes (a server-made thumbnail) as a blob, through a partial named
        `upload_id` like any upload: verified, fsynced, renamed."""
        sha256 = hashlib.sha256(data).digest()
        partial = self.create_partial(
            upload_id,
            size=len(data),
            sha256=sha256,
            chunk_size=max(len(data), 1),
            created_ms=created_ms,
        )
        try:
            partial.write(0, data)
            return partial.finish()
        except BaseException:
            self.abort_partial(upload_id)
            raise

    def open_partial_ids(self) -> list[str]:
        """The uploads whose partial is open in this process."""
        with self._open_lock:
            return sorted(self._open)

    def close_partial(self, upload_id: str) -> None:
        """Sync and close an open partial; it stays on disk, resumable."""
        with self._open_lock:
            partial = self._open.get(upload_id)
        if partial is not None:
            partial.close()

    def _remember(self, upload_id: str, partial: Partial) -> None:
        with self._open_lock:
            self._open[upload_id] = partial

    def _forget(self, upload_id: str, partial: Partial) -> None:
        with self._open_lock:
            if self._open.get(upload_id) is partial:
                del self._open[upload_id]


def _read_journal(jfd: int) -> tuple[int, int, bytes, int, RangeSet, int]:
    """Header fields, the held ranges, and the length of the valid prefix of a journal."""
    raw = b""
    while True:
        block = os.read(jfd, 1 * MIB)
        if not block:
            break
        raw += block
    if len(raw) < _HEADER_LEN:
        raise CorruptPartial("journal header is torn")
    header = raw[: _HEADER.size]
    (crc,) = _HEADER_CRC.unpack_from(raw, _HEADER.size)
    if zlib.crc32(header) != crc:
        raise CorruptPartial("journal header does not match its checksum")
    magic, version, _flags, size, chunk_size, sha256, created_ms = _HEADER.unpack(header)
    if magic != _MAGIC or version != _VERSION:
        raise CorruptPartial("not a journal of this version")
    held = RangeSet()
    at = _HEADER_LEN
    while at + _RECORD_LEN <= len(raw):
        body = raw[at : at + _RECORD.size]
        (crc,) = _HEADER_CRC.unpack_from(raw, at + _RECORD.size)
        if zlib.crc32(body) != crc:
            break  # a torn or stale tail: everything from here on is ignored
        offset, length = _RECORD.unpack(body)
        if offset + length > size:
            break
        held.add(offset, offset + length)
        at += _RECORD_LEN
    return size, chunk_size, sha256, created_ms, held, at
