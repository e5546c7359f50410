"""The media parts of the `liaotian` command (cli.py): progress bars, clip times, where a
download goes, and the one-line form of a media message.

    liaotian send-file bob notes.pdf [--text "the notes"]
    liaotian send-image bob beach.jpg / send-voice bob memo.ogg
    liaotian send-track bob song.mp3 --clip 0:30-1:00 [--cover art.png] [--title T]
    liaotian download --with bob --pos 15 [DEST]      # the media of message #15
    liaotian download BLOB DEST                         # a blob id (64 hex digits)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import Any, TextIO

from liaotian.protocol import ChatMessage

from .media import describe
from .terminal import safe

__all__ = ["ProgressBar", "blob_hex", "clip_range", "default_name", "media_line"]

_TIME = re.compile(r"(?:(\d+):)?(\d+(?:\.\d+)?)")


def _ms(text: str) -> int:
    m = _TIME.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"invalid time {text!r} (seconds, or M:SS)")
    minutes = int(m.group(1) or 0)
    return round((minutes * 60 + float(m.group(2))) * 1000)


def clip_range(text: str) -> tuple[int, int]:
    """ "30-60", "0:30-1:00" or "90.5-120" -> (start_ms, end_ms)."""
    start, sep, end = text.partition("-")
    if not sep:
        raise argparse.ArgumentTypeError(f"invalid clip {text!r}: START-END, e.g. 0:30-1:00")
    a, b = _ms(start), _ms(end)
    if b <= a:
        raise argparse.ArgumentTypeError(f"clip {text!r}: END must come after START")
    return a, b


def blob_hex(text: str) -> bytes:
    try:
        blob = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a blob id is 64 hex digits") from None
    if len(blob) != 32:
        raise argparse.ArgumentTypeError("a blob id is 64 hex digits")
    return blob


def default_name(media: dict[str, Any]) -> str:
    """Where a download goes when no destination is given: the file name the sender gave
    (its last path component only, nothing hidden), else the blob id."""
    name = media.get("name")
    if isinstance(name, str):
        name = os.path.basename(name.replace("\\", "/")).lstrip(".")
        if name and safe(name) == name:
            return name
    blob = media.get("blob")
    return blob.hex() if isinstance(blob, bytes) else "download"


def media_line(m: ChatMessage) -> str:
    """A media message's text for one line: its description, then the caption (unsafe:
    the caller escapes it), e.g. `[image 1200x800 beach.jpg] the beach`."""
    text = describe(m.media)
    return f"{text} {m.text}" if m.text else text


class ProgressBar:
    """`label  42% 12.3/29.0 MiB` redrawn in place on a terminal (nothing otherwise)."""

    def __init__(self, label: str, out: TextIO | None = None) -> None:
        self.label = label
        self.out = out if out is not None else sys.stderr
        self.shown = self.out.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        pct = 100 * done // total if total else 100
        mib = 1024 * 1024
        self.out.write(f"\r{self.label} {pct:3d}% {done / mib:.1f}/{total / mib:.1f} MiB")
        if done >= total:
            self.out.write("\n")
        self.out.flush()
