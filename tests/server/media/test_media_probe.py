"""Media inspection on small media made in the test: images with Pillow (formats,
dimensions after EXIF orientation, thumbnails, decompression bombs, junk), audio made by
hand (WAV, MP3, Ogg Opus: duration, codec, tags), voice notes, song tracks and clips."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from liaotian.server.media.errors import MediaError, Refusal
from liaotian.server.media.limits import MediaLimits
from liaotian.server.media.probe import (
    AudioInfo,
    ImageInfo,
    TrackInfo,
    check_clip,
    probe_audio,
    probe_image,
    probe_track,
    probe_voice,
)
from mediafixtures import content, mp3, opus, wav
from mutagen.id3 import ID3, TIT2, TPE1
from PIL import Image

LIMITS = MediaLimits()


@pytest.fixture(autouse=True)
def pillow_bound() -> Iterator[None]:
    """probe sets Pillow's global bound; give the next test the library default back."""
    saved = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = saved


def image(size: tuple[int, int], fmt: str = "JPEG", mode: str = "RGB", **save: object) -> bytes:
    im = Image.new(mode, size)
    # a gradient, so encoders have something to encode
    px = im.load()
    assert px is not None
    w, h = size
    for x in range(0, w, max(1, w // 64)):
        for y in range(0, h, max(1, h // 64)):
            px[x, y] = (
                (x * 255 // w, y * 255 // h, 128, 200)
                if mode == "RGBA"
                else (x * 255 // w, y * 255 // h, 128)
                if mode == "RGB"
                else (x + y) % 256
            )
    out = io.BytesIO()
    im.save(out, fmt, **save)
    return out.getvalue()


def ok_image(result: ImageInfo | Refusal) -> ImageInfo:
    assert isinstance(result, ImageInfo), result
    return result


def ok_audio(result: AudioInfo | Refusal) -> AudioInfo:
    assert isinstance(result, AudioInfo), result
    return result


def refused(result: object, code: MediaError) -> Refusal:
    assert isinstance(result, Refusal), result
    assert result.code is code, result
    return result


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


# -- images


@pytest.mark.parametrize(
    "fmt, media_type",
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
    ],
)
def test_formats_dimensions_and_thumbnail(fmt: str, media_type: str) -> None:
    info = ok_image(probe_image(image((1000, 600), fmt), LIMITS))
    assert (info.format, info.media_type, info.width, info.height) == (fmt, media_type, 1000, 600)
    assert not info.animated
    thumb = info.thumbnail
    assert (thumb.width, thumb.height, thumb.media_type) == (320, 192, "image/jpeg")
    assert len(thumb.data) <= LIMITS.max_thumbnail_bytes
    shown = decode(thumb.data)
    assert shown.format == "JPEG" and shown.size == (320, 192)


def test_small_images_are_not_enlarged() -> None:
    info = ok_image(probe_image(image((40, 30), "PNG"), LIMITS))
    assert (info.thumbnail.width, info.thumbnail.height) == (40, 30)


def test_exif_orientation_gives_displayed_dimensions_and_an_upright_thumbnail() -> None:
    im = Image.new("RGB", (400, 200), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 200, 200))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F] = "SecretCam"  # a camera make: must not travel in the thumbnail
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif)
    info = ok_image(probe_image(out.getvalue(), LIMITS))
    assert (info.width, info.height) == (200, 400)
    shown = decode(info.thumbnail.data)
    assert shown.size == (160, 320)
    assert len(shown.getexif()) == 0 and b"SecretCam" not in info.thumbnail.data
    # turned clockwise: the blue left half is now on top
    top = shown.getpixel((80, 40))
    bottom = shown.getpixel((80, 280))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[2] > 200 and top[0] < 60
    assert bottom[0] > 200 and bottom[2] < 60


def test_transparency_is_flattened_for_jpeg_and_kept_for_webp() -> None:
    data = image((300, 300), "PNG", mode="RGBA")
    jpeg = ok_image(probe_image(data, LIMITS)).thumbnail
    assert decode(jpeg.data).mode == "RGB"
    webp = ok_image(probe_image(data, LIMITS, thumb_format="WEBP")).thumbnail
    assert webp.media_type == "image/webp" and decode(webp.data).mode == "RGBA"
    with pytest.raises(ValueError):
        probe_image(data, LIMITS, thumb_format="PNG")


def test_palette_and_grey_images() -> None:
    for mode in ("L", "P"):
        info = ok_image(probe_image(image((64, 64), "PNG", mode=mode), LIMITS))
        assert decode(info.thumbnail.data).mode == "RGB"


def test_animated_gif() -> None:
    frames = [Image.new("RGB", (50, 40), (i * 100, 0, 255 - i * 100)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    info = ok_image(probe_image(out.getvalue(), LIMITS))
    assert info.animated and (info.width, info.height) == (50, 40)


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    info = ok_image(probe_image(image((4000, 3000), "JPEG", quality=50), LIMITS))
    assert (info.width, info.height) == (4000, 3000)
    assert (info.thumbnail.width, info.thumbnail.height) == (320, 240)


def test_thumbnail_is_kept_under_its_byte_bound() -> None:
    noisy = Image.frombytes("RGB", (600, 600), content(600 * 600 * 3))
    out = io.BytesIO()
    noisy.save(out, "PNG")
    limits = MediaLimits(max_thumbnail_bytes=3000)
    thumb = ok_image(probe_image(out.getvalue(), limits)).thumbnail
    assert len(thumb.data) <= 3000 and thumb.width < 320


def test_too_many_pixels_is_refused_before_decoding() -> None:
    limits = MediaLimits(max_image_pixels=10_000)
    # at the bound: fine; over it (our header check), over Pillow's warning bound (1x)
    # and over its error bound (2x): each refused the same way
    ok_image(probe_image(image((100, 100), "PNG"), limits))
    for size in ((101, 100), (150, 100), (300, 300)):
        r = refused(probe_image(image(size, "PNG"), limits), MediaError.IMAGE_TOO_LARGE)
        assert r.data == {"limit": "max_image_pixels", "max": 10_000}


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_a_decompression_bomb_header_is_refused() -> None:
    # 50,000 x 50,000 pixels declared in a 70-byte file
    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b""))
        + _png_chunk(b"IEND", b"")
    )
    refused(probe_image(bomb, LIMITS), MediaError.IMAGE_TOO_LARGE)


def test_image_byte_cap() -> None:
    data = image((100, 100), "PNG")
    refused(
        probe_image(data, MediaLimits(max_image_bytes=len(data) - 1)), MediaError.IMAGE_TOO_LARGE
    )


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"not an image at all",
        content(5000),
        image((200, 200), "JPEG")[:300],  # truncated
        image((200, 200), "BMP"),  # a format the server does not decode
        wav(0.2),
    ],
)
def test_anything_else_is_not_an_image(junk: bytes) -> None:
    refused(probe_image(junk, LIMITS), MediaError.NOT_AN_IMAGE)


def test_a_path_source(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(image((64, 32), "PNG"))
    assert ok_image(probe_image(path, LIMITS)).width == 64
    refused(probe_image(tmp_path / "absent", LIMITS), MediaError.NOT_AN_IMAGE)


# -- audio


def test_wav() -> None:
    info = ok_audio(probe_audio(wav(2.5), LIMITS))
    assert (info.codec, info.media_type, info.duration_ms) == ("pcm", "audio/wav", 2500)
    assert (info.sample_rate, info.channels) == (8000, 1)
    assert info.title is None and info.artist is None


def test_mp3_with_id3_tags(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(mp3(3.0))
    tags = ID3()
    tags.add(TIT2(encoding=3, text="Xiao Mi \x1b[2J Song"))  # a terminal escape in a tag
    tags.add(TPE1(encoding=3, text="A" * 300))
    tags.save(str(path))
    info = ok_audio(probe_audio(path, LIMITS))
    assert (info.codec, info.media_type, info.sample_rate) == ("mp3", "audio/mpeg", 44100)
    assert abs(info.duration_ms - 3000) < 30
    assert info.bitrate == 128000
    assert info.title == "Xiao Mi [2J Song"  # control characters dropped
    assert info.artist == "A" * 256  # capped


def test_ogg_opus_with_comments() -> None:
    info = ok_audio(probe_audio(opus(4.0, {"TITLE": "Voice", "ARTIST": "Bob"}), LIMITS))
    assert (info.codec, info.media_type, info.duration_ms) == ("opus", "audio/ogg", 4000)
    assert info.sample_rate == 48000
    assert (info.title, info.artist) == ("Voice", "Bob")


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"hello world" * 100,
        content(20_000),
        image((50, 50), "PNG"),
        b"RIFF\x00\x00\x00\x00WAVEfmt ",  # a WAV header cut short
        b"\xff\xfb\x90\xc0" + bytes(100),  # one MPEG header, no stream
    ],
)
def test_anything_else_is_not_audio(junk: bytes) -> None:
    refused(probe_audio(junk, LIMITS), MediaError.NOT_AUDIO)


def test_voice_notes_are_bounded() -> None:
    limits = MediaLimits(max_voice_ms=2000)
    assert ok_audio(probe_voice(wav(2.0), limits)).duration_ms == 2000
    r = refused(probe_voice(wav(2.5), limits), MediaError.AUDIO_TOO_LONG)
    assert r.data == {"max": 2000}
    refused(probe_voice(b"junk", limits), MediaError.NOT_AUDIO)


# -- tracks and clips


def test_clips() -> None:
    assert check_clip(0, 1000, 5000, LIMITS) is None
    assert check_clip(4000, 5000, 5000, LIMITS) is None
    for start, end in ((-1, 1000), (0, 5001), (3000, 3000), (3000, 2000), (4500, 5000)):
        r = refused(check_clip(start, end, 5000, LIMITS), MediaError.BAD_CLIP)
        assert r.data == {"duration_ms": 5000, "min_clip_ms": 1000}


def test_a_track_takes_the_clients_title_else_the_tags() -> None:
    song = opus(6.0, {"TITLE": "Tagged", "ARTIST": "Tag Artist"})
    track = probe_track(song, LIMITS)
    assert isinstance(track, TrackInfo)
    assert (track.title, track.artist, track.duration_ms) == ("Tagged", "Tag Artist", 6000)
    assert track.clip is None and track.cover is None
    mine = probe_track(
        song,
        LIMITS,
        title="My cut",
        artist="Me",
        clip=(1000, 4000),
        cover=image((500, 500), "JPEG"),
    )
    assert isinstance(mine, TrackInfo)
    assert (mine.title, mine.artist, mine.clip) == ("My cut", "Me", (1000, 4000))
    assert mine.cover is not None and mine.cover.thumbnail.width == 320
    bare = probe_track(wav(1.5), LIMITS)
    assert isinstance(bare, TrackInfo) and (bare.title, bare.artist) == ("", "")


def test_a_track_is_refused_when_anything_is_wrong() -> None:
    song = wav(3.0)
    refused(probe_track(image((100, 100), "PNG"), LIMITS), MediaError.NOT_AUDIO)
    refused(probe_track(song, LIMITS, clip=(0, 3500)), MediaError.BAD_CLIP)
    refused(probe_track(song, LIMITS, cover=b"not an image"), MediaError.NOT_AN_IMAGE)
    r = refused(probe_track(song, LIMITS, title="a\u202eb"), MediaError.INVALID_REQUEST)
    assert r.message.startswith("title")
    refused(probe_track(song, LIMITS, artist="x" * 257), MediaError.INVALID_REQUEST)
    refused(probe_track(song, MediaLimits(max_track_ms=2000)), MediaError.AUDIO_TOO_LONG)
