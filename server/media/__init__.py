"""Media: content-addressed blobs on disk, upload rules, and inspection of what was sent.

Self-contained for now (docs/media-design.md describes the frames, handlers and tables that
come on top): it imports no store, services or transport (an import-linter contract).

* `ranges`: which byte ranges of an upload are held (pure data).
* `uploads`: the rules of uploads and downloads, sans I/O: begin (limits, budgets, the
  same uploader's dedup without a cross-user oracle), chunks, finish, reads.
* `limits`: `MediaLimits` with their defaults; what WELCOME advertises.
* `errors`: `MediaError` codes and `Refusal` (outcomes as data); the blob store's exceptions.
* `blobs`: the blob store (synchronous): partial uploads with a journal, verified and
  fsynced completion by atomic rename, ranged reads, removal, expiry, free-disk floor.
* `probe`: images (Pillow) and audio (mutagen), never trusting the client (synchronous).
* `aio`: `MediaIO`, the blob store and the inspection in a thread pool of their own.
"""

from __future__ import annotations

from .errors import BlobError, MediaError, Refusal, StorageFull, UnknownPartial
from .limits import MediaLimits
from .ranges import RangeSet

__all__ = [
    "BlobError",
    "MediaError",
    "MediaLimits",
    "RangeSet",
    "Refusal",
    "StorageFull",
    "UnknownPartial",
]
