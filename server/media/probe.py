"""Media inspection: what a blob really is, never what the client says it is.

Synchronous and CPU-bound (decoding, resampling): the server runs it in a worker thread
(`aio.MediaIO`), never on the event loop. Every function takes a path (a stored blob) or
bytes, and returns a result or a `Refusal`: hostile input of any shape is refused, not
raised.

* Images (Pillow): only JPEG, PNG, GIF and WebP decoders are tried. The dimensions come
  from the header and are checked against `max_image_pixels` *before* anything is decoded;
  Pillow's own decompression-bomb guard (`Image.MAX_IMAGE_PIXELS`, set to the same bound)
  also stops frames of animated images that are larger than the header says. Width and
  height are reported as displayed, after the EXIF orientation. The thumbnail is made by
  the server (longest side `thumbnail_size`, JPEG or WebP, at most `max_thumbnail_bytes`),
  EXIF-rotated and carrying no metadata (no camera data or location travels in it).
* Audio (mutagen): MP3, Ogg Opus, Ogg Vorbis, FLAC, MP4/M4A and WAV. The duration, codec,
  sample rate, channels and the title and artist tags are read from the file; tags are
  untrusted text that others will see, so control characters are dropped and length capped.
* Voice notes: audio no longer than `max_voice_ms`. Song tracks: audio no longer than
  `max_track_ms`, an optional clip inside it, an optional cover image.
"""

from __future__ import annotations

import io
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

import mutagen
from liaotian.protocol.text import CONTROL_CHARS
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE
from PIL import Image, ImageOps

from .errors import MediaError, Refusal
from .limits import MediaLimits

__all__ = [
    "IMAGE_FORMATS",
    "AudioInfo",
    "ImageInfo",
    "Source",
    "Thumbnail",
    "TrackInfo",
    "check_clip",
    "probe_audio",
    "probe_image",
    "probe_track",
    "probe_voice",
]

log = logging.getLogger("liaotian.media")

Source = str | os.PathLike[str] | bytes

# Pillow format name -> media type; no other decoder is ever tried
IMAGE_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
_ORIENTATION = 0x0112  # EXIF tag
_SWAPS_SIDES = {5, 6, 7, 8}  # orientations that turn the image by 90 degrees
_THUMB_QUALITIES = (80, 65, 50, 35)
MAX_TAG_LEN = 256  # characters of a title or artist (the social layer's text bound)

# mutagen class -> (codec when the file does not say, media type)
_AUDIO_KINDS: dict[type[Any], tuple[str, str]] = {
    MP3: ("mp3", "audio/mpeg"),
    OggOpus: ("opus", "audio/ogg"),
    OggVorbis: ("vorbis", "audio/ogg"),
    FLAC: ("flac", "audio/flac"),
    MP4: ("aac", "audio/mp4"),
    WAVE: ("pcm", "audio/wav"),
}
_TITLE_KEYS = ("TIT2", "title", "\xa9nam", "TITLE")
_ARTIST_KEYS = ("TPE1", "artist", "\xa9ART", "ARTIST")


@dataclass(frozen=True, slots=True)
class Thumbnail:
    data: bytes
    width: int
    height: int
    media_type: str


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str  # Pillow's name: JPEG, PNG, GIF, WEBP
    media_type: str
    width: int  # as displayed (after the EXIF orientation)
    height: int
    animated: bool
    thumbnail: Thumbnail


@dataclass(frozen=True, slots=True)
class AudioInfo:
    codec: str  # mp3, opus, vorbis, flac, aac (or the MP4 codec string), pcm
    media_type: str
    duration_ms: int
    sample_rate: int
    channels: int
    bitrate: int  # bits per second, 0 if unknown
    title: str | None  # from the tags, cleaned
    artist: str | None


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """A song track as the message map will carry it (docs/media-design.md)."""

    audio: AudioInfo
    title: str
    artist: str
    duration_ms: int  # the server's, never the client's
    clip: tuple[int, int] | None  # start, end in ms, inside the audio
    cover: ImageInfo | None


def _size_of(source: Source) -> int:
    if isinstance(source, bytes):
        return len(source)
    return os.stat(source).st_size


def _open(source: Source) -> BinaryIO:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    return open(source, "rb")  # closed by the caller's with


# -- images


def probe_image(
    source: Source, limits: MediaLimits, *, thumb_format: str = "JPEG"
) -> ImageInfo | Refusal:
    """Format, displayed dimensions and a server-made thumbnail of an image blob."""
    if thumb_format not in ("JPEG", "WEBP"):
        raise ValueError("thumb_format: JPEG or WEBP")
    try:
        size = _size_of(source)
    except OSError:
        return Refusal(MediaError.NOT_AN_IMAGE)
    if size > limits.max_image_bytes:
        return Refusal(
            MediaError.IMAGE_TOO_LARGE,
            data={"limit": "max_image_bytes", "max": limits.max_image_bytes},
        )
    if limits.max_image_pixels != Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    try:
        with _open(source) as fp, Image.open(fp, formats=list(IMAGE_FORMATS)) as im:
            return _image_info(im, limits, thumb_format)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return _too_many_pixels(limits)
    except MemoryError:
        return _too_many_pixels(limits)
    except Exception as exc:  # hostile input: any failure to decode means "not an image"
        log.debug("image refused: %s: %s", type(exc).__name__, exc)
        return Refusal(MediaError.NOT_AN_IMAGE)


def _too_many_pixels(limits: MediaLimits) -> Refusal:
    return Refusal(
        MediaError.IMAGE_TOO_LARGE,
        data={"limit": "max_image_pixels", "max": limits.max_image_pixels},
    )


def _image_info(im: Image.Image, limits: MediaLimits, thumb_format: str) -> ImageInfo | Refusal:
    fmt = im.format or ""
    if fmt not in IMAGE_FORMATS:
        return Refusal(MediaError.NOT_AN_IMAGE)
    width, height = im.size
    if width < 1 or height < 1:
        return Refusal(MediaError.NOT_AN_IMAGE)
    if width * height > limits.max_image_pixels:  # from the header: nothing decoded yet
        return _too_many_pixels(limits)
    animated = bool(getattr(im, "is_animated", False))
    orientation = im.getexif().get(_ORIENTATION, 1)
    if orientation in _SWAPS_SIDES:
        width, height = height, width
    side = limits.thumbnail_size
    if fmt == "JPEG":
        im.draft("RGB", (side, side))  # decode at 1/2, 1/4 or 1/8 scale when that suffices
    im.seek(0)
    frame = ImageOps.exif_transpose(im)  # loads (decodes) the first frame
    return ImageInfo(
        fmt, IMAGE_FORMATS[fmt], width, height, animated, _thumbnail(frame, limits, thumb_format)
    )


def _flatten(im: Image.Image, keep_alpha: bool) -> Image.Image:
    has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    if has_alpha:
        im = im.convert("RGBA")
        if keep_alpha:
            return im
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im, mask=im.getchannel("A"))
        return background
    return im if im.mode == "RGB" else im.convert("RGB")


def _thumbnail(im: Image.Image, limits: MediaLimits, thumb_format: str) -> Thumbnail:
    side = limits.thumbnail_size
    im = _flatten(im, keep_alpha=thumb_format == "WEBP")
    media_type = IMAGE_FORMATS[thumb_format]
    while True:
        thumb = im.copy()
        thumb.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=3.0)
        for quality in _THUMB_QUALITIES:
            out = io.BytesIO()
            thumb.save(out, thumb_format, quality=quality)  # no exif=: no metadata in it
            data = out.getvalue()
            if len(data) <= limits.max_thumbnail_bytes:
                return Thumbnail(data, thumb.width, thumb.height, media_type)
        if side <= 16:
            return Thumbnail(data, thumb.width, thumb.height, media_type)
        side = side * 3 // 4


# -- audio


def _clean(text: object) -> str | None:
    """A tag value as text others may see: no control characters, bounded length."""
    if isinstance(text, list | tuple):
        text = text[0] if text else None
    if text is None:
        return None
    if hasattr(text, "text"):  # an ID3 frame
        values = text.text
        text = values[0] if values else None
        if text is None:
            return None
    s = CONTROL_CHARS.sub("", str(text)).strip()[:MAX_TAG_LEN]
    return s or None


def _tag(tags: Any, keys: tuple[str, ...]) -> str | None:
    if tags is None:
        return None
    for key in keys:
        try:
            value = tags.get(key)
        except (KeyError, ValueError, TypeError):
            continue
        cleaned = _clean(value)
        if cleaned:
            return cleaned
    return None


def probe_audio(
    source: Source, limits: MediaLimits, *, max_ms: int | None = None
) -> AudioInfo | Refusal:
    """Codec, duration and tags of an audio blob; `NOT_AUDIO` for anything else."""
    longest = limits.max_track_ms if max_ms is None else max_ms
    try:
        with _open(source) as fp:
            f = mutagen.File(fp, options=list(_AUDIO_KINDS))
    except Exception as exc:  # mutagen raises many kinds on hostile input
        log.debug("audio refused: %s: %s", type(exc).__name__, exc)
        return Refusal(MediaError.NOT_AUDIO)
    if f is None or f.info is None:
        return Refusal(MediaError.NOT_AUDIO)
    info = f.info
    length = float(getattr(info, "length", 0.0) or 0.0)
    if not math.isfinite(length) or length <= 0:
        return Refusal(MediaError.NOT_AUDIO)
    codec, media_type = _AUDIO_KINDS[type(f)]
    if isinstance(f, MP4):
        codec = str(getattr(info, "codec", "") or "")
        if not codec:  # an MP4 without an audio track
            return Refusal(MediaError.NOT_AUDIO)
    duration_ms = round(length * 1000)
    if duration_ms > longest:
        return Refusal(MediaError.AUDIO_TOO_LONG, data={"max": longest})
    return AudioInfo(
        codec=codec,
        media_type=media_type,
        duration_ms=duration_ms,
        # Opus always decodes at 48 kHz (the header's rate is only the input's)
        sample_rate=int(getattr(info, "sample_rate", 0) or (48000 if codec == "opus" else 0)),
        channels=int(getattr(info, "channels", 0) or 0),
        bitrate=int(getattr(info, "bitrate", 0) or 0),
        title=_tag(f.tags, _TITLE_KEYS),
        artist=_tag(f.tags, _ARTIST_KEYS),
    )


def probe_voice(source: Source, limits: MediaLimits) -> AudioInfo | Refusal:
    """A voice note: audio no longer than `max_voice_ms`."""
    return probe_audio(source, limits, max_ms=limits.max_voice_ms)


def check_clip(start_ms: int, end_ms: int, duration_ms: int, limits: MediaLimits) -> Refusal | None:
    """A clip is `[start_ms, end_ms)` inside the audio, at least `min_clip_ms` long."""
    data = {"duration_ms": duration_ms, "min_clip_ms": limits.min_clip_ms}
    if not 0 <= start_ms < end_ms <= duration_ms:
        return Refusal(MediaError.BAD_CLIP, data=data)
    if end_ms - start_ms < limits.min_clip_ms:
        return Refusal(
            MediaError.BAD_CLIP, f"a clip lasts at least {limits.min_clip_ms} ms", data=data
        )
    return None


def _check_text(name: str, value: str) -> Refusal | None:
    """A client's title or artist follows the rule of names shown to others (SPEC.md 1.5)."""
    if len(value) > MAX_TAG_LEN:
        return Refusal(MediaError.INVALID_REQUEST, f"{name}: at most {MAX_TAG_LEN} characters")
    m = CONTROL_CHARS.search(value)
    if m is not None:
        return Refusal(
            MediaError.INVALID_REQUEST,
            f"{name}: control character U+{ord(m.group()):04X} is not allowed",
        )
    return None


def probe_track(
    source: Source,
    limits: MediaLimits,
    *,
    title: str | None = None,
    artist: str | None = None,
    clip: tuple[int, int] | None = None,
    cover: Source | None = None,
) -> TrackInfo | Refusal:
    """A song track: audio (refused if it is not audio), its title and artist (the
    client's, which must hold no control character, else the tags', else empty), the
    server's duration, a clip inside it and a cover image, each checked."""
    for name, value in (("title", title), ("artist", artist)):
        if value is not None:
            bad = _check_text(name, value)
            if bad is not None:
                return bad
    audio = probe_audio(source, limits)
    if isinstance(audio, Refusal):
        return audio
    if clip is not None:
        bad = check_clip(clip[0], clip[1], audio.duration_ms, limits)
        if bad is not None:
            return bad
    cover_info: ImageInfo | None = None
    if cover is not None:
        probed = probe_image(cover, limits)
        if isinstance(probed, Refusal):
            return probed
        cover_info = probed
    return TrackInfo(
        audio=audio,
        title=title or audio.title or "",
        artist=artist or audio.artist or "",
        duration_ms=audio.duration_ms,
        clip=clip,
        cover=cover_info,
    )
