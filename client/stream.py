"""The client's socket as an asyncio Protocol: what `ClientConnection` reads and writes.

It replaces asyncio's StreamReader/StreamWriter pair for one reason: StreamReader copies
every received byte twice (into its buffer, then out of it for `read()`), which for a media
download is most of the client's work. Here a received chunk is handed to the reader as the
very bytes object the transport produced; the frame reader copies it once, into the frame.

The surface is the part of the streams API the connection uses, with the same behaviour:
`read()` returns the next received bytes (b"" at the end of the stream, or raises the
error that ended it), `write()`, `drain()` (waits while the transport's buffer is above its
high-water mark; ConnectionResetError once the connection is lost), `is_closing()`,
`close()` and `wait_closed()`. Reading pauses the transport while more than `high` bytes
are received but not yet read, as StreamReader does.
"""

from __future__ import annotations

import asyncio
import collections
import ssl as ssl_module
from typing import cast

__all__ = ["Stream", "open_stream"]


class Stream(asyncio.Protocol):
    """One connected socket (see the module docstring)."""

    def __init__(self, high: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._high = high
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._eof = False
        self._error: BaseException | None = None
        self._read_waiter: asyncio.Future[None] | None = None
        self._paused_reading = False
        self._paused_writing = False
        self._drain_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._lost = False
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self.transport: asyncio.Transport | None = None

    # ------------------------------------------------------------------ protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's TLS transport is no asyncio.Transport subclass, but has its methods)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        self._wake_reader()
        if self._buffered > self._high and not self._paused_reading and self.transport:
            try:
                self.transport.pause_reading()
            except NotImplementedError:  # a transport that cannot pause: keep reading
                return
            self._paused_reading = True

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return False  # close the transport (we do not write after the peer's EOF)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._eof = True
        if exc is not None:
            self._error = exc
        self._wake_reader()
        for waiter in self._drain_waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)
        self._drain_waiters.clear()
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    def _wake_reader(self) -> None:
        waiter, self._read_waiter = self._read_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ reading

    async def read(self) -> bytes:
        """The next bytes received, as received; b"" at the end of the stream."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            self._read_waiter = self._loop.create_future()
            try:
                await self._read_waiter
            finally:
                self._read_waiter = None
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._paused_reading and self._buffered <= self._high // 2 and self.transport:
            self._paused_reading = False
            self.transport.resume_reading()
        return data

    # ------------------------------------------------------------------ writing

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def is_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    async def drain(self) -> None:
        if self._error is not None:
            raise self._error
        if self.is_closing():
            await asyncio.sleep(0)  # let connection_lost run (what StreamWriter does)
        if self._lost:
            raise ConnectionResetError("Connection lost")
        if not self._paused_writing:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)


async def open_stream(
    host: str, port: int, *, ssl: ssl_module.SSLContext | bool | None, high: int
) -> Stream:
    """Connect (TLS when `ssl` is given) and return the stream."""
    loop = asyncio.get_running_loop()
    _transport, stream = await loop.create_connection(lambda: Stream(high), host, port, ssl=ssl)
    return stream
