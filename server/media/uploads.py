"""The rules of uploads and downloads, sans I/O: no asyncio, no files, no clock.

A handler asks the store what the rules need (`UploaderState`, one read), calls a rule,
and carries out the plan it returns: create a partial, write a chunk, verify, commit. Every
refusal is a `Refusal` (errors.py) returned as data; time is passed in as `now_ms`.

**Begin** (`plan_begin`) answers one of:

* `AlreadyStored`: this user completed an upload of this content before and it is still
  stored: nothing needs to be sent (the same uploader's dedup, `media_dedup_upload_ms`);
* `ResumeUpload`: this user has an unfinished upload of this content: continue it (its chunk
  size wins; the answer lists the ranges held, and the client sends the rest);
* `StartUpload`: a new upload, whose declared size has been charged to the user's byte
  budget;
* a `Refusal`.

**No cross-user oracle.** Nothing a user sees depends on whether *someone else* has stored
the same content: `AlreadyStored` is decided by the user's own history only, a new upload of
content already on disk takes every byte (`StartUpload`), and its finish verifies the bytes
and then reuses the stored blob with the same answer and the same work (blobs.py). So a user
who has not uploaded the content cannot learn, by asking, that it exists on the server.
The cost: a second user's upload of popular content is a full upload (its bytes are then
dropped, not stored twice).

**Chunks** (`Upload.check_chunk`): an upload has one chunk size, a power of two that fits
the frame size. A chunk starts at a multiple of it and is exactly that long, except the
last, which ends at the declared size. A chunk already held is acknowledged without being
written again (a client that lost an acknowledgement in a reconnect may resend it); its
bytes are not compared: the final hash check decides.

**Finish** (`Upload.check_finish`, `Upload.verified`): every byte must be held, then the
bytes are hashed; a mismatch ends the upload (nothing stored, the bytes are gone) with
`HASH_MISMATCH`.

**Budgets**: uploads are charged their declared size at begin (not again on resume, not for
`AlreadyStored`); downloads their length per read. A budget is a bucket of a day's bytes
refilled evenly over 24 hours (`ByteBudget`), so a spent budget says when to retry.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace

from liaotian.protocol.text import first_control

from .errors import MediaError, Refusal
from .limits import CHUNK_FRAME_OVERHEAD, MediaLimits
from .ranges import RangeSet

__all__ = [
    "DAY_MS",
    "AlreadyStored",
    "BeginPlan",
    "BeginRequest",
    "ByteBudget",
    "ChunkPlan",
    "FinishPlan",
    "ResumeUpload",
    "StartUpload",
    "Upload",
    "UploadPhase",
    "UploadRecord",
    "UploadStatus",
    "UploaderState",
    "check_file_name",
    "check_media_type",
    "check_read",
    "plan_begin",
]

DAY_MS = 24 * 3600 * 1000
MAX_MISSING_LISTED = 64  # ranges named in an UPLOAD_INCOMPLETE refusal's data

# RFC 6838 restricted names: type "/" subtype, lower-cased; parameters are not accepted
_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(f"{_TOKEN}/{_TOKEN}")


# -- budgets


@dataclass(frozen=True, slots=True)
class ByteBudget:
    """A user's byte bucket: `level` bytes available at `at_ms`, refilled evenly so that
    `capacity` bytes come back over `period_ms`, never above `capacity`."""

    capacity: int
    level: float
    at_ms: int
    period_ms: int = DAY_MS

    @classmethod
    def full(cls, capacity: int, now_ms: int, period_ms: int = DAY_MS) -> ByteBudget:
        return cls(capacity, float(capacity), now_ms, period_ms)

    def available(self, now_ms: int) -> float:
        elapsed = max(0, now_ms - self.at_ms)
        return min(float(self.capacity), self.level + elapsed * self.capacity / self.period_ms)

    def take(self, n: int, now_ms: int) -> ByteBudget | float:
        """The budget after taking `n` bytes, or the seconds until they are available.

        More than the capacity is never available (`float("inf")`).
        """
        if n > self.capacity:
            return float("inf")
        level = self.available(now_ms)
        if level >= n:
            return ByteBudget(self.capacity, level - n, max(now_ms, self.at_ms), self.period_ms)
        return (n - level) * self.period_ms / self.capacity / 1000.0


# -- begin


@dataclass(frozen=True, slots=True)
class BeginRequest:
    """What the client declares before sending bytes (UPLOAD_BEGIN)."""

    size: int
    sha256: bytes
    media_type: str
    file_name: str
    chunk_size: int


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """An unfinished upload as the metadata keeps it (the `uploads` table)."""

    upload_id: str
    owner: str
    size: int
    sha256: bytes
    media_type: str
    file_name: str
    chunk_size: int
    created_ms: int
    touched_ms: int  # the last chunk (or the begin): the upload expires upload_ttl later


@dataclass(frozen=True, slots=True)
class UploaderState:
    """What the rules need to know about the uploader, read from the store before planning.

    `uploaded_before`: the user completed an upload of this (sha256, size) and the blob is
    still stored. `open_upload`: the user's unfinished upload of this (sha256, size), if
    any. Neither may depend on other users' uploads.
    """

    uploaded_before: bool
    open_upload: UploadRecord | None
    active_uploads: int
    budget: ByteBudget


@dataclass(frozen=True, slots=True)
class AlreadyStored:
    sha256: bytes
    size: int


@dataclass(frozen=True, slots=True)
class ResumeUpload:
    record: UploadRecord


@dataclass(frozen=True, slots=True)
class StartUpload:
    """Create the upload; `budget` is the user's budget with the size taken."""

    size: int
    sha256: bytes
    media_type: str
    file_name: str
    chunk_size: int
    budget: ByteBudget

    def record(self, upload_id: str, owner: str, now_ms: int) -> UploadRecord:
        return UploadRecord(
            upload_id,
            owner,
            self.size,
            self.sha256,
            self.media_type,
            self.file_name,
            self.chunk_size,
            now_ms,
            now_ms,
        )


BeginPlan = Refusal | AlreadyStored | ResumeUpload | StartUpload


def check_media_type(media_type: str, limits: MediaLimits) -> Refusal | None:
    if len(media_type) > limits.max_media_type_len or not _MEDIA_TYPE.fullmatch(media_type):
        return Refusal(
            MediaError.INVALID_REQUEST,
            "media_type: expected a lower-case type/subtype such as image/jpeg",
        )
    return None


def check_file_name(file_name: str, limits: MediaLimits) -> Refusal | None:
    """A file name is shown to recipients and offered when saving: one path component."""
    if len(file_name) > limits.max_file_name_len:
        return Refusal(
            MediaError.INVALID_REQUEST, f"file_name: at most {limits.max_file_name_len} characters"
        )
    i = first_control(file_name)  # SPEC.md 1.5: a name shown to others holds none
    if i >= 0:
        return Refusal(
            MediaError.INVALID_REQUEST,
            f"file_name: control character U+{ord(file_name[i]):04X} is not allowed",
        )
    if "/" in file_name or "\\" in file_name or file_name in (".", ".."):
        return Refusal(MediaError.INVALID_REQUEST, "file_name: must not be a path")
    return None


def plan_begin(
    req: BeginRequest,
    state: UploaderState,
    *,
    limits: MediaLimits,
    frame_size: int,
    now_ms: int,
    free_disk: int,
) -> BeginPlan:
    """Decide what an UPLOAD_BEGIN does (see the module text). Order of checks: the
    request's shape, then the user's own content (stored, unfinished), then the bounds of a
    new upload: size, chunk size, unfinished uploads, budget, free disk."""
    if len(req.sha256) != 32:
        return Refusal(MediaError.INVALID_REQUEST, "sha256: 32 bytes")
    if req.size < 0:
        return Refusal(MediaError.INVALID_REQUEST, "size: must not be negative")
    bad = check_media_type(req.media_type, limits) or check_file_name(req.file_name, limits)
    if bad is not None:
        return bad
    if state.uploaded_before:
        return AlreadyStored(req.sha256, req.size)
    if state.open_upload is not None:
        return ResumeUpload(state.open_upload)
    if req.size > limits.max_blob_size:
        return Refusal(
            MediaError.BLOB_TOO_LARGE, data={"limit": "max_blob_size", "max": limits.max_blob_size}
        )
    ceiling = limits.max_chunk_for(frame_size)
    cs = req.chunk_size
    if cs & (cs - 1) or not limits.min_chunk_size <= cs <= ceiling:
        return Refusal(
            MediaError.BAD_CHUNK_SIZE,
            f"chunk_size: a power of two from {limits.min_chunk_size} to {ceiling}",
            data={"min": limits.min_chunk_size, "max": ceiling},
        )
    if -(-req.size // cs) > limits.max_chunks:
        return Refusal(
            MediaError.BAD_CHUNK_SIZE,
            f"more than {limits.max_chunks} chunks: use larger chunks",
            data={"min": limits.min_chunk_size, "max": ceiling},
        )
    if state.active_uploads >= limits.max_uploads_per_user:
        return Refusal(
            MediaError.TOO_MANY_UPLOADS,
            data={"limit": "max_uploads", "max": limits.max_uploads_per_user},
        )
    taken = state.budget.take(req.size, now_ms)
    if not isinstance(taken, ByteBudget):
        return Refusal(
            MediaError.QUOTA_EXCEEDED,
            retry_after=taken,
            data={"limit": "upload_bytes_per_day", "max": state.budget.capacity},
        )
    if free_disk - req.size < limits.free_disk_floor:
        return Refusal(MediaError.INSUFFICIENT_STORAGE)
    return StartUpload(req.size, req.sha256, req.media_type, req.file_name, cs, taken)


# -- one upload


class UploadPhase(enum.Enum):
    RECEIVING = "receiving"  # chunks are taken
    FINISHING = "finishing"  # the bytes are being verified: no chunks, no second finish
    COMPLETE = "complete"  # verified and stored
    FAILED = "failed"  # the hash did not match: nothing stored


class ChunkPlan(enum.Enum):
    WRITE = "write"  # write the bytes, then call chunk_written
    DUPLICATE = "duplicate"  # already held: acknowledge, write nothing


class FinishPlan(enum.Enum):
    VERIFY = "verify"  # hash the bytes (blob store), then call verified(ok)
    DONE = "done"  # already complete: answer as before (a retried finish)


@dataclass(frozen=True, slots=True)
class UploadStatus:
    """What UPLOAD_STATUS answers: the held ranges, in order; the client sends the rest."""

    upload_id: str
    size: int
    chunk_size: int
    held: tuple[tuple[int, int], ...]
    expires_ms: int


class Upload:
    """The rules of one upload, from begin (or a restart) to complete or failed."""

    def __init__(self, record: UploadRecord, held: RangeSet | None = None) -> None:
        self.record = record
        self.held = held if held is not None else RangeSet()
        self.phase = UploadPhase.RECEIVING

    @property
    def upload_id(self) -> str:
        return self.record.upload_id

    def expires_ms(self, limits: MediaLimits) -> int:
        return self.record.touched_ms + int(limits.upload_ttl * 1000)

    def expired(self, now_ms: int, limits: MediaLimits) -> bool:
        return self.phase is UploadPhase.RECEIVING and now_ms >= self.expires_ms(limits)

    def status(self, limits: MediaLimits) -> UploadStatus:
        r = self.record
        return UploadStatus(
            r.upload_id, r.size, r.chunk_size, tuple(self.held), self.expires_ms(limits)
        )

    def missing(self) -> list[tuple[int, int]]:
        return self.held.missing(self.record.size)

    def check_chunk(self, offset: int, length: int) -> ChunkPlan | Refusal:
        """Whether a chunk of `length` bytes at `offset` is written, acknowledged or refused."""
        if self.phase is not UploadPhase.RECEIVING:
            return Refusal(MediaError.UPLOAD_NOT_RECEIVING)
        size, cs = self.record.size, self.record.chunk_size
        if offset < 0 or offset >= size:
            return Refusal(MediaError.CHUNK_OUT_OF_RANGE, data={"size": size})
        if offset % cs:
            return Refusal(MediaError.CHUNK_MISALIGNED, data={"chunk_size": cs})
        remaining = size - offset
        if length > remaining:
            return Refusal(MediaError.TOO_MANY_BYTES, data={"size": size})
        if length != min(cs, remaining):
            return Refusal(
                MediaError.CHUNK_SIZE_MISMATCH,
                data={"chunk_size": cs, "expected": min(cs, remaining)},
            )
        end = offset + length
        if self.held.contains(offset, end):
            return ChunkPlan.DUPLICATE
        if self.held.overlaps(offset, end):
            # only ranges of whole chunks are ever held, so this is a corrupt state
            return Refusal(MediaError.CHUNK_MISALIGNED, data={"chunk_size": cs})
        return ChunkPlan.WRITE

    def chunk_written(self, offset: int, length: int, now_ms: int) -> None:
        """Record a chunk the blob store wrote; it also keeps the upload from expiring."""
        self.held.add(offset, offset + length)
        if now_ms > self.record.touched_ms:
            self.record = replace(self.record, touched_ms=now_ms)

    def check_finish(self) -> FinishPlan | Refusal:
        """Whether UPLOAD_FINISH verifies now, answers again, or is refused."""
        if self.phase is UploadPhase.COMPLETE:
            return FinishPlan.DONE
        if self.phase is not UploadPhase.RECEIVING:
            return Refusal(MediaError.UPLOAD_NOT_RECEIVING)
        missing = self.missing()
        if missing:
            listed = [[s, e] for s, e in missing[:MAX_MISSING_LISTED]]
            return Refusal(
                MediaError.UPLOAD_INCOMPLETE,
                data={"missing": listed, "more": len(missing) > len(listed)},
            )
        self.phase = UploadPhase.FINISHING
        return FinishPlan.VERIFY

    def verified(self, ok: bool) -> Refusal | None:
        """The blob store's verdict on the bytes: complete, or failed with HASH_MISMATCH."""
        if self.phase is not UploadPhase.FINISHING:
            raise RuntimeError(f"verified() in phase {self.phase.value}")
        if ok:
            self.phase = UploadPhase.COMPLETE
            return None
        self.phase = UploadPhase.FAILED
        return Refusal(MediaError.HASH_MISMATCH)

    def verify_interrupted(self) -> None:
        """The verification did not finish (an I/O error): chunks and finish are taken again."""
        if self.phase is UploadPhase.FINISHING:
            self.phase = UploadPhase.RECEIVING


# -- downloads


def check_read(
    offset: int, length: int, size: int, limits: MediaLimits, frame_size: int
) -> tuple[int, int] | Refusal:
    """The byte range a DOWNLOAD of `length` bytes at `offset` answers, or a refusal.

    `offset` may equal the size (an empty answer: the client is done); the length is cut
    at the end of the blob. The caller has already decided that the user may read it.
    """
    most = min(limits.max_download_chunk, max(frame_size - CHUNK_FRAME_OVERHEAD, 1))
    if offset < 0 or offset > size:
        return Refusal(MediaError.BAD_RANGE, data={"size": size})
    if length < 1 or length > most:
        return Refusal(MediaError.BAD_RANGE, f"length: 1 to {most} bytes", data={"max": most})
    return offset, min(length, size - offset)
