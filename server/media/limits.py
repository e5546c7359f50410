"""Media limits, each with its documented default (docs/media-design.md, "Limits").

The server advertises the ones a client must stay within in WELCOME (`advertised`), next
to the protocol's `Limits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CHUNK_FRAME_OVERHEAD", "GIB", "KIB", "MIB", "MediaLimits", "chunk_ceiling"]

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# Bytes of an UPLOAD_CHUNK (or a DOWNLOAD answer) frame besides its data: the array, type,
# rid, the map with the upload id and offset, the bin header: at most 50 bytes for a chunk
# and 87 for a download answer (largest rid, ids and offsets); the margin is the one the
# server keeps when it cuts pages to fit a frame (SPEC.md 10.4).
CHUNK_FRAME_OVERHEAD = 1024


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def chunk_ceiling(frame_size: int) -> int:
    """The largest power of two whose chunk frame fits in `frame_size` (0 if none does)."""
    room = frame_size - CHUNK_FRAME_OVERHEAD
    return 0 if room < 1 else 1 << (room.bit_length() - 1)


@dataclass(frozen=True, slots=True)
class MediaLimits:
    # uploads
    max_blob_size: int = 100 * MIB  # bytes of one blob (Prosody 10 MiB, ejabberd 100 MiB)
    max_uploads_per_user: int = 4  # unfinished uploads of one user at a time
    upload_bytes_per_day: int = 1 * GIB  # a bucket: refilled evenly over 24 h
    min_chunk_size: int = 16 * KIB  # chunk sizes are powers of two in this range ...
    max_chunk_size: int = 512 * KIB  # ... that also fit the frame size (Telegram: 512 KiB)
    max_chunks: int = 8192  # chunks of one upload: bounds the held-ranges answer
    upload_ttl: float = 24 * 3600.0  # seconds an upload may go without a chunk (expires)
    free_disk_floor: int = 1 * GIB  # uploads are refused while free disk would fall below
    max_file_name_len: int = 255  # characters of a file name
    max_media_type_len: int = 127  # characters of a media type (RFC 6838: 127 each side)
    # downloads
    download_bytes_per_day: int = 4 * GIB  # a bucket like the upload one
    max_download_chunk: int = 512 * KIB  # bytes one DOWNLOAD answer carries
    # blobs nobody references
    unreferenced_grace: float = 24 * 3600.0  # seconds before an unreferenced blob goes
    # inspection (probe.py)
    max_image_pixels: int = 40_000_000  # width x height decoded for a thumbnail
    max_image_bytes: int = 32 * MIB  # an image blob larger than this is not inspected
    thumbnail_size: int = 320  # longest side of the server-made thumbnail, pixels
    max_thumbnail_bytes: int = 48 * KIB  # the thumbnail's encoded size
    max_voice_ms: int = 15 * 60 * 1000  # longest voice note
    max_track_ms: int = 60 * 60 * 1000  # longest song track
    min_clip_ms: int = 1000  # shortest clip of a track

    def __post_init__(self) -> None:
        for name in ("min_chunk_size", "max_chunk_size"):
            if not _power_of_two(getattr(self, name)):
                raise ValueError(f"{name} must be a power of two")
        if self.min_chunk_size > self.max_chunk_size:
            raise ValueError("min_chunk_size must not exceed max_chunk_size")
        if self.max_blob_size > self.upload_bytes_per_day:
            raise ValueError("max_blob_size must fit in upload_bytes_per_day")
        if self.max_download_chunk > self.download_bytes_per_day:
            raise ValueError("max_download_chunk must fit in download_bytes_per_day")
        for name in (
            "max_blob_size",
            "max_uploads_per_user",
            "max_chunks",
            "max_download_chunk",
            "max_image_pixels",
            "thumbnail_size",
            "max_thumbnail_bytes",
            "max_file_name_len",
            "max_media_type_len",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in (
            "free_disk_floor",
            "min_clip_ms",
            "max_voice_ms",
            "max_track_ms",
            "max_image_bytes",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.upload_ttl <= 0 or self.unreferenced_grace < 0:
            raise ValueError("upload_ttl must be positive, unreferenced_grace >= 0")

    def max_chunk_for(self, frame_size: int) -> int:
        """The largest chunk size usable with this frame size (0: uploads impossible)."""
        ceiling = min(self.max_chunk_size, chunk_ceiling(frame_size))
        return ceiling if ceiling >= self.min_chunk_size else 0

    def advertised(self, frame_size: int) -> dict[str, Any]:
        """What a client must know before uploading, as `WELCOME.limits.media` (proposed)."""
        return {
            "max_blob_size": self.max_blob_size,
            "min_chunk_size": self.min_chunk_size,
            "max_chunk_size": self.max_chunk_for(frame_size),
            "max_chunks": self.max_chunks,
            "max_uploads": self.max_uploads_per_user,
            "upload_bytes_per_day": self.upload_bytes_per_day,
            "download_bytes_per_day": self.download_bytes_per_day,
            "max_download_chunk": min(self.max_download_chunk, chunk_ceiling(frame_size)),
            "upload_ttl": self.upload_ttl,
        }
