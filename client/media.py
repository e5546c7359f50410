"""`client.media`: photos, voice notes, files and song tracks (SPEC.md 27).

    done = await client.media.upload("beach.jpg", progress=print)   # UPLOAD_DONE
    await client.media.send("bob", MediaRef.image(done), text="the beach")
    await client.media.send_file("bob", "notes.pdf")                # upload + send
    await client.media.send_track("bob", "song.ogg", clip=(30_000, 60_000), cover="art.png")
    n = await client.media.download(message.media, "beach.jpg", progress=print)

**Uploads** hash the file first (in a thread), then send UPLOAD_BEGIN: content this user
stored before is answered at once (UPLOAD_DONE), anything else gets the ranges the server
already holds and only the missing chunks are sent, `window` of them in flight. A lost
connection (or a restarted server) is no failure: once the client has reconnected, BEGIN
again says what is held and the upload goes on from there. UPLOAD_DONE arrives after the
server stored the blob durably.

**Downloads** ask for the blob in ranges, `window` in flight, and write them in order. To a
path, the bytes go to `<path>.part` first: an interrupted download (a lost connection, a
restarted server, or an earlier run of the program) resumes from the bytes it has, and the
file is renamed into place once its SHA-256 matches the blob's. A file object is written
from its start and checked the same way.

**Messages** are sends like `client.send()`: exactly once, retried with their cmid. The
server reads sizes, dimensions and durations from the blob itself and answers UNKNOWN_BLOB,
NOT_AN_IMAGE, NOT_AUDIO, AUDIO_TOO_LONG, BAD_CLIP, ... as RequestError.

`describe(media)` renders a message's media map as one line (`[image 1200x800 beach.jpg]`),
for clients that print messages; peer text in it is not made safe here (the CLI does).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mimetypes
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, Any

from liaotian.protocol import (
    ChatMessage,
    ConnectionClosed,
    ErrorCode,
    Message,
    ProtocolError,
    RequestError,
    SendMedia,
    Sent,
)
from liaotian.protocol.media import (
    BlobData,
    Download,
    UploadBegin,
    UploadChunk,
    UploadDone,
    UploadFinish,
    UploadStatus,
)
from liaotian.protocol.social import Ok

from .facade import Facade
from .session import DEFAULT, TimeoutArg

__all__ = ["Media", "MediaRef", "Progress", "describe"]

Progress = Callable[[int, int], Any]  # (bytes done, total); may return an awaitable
Source = str | os.PathLike[str] | IO[bytes] | UploadDone
HASH_BLOCK = 1 << 20
DEFAULT_WINDOW = 4  # chunks or ranges in flight (SPEC.md 27.2, 27.3)
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


@dataclass(frozen=True, slots=True)
class MediaRef:
    """Helpers that build SEND's media (records.SendMedia) from an upload's answer."""

    @staticmethod
    def image(done: UploadDone | bytes, name: str | None = None) -> SendMedia:
        return SendMedia(kind="image", blob=_blob(done), name=name)

    @staticmethod
    def voice(done: UploadDone | bytes) -> SendMedia:
        return SendMedia(kind="voice", blob=_blob(done))

    @staticmethod
    def file(done: UploadDone | bytes, name: str | None = None) -> SendMedia:
        return SendMedia(kind="file", blob=_blob(done), name=name)

    @staticmethod
    def track(
        done: UploadDone | bytes,
        *,
        title: str | None = None,
        artist: str | None = None,
        clip: tuple[int, int] | None = None,
        cover: UploadDone | bytes | None = None,
    ) -> SendMedia:
        return SendMedia(
            kind="track",
            blob=_blob(done),
            title=title,
            artist=artist,
            clip=clip,
            cover=_blob(cover) if cover is not None else None,
        )


def _blob(x: UploadDone | bytes) -> bytes:
    blob = x.blob if isinstance(x, UploadDone) else x
    if not isinstance(blob, bytes) or len(blob) != 32:
        raise ValueError("a blob is the 32 bytes of its SHA-256")
    return blob


async def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is None:
        return
    result = progress(done, total)
    if isinstance(result, Awaitable):
        await result


class _Reader:
    """A file to upload: a path (opened per read) or a seekable binary file object."""

    def __init__(self, source: str | os.PathLike[str] | IO[bytes]) -> None:
        self.path: str | None = None
        self.file: IO[bytes] | None = None
        if isinstance(source, str | os.PathLike):
            self.path = os.fspath(source)
            self.name = os.path.basename(self.path)
        else:
            self.file = source
            self.name = os.path.basename(str(getattr(source, "name", "") or ""))
        self._lock = asyncio.Lock()

    def _digest(self) -> tuple[bytes, int]:
        h = hashlib.sha256()
        size = 0
        f = open(self.path, "rb") if self.path is not None else self.file  # noqa: SIM115
        assert f is not None
        try:
            if self.path is None:
                f.seek(0)
            while block := f.read(HASH_BLOCK):
                h.update(block)
                size += len(block)
        finally:
            if self.path is not None:
                f.close()
        return h.digest(), size

    async def digest(self) -> tuple[bytes, int]:
        """SHA-256 and size, read in a thread (a big file would hold up the loop)."""
        return await asyncio.to_thread(self._digest)

    def _read(self, offset: int, n: int) -> bytes:
        if self.path is not None:
            with open(self.path, "rb") as f:
                f.seek(offset)
                return f.read(n)
        assert self.file is not None
        self.file.seek(offset)
        return self.file.read(n)

    async def read(self, offset: int, n: int) -> bytes:
        async with self._lock:  # a file object has one position
            return await asyncio.to_thread(self._read, offset, n)


class Media(Facade):
    """Media requests of one client (see the module docstring)."""

    __slots__ = ()

    def limits(self) -> dict[str, Any]:
        """`WELCOME.limits.media` of the current connection ({} if the server has none)."""
        conn = self._session.conn
        media = conn.server_limits.get("media") if conn is not None else None
        return dict(media) if isinstance(media, dict) else {}

    # ------------------------------------------------------------------ uploads

    async def upload(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        media_type: str | None = None,
        name: str | None = None,
        progress: Progress | None = None,
        window: int = DEFAULT_WINDOW,
        chunk_size: int | None = None,
    ) -> UploadDone:
        """Upload a file (a path or a seekable binary file object) and return UPLOAD_DONE:
        the blob's id, size, type and what the server read from it (`info`).

        `media_type` defaults to a guess from the name (else application/octet-stream),
        `name` to the file's; `progress(done, total)` is called as chunks are acknowledged
        (it may be a coroutine function). Resumes by itself after a lost connection.
        Refusals raise RequestError: BLOB_TOO_LARGE, LIMIT_REACHED (too many unfinished
        uploads), RATE_LIMITED (the day's budget; its `retry_after`), INSUFFICIENT_STORAGE.
        """
        if window < 1:
            raise ValueError("window must be at least 1")
        reader = _Reader(source)
        name = reader.name if name is None else name
        media_type = media_type or _guess_type(name)
        if not _MEDIA_TYPE.fullmatch(media_type):
            raise ValueError(f"media_type {media_type!r}: expected type/subtype, lower case")
        sha256, size = await reader.digest()
        session = self._session
        while True:
            session.raise_if_ended()
            try:
                return await self._upload_once(
                    reader, sha256, size, media_type, name, progress, window, chunk_size
                )
            except ConnectionClosed:
                if not session.reconnect:
                    raise
                # BEGIN again once reconnected: the server says what it holds
            except RequestError as exc:
                if exc.code not in (ErrorCode.UNKNOWN_UPLOAD, ErrorCode.UPLOAD_INCOMPLETE):
                    raise
                # expired meanwhile, or a chunk the server lost in a crash: BEGIN again

    def _chunk_size(self, wanted: int | None) -> int:
        """The largest chunk the server takes (fewest frames and answers), or `wanted`."""
        most = int(self.limits().get("max_chunk_size", 0))
        if not most:
            raise RequestError(ErrorCode.INTERNAL_ERROR, "the server has no media")
        return wanted if wanted is not None else most

    async def _upload_once(
        self,
        reader: _Reader,
        sha256: bytes,
        size: int,
        media_type: str,
        name: str,
        progress: Progress | None,
        window: int,
        chunk_size: int | None,
    ) -> UploadDone:
        session = self._session
        await session.live_connection()
        begin = UploadBegin(
            rid=0,
            size=size,
            sha256=sha256,
            media_type=media_type,
            chunk_size=self._chunk_size(chunk_size),
            name=name,
        )
        first = await self._ask(begin, Message, retry=True)
        if isinstance(first, UploadDone):
            await _report(progress, size, size)
            return first
        if not isinstance(first, UploadStatus):
            raise ProtocolError(
                ErrorCode.INVALID_FIELD, f"UPLOAD_BEGIN answered {first.TYPE.name}", first.rid
            )
        status = first
        held = list(zip(status.held[::2], status.held[1::2], strict=True))
        done = sum(e - s for s, e in held)
        await _report(progress, done, size)
        todo = [
            o for o in range(0, size, status.chunk_size) if not any(s <= o < e for s, e in held)
        ]
        queue = asyncio.Queue[int]()
        for offset in todo:
            queue.put_nowait(offset)
        counter = [done]

        async def worker() -> None:
            while True:
                try:
                    offset = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                data = await reader.read(offset, status.chunk_size)
                await self._ask(
                    UploadChunk(rid=0, upload=status.upload, offset=offset, data=data),
                    Ok,
                    retry=False,
                )
                counter[0] += len(data)
                await _report(progress, counter[0], size)

        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(min(window, max(len(todo), 1))):
                    tg.create_task(worker())
        except BaseExceptionGroup as group:  # the workers' first failure is the upload's
            failures: list[BaseException] = list(group.exceptions)
            lost = [e for e in failures if isinstance(e, ConnectionClosed)]
            raise (lost or failures)[0] from None
        return await self._ask(UploadFinish(rid=0, upload=status.upload), UploadDone, retry=False)

    # ------------------------------------------------------------------ downloads

    async def download(
        self,
        blob: bytes | UploadDone | ChatMessage | dict[str, Any],
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        progress: Progress | None = None,
        window: int = DEFAULT_WINDOW,
        length: int | None = None,
        verify: bool = True,
    ) -> int:
        """Download a blob (its id, an UPLOAD_DONE, a media message or its media map) to a
        path or a binary file object; returns its size. To a path it resumes an earlier
        partial download (`<path>.part`) and renames it into place once verified.
        UNKNOWN_BLOB if it does not exist or you may not read it."""
        sha = _blob_of(blob)
        if window < 1:
            raise ValueError("window must be at least 1")
        if isinstance(dest, str | os.PathLike):
            final = os.fspath(dest)
            part = final + ".part"
            with open(part, "ab"):
                pass
            try:
                size = await self._download_to_path(sha, part, progress, window, length, verify)
            except RequestError as exc:
                if exc.code is ErrorCode.HASH_MISMATCH:  # start afresh next time
                    with contextlib.suppress(OSError):
                        os.unlink(part)
                raise
            os.replace(part, final)
            return size
        h = hashlib.sha256()
        return await self._download_loop(sha, 0, dest, h, progress, window, length, verify)

    async def _download_to_path(
        self,
        sha: bytes,
        part: str,
        progress: Progress | None,
        window: int,
        length: int | None,
        verify: bool,
    ) -> int:
        h = hashlib.sha256()

        def prefix() -> int:
            n = 0
            with open(part, "rb") as f:
                while block := f.read(HASH_BLOCK):
                    h.update(block)
                    n += len(block)
            return n

        have = await asyncio.to_thread(prefix)
        with open(part, "r+b") as f:
            f.seek(have)
            return await self._download_loop(sha, have, f, h, progress, window, length, verify)

    async def _download_loop(
        self,
        sha: bytes,
        have: int,
        out: IO[bytes],
        h: Any,
        progress: Progress | None,
        window: int,
        length: int | None,
        verify: bool,
    ) -> int:
        session = self._session
        while True:
            session.raise_if_ended()
            try:
                size = await self._download_once(sha, have, out, h, progress, window, length)
                break
            except _Partial as p:  # the connection went: go on from what was written
                have = p.have
                if not session.reconnect:
                    raise p.cause from None
        if verify and h.digest() != sha:
            raise RequestError(
                ErrorCode.HASH_MISMATCH, "the downloaded bytes do not hash to the blob's id"
            )
        return size

    async def _download_once(
        self,
        sha: bytes,
        have: int,
        out: IO[bytes],
        h: Any,
        progress: Progress | None,
        window: int,
        length: int | None,
    ) -> int:
        most = int(self.limits().get("max_download_chunk", 0)) or (1 << 16)
        step = min(length or most, most)
        try:
            await self._session.live_connection()
            first = await self._ask(
                Download(rid=0, blob=sha, offset=have, length=step), BlobData, retry=False
            )
        except ConnectionClosed as exc:
            raise _Partial(have, exc) from None
        size = first.size
        pending: list[asyncio.Task[BlobData]] = []
        next_offset = have + len(first.data)
        answers: list[BlobData | asyncio.Task[BlobData]] = [first]
        loop = asyncio.get_running_loop()
        # Each range is written and hashed in a thread (hashlib and file writes release the
        # GIL) while the next ones arrive: one range at a time, in order, so the loop only
        # waits when the disk or the hash falls behind the network.
        writing: asyncio.Future[None] | None = None
        written = have

        def consume(data: bytes) -> None:
            out.write(data)
            h.update(data)

        async def settle() -> None:
            nonlocal writing, written
            if writing is not None:
                w, writing = writing, None
                await w
                written = have
                await _report(progress, written, size)

        try:
            while answers:
                got = answers.pop(0)
                data = got if isinstance(got, BlobData) else await got
                if data.offset != have:
                    raise ProtocolError(
                        ErrorCode.INVALID_FIELD, f"BLOB_DATA at {data.offset}, expected {have}"
                    )
                if data.data:
                    await settle()
                    writing = loop.run_in_executor(None, consume, data.data)
                    have += len(data.data)
                while len(answers) < window and next_offset < size:
                    task = asyncio.ensure_future(
                        self._ask(
                            Download(rid=0, blob=sha, offset=next_offset, length=step),
                            BlobData,
                            retry=False,
                        )
                    )
                    pending.append(task)
                    answers.append(task)
                    next_offset += step
            await settle()
        except ConnectionClosed as exc:
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await settle()  # what was handed to the writer is written: resume after it
            with contextlib.suppress(Exception):
                out.flush()
            raise _Partial(written, exc) from None
        finally:
            for t in pending:
                if not t.done():
                    t.cancel()
            if writing is not None:  # an error elsewhere: never leave a write behind
                with contextlib.suppress(BaseException):
                    await writing
        with contextlib.suppress(Exception):
            out.flush()
        if have != size:
            raise ProtocolError(ErrorCode.INVALID_FIELD, f"got {have} of {size} bytes")
        return size

    # ------------------------------------------------------------------ messages

    async def send(
        self,
        to: str | None,
        media: SendMedia,
        text: str = "",
        *,
        group: int | None = None,
        meta: dict[str, Any] | None = None,
        cmid: str | None = None,
        timeout: TimeoutArg = DEFAULT,
    ) -> Sent:
        """Send a media message (to a user, or with `group=` to a group): exactly once,
        like `Client.send()`; `text` is its caption."""
        session = self._session
        session.raise_if_ended()
        if (to is None) == (group is None):
            raise ValueError("give a recipient or a group, not both")
        return await session.outbox.send(
            to or "", group, text, meta, cmid, session.timeout_for(timeout), media
        )

    async def _uploaded(
        self, source: Source, progress: Progress | None, media_type: str | None = None
    ) -> UploadDone:
        if isinstance(source, UploadDone):
            return source
        return await self.upload(source, progress=progress, media_type=media_type)

    async def send_file(
        self,
        to: str | None,
        source: Source,
        *,
        text: str = "",
        name: str | None = None,
        group: int | None = None,
        progress: Progress | None = None,
        media_type: str | None = None,
    ) -> Sent:
        """Upload (unless given an UPLOAD_DONE) and send as a file."""
        done = await self._uploaded(source, progress, media_type)
        if name is None and not isinstance(source, UploadDone):
            name = _Reader(source).name or None
        return await self.send(to, MediaRef.file(done, name), text, group=group)

    async def send_image(
        self,
        to: str | None,
        source: Source,
        *,
        text: str = "",
        name: str | None = None,
        group: int | None = None,
        progress: Progress | None = None,
    ) -> Sent:
        """Upload and send as an image (the server makes the thumbnail)."""
        done = await self._uploaded(source, progress)
        if name is None and not isinstance(source, UploadDone):
            name = _Reader(source).name or None
        return await self.send(to, MediaRef.image(done, name), text, group=group)

    async def send_voice(
        self,
        to: str | None,
        source: Source,
        *,
        text: str = "",
        group: int | None = None,
        progress: Progress | None = None,
    ) -> Sent:
        """Upload and send as a voice note."""
        done = await self._uploaded(source, progress)
        return await self.send(to, MediaRef.voice(done), text, group=group)

    async def send_track(
        self,
        to: str | None,
        source: Source,
        *,
        text: str = "",
        title: str | None = None,
        artist: str | None = None,
        clip: tuple[int, int] | None = None,
        cover: Source | None = None,
        group: int | None = None,
        progress: Progress | None = None,
    ) -> Sent:
        """Upload and send a song track: title and artist default to the file's tags,
        `clip` is (start_ms, end_ms) within it, `cover` an image (uploaded too)."""
        done = await self._uploaded(source, progress)
        cover_done = await self._uploaded(cover, None) if cover is not None else None
        return await self.send(
            to,
            MediaRef.track(done, title=title, artist=artist, clip=clip, cover=cover_done),
            text,
            group=group,
        )


class _Partial(Exception):
    """A download stopped by a lost connection after `have` bytes."""

    def __init__(self, have: int, cause: ConnectionClosed) -> None:
        super().__init__(f"download interrupted after {have} bytes")
        self.have = have
        self.cause = cause


def _blob_of(x: bytes | UploadDone | ChatMessage | dict[str, Any]) -> bytes:
    if isinstance(x, ChatMessage):
        if x.media is None:
            raise ValueError("the message has no media")
        x = x.media
    if isinstance(x, dict):
        x = x.get("blob", b"")
    return _blob(x)  # type: ignore[arg-type]


def _guess_type(name: str) -> str:
    guessed, _enc = mimetypes.guess_type(name, strict=False)
    if guessed:
        guessed = guessed.lower().split(";", 1)[0].strip()
        if _MEDIA_TYPE.fullmatch(guessed):
            return guessed
    return "application/octet-stream"


def _ms(ms: int) -> str:
    s = int(ms) // 1000
    return f"{s // 60}:{s % 60:02d}"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return f"{n} B"


def describe(media: dict[str, Any] | None) -> str:
    """One line for a message's media map: `[image 1200x800 beach.jpg]`, `[voice 0:12]`,
    `[file notes.pdf, 1.2 MiB]`, `[track Moon River - Audrey (0:30-1:00 of 2:41)]`.
    Peer text is not escaped here."""
    if not isinstance(media, dict):
        return ""
    kind = str(media.get("kind", "media"))
    size = media.get("size")
    size_text = _size(size) if isinstance(size, int) else ""
    name = media.get("name")
    if kind == "image":
        dims = f"{media.get('w')}x{media.get('h')}"
        return f"[image {dims}" + (f" {name}" if name else "") + "]"
    if kind == "voice":
        return f"[voice {_ms(media.get('duration_ms', 0))}]"
    if kind == "track":
        title = media.get("title") or "untitled"
        artist = media.get("artist")
        head = f"{title} - {artist}" if artist else str(title)
        clip = media.get("clip")
        length = _ms(media.get("duration_ms", 0))
        if isinstance(clip, list) and len(clip) == 2:
            return f"[track {head} ({_ms(clip[0])}-{_ms(clip[1])} of {length})]"
        return f"[track {head} ({length})]"
    if kind == "file":
        return f"[file {name or media.get('type', '')}, {size_text}]"
    return f"[{kind} {size_text}]".replace(" ]", "]")
