"""What a finished upload is: the media type and the info UPLOAD_DONE reports (SPEC.md 27.2
item 6), read from the bytes by probe.py, never taken from the client.

Synchronous (the server runs it in MediaIO's pool). The family is chosen by the declared
type (`image/*`, `audio/*`) and otherwise by the blob's first bytes (`sniff`), so a file
declared `application/octet-stream` that is a PNG is still seen as an image; a blob that
does not decode as its family is a plain file (`{}`), and the upload still succeeds.

The info kept for a blob (chat/model.py's Blob.info):

* image: `{w, h, format, animated}`, and the thumbnail's bytes beside it (the caller stores
  them as a blob of their own and adds `thumb: {blob, w, h, type}`); an image too large to
  inspect: `{"_refused": {"code": "image_too_large", "data": {limit, max}}}` (keys with "_"
  are never shown to a peer);
* audio: `{duration_ms, codec, sample_rate, channels}` and `title`/`artist` from the tags.
  The duration is kept whatever its length: the message kinds decide what they allow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .errors import MediaError, Refusal
from .limits import MediaLimits
from .probe import Source, Thumbnail, probe_audio, probe_image

__all__ = ["Inspection", "inspect", "sniff"]

_ANY_LENGTH = 1 << 62  # audio of any duration is described; the kinds bound it


@dataclass(frozen=True, slots=True)
class Inspection:
    media_type: str
    info: dict[str, Any] = field(default_factory=dict)
    thumbnail: Thumbnail | None = None


def sniff(head: bytes) -> str | None:
    """ "image", "audio" or None, from the first bytes of a blob (16 are enough)."""
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio"
    if head.startswith((b"ID3", b"OggS", b"fLaC")) or head[:2] in (
        b"\xff\xfb",
        b"\xff\xf3",
        b"\xff\xf2",
        b"\xff\xfa",
    ):
        return "audio"
    if head[4:8] == b"ftyp" and head[8:11] in (b"M4A", b"M4B", b"mp4", b"iso"):
        return "audio"
    return None


def _head(source: Source) -> bytes:
    if isinstance(source, bytes):
        return source[:16]
    with open(source, "rb") as f:
        return f.read(16)


def inspect(source: Source | os.PathLike[str], declared: str, limits: MediaLimits) -> Inspection:
    """The blob's media type and info (see the module text)."""
    family = declared.split("/", 1)[0]
    if family not in ("image", "audio"):
        try:
            family = sniff(_head(source)) or ""
        except OSError:
            family = ""
    if family == "image":
        image = probe_image(source, limits)
        if isinstance(image, Refusal):
            if image.code is MediaError.IMAGE_TOO_LARGE:
                return Inspection(
                    declared, {"_refused": {"code": image.code.value, "data": dict(image.data)}}
                )
            return Inspection(declared)
        return Inspection(
            image.media_type,
            {
                "w": image.width,
                "h": image.height,
                "format": image.format,
                "animated": image.animated,
            },
            image.thumbnail,
        )
    if family == "audio":
        audio = probe_audio(source, limits, max_ms=_ANY_LENGTH)
        if isinstance(audio, Refusal):
            return Inspection(declared)
        info: dict[str, Any] = {
            "duration_ms": audio.duration_ms,
            "codec": audio.codec,
            "sample_rate": audio.sample_rate,
            "channels": audio.channels,
        }
        if audio.title:
            info["title"] = audio.title
        if audio.artist:
            info["artist"] = audio.artist
        return Inspection(audio.media_type, info)
    return Inspection(declared)
