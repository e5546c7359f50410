"""Small media made in the tests, never committed: deterministic bytes, and valid WAV,
MP3 and Ogg Opus files written by hand (the stdlib `wave` module, MPEG frame headers,
Ogg pages with their CRC), so the probe tests need no encoder installed."""

from __future__ import annotations

import hashlib
import io
import math
import struct
import wave


def content(n: int, seed: int = 1) -> bytes:
    """`n` deterministic pseudo-random bytes."""
    out = bytearray()
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def wav(seconds: float, rate: int = 8000, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV of a 440 Hz tone."""
    frames = int(seconds * rate)
    samples = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) * channels
        for i in range(frames)
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return out.getvalue()


# MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no CRC, no padding, mono: 417-byte frames of 1152
# samples; a frame of zero side information and zero main data decodes as silence
_MP3_HEADER = bytes([0xFF, 0xFB, 0x90, 0xC0])
_MP3_FRAME = _MP3_HEADER + bytes(417 - 4)


def mp3(seconds: float) -> bytes:
    """A silent constant-bit-rate MP3 of about `seconds` (1152 samples per frame)."""
    return _MP3_FRAME * max(1, round(seconds * 44100 / 1152))


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(serial: int, seq: int, granule: int, packets: list[bytes], flags: int) -> bytes:
    lacing = bytearray()
    for packet in packets:
        n = len(packet)
        lacing += b"\xff" * (n // 255) + bytes([n % 255])
    header = struct.pack("<4sBBqIII", b"OggS", 0, flags, granule, serial, seq, 0)
    page = header + bytes([len(lacing)]) + bytes(lacing) + b"".join(packets)
    crc = _ogg_crc(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def _vorbis_comment(vendor: bytes, tags: dict[str, str]) -> bytes:
    out = struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(tags))
    for key, value in tags.items():
        item = f"{key}={value}".encode()
        out += struct.pack("<I", len(item)) + item
    return out


def opus(seconds: float, tags: dict[str, str] | None = None) -> bytes:
    """An Ogg Opus stream of `seconds` of 20 ms packets (each a one-byte TOC: a frame the
    decoder conceals as silence), with the given comments."""
    serial, pre_skip = 0x1234, 312
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48000, 0, 0)
    comments = b"OpusTags" + _vorbis_comment(b"liaotian-tests", tags or {})
    pages = [_ogg_page(serial, 0, 0, [head], 0x02), _ogg_page(serial, 1, 0, [comments], 0)]
    packets = int(seconds / 0.02)
    seq, granule = 2, 0
    per_page = 50
    for first in range(0, packets, per_page):
        n = min(per_page, packets - first)
        granule += n * 960
        last = first + n >= packets
        pages.append(_ogg_page(serial, seq, granule + pre_skip, [b"\x08"] * n, 0x04 if last else 0))
        seq += 1
    return b"".join(pages)
