"""Why a media request fails, as data: a named code and a `Refusal` that carries it.

The rules (`uploads.py`) and the inspection (`probe.py`) return a `Refusal` instead of
raising, so a handler turns any of them into one ERROR frame. The codes are names for now:
the wire numbers are proposed in docs/media-design.md and assigned when the frames land
(several map onto existing codes: field errors are `1003 INVALID_FIELD`, the concurrent
upload bound is `3009 LIMIT_REACHED`, the byte budget `4001 RATE_LIMITED` with
`retry_after`). Refusal texts are meant for the peer: they never carry a path, an
exception's text or anything about another user's content.

Exceptions of the blob store (`BlobError` and below) are internal: they mean the disk or
a caller misbehaved, and become `5001 INTERNAL_ERROR` (or, for `StorageFull`,
`INSUFFICIENT_STORAGE`) at the handler.

    BlobError                 the blob store could not do what was asked
    ├── StorageFull           free disk below the floor, or ENOSPC while writing
    ├── UnknownPartial        no partial upload by that id (expired, finished, aborted)
    └── CorruptPartial        a partial's journal header is unreadable (begin never completed)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "BlobError",
    "CorruptPartial",
    "MediaError",
    "Refusal",
    "StorageFull",
    "UnknownPartial",
]


class MediaError(StrEnum):
    """Why a media request is refused. The value is the name used in logs and tests."""

    # begin
    INVALID_REQUEST = "invalid_request"  # a field is out of shape (size, hash, type, name)
    BLOB_TOO_LARGE = "blob_too_large"  # size above the largest blob
    TOO_MANY_UPLOADS = "too_many_uploads"  # the user's unfinished uploads are at the bound
    QUOTA_EXCEEDED = "quota_exceeded"  # the user's byte budget for the day is spent
    INSUFFICIENT_STORAGE = "insufficient_storage"  # free disk would fall below the floor
    BAD_CHUNK_SIZE = "bad_chunk_size"  # not a power of two in range, or too many chunks
    # chunks
    UNKNOWN_UPLOAD = "unknown_upload"  # no such upload of yours (never existed, expired, done)
    UPLOAD_NOT_RECEIVING = "upload_not_receiving"  # finishing or finished: no more chunks
    CHUNK_OUT_OF_RANGE = "chunk_out_of_range"  # offset at or past the declared size
    CHUNK_MISALIGNED = "chunk_misaligned"  # offset not a multiple of the chunk size
    CHUNK_SIZE_MISMATCH = "chunk_size_mismatch"  # not the session's chunk size (not the last)
    TOO_MANY_BYTES = "too_many_bytes"  # the chunk runs past the declared size
    # finish
    UPLOAD_INCOMPLETE = "upload_incomplete"  # byte ranges are still missing
    HASH_MISMATCH = "hash_mismatch"  # the bytes do not hash to the declared SHA-256
    # downloads
    UNKNOWN_BLOB = "unknown_blob"  # no such blob, or not yours to read (not told apart)
    BAD_RANGE = "bad_range"  # offset past the end, or length not in 1 .. max
    # inspection (message kinds)
    NOT_AN_IMAGE = "not_an_image"  # not an image the server decodes
    IMAGE_TOO_LARGE = "image_too_large"  # too many pixels, or too many bytes to inspect
    NOT_AUDIO = "not_audio"  # not audio the server reads
    AUDIO_TOO_LONG = "audio_too_long"  # longer than the kind allows (voice note, track)
    BAD_CLIP = "bad_clip"  # clip start/end not inside the audio, or too short

    @property
    def explanation(self) -> str:
        return _TEXT[self]


_TEXT: dict[MediaError, str] = {
    MediaError.INVALID_REQUEST: "a field of the upload is missing or out of range",
    MediaError.BLOB_TOO_LARGE: "the file is larger than the server accepts",
    MediaError.TOO_MANY_UPLOADS: "too many unfinished uploads",
    MediaError.QUOTA_EXCEEDED: "daily media budget spent, retry later",
    MediaError.INSUFFICIENT_STORAGE: "the server is short of disk space",
    MediaError.BAD_CHUNK_SIZE: "chunk size not accepted",
    MediaError.UNKNOWN_UPLOAD: "no such upload",
    MediaError.UPLOAD_NOT_RECEIVING: "the upload takes no more chunks",
    MediaError.CHUNK_OUT_OF_RANGE: "chunk offset outside the file",
    MediaError.CHUNK_MISALIGNED: "chunk offset is not a multiple of the chunk size",
    MediaError.CHUNK_SIZE_MISMATCH: "chunk length differs from the upload's chunk size",
    MediaError.TOO_MANY_BYTES: "chunk runs past the declared size",
    MediaError.UPLOAD_INCOMPLETE: "parts of the file are still missing",
    MediaError.HASH_MISMATCH: "the bytes do not match the declared SHA-256",
    MediaError.UNKNOWN_BLOB: "no such blob",
    MediaError.BAD_RANGE: "byte range outside the blob",
    MediaError.NOT_AN_IMAGE: "not an image",
    MediaError.IMAGE_TOO_LARGE: "image too large to inspect",
    MediaError.NOT_AUDIO: "not audio",
    MediaError.AUDIO_TOO_LONG: "audio too long",
    MediaError.BAD_CLIP: "clip is not inside the audio",
}

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused request: the code, a text for the peer, machine-readable detail.

    `data` follows the ERROR frame's `data` (for example `{"limit": ..., "max": ...}` or
    `{"missing": [[start, end], ...]}`); `retry_after` is set for a spent budget.
    """

    code: MediaError
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if not self.message:
            object.__setattr__(self, "message", self.code.explanation)


class BlobError(Exception):
    """The blob store could not do what was asked (internal; never shown to a peer)."""


class StorageFull(BlobError):
    """Free disk is below the floor, or the disk filled up while writing."""


class UnknownPartial(BlobError):
    """No partial upload by that id: it expired, finished or was aborted."""


class CorruptPartial(BlobError):
    """A partial's journal header is unreadable: its begin never completed."""
