"""Media: who may read a blob, and what a media message stores (SPEC.md 27.4, 27.5).

**Access.** A user may download a blob, and name it in a SEND, when they uploaded it
(`BlobAccess.owner`), or when a message referencing it is one they can read: in a direct
conversation of theirs, or in a group they are a member of now, at or after their join
point, the rule HISTORY follows (rules/groups.py). So a member who leaves or is removed
loses the group's blobs with its history; knowing a hash grants nothing, and a blob that
does not exist looks exactly like one the user may not read (UNKNOWN_BLOB).

**Media messages.** A SEND's `media` names a blob and adds what only the sender knows (a
file name, a track's title, artist and clip, a cover); everything measurable comes from
what the server read from the bytes at upload (`Blob.info`), never from the client. The
rule checks the kind against it and builds the message map's `media` map, and the blobs
the message references (the blob, its thumbnail, a track's cover and the cover's
thumbnail), which the message's commit records (`Plan.add_blob_refs`).

Plain functions over plain data: the handler reads a `BlobAccess` per blob from the store
and calls `plan_media` before it queues the SEND, which raises `Refused` like every rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from liaotian.protocol import ErrorCode
from liaotian.protocol.records import SendMedia
from liaotian.protocol.text import first_control

from ..model import Blob, BlobAccess
from ..ops import Refused
from ..policy import Policy

__all__ = ["MediaPlan", "check_clip", "may_read", "plan_media", "public_info"]


@dataclass(frozen=True, slots=True)
class MediaPlan:
    """The message map's `media` and the blobs the message references (no duplicates)."""

    media: dict[str, Any]
    refs: tuple[bytes, ...]


def may_read(access: BlobAccess) -> bool:
    """The blob is stored and the user uploaded it or can read a message referencing it."""
    if access.blob is None:
        return False
    if access.owner:
        return True
    return any(newest >= first for _conv, newest, first in access.seen)


def public_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """What a peer sees of a blob's info: the server's own keys ("_...") left out."""
    return {k: v for k, v in info.items() if not k.startswith("_")}


def _check_text(name: str, value: str | None) -> None:
    """Names shown to others hold no control character (SPEC.md 1.5)."""
    if value is None:
        return
    i = first_control(value)
    if i >= 0:
        raise Refused(
            ErrorCode.INVALID_FIELD,
            f"{name}: control character U+{ord(value[i]):04X} is not allowed",
        )


def _image(blob: Blob) -> dict[str, Any]:
    """The image part of a media map: {w, h, thumb}, or Refused."""
    info = blob.info
    thumb = info.get("thumb")
    if "w" not in info or not isinstance(thumb, dict):
        refused = info.get("_refused")
        if isinstance(refused, dict) and refused.get("code") == "image_too_large":
            raise Refused(ErrorCode.IMAGE_TOO_LARGE, data=dict(refused.get("data") or {}))
        raise Refused(ErrorCode.NOT_AN_IMAGE)
    return {"w": info["w"], "h": info["h"], "thumb": dict(thumb)}


def _audio(blob: Blob, longest: int) -> dict[str, Any]:
    info = blob.info
    duration = info.get("duration_ms")
    if type(duration) is not int or "codec" not in info:
        raise Refused(ErrorCode.NOT_AUDIO)
    if duration > longest:
        raise Refused(ErrorCode.AUDIO_TOO_LONG, data={"max": longest})
    return {"duration_ms": duration, "codec": info["codec"]}


def check_clip(start_ms: int, end_ms: int, duration_ms: int, policy: Policy) -> None:
    """A clip is `[start_ms, end_ms)` inside the audio, at least `min_clip_ms` long."""
    data = {"duration_ms": duration_ms, "min_clip_ms": policy.min_clip_ms}
    if not 0 <= start_ms < end_ms <= duration_ms:
        raise Refused(ErrorCode.BAD_CLIP, data=data)
    if end_ms - start_ms < policy.min_clip_ms:
        raise Refused(
            ErrorCode.BAD_CLIP, f"a clip lasts at least {policy.min_clip_ms} ms", data=data
        )


def plan_media(
    req: SendMedia, blob: BlobAccess, cover: BlobAccess | None, policy: Policy
) -> MediaPlan:
    """Check a SEND's media against what the server knows of its blobs and build the map
    the message stores (SPEC.md 27.5), or raise Refused. `cover` is the track cover's
    access (None when the request names no cover)."""
    for name, value in (("name", req.name), ("title", req.title), ("artist", req.artist)):
        _check_text(name, value)
    if not may_read(blob):
        raise Refused(ErrorCode.UNKNOWN_BLOB)
    b = blob.blob
    assert b is not None
    out: dict[str, Any] = {"kind": req.kind, "blob": b.sha256, "size": b.size, "type": b.media_type}
    refs = [b.sha256]
    kind = req.kind
    if kind == "image":
        image = _image(b)
        out["w"], out["h"], out["thumb"] = image["w"], image["h"], image["thumb"]
        refs.append(image["thumb"]["blob"])
        if req.name:
            out["name"] = req.name
    elif kind == "voice":
        out.update(_audio(b, policy.max_voice_ms))
    elif kind == "track":
        audio = _audio(b, policy.max_track_ms)
        out.update(audio)
        out["title"] = req.title or b.info.get("title") or ""
        out["artist"] = req.artist or b.info.get("artist") or ""
        if req.clip is not None:
            start, end = req.clip
            check_clip(start, end, audio["duration_ms"], policy)
            out["clip"] = [start, end]
        if req.cover is not None:
            if cover is None or not may_read(cover):
                raise Refused(ErrorCode.UNKNOWN_BLOB)
            c = cover.blob
            assert c is not None
            image = _image(c)
            out["cover"] = {
                "blob": c.sha256,
                "w": image["w"],
                "h": image["h"],
                "type": c.media_type,
                "thumb": image["thumb"],
            }
            refs += [c.sha256, image["thumb"]["blob"]]
    else:  # "file": any blob
        if req.name:
            out["name"] = req.name
    return MediaPlan(out, tuple(dict.fromkeys(refs)))
