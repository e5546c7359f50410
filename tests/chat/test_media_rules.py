"""The media rule (chat/rules/media.py): who may read a blob, and what a media message
stores, over plain data: no store, no files."""

from __future__ import annotations

from typing import Any

import pytest
from liaotian.protocol import ErrorCode
from liaotian.protocol.records import SendMedia
from liaotian.server.chat.model import Blob, BlobAccess
from liaotian.server.chat.ops import Refused
from liaotian.server.chat.policy import Policy
from liaotian.server.chat.rules.media import MediaPlan, may_read, plan_media, public_info

LIMITS = Policy()
IMG, THUMB, AUD, DOC, COVER, CTHUMB = (bytes([n]) * 32 for n in range(1, 7))


def blob(sha: bytes, media_type: str, info: dict[str, Any], size: int = 1000) -> Blob:
    return Blob(sha, size, media_type, info, 1)


IMAGE = blob(
    IMG,
    "image/jpeg",
    {
        "w": 1200,
        "h": 800,
        "format": "JPEG",
        "animated": False,
        "thumb": {"blob": THUMB, "w": 320, "h": 213, "type": "image/jpeg"},
    },
)
AUDIO = blob(
    AUD,
    "audio/ogg",
    {
        "duration_ms": 161_000,
        "codec": "opus",
        "sample_rate": 48000,
        "channels": 2,
        "title": "Moon River",
        "artist": "Tag Artist",
    },
)
FILE = blob(DOC, "text/plain", {})
COVER_IMG = blob(
    COVER,
    "image/png",
    {
        "w": 600,
        "h": 600,
        "format": "PNG",
        "animated": False,
        "thumb": {"blob": CTHUMB, "w": 320, "h": 320, "type": "image/jpeg"},
    },
)
TOO_BIG = blob(
    IMG,
    "image/png",
    {
        "_refused": {
            "code": "image_too_large",
            "data": {"limit": "max_image_pixels", "max": 40_000_000},
        }
    },
)


def mine(b: Blob) -> BlobAccess:
    return BlobAccess(b, owner=True)


def plan(
    req: SendMedia, b: BlobAccess, cover: BlobAccess | None = None, policy: Policy = LIMITS
) -> MediaPlan:
    return plan_media(req, b, cover, policy)


def refused(
    req: SendMedia, b: BlobAccess, cover: BlobAccess | None = None, policy: Policy = LIMITS
) -> Refused:
    with pytest.raises(Refused) as info:
        plan_media(req, b, cover, policy)
    return info.value


def test_who_may_read() -> None:
    assert not may_read(BlobAccess(None, owner=True))
    assert may_read(BlobAccess(FILE, owner=True))
    assert not may_read(BlobAccess(FILE))
    assert may_read(BlobAccess(FILE, seen=((7, 3, 1),)))  # a direct conversation
    assert not may_read(BlobAccess(FILE, seen=((12, 3, 4),)))  # shared before joining
    assert may_read(BlobAccess(FILE, seen=((12, 3, 4), (12, 9, 4))))
    assert may_read(BlobAccess(FILE, seen=((12, 4, 4),)))


def test_an_image_message_carries_the_servers_dimensions_and_thumbnail() -> None:
    p = plan(SendMedia(kind="image", blob=IMG, name="beach.jpg"), mine(IMAGE))
    assert p.media == {
        "kind": "image",
        "blob": IMG,
        "size": 1000,
        "type": "image/jpeg",
        "w": 1200,
        "h": 800,
        "thumb": IMAGE.info["thumb"],
        "name": "beach.jpg",
    }
    assert p.refs == (IMG, THUMB)
    assert refused(SendMedia(kind="image", blob=DOC), mine(FILE)).code is ErrorCode.NOT_AN_IMAGE
    r = refused(SendMedia(kind="image", blob=IMG), mine(TOO_BIG))
    assert r.code is ErrorCode.IMAGE_TOO_LARGE and r.data is not None
    assert r.data["limit"] == "max_image_pixels"


def test_voice_and_track_durations_are_the_servers() -> None:
    p = plan(SendMedia(kind="voice", blob=AUD), mine(AUDIO))
    assert p.media == {
        "kind": "voice",
        "blob": AUD,
        "size": 1000,
        "type": "audio/ogg",
        "duration_ms": 161_000,
        "codec": "opus",
    }
    r = refused(SendMedia(kind="voice", blob=AUD), mine(AUDIO), None, Policy(max_voice_ms=60_000))
    assert r.code is ErrorCode.AUDIO_TOO_LONG and r.data == {"max": 60_000}
    assert refused(SendMedia(kind="voice", blob=DOC), mine(FILE)).code is ErrorCode.NOT_AUDIO
    assert refused(SendMedia(kind="track", blob=IMG), mine(IMAGE)).code is ErrorCode.NOT_AUDIO


def test_a_track_with_clip_and_cover() -> None:
    req = SendMedia(kind="track", blob=AUD, artist="Audrey", clip=(30_000, 60_000), cover=COVER)
    p = plan(req, mine(AUDIO), BlobAccess(COVER_IMG, seen=((7, 2, 1),)))
    assert p.media == {
        "kind": "track",
        "blob": AUD,
        "size": 1000,
        "type": "audio/ogg",
        "duration_ms": 161_000,
        "codec": "opus",
        "title": "Moon River",
        "artist": "Audrey",
        "clip": [30_000, 60_000],
        "cover": {
            "blob": COVER,
            "w": 600,
            "h": 600,
            "type": "image/png",
            "thumb": COVER_IMG.info["thumb"],
        },
    }
    assert p.refs == (AUD, COVER, CTHUMB)
    for clip in ((60_000, 30_000), (0, 999), (160_000, 162_000), (5, 5)):
        r = refused(SendMedia(kind="track", blob=AUD, clip=clip), mine(AUDIO))
        assert r.code is ErrorCode.BAD_CLIP and r.data is not None
        assert r.data["duration_ms"] == 161_000
    # a cover the sender may not read is unknown; a cover that is no image is refused
    assert refused(req, mine(AUDIO), BlobAccess(COVER_IMG)).code is ErrorCode.UNKNOWN_BLOB
    assert refused(req, mine(AUDIO), None).code is ErrorCode.UNKNOWN_BLOB
    assert refused(req, mine(AUDIO), mine(FILE)).code is ErrorCode.NOT_AN_IMAGE


def test_a_file_is_any_blob_and_unknown_blobs_look_alike() -> None:
    p = plan(SendMedia(kind="file", blob=IMG), mine(IMAGE))
    assert p.media == {"kind": "file", "blob": IMG, "size": 1000, "type": "image/jpeg"}
    assert p.refs == (IMG,)  # a file's thumbnail is not referenced
    missing = refused(SendMedia(kind="file", blob=DOC), BlobAccess(None))
    hidden = refused(SendMedia(kind="file", blob=DOC), BlobAccess(FILE))
    assert (missing.code, missing.message) == (hidden.code, hidden.message)
    assert missing.code is ErrorCode.UNKNOWN_BLOB


@pytest.mark.parametrize("field", ["name", "title", "artist"])
def test_names_shown_to_others_hold_no_control_character(field: str) -> None:
    r = refused(SendMedia(kind="track", blob=AUD, **{field: "a\x1b[31mb"}), mine(AUDIO))
    assert r.code is ErrorCode.INVALID_FIELD and field in r.message


def test_public_info_hides_the_servers_own_keys() -> None:
    assert public_info(TOO_BIG.info) == {}
    assert public_info(IMAGE.info) == IMAGE.info
